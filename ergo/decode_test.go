package ergo

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
	"github.com/async-emission/auditor/internal/fixtures"
)

const goodBox = `{
  "boxId": "%BOXID%",
  "value": 1000000,
  "ergoTree": "0008cd0327e65711a59378c59359c3e1d0f7abe906479eccb76094e50fe79d743ccc15e6",
  "creationHeight": 700000,
  "assets": [{"tokenId": "0cd8c9f416e5b1ca9f986a7f10a84191dfb85941619e49e53c0dc30ebf83324b", "amount": 5}],
  "additionalRegisters": {"R4": "0e0101", "R5": "0580a8d6b907"},
  "transactionId": "4c6282be413c6e300a530618b37790be5f286ded758accc2aebd41554a1be308",
  "index": 1
}`

// boxWith returns goodBox with one replacement applied (old must occur).
func boxWith(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(goodBox, old) {
		t.Fatalf("test bug: %q not in the template", old)
	}
	return strings.Replace(goodBox, old, new, 1)
}

func TestBoxRoundTripAndID(t *testing.T) {
	var b Box
	if err := json.Unmarshal([]byte(strings.Replace(goodBox, `"boxId": "%BOXID%",`, "", 1)), &b); err != nil {
		t.Fatal(err)
	}
	if b.HasBoxID {
		t.Fatal("absent boxId reported as given")
	}
	id := b.ComputeID()
	var c Box
	if err := json.Unmarshal([]byte(strings.Replace(goodBox, "%BOXID%", id.String(), 1)), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckID(); err != nil {
		t.Fatal(err)
	}
	if c.Value != 1000000 || c.Tokens[0].Amount != 5 || len(c.Registers) != 2 || c.Index != 1 {
		t.Fatalf("decoded %+v", c)
	}
}

func TestDecodeErrorsNameTheField(t *testing.T) {
	id := `"boxId": "%BOXID%",`
	cases := []struct {
		name  string
		json  string
		kind  ErrorKind
		field string
	}{
		{"malformed hex", boxWith(t, `"ergoTree": "0008cd03`, `"ergoTree": "0g08cd03`), ErrHex, "ergoTree"},
		{"odd hex", boxWith(t, `"R4": "0e0101"`, `"R4": "0e010"`), ErrHex, "additionalRegisters.R4"},
		{"box id not hex", boxWith(t, "%BOXID%", "zz"), ErrHex, "boxId"},
		{"short box id", boxWith(t, "%BOXID%", "abcd"), ErrLength, "boxId"},
		{"missing value", boxWith(t, `"value": 1000000,`, ""), ErrMissingField, "value"},
		{"null value", boxWith(t, `"value": 1000000,`, `"value": null,`), ErrMissingField, "value"},
		{"missing ergoTree", boxWith(t, `"ergoTree": "0008cd0327e65711a59378c59359c3e1d0f7abe906479eccb76094e50fe79d743ccc15e6",`, ""), ErrMissingField, "ergoTree"},
		{"missing transactionId", boxWith(t, `"transactionId": "4c6282be413c6e300a530618b37790be5f286ded758accc2aebd41554a1be308",`, ""), ErrMissingField, "transactionId"},
		{"negative value", boxWith(t, `"value": 1000000`, `"value": -1`), ErrAmount, "value"},
		{"value beyond 64 bits", boxWith(t, `"value": 1000000`, `"value": 18446744073709551616`), ErrAmount, "value"},
		{"value beyond Long", boxWith(t, `"value": 1000000`, `"value": "9223372036854775808"`), ErrAmount, "value"},
		{"fractional value", boxWith(t, `"value": 1000000`, `"value": 1.5`), ErrNumber, "value"},
		{"negative token amount", boxWith(t, `"amount": 5`, `"amount": "-5"`), ErrAmount, "assets[0].amount"},
		{"zero token amount", boxWith(t, `"amount": 5`, `"amount": 0`), ErrAmount, "assets[0].amount"},
		{"short token id", boxWith(t, `"tokenId": "0cd8c9f416e5b1ca9f986a7f10a84191dfb85941619e49e53c0dc30ebf83324b"`, `"tokenId": "0cd8"`), ErrLength, "assets[0].tokenId"},
		{"index beyond 16 bits", boxWith(t, `"index": 1`, `"index": 65536`), ErrNumber, "index"},
		{"register gap", boxWith(t, `"R5": "0580a8d6b907"`, `"R6": "0580a8d6b907"`), ErrRegister, "additionalRegisters.R6"},
		{"register beyond R9", boxWith(t, `"R5": "0580a8d6b907"`, `"R10": "0580a8d6b907"`), ErrRegister, "additionalRegisters.R10"},
		{"mandatory register", boxWith(t, `"R5": "0580a8d6b907"`, `"R3": "0580a8d6b907"`), ErrRegister, "additionalRegisters.R3"},
		{"unknown register", boxWith(t, `"R5": "0580a8d6b907"`, `"x": "0580a8d6b907"`), ErrRegister, "additionalRegisters.x"},
		{"register not a string", boxWith(t, `"R4": "0e0101"`, `"R4": 14`), ErrHex, "additionalRegisters.R4"},
		{"empty register", boxWith(t, `"R4": "0e0101"`, `"R4": ""`), ErrRegister, "additionalRegisters.R4"},
		{"syntax error", boxWith(t, `"index": 1`, `"index": 1,,`), ErrJSON, ""},
		{"wrong JSON type", boxWith(t, `"assets": [`, `"assets": {"x": [`) + "}", ErrJSON, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b Box
			in := strings.Replace(c.json, id, `"boxId": "0000000000000000000000000000000000000000000000000000000000000000",`, 1)
			err := b.UnmarshalJSON([]byte(in))
			if !errors.Is(err, c.kind) {
				t.Fatalf("got %v, want kind %q", err, c.kind)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("%T is not an *ergo.Error", err)
			}
			if c.field != "" && e.Field != c.field {
				t.Fatalf("error %q names field %q, want %q", err, e.Field, c.field)
			}
		})
	}
}

