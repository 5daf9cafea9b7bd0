package sigma

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo/wire"
	"golang.org/x/crypto/blake2b"
)

func sampleBox(t *testing.T) Box {
	t.Helper()
	r4, err := Constant{TLong, int64(42)}.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	r5, err := Constant{CollOf(TByte), []byte("hi")}.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return Box{
		BoxCandidate: BoxCandidate{
			Value:          1_000_000_000,
			ErgoTree:       mustHex(t, "0008cd"+hexG),
			CreationHeight: 1_234_567,
			Tokens:         []Token{{ID: [32]byte{1}, Amount: 5}, {ID: [32]byte{2}, Amount: 1 << 62}},
			Registers:      [][]byte{r4, r5},
		},
		TxID:  [32]byte{0xaa, 0xbb},
		Index: 3,
	}
}

func TestBoxRoundTrip(t *testing.T) {
	box := sampleBox(t)
	w := wire.NewWriter(nil)
	if err := box.Write(w); err != nil {
		t.Fatal(err)
	}
	enc := bytes.Clone(w.Bytes())
	back, err := ParseBox(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, box) {
		t.Errorf("read back as %+v", back)
	}
	if back.ID() != blake2b.Sum256(enc) {
		t.Error("ID is not blake2b256 of the serialization")
	}
	r4, err := back.Register(4)
	if err != nil || r4.Value != int64(42) {
		t.Errorf("R4 = %v, %v", r4, err)
	}
	for _, i := range []int{3, 6, 10, -1} {
		if _, err := back.Register(i); !errors.Is(err, ErrNoRegister) {
			t.Errorf("R%d: %v, want ErrNoRegister", i, err)
		}
	}
	tree, err := back.Tree()
	if err != nil || tree.RootErr != nil {
		t.Errorf("Tree: %v", err)
	}
}

func TestBoxCandidateTokenIndex(t *testing.T) {
	box := sampleBox(t)
	ids := [][32]byte{{9}, {2}, {1}}
	index := map[[32]byte]uint32{{9}: 0, {2}: 1, {1}: 2}
	w := wire.NewWriter(nil)
	if err := box.BoxCandidate.Write(w, index); err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(w.Bytes())
	back, err := ReadBoxCandidate(r, ids)
	if err != nil || r.Len() != 0 {
		t.Fatalf("%v, %d left", err, r.Len())
	}
	if !reflect.DeepEqual(back, box.BoxCandidate) {
		t.Errorf("read back as %+v", back)
	}
	// Fewer ids than the indices need.
	if _, err := ReadBoxCandidate(wire.NewReader(w.Bytes()), ids[:2]); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("index out of range: %v", err)
	}
	// A token missing from the index cannot be written.
	delete(index, [32]byte{1})
	if err := box.BoxCandidate.Write(wire.NewWriter(nil), index); !errors.Is(err, ErrNotSerializable) {
		t.Errorf("missing token: %v", err)
	}
}

func TestBoxLimits(t *testing.T) {
	box := sampleBox(t)
	box.Registers = make([][]byte, 7)
	for i := range box.Registers {
		box.Registers[i] = []byte{0x7f}
	}
	if err := box.Write(wire.NewWriter(nil)); !errors.Is(err, ErrNotSerializable) {
		t.Errorf("7 registers written: %v", err)
	}
	if box.ID() != [32]byte{} {
		t.Error("unserializable box has an id")
	}
	// Seven registers on the wire.
	enc := "80ade204" + "0008cd" + hexG + "01" + "00" + "07" + strings.Repeat("7f", 7) + strings.Repeat("00", 32) + "00"
	_, err := ParseBox(mustHex(t, enc))
	if !errors.Is(err, wire.ErrInvalid) || !strings.Contains(err.Error(), "7 registers") {
		t.Errorf("7 registers read: %v", err)
	}
	// A creation height beyond a JVM Int.
	enc = "01" + "0008cd" + hexG + "8080808008" + "0000" + strings.Repeat("00", 32) + "00"
	if _, err := ParseBox(mustHex(t, enc)); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("creation height 2^31: %v", err)
	}
	// A register that is an expression but not a constant.
	enc = "01" + "0008cd" + hexG + "01" + "00" + "01" + "a3" + strings.Repeat("00", 32) + "00"
	if _, err := ParseBox(mustHex(t, enc)); !errors.Is(err, ErrNotConstant) {
		t.Errorf("Height in a register: %v", err)
	}
}

