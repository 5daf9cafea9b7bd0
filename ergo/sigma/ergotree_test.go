package sigma

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo/wire"
)

func TestErgoTreeP2PK(t *testing.T) {
	b := mustHex(t, "0008cd"+hexG)
	tree, err := ParseErgoTree(b)
	if err != nil {
		t.Fatal(err)
	}
	if tree.RootErr != nil || tree.Version != 0 || tree.HasSize || tree.ConstantSegregation || len(tree.Constants) != 0 {
		t.Errorf("unexpected %+v", tree)
	}
	if !bytes.Equal(tree.Bytes, b) || !bytes.Equal(tree.Template, b[1:]) {
		t.Errorf("Bytes %x, Template %x", tree.Bytes, tree.Template)
	}
	h, err := tree.TemplateHash()
	if err != nil || h != sha256.Sum256(b[1:]) {
		t.Errorf("TemplateHash %x, %v", h, err)
	}
}

func TestErgoTreeSegregatedAndSized(t *testing.T) {
	// sigmaProp(SELF.R4[SigmaProp].get) with one segregated constant, as v0
	// (0x10) and as v1 with the size flag (0x19).
	body := "01" + "08cd" + hexG + "ea02" + "7300" + "d1e4c6a70408"
	for _, c := range []struct {
		header string
		sized  bool
	}{{"10", false}, {"18", true}, {"19", true}} {
		h := c.header
		if c.sized {
			h += hex.EncodeToString([]byte{byte(len(body) / 2)})
		}
		tree, err := ParseErgoTree(mustHex(t, h+body))
		if err != nil {
			t.Errorf("%s: %v", c.header, err)
			continue
		}
		if tree.RootErr != nil || tree.HasSize != c.sized || !tree.ConstantSegregation || len(tree.Constants) != 1 {
			t.Errorf("%s: %+v", c.header, tree)
		}
		if tree.Constants[0].Type != TSigmaProp || hex.EncodeToString(tree.Template) != "ea027300d1e4c6a70408" {
			t.Errorf("%s: constants %v, template %x", c.header, tree.Constants, tree.Template)
		}
	}
}

func TestErgoTreeUnparsed(t *testing.T) {
	// A sized tree whose body does not parse is kept, delimited by its size.
	in := mustHex(t, "080381aabb"+"ff") // UnitConstant (0x81) has no serializer
	r := wire.NewReader(in)
	tree, err := ReadErgoTree(r)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(tree.RootErr, ErrUnknownOpcode) || r.Pos() != 5 || !bytes.Equal(tree.Bytes, in[:5]) {
		t.Errorf("RootErr %v, consumed %d, Bytes %x", tree.RootErr, r.Pos(), tree.Bytes)
	}
	if hex.EncodeToString(tree.Template) != "81aabb" {
		t.Errorf("Template %x", tree.Template)
	}
	// The same body without the size flag cannot be delimited.
	if _, err := ParseErgoTree(mustHex(t, "0081aabb")); !errors.Is(err, ErrUnknownOpcode) {
		t.Errorf("unsized: %v", err)
	}
	// A placeholder beyond the constants.
	if tree, err := ParseErgoTree(mustHex(t, "1803007300")); err != nil || tree.RootErr == nil {
		t.Errorf("sized placeholder: %v, %v", tree, err)
	}
	if _, err := ParseErgoTree(mustHex(t, "10007300")); !errors.Is(err, wire.ErrInvalid) {
		t.Errorf("unsized placeholder: %v", err)
	}
	// A size beyond the input.
	if _, err := ParseErgoTree(mustHex(t, "080581")); !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("size beyond the input: %v", err)
	}
	// A sized body that runs out of input is an error, not an unparsed
	// tree: inside a box it would be read on from the fields after it (here
	// the size 0 is written in two bytes, 80 00).
	if _, err := ParseErgoTree(mustHex(t, "088000")); !errors.Is(err, wire.ErrTruncated) {
		t.Errorf("sized body beyond the input: %v", err)
	}
	// An unparsed tree whose constants did parse keeps them.
	tree, err = ParseErgoTree(mustHex(t, "1806010480897a81"))
	if err != nil || tree.RootErr == nil || len(tree.Constants) != 1 || hex.EncodeToString(tree.Template) != "81" {
		t.Errorf("unparsed with constants: %+v, %v", tree, err)
	}
}