const goodTx = `{
  "id": "0000000000000000000000000000000000000000000000000000000000000000",
  "inputs": [{"boxId": "9a491fa8dc6a8b42be302aedc76387cf09889a7027a5af37355d09a9c45add9e",
              "spendingProof": {"proofBytes": "", "extension": {"1": "0402", "0": "0e00"}}}],
  "dataInputs": [{"boxId": "6af4507f7fb6100d9315b1a0c24562a3a4fe00b5fa425497ecb6dcee6b059d95"}],
  "outputs": [{"value": 1, "ergoTree": "0008cd0327e65711a59378c59359c3e1d0f7abe906479eccb76094e50fe79d743ccc15e6",
               "creationHeight": 1, "assets": [], "additionalRegisters": {}}]
}`

func TestTransactionDecoding(t *testing.T) {
	var tx Transaction
	if err := json.Unmarshal([]byte(goodTx), &tx); err != nil {
		t.Fatal(err)
	}
	ext := tx.Inputs[0].Extension
	if len(ext) != 2 || ext[0].Key != 1 || ext[1].Key != 0 {
		t.Fatalf("context extension order not kept: %+v", ext)
	}
	// Outputs without a stated link are linked to the transaction.
	if Digest(tx.Outputs[0].TxID) != tx.ComputeID() || tx.Outputs[0].Index != 0 {
		t.Fatal("output not linked to its transaction")
	}
	if err := tx.CheckIDs(); !errors.Is(err, ErrIDMismatch) {
		t.Fatalf("zero id verified: %v", err)
	}

	cases := []struct {
		name, old, new string
		kind           ErrorKind
		field          string
	}{
		{"missing inputs", `"inputs"`, `"inputz"`, ErrMissingField, "inputs"},
		{"missing outputs", `"outputs"`, `"outputz"`, ErrMissingField, "outputs"},
		{"no inputs", `"inputs": [{"boxId": "9a491fa8dc6a8b42be302aedc76387cf09889a7027a5af37355d09a9c45add9e",
              "spendingProof": {"proofBytes": "", "extension": {"1": "0402", "0": "0e00"}}}]`, `"inputs": []`, ErrLength, "inputs"},
		{"missing proof", `"spendingProof"`, `"spendingProoff"`, ErrMissingField, "inputs[0].spendingProof"},
		{"extension key range", `"1": "0402"`, `"256": "0402"`, ErrExtension, "inputs[0].spendingProof.extension.256"},
		{"extension duplicate", `"0": "0e00"`, `"1": "0e00"`, ErrExtension, "inputs[0].spendingProof.extension.1"},
		{"extension bad hex", `"0": "0e00"`, `"0": "0e0"`, ErrHex, "inputs[0].spendingProof.extension.0"},
		{"output value", `"value": 1,`, `"value": -1,`, ErrAmount, "outputs[0].value"},
		{"data input id", `"6af4507f7fb6100d9315b1a0c24562a3a4fe00b5fa425497ecb6dcee6b059d95"`, `"6af4"`, ErrLength, "dataInputs[0].boxId"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(goodTx, c.old) {
				t.Fatalf("test bug: %q not in the template", c.old)
			}
			var tx Transaction
			err := json.Unmarshal([]byte(strings.Replace(goodTx, c.old, c.new, 1)), &tx)
			var e *Error
			if !errors.Is(err, c.kind) || !errors.As(err, &e) || e.Field != c.field {
				t.Fatalf("got %v, want %q at %s", err, c.kind, c.field)
			}
		})
	}
}