func TestRegisterValueForms(t *testing.T) {
	// The constant-like expressions the reference accepts in registers.
	cases := []struct{ hex, json string }{
		{"7f", `{"type":"Boolean","value":true}`},
		{"80", `{"type":"Boolean","value":false}`},
		{"82", `{"type":"GroupElement","value":"` + hexG + `"}`},
		{"850305", `{"type":"Coll[Boolean]","value":[true,false,true]}`},
		{"8302040402" + "0404", `{"type":"Coll[Int]","value":[1,2]}`},
		{"830202" + "0201" + "02ff", `{"type":"Coll[Byte]","value":"01ff"}`},
		{"830201" + "7f" + "0100", `{"type":"Coll[Boolean]","value":[true,false]}`},
		{"8602" + "0402" + "0e0101", `{"type":"(Int, Coll[Byte])","value":[1,"01"]}`},
		{"8602" + "830004" + "0402", `{"type":"(Coll[Int], Int)","value":[[],1]}`},
	}
	for _, c := range cases {
		b := mustHex(t, c.hex)
		r := wire.NewReader(b)
		raw, err := ReadRegisterValue(r)
		if err != nil || !bytes.Equal(raw, b) {
			t.Errorf("%s: ReadRegisterValue %x, %v", c.hex, raw, err)
			continue
		}
		k, err := DecodeRegisterValue(b)
		if err != nil {
			t.Errorf("%s: %v", c.hex, err)
			continue
		}
		if js, _ := json.Marshal(k); string(js) != c.json {
			t.Errorf("%s: %s, want %s", c.hex, js, c.json)
		}
	}
	// Accepted by the reference, but not a constant.
	nonConst := mustHex(t, "830104a3")
	if raw, err := ReadRegisterValue(wire.NewReader(nonConst)); err != nil || !bytes.Equal(raw, nonConst) {
		t.Errorf("collection of Height: %x, %v", raw, err)
	}
	if _, err := DecodeRegisterValue(nonConst); !errors.Is(err, ErrNotConstant) {
		t.Errorf("collection of Height: %v, want ErrNotConstant", err)
	}
	// An item of the wrong type.
	if _, err := DecodeRegisterValue(mustHex(t, "8301040502")); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("Long in a Coll[Int]: %v", err)
	}
	for _, h := range []string{"a3", "7300", "81", "d17f"} {
		if _, err := ReadRegisterValue(wire.NewReader(mustHex(t, h))); !errors.Is(err, ErrNotConstant) {
			t.Errorf("%s: %v, want ErrNotConstant", h, err)
		}
	}
}

func TestBoxJSON(t *testing.T) {
	box := sampleBox(t)
	box.Registers = append(box.Registers, mustHex(t, "830104a3")) // R6 does not reduce to a constant
	js, err := json.Marshal(box)
	if err != nil {
		t.Fatal(err)
	}
	id := box.ID()
	want := `{"boxId":"` + hex.EncodeToString(id[:]) + `","value":"1000000000","ergoTree":"0008cd` + hexG +
		`","creationHeight":1234567,"assets":[{"tokenId":"01` + strings.Repeat("00", 31) + `","amount":"5"},` +
		`{"tokenId":"02` + strings.Repeat("00", 31) + `","amount":"4611686018427387904"}],` +
		`"additionalRegisters":{"R4":{"type":"Long","value":"42"},"R5":{"type":"Coll[Byte]","value":"6869"},` +
		`"R6":{"serializedValue":"830104a3","error":"value: expression is not a constant at byte 3: Height is not a constant"}},` +
		`"transactionId":"aabb` + strings.Repeat("00", 30) + `","index":3}`
	if string(js) != want {
		t.Errorf("JSON\n got %s\nwant %s", js, want)
	}
	// A Box-typed constant renders the same object.
	w := wire.NewWriter(nil)
	box.Registers = box.Registers[:2]
	if err := WriteConstant(w, Constant{TBox, &box}); err != nil {
		t.Fatal(err)
	}
	c, err := ParseConstant(w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	boxJS, _ := json.Marshal(box)
	if js, _ := json.Marshal(c); string(js) != `{"type":"Box","value":`+string(boxJS)+`}` {
		t.Errorf("Box constant JSON %s", js)
	}
}