func TestErgoTreeSizeMismatch(t *testing.T) {
	// The reference reads a sized tree's body from the input and does not
	// compare where it ends with the declared size: a body that parses
	// decides the tree's length.
	in := mustHex(t, "0801"+"08cd"+hexG)
	tree, err := ParseErgoTree(in)
	if err != nil || tree.RootErr != nil || !bytes.Equal(tree.Bytes, in) {
		t.Errorf("declared size 1: %+v, %v", tree, err)
	}
	in = mustHex(t, "0850"+"7f"+strings.Repeat("00", 0x4f))
	r := wire.NewReader(in)
	tree, err = ReadErgoTree(r)
	if err != nil || tree.RootErr != nil || r.Pos() != 3 {
		t.Errorf("declared size 0x50: %+v, %v, consumed %d", tree, err, r.Pos())
	}
}

func TestErgoTreeHeaders(t *testing.T) {
	cases := []struct {
		hex  string
		want error
	}{
		{"017f", wire.ErrInvalid}, // version 1 requires the size flag
		{"037f", wire.ErrInvalid}, // version 3 as well
		{"0b017f", nil},           // version 3 with the size flag
		{"807f", nil},             // bit 7 is ignored by the reference
		{"e07f", nil},             // and so are bits 5 and 6
		{"1080808080087f", nil},   // a constant count of 2^31 reads as none
		{"", wire.ErrTruncated},   // no header
		{"08", wire.ErrTruncated}, // no size
		{"00", wire.ErrTruncated}, // no root
		{"10", wire.ErrTruncated}, // no constant count
		{"10ffffffff0f7f", nil},   // 2^32-1 constants: negative as an Int, so none
		{"1005047f", wire.ErrTruncated},
	}
	for _, c := range cases {
		_, err := ParseErgoTree(mustHex(t, c.hex))
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.hex, err, c.want)
		}
	}
}

// TestExpressions parses one root expression per operation; each must
// consume exactly its bytes.
func TestExpressions(t *testing.T) {
	g := "07" + hexG
	lambdaBox := "d9010163" // FuncValue with one argument (id 1) of type Box
	cases := []struct{ name, hex string }{
		{"TrueLeaf", "7f"},
		{"FalseLeaf", "80"},
		{"GroupGenerator", "82"},
		{"context leaves", "8609a3a4a5a6a7acddfe82"},
		{"If", "957f04020404"},
		{"EQ of packed booleans", "938501"},
		{"NEQ", "94a30402"},
		{"LT LE GT GE", "968304018fa3040290a3040291a3040292a30402"},
		{"BinOr BinAnd BinXor", "ec7fed7ff47f80"},
		{"AND of a collection", "968302017f80"},
		{"OR XorOf", "8602" + "978301017f" + "ff8302017f80"},
		{"AtLeast", "9804028302" + "08" + "08d3" + "08d2"},
		{"arithmetic", "9a9ca30404a104020404"},
		{"Minus Division Modulo Max", "9904029d04029e0402a204020404"},
		{"bit ops", "f20402f604040402"},
		{"more bit ops", "f30402f50402f70402f804020402"},
		{"LogicalNot Negation BitInversion", "ef93f00402f10402"},
		{"Map", "ada5" + lambdaBox + "c17201"},
		{"Exists ForAll Filter", "86" + "03" + "aea4" + lambdaBox + "7f" + "afa4" + lambdaBox + "7f" + "b5a4" + lambdaBox + "7f"},
		{"Fold", "b0a40500d90101416399" + "8c720101" + "c18c720102"},
		{"SizeOf ByIndex", "86" + "02" + "b1a5" + "b2a5040000"},
		{"ByIndex with default", "b2a5040001a7"},
		{"Append", "b30e01010e0101"},
		{"Slice", "b40e010104000402"},
		{"box properties", "86" + "07" + "c1a7c2a7c3a7c4a7c5a7c7a7c6a70408"},
		{"hashes", "cbcc0e0101"},
		{"CreateProveDlog", "cd" + g},
		{"CreateProveDHTuple", "ce" + g + g + g + g},
		{"SigmaPropIsProven SigmaPropBytes BoolToSigmaProp", "86" + "03" + "cf08d3" + "d008d3" + "d17f"},
		{"DecodePoint", "ee0e0101"},
		{"DeserializeContext", "d40801"},
		{"DeserializeRegister", "d5040800"},
		{"DeserializeRegister with default", "d504080108d3"},
		{"BlockValue", "d801d601a39a72017201"},
		{"FunDef", "d801d70101670154" + "7f" + "7f"},
		{"Apply", "dad9010104720101" + "0402"},
		{"PropertyCall", "db6308a7"},
		{"MethodCall", "dc0c1ea501d9010163c17201"},
		{"Global.some[Int]", "dc6a09dd01040204"},
		{"Global.none[Int]", "db6a0add04"},
		{"Box.getReg[Int] (v6)", "dc6313a7010408" + "04"},
		{"Box.getReg (v5)", "dc6307a7010408"},
		{"Context.getVarFromInput[Int]", "dc650cfe02030002010" + "4"},
		{"Global.deserializeTo[Header]", "dc6a04dd010e0101" + "68"},
		{"GetVar TaggedVariable", "86" + "02" + "e30104" + "710104"},
		{"Option ops", "86" + "03" + "e4e30104" + "e5e301040402" + "e6e30104"},
		{"ModQ ops", "86" + "03" + "e7060101" + "e8060101060101" + "e9060101060101"},
		{"SigmaAnd SigmaOr", "ea0208d3eb0108d2"},
		{"Xor Exponentiate MultiplyGroup", "86" + "03" + "9b0e01010e0101" + "9f" + g + "060102" + "a0" + g + g},
		{"casts", "86" + "02" + "7e040205" + "7d050204"},
		{"byte conversions", "86" + "03" + "7a0502" + "7b0e0101" + "7c0e0101"},
		{"SubstConstants", "740e010110001400"},
		{"CreateAvlTree", "b60207" + "0e0101" + "0440" + "2800"},
		{"TreeLookup", "b7" + "64" + zeroDigest + "072000" + "0e0101" + "0e0101"},
		{"ConcreteCollectionBooleanConstant", "850305"},
		{"Tuple and SelectField", "8c860204020404" + "01"},
		{"ValUse", "7201"},
	}
	for _, c := range cases {
		tree, err := ParseErgoTree(mustHex(t, "00"+c.hex))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if tree.RootErr != nil {
			t.Errorf("%s: %v", c.name, tree.RootErr)
		}
	}
}