// offCurve is a GroupElement constant whose 33 bytes are not a secp256k1
// point (x = 2^256-1 is above the field's prime).
const offCurve = "0702" + "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"

// TestGroupElementsOffTheCurveAreRefused: node JSON holding a group element
// that is not a curve point, in a box register, an output register or a
// context variable, does not decode: the binary parser would refuse its
// serialization. The error names the field and is sigma.ErrInvalidPoint.
func TestGroupElementsOffTheCurveAreRefused(t *testing.T) {
	// The same value on the curve (the generator) decodes.
	onCurve := "07" + sigma.Generator().String()
	var b Box
	in := strings.Replace(boxWith(t, `"R4": "0e0101"`, `"R4": "`+onCurve+`"`), "%BOXID%", strings.Repeat("0", 64), 1)
	if err := json.Unmarshal([]byte(in), &b); err != nil {
		t.Fatalf("a register holding the generator: %v", err)
	}
	var tx Transaction
	if err := json.Unmarshal([]byte(strings.Replace(goodTx, `"0": "0e00"`, `"0": "`+onCurve+`"`, 1)), &tx); err != nil {
		t.Fatalf("a context variable holding the generator: %v", err)
	}

	for _, tc := range []struct {
		name  string
		err   func() error
		kind  ErrorKind
		field string
	}{
		{"box register", func() error {
			var b Box
			return json.Unmarshal([]byte(strings.Replace(boxWith(t, `"R4": "0e0101"`, `"R4": "`+offCurve+`"`), "%BOXID%", strings.Repeat("0", 64), 1)), &b)
		}, ErrRegister, "additionalRegisters.R4"},
		{"register in a collection", func() error {
			// Coll[GroupElement] of one point: type 0x0c07... is written as
			// the collection type code 0x0c + 0x07 = 0x13, then the length.
			var b Box
			return json.Unmarshal([]byte(strings.Replace(boxWith(t, `"R5": "0580a8d6b907"`, `"R5": "1301`+offCurve[2:]+`"`), "%BOXID%", strings.Repeat("0", 64), 1)), &b)
		}, ErrRegister, "additionalRegisters.R5"},
		{"output register", func() error {
			var tx Transaction
			return json.Unmarshal([]byte(strings.Replace(goodTx, `"additionalRegisters": {}`, `"additionalRegisters": {"R4": "`+offCurve+`"}`, 1)), &tx)
		}, ErrRegister, "outputs[0].additionalRegisters.R4"},
		{"context variable", func() error {
			var tx Transaction
			return json.Unmarshal([]byte(strings.Replace(goodTx, `"0": "0e00"`, `"0": "`+offCurve+`"`, 1)), &tx)
		}, ErrExtension, "inputs[0].spendingProof.extension.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			var e *Error
			if !errors.Is(err, tc.kind) || !errors.Is(err, sigma.ErrInvalidPoint) || !errors.As(err, &e) || e.Field != tc.field {
				t.Fatalf("got %v, want %q and %q at %s", err, tc.kind, sigma.ErrInvalidPoint, tc.field)
			}
		})
	}
}

