package sigma

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/async-emission/auditor/ergo/wire"
)

// The fuzz targets are seeded with every item of the fixtures and with a
// few hand-written inputs. Each checks that decoding never panics and that
// what decodes re-encodes: the writer is canonical and the reader lenient,
// so the property checked is parse(write(parse(b))) == parse(b) rather than
// write(parse(b)) == b.

func FuzzParseConstant(f *testing.F) {
	for _, h := range []string{
		"0101", "0480897a", "05feffffffffffffffff01", "0601ff", "090100", "07" + hexG,
		"08cd" + hexG, "089602cd" + hexG + "d3", "0d0305", "0e03010203", "1a02010100",
		"280104", "2800", "0c6200", "400e020201ff", "6603616263", "5402030209050a050105",
		"64" + zeroDigest + "02200108", "6005040502010e0204000103aabbcc",
	} {
		f.Add(mustHex(f, h))
	}
	it := fixtureItems(f)
	for _, h := range sortedKeys(it.registers) {
		f.Add(mustHex(f, h))
	}
	for _, h := range sortedKeys(it.extensions) {
		f.Add(mustHex(f, h))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConstant(b)
		if err != nil {
			return
		}
		enc, err := c.Bytes()
		if err != nil {
			t.Fatalf("%x parsed as %s but does not write: %v", b, c.Type, err)
		}
		c2, err := ParseConstant(enc)
		if err != nil {
			t.Fatalf("%x written as %x, which does not parse: %v", b, enc, err)
		}
		if !TypeEqual(c.Type, c2.Type) {
			t.Fatalf("%x: type %s read back as %s", b, c.Type, c2.Type)
		}
		if enc2, err := c2.Bytes(); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("%x: canonical form %x rewritten as %x (%v)", b, enc, enc2, err)
		}
		js, err := json.Marshal(c)
		if err != nil || !json.Valid(js) {
			t.Fatalf("%x: JSON: %v", b, err)
		}
		if js2, _ := json.Marshal(c2); !bytes.Equal(js, js2) {
			t.Fatalf("%x: JSON %s, after a round trip %s", b, js, js2)
		}
		if rc, err := DecodeRegisterValue(b); err != nil || !TypeEqual(rc.Type, c.Type) {
			t.Fatalf("%x: DecodeRegisterValue: %v", b, err)
		}
	})
}

func FuzzParseErgoTree(f *testing.F) {
	for _, h := range []string{
		"0008cd" + hexG, "100108cd" + hexG + "7300", "1926" + "01" + "08cd" + hexG + "7300",
		"080381aabb", "0801" + "08cd" + hexG, "1806010480897a81", "00d801d601a39a72017201",
		"00dc6a09dd01040204", "00db6a0add04", "00938501", "00b0a40500d901014163998c720101c18c720102",
	} {
		f.Add(mustHex(f, h))
	}
	for _, h := range sortedKeys(fixtureItems(f).trees) {
		f.Add(mustHex(f, h))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := ParseErgoTree(b)
		// The check that keeps nothing, and remembers, agrees with the
		// parse, the first time and the second.
		for range 2 {
			if cerr := CheckErgoTree(b); (cerr == nil) != (err == nil) {
				t.Fatalf("%x: ParseErgoTree %v, CheckErgoTree %v", b, err, cerr)
			}
		}
		if err != nil {
			return
		}
		if !bytes.Equal(tree.Bytes, b) {
			t.Fatalf("%x: Bytes %x", b, tree.Bytes)
		}
		if tree.RootErr != nil && !tree.HasSize {
			t.Fatalf("%x: unparsed tree without a size", b)
		}
		if tree.Template == nil {
			return
		}
		// Rebuild the tree from its canonical constants and template.
		body := wire.NewWriter(nil)
		if tree.ConstantSegregation {
			body.U32(uint32(len(tree.Constants)))
			for _, c := range tree.Constants {
				if err := WriteConstant(body, c); err != nil {
					t.Fatalf("%x: constant %s does not write: %v", b, c.Type, err)
				}
			}
		}
		body.Write(tree.Template)
		w := wire.NewWriter(nil)
		w.Byte(tree.Header)
		if tree.HasSize {
			w.U32(uint32(body.Len()))
		}
		w.Write(body.Bytes())
		tree2, err := ParseErgoTree(w.Bytes())
		if err != nil {
			t.Fatalf("%x rebuilt as %x, which does not parse: %v", b, w.Bytes(), err)
		}
		if tree.RootErr == nil && tree2.RootErr != nil {
			t.Fatalf("%x rebuilt as %x: root no longer parses: %v", b, w.Bytes(), tree2.RootErr)
		}
		if tree.RootErr == nil && (len(tree2.Constants) != len(tree.Constants) || !bytes.Equal(tree2.Template, tree.Template)) {
			t.Fatalf("%x rebuilt as %x: different constants or template", b, w.Bytes())
		}
	})
}