func TestExpressionErrors(t *testing.T) {
	cases := []struct {
		name, hex string
		want      error
	}{
		{"block item that is not a definition", "d8017f7f7f", wire.ErrInvalid},
		{"FunDef type argument that is not a variable", "d801d70101047f7f", wire.ErrInvalid},
		{"FunDef with a negative type argument count", "d801d701807f7f", wire.ErrInvalid},
		{"register R10", "c6a70a04", wire.ErrInvalid},
		{"negative tuple size", "8680", wire.ErrInvalid},
		{"cast to a non-numeric type", "7e04020e", wire.ErrInvalid},
		{"truncated operands", "9a0402", wire.ErrTruncated},
		{"truncated method ids", "dc63", wire.ErrTruncated},
		{"missing explicit type argument", "db6a0add", wire.ErrTruncated},
		{"expression nesting", strings.Repeat("ef", 120) + "7f", ErrDepth},
		{"constant type 0", "00", ErrUnknownType},
		{"function constant", "7001040500", ErrNotSerializable},
	}
	for _, c := range cases {
		_, err := ParseErgoTree(mustHex(t, "00"+c.hex))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestUnknownOpcodes(t *testing.T) {
	known := 0
	for c := lastConstantCode + 1; c < 256; c++ {
		_, err := ParseErgoTree([]byte{0x00, byte(c)})
		if ops[c].read == nil {
			if !errors.Is(err, ErrUnknownOpcode) {
				t.Errorf("opcode 0x%02x: %v, want ErrUnknownOpcode", c, err)
			}
			continue
		}
		known++
		if errors.Is(err, ErrUnknownOpcode) {
			t.Errorf("opcode 0x%02x (%s): %v", c, opName(byte(c)), err)
		}
	}
	// The reference ValueSerializer registers 102 serializers; one of them
	// (constants) covers the type-code range.
	if known != 101 {
		t.Errorf("%d operations known, want 101", known)
	}
}

func TestExpressionDepthLimit(t *testing.T) {
	// The root is at level 1, so 109 nested LogicalNot and a leaf (110)
	// are the deepest expression the reference reads.
	if _, err := ParseErgoTree(mustHex(t, "00"+strings.Repeat("ef", 109)+"7f")); err != nil {
		t.Errorf("109 levels: %v", err)
	}
	if _, err := ParseErgoTree(mustHex(t, "00"+strings.Repeat("ef", 110)+"7f")); !errors.Is(err, ErrDepth) {
		t.Errorf("110 levels: %v", err)
	}
}

// TestCheckErgoTreeRemembersOnlyWhatPassed: a tree that passed passes again
// from memory, but the same tree with a byte more or less, or a tree that
// failed, is checked again and fails again.
func TestCheckErgoTreeRemembersOnlyWhatPassed(t *testing.T) {
	tree := mustHex(t, "0008cd"+hexG)
	for range 2 {
		if err := CheckErgoTree(tree); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range [][]byte{append(bytes.Clone(tree), 0), tree[:len(tree)-1], mustHex(t, "088000")} {
		for range 2 {
			if CheckErgoTree(b) == nil {
				t.Errorf("%x passed", b)
			}
		}
	}
}