func TestMerkleRootShapes(t *testing.T) {
	// The empty tree's root is H(""); one leaf still gets an inner node;
	// an odd leaf is paired with nothing.
	if MerkleRoot(nil).String() != "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8" {
		t.Fatalf("empty root %s", MerkleRoot(nil))
	}
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	leaf := func(x []byte) Digest { return Hash(append([]byte{0}, x...)) }
	node := func(l, r []byte) Digest { return Hash(append(append([]byte{1}, l...), r...)) }
	la, lb, lc := leaf(a), leaf(b), leaf(c)
	if got, want := MerkleRoot([][]byte{a}), node(la[:], nil); got != want {
		t.Fatalf("one leaf: %s, want %s", got, want)
	}
	ab, cc := node(la[:], lb[:]), node(lc[:], nil)
	if got, want := MerkleRoot([][]byte{a, b, c}), node(ab[:], cc[:]); got != want {
		t.Fatalf("three leaves: %s, want %s", got, want)
	}
}

func TestOverLimitTransactionHasNoID(t *testing.T) {
	var tx Transaction
	if err := json.Unmarshal([]byte(goodTx), &tx); err != nil {
		t.Fatal(err)
	}
	tx.Outputs[0].Registers = make([][]byte, 7)
	if tx.BytesToSign() != nil || tx.ComputeID() != (Digest{}) {
		t.Fatal("a transaction with 7 registers in an output got a serialization")
	}
}

// TestHeaderPoWKeyMustBeAPoint: a header whose miner key (or, for version
// 1, its w) is not a secp256k1 point does not decode, from JSON or bytes,
// as the node's parser refuses it.
func TestHeaderPoWKeyMustBeAPoint(t *testing.T) {
	var hs []json.RawMessage
	fixtures.JSON(t, &hs, "headers", "chainslice_mainnet_844673_844772_v2.json")
	var h Header
	if err := h.UnmarshalJSON(hs[0]); err != nil {
		t.Fatal(err)
	}
	off := "02" + strings.Repeat("ff", 32) // x beyond the field: no point
	bad := bytes.Replace(hs[0], []byte(hex.EncodeToString(h.PoW.PK[:])), []byte(off), 1)
	var got Header
	if err := got.UnmarshalJSON(bad); !errors.Is(err, ErrPoW) || !errors.Is(err, sigma.ErrInvalidPoint) || !strings.Contains(err.Error(), "powSolutions.pk") {
		t.Fatalf("off-curve key: %v", err)
	}
	h.HasID = false
	copy(h.PoW.PK[:], mustDecodeHex(t, off))
	if _, err := ParseHeader(h.Bytes()); !errors.Is(err, sigma.ErrInvalidPoint) {
		t.Fatalf("off-curve key in bytes: %v", err)
	}
}

func mustDecodeHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBoxTreeIsDelimited: the bytes a box id commits to have one reading, the
// one a parser of boxes makes, and a node cannot state another. Here a box
// whose R4 is 32 bytes is re-read with its tree taking the creation height's
// byte, so that the register's bytes become a token the box does not hold:
// both readings have the same serialization, hence the same id, and only the
// ErgoTree check tells them apart.
func TestBoxTreeIsDelimited(t *testing.T) {
	tree := unhex(t, "0008cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	x := bytes.Repeat([]byte{0xab}, 32)
	x[30], x[31] = 5, 0 // read as the token amount and the register count
	r4 := append([]byte{0x0e, 0x20}, x...)
	honest := sigma.Box{BoxCandidate: sigma.BoxCandidate{
		Value: 1_000_000, ErgoTree: tree, CreationHeight: 1, Registers: [][]byte{r4},
	}}
	var token [32]byte
	copy(token[:], r4)
	other := sigma.Box{BoxCandidate: sigma.BoxCandidate{
		Value: 1_000_000, ErgoTree: append(bytes.Clone(tree), 0x01), CreationHeight: 0,
		Tokens: []sigma.Token{{ID: token, Amount: 5}},
	}}
	if honest.ID() != other.ID() {
		t.Fatal("the two readings do not serialize alike; the test is wrong")
	}
	var b Box
	if err := b.UnmarshalJSON((&Box{Box: honest}).AppendJSON(nil)); err != nil {
		t.Fatalf("honest reading: %v", err)
	}
	err := b.UnmarshalJSON((&Box{Box: other}).AppendJSON(nil))
	if !errors.Is(err, ErrErgoTree) || !errors.Is(err, wire.ErrInvalid) && !errors.Is(err, wire.ErrTruncated) {
		t.Fatalf("other reading: %v, want %v", err, ErrErgoTree)
	}
	// A tree cut short is refused too.
	other.ErgoTree = tree[:len(tree)-1]
	if err := b.UnmarshalJSON((&Box{Box: other}).AppendJSON(nil)); !errors.Is(err, ErrErgoTree) {
		t.Fatalf("short tree: %v, want %v", err, ErrErgoTree)
	}
}

// TestTreeEndedByTheFieldsAfterIt: a sized tree whose body runs on past its
// bytes is what consensus keeps when the body then breaks a rule in the
// fields after it: the reference keeps the tree unparsed, delimited by its
// size. Here the size is 0 and the creation height 129 is written 81 01,
// and 0x81 starts no expression. Before the height 1 (byte 01, a Boolean
// constant) the body would read on and end elsewhere: the same tree is
// then refused, alone or in a transaction.
func TestTreeEndedByTheFieldsAfterIt(t *testing.T) {
	for _, c := range []struct {
		height uint32
		ok     bool
	}{{129, true}, {1, false}} {
		box := sigma.Box{BoxCandidate: sigma.BoxCandidate{Value: 1_000_000, ErgoTree: []byte{0x08, 0x00}, CreationHeight: c.height}}
		var b Box
		err := b.UnmarshalJSON((&Box{Box: box}).AppendJSON(nil))
		if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrErgoTree) {
			t.Errorf("box at height %d: %v", c.height, err)
		}
		tx := Transaction{Inputs: []Input{{BoxID: Digest{1}}}, Outputs: []Box{{Box: box}}}
		var got Transaction
		err = got.UnmarshalJSON(tx.AppendJSON(nil))
		if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrErgoTree) {
			t.Errorf("transaction with an output at height %d: %v", c.height, err)
		}
		if err == nil && !bytes.Equal(got.Outputs[0].ErgoTree, box.ErgoTree) {
			t.Errorf("tree %x", got.Outputs[0].ErgoTree)
		}
	}
}