func FuzzReadBox(f *testing.F) {
	seed := func(b Box) {
		w := wire.NewWriter(nil)
		if err := b.Write(w); err != nil {
			f.Fatal(err)
		}
		f.Add(w.Bytes())
	}
	box := Box{BoxCandidate: BoxCandidate{Value: 1, ErgoTree: mustHex(f, "0008cd"+hexG), CreationHeight: 1}}
	seed(box)
	box.Tokens = []Token{{ID: [32]byte{7}, Amount: 1 << 40}}
	box.Registers = [][]byte{mustHex(f, "0e0101"), mustHex(f, "8602040205"+"02"), mustHex(f, "7f")}
	seed(box)
	c := loadCorpus(f)
	for _, bb := range c.boxBytes {
		f.Add(bb.bytes)
	}
	for _, h := range sortedKeys(fixtureItems(f).registers) {
		if h[:2] == "63" { // a Box-typed register holds a box
			f.Add(mustHex(f, h[2:]))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := wire.NewReader(b)
		box, err := ReadBox(r)
		if err != nil {
			return
		}
		consumed := b[:r.Pos()]
		// A tree (or register) whose end is set by the bytes after it, as
		// in the reference reader, is one value only in its context: the
		// round trip is asked of boxes whose tree and registers are each
		// one value alone (as FuzzParseTransaction asks of its trees).
		if CheckErgoTree(box.ErgoTree) != nil {
			return
		}
		for _, reg := range box.Registers {
			if CheckRegisterValue(reg) != nil {
				return
			}
		}
		w := wire.NewWriter(nil)
		if err := box.Write(w); err != nil {
			t.Fatalf("%x: read box does not write: %v", b, err)
		}
		if w.Len() > len(consumed) {
			t.Fatalf("%x: canonical form %x is longer than the input", consumed, w.Bytes())
		}
		box2, err := ParseBox(w.Bytes())
		if err != nil {
			t.Fatalf("%x written as %x, which does not parse: %v", consumed, w.Bytes(), err)
		}
		if !reflect.DeepEqual(box, box2) {
			t.Fatalf("%x: read back as a different box", consumed)
		}
		if _, err := json.Marshal(box); err != nil {
			t.Fatalf("%x: JSON: %v", consumed, err)
		}
		for i := range box.Registers {
			_, _ = box.Register(firstRegister + i) // must not panic
		}
	})
}

// FuzzCheckRegisterValue: CheckRegisterValue, which builds no value,
// accepts exactly what ReadRegisterValue reads to the end.
func FuzzCheckRegisterValue(f *testing.F) {
	for _, h := range []string{"0101", "0e03010203", "07" + hexG, "0702" + zeroDigest[:64], "0e0301", "0e0301020304", "8301", "1a020101"} {
		f.Add(mustHex(f, h))
	}
	it := fixtureItems(f)
	for _, h := range sortedKeys(it.registers) {
		f.Add(mustHex(f, h))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := wire.NewReader(b)
		_, err := ReadRegisterValue(r)
		if err == nil {
			err = r.Done("register value")
		}
		if got := CheckRegisterValue(b); (got == nil) != (err == nil) {
			t.Fatalf("%x: CheckRegisterValue says %v, ReadRegisterValue %v", b, got, err)
		}
	})
}