// TestValueRunningOnIsReadInContext: a register or a context variable that
// runs on past its bytes (here a Coll[Byte] of 5 holding 2) is read where
// consensus reads it, in the transaction's bytes: there it takes in what
// follows, so the node's reading is refused, with the kind of the value.
// (The case the context exists for is TestRegisterEndedByTheFieldsAfterIt.)
func TestValueRunningOnIsReadInContext(t *testing.T) {
	short := []byte{0x0e, 0x05, 0xaa, 0xbb}
	out := Box{Box: sigma.Box{BoxCandidate: sigma.BoxCandidate{
		Value: 1_000_000, ErgoTree: unhex(t, "0008cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"), CreationHeight: 1,
	}}}
	withRegister := out
	withRegister.Registers = [][]byte{short}
	for _, c := range []struct {
		tx   Transaction
		want ErrorKind
	}{
		{Transaction{Inputs: []Input{{BoxID: Digest{1}}}, Outputs: []Box{withRegister, out}}, ErrRegister},
		{Transaction{Inputs: []Input{{BoxID: Digest{1}, Extension: []ContextVar{{Key: 1, Value: short}}}, {BoxID: Digest{2}}}, Outputs: []Box{out}}, ErrExtension},
	} {
		var got Transaction
		if err := got.UnmarshalJSON(c.tx.AppendJSON(nil)); !errors.Is(err, c.want) {
			t.Errorf("%v, want %v", err, c.want)
		}
	}
}

// TestRegisterEndedByTheFieldsAfterIt: a register holding a box whose sized
// tree is ended by what follows the register. The tree (08 00: size 0) is
// followed, inside the register, by bytes that are both the rest of the box
// (creation height 83 28, one token, one register, the transaction id, the
// index) and the start of a ConcreteCollection of 40 Boolean constants the
// register holds only 35 of. Alone, the register runs out; in the
// transaction, the 35th item takes the next output's first byte and the
// 36th is its second, 0x81, which starts no expression: the reference keeps
// the tree unparsed, of size 0, and the register is what the node stated.
// When the next output's value is 128 (80 01), its second byte is a Boolean
// constant, and so are its next fields (up to its register, true), and the
// collection reads on past the end of the transaction, which then does not
// parse: refused.
func TestRegisterEndedByTheFieldsAfterIt(t *testing.T) {
	pairs := bytes.Repeat([]byte{0x01, 0x01}, 16)           // 16 Boolean constants, 32 bytes
	reg := []byte{0x63, 0x01, 0x08, 0x00, 0x83, 0x28, 0x01} // Box; value 1; tree; height / collection of 40 Booleans; 1 token
	reg = append(reg, pairs...)                             // token id
	reg = append(reg, 0x01, 0x01, 0x01, 0x01)               // amount 1; 1 register, holding true
	reg = append(reg, pairs...)                             // transaction id
	reg = append(reg, 0x01)                                 // index 1; a 35th item short of its value
	if err := sigma.CheckRegisterValue(reg); !errors.Is(err, wire.ErrTruncated) {
		t.Fatalf("the register alone: %v, want it to run out", err)
	}
	p2pk := unhex(t, "0008cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
	holder := Box{Box: sigma.Box{BoxCandidate: sigma.BoxCandidate{Value: 1_000_000, ErgoTree: p2pk, CreationHeight: 1, Registers: [][]byte{reg}}}}
	for _, c := range []struct {
		next uint64 // the next output's value: 16,512 is written 80 81 01; 128, 80 01
		ok   bool
	}{{16_512, true}, {128, false}} {
		next := Box{Box: sigma.Box{BoxCandidate: sigma.BoxCandidate{Value: c.next, ErgoTree: p2pk, CreationHeight: 1, Registers: [][]byte{{0x01, 0x01}}}}}
		tx := Transaction{Inputs: []Input{{BoxID: Digest{1}}}, Outputs: []Box{holder, next}}
		var got Transaction
		err := got.UnmarshalJSON(tx.AppendJSON(nil))
		if c.ok != (err == nil) || err != nil && !errors.Is(err, ErrRegister) {
			t.Errorf("next output of %d nanoERG: %v", c.next, err)
		}
	}
}
