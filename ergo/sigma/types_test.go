package sigma

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo/wire"
)

func parseTypeHex(t *testing.T, h string) (Type, error) {
	t.Helper()
	r := wire.NewReader(mustHex(t, h))
	typ, err := ReadType(r)
	if err == nil {
		err = r.Done("type")
	}
	return typ, err
}

func writeTypeHex(t *testing.T, typ Type) string {
	t.Helper()
	w := wire.NewWriter(nil)
	if err := WriteType(w, typ); err != nil {
		t.Fatalf("WriteType(%s): %v", typ, err)
	}
	return hex.EncodeToString(w.Bytes())
}

func TestTypeCanonicalEncodings(t *testing.T) {
	// Each encoding is the one the reference writer produces for the type.
	cases := []struct{ hex, name string }{
		{"01", "Boolean"}, {"02", "Byte"}, {"03", "Short"}, {"04", "Int"}, {"05", "Long"},
		{"06", "BigInt"}, {"07", "GroupElement"}, {"08", "SigmaProp"}, {"09", "UnsignedBigInt"},
		{"0d", "Coll[Boolean]"}, {"0e", "Coll[Byte]"}, {"11", "Coll[Long]"}, {"15", "Coll[UnsignedBigInt]"},
		{"1a", "Coll[Coll[Byte]]"}, {"0c1a", "Coll[Coll[Coll[Byte]]]"}, {"0c63", "Coll[Box]"},
		{"0c3c0e0e", "Coll[(Coll[Byte], Coll[Byte])]"}, {"0c4005", "Coll[(Int, Long)]"},
		{"28", "Option[Int]"}, {"32", "Option[Coll[Byte]]"}, {"241a", "Option[Coll[Coll[Byte]]]"},
		{"2463", "Option[Box]"}, {"2428", "Option[Option[Int]]"},
		{"58", "(Int, Int)"}, {"59", "(Long, Long)"}, {"3c0e0e", "(Coll[Byte], Coll[Byte])"},
		{"400e", "(Int, Coll[Byte])"}, {"410e", "(Long, Coll[Byte])"}, {"4c0e", "(Coll[Byte], Int)"},
		{"4c59", "((Long, Long), Int)"}, {"3c0e63", "(Coll[Byte], Box)"},
		{"48040502", "(Int, Long, Byte)"}, {"540403020e", "(Int, Short, Byte, Coll[Byte])"},
		{"6005040502010e", "(Int, Long, Byte, Boolean, Coll[Byte])"},
		{"61", "Any"}, {"62", "Unit"}, {"63", "Box"}, {"64", "AvlTree"}, {"65", "Context"},
		{"66", "String"}, {"670154", "T"}, {"68", "Header"}, {"69", "PreHeader"}, {"6a", "Global"},
		{"7001040500", "(Int) => Long"}, {"70020e0467015401670154", "[T](Coll[Byte], Int) => T"},
	}
	for _, c := range cases {
		typ, err := parseTypeHex(t, c.hex)
		if err != nil {
			t.Errorf("%s: %v", c.hex, err)
			continue
		}
		if typ.String() != c.name {
			t.Errorf("%s: read as %s, want %s", c.hex, typ, c.name)
		}
		if got := writeTypeHex(t, typ); got != c.hex {
			t.Errorf("%s (%s): written as %s", c.hex, c.name, got)
		}
	}
}

func TestTypeNonCanonicalEncodings(t *testing.T) {
	// The reader accepts the long forms the format allows; the writer
	// always produces the packed form.
	cases := []struct{ in, canonical string }{
		{"0c02", "0e"}, {"0c0c02", "1a"}, {"2402", "26"}, {"240c02", "32"},
		{"3c0404", "58"}, {"3c040e", "400e"}, {"4004", "58"}, {"4c04", "58"}, {"60020404", "58"},
		{"600304050c02", "4804050e"},
	}
	for _, c := range cases {
		typ, err := parseTypeHex(t, c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got := writeTypeHex(t, typ); got != c.canonical {
			t.Errorf("%s (%s): written as %s, want %s", c.in, typ, got, c.canonical)
		}
	}
}

func TestTypeInvalid(t *testing.T) {
	cases := []struct {
		hex  string
		want error
	}{
		{"", wire.ErrTruncated},
		{"00", ErrUnknownType},
		{"0a", ErrUnknownType},
		{"0b", ErrUnknownType},
		{"16", ErrUnknownType}, // Coll of primitive 10
		{"5e", ErrUnknownType}, // symmetric pair of primitive 10
		{"6b", ErrUnknownType},
		{"6f", ErrUnknownType},
		{"71", ErrUnknownType},
		{"ff", ErrUnknownType},
		{"0c", wire.ErrTruncated},
		{"3c04", wire.ErrTruncated},
		{"6003", wire.ErrTruncated},
		{"6702", wire.ErrTruncated},
		{"700104050104", ErrUnknownType}, // a function type parameter that is not a variable
		{strings.Repeat("0c", maxTypeDepth+1) + "04", ErrDepth},
	}
	for _, c := range cases {
		_, err := parseTypeHex(t, c.hex)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", abbrev(c.hex), err, c.want)
		}
	}
}

func TestWriteTypeErrors(t *testing.T) {
	long := make([]Type, 256)
	for i := range long {
		long[i] = TInt
	}
	for _, typ := range []Type{nil, PrimType(10), CollOf(nil), TupleOf(long...), TypeVar(strings.Repeat("x", 256)), (*CollType)(nil)} {
		w := wire.NewWriter(nil)
		if err := WriteType(w, typ); !errors.Is(err, ErrNotSerializable) {
			t.Errorf("WriteType(%#v) = %v, want ErrNotSerializable", typ, err)
		}
	}
}

func TestTypeEqual(t *testing.T) {
	a := TupleOf(CollOf(TByte), OptionOf(TInt))
	b := TupleOf(CollOf(TByte), OptionOf(TInt))
	if !TypeEqual(a, b) {
		t.Error("equal tuples differ")
	}
	if TypeEqual(a, TupleOf(CollOf(TByte), OptionOf(TLong))) || TypeEqual(CollOf(TByte), OptionOf(TByte)) ||
		TypeEqual(TInt, TLong) || TypeEqual(TypeVar("T"), TypeVar("R")) || TypeEqual(nil, TInt) {
		t.Error("different types compare equal")
	}
	f := &FuncType{Dom: []Type{TInt}, Range: TypeVar("T"), TypeParams: []TypeVar{"T"}}
	if !TypeEqual(f, &FuncType{Dom: []Type{TInt}, Range: TypeVar("T"), TypeParams: []TypeVar{"T"}}) ||
		TypeEqual(f, &FuncType{Dom: []Type{TInt}, Range: TypeVar("T")}) {
		t.Error("function types compare wrongly")
	}
}

func TestTypeRoundTripQuadrupleWithUnsignedBigInt(t *testing.T) {
	// A vector from the reference test suite: (Byte, Short, Byte,
	// UnsignedBigInt) = (5, 5, 5, 5).
	c, err := ParseConstant(mustHex(t, "5402030209050a050105"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Type.String() != "(Byte, Short, Byte, UnsignedBigInt)" {
		t.Errorf("type %s", c.Type)
	}
	js, _ := c.MarshalJSON()
	if string(js) != `{"type":"(Byte, Short, Byte, UnsignedBigInt)","value":[5,5,5,"5"]}` {
		t.Errorf("JSON %s", js)
	}
	if b, err := c.Bytes(); err != nil || !bytes.Equal(b, mustHex(t, "5402030209050a050105")) {
		t.Errorf("written as %x, %v", b, err)
	}
}

func TestNilTypesDoNotPanic(t *testing.T) {
	for _, typ := range []Type{nil, (*CollType)(nil), (*OptionType)(nil), (*TupleType)(nil), (*FuncType)(nil),
		CollOf(nil), OptionOf((*TupleType)(nil)), TupleOf(nil, (*CollType)(nil))} {
		_ = typeString(typ)
		_, _ = ReadValue(wire.NewReader([]byte{1, 2, 3}), typ)
		_ = WriteValue(wire.NewWriter(nil), typ, []Value{})
		_ = WriteType(wire.NewWriter(nil), typ)
		_, _ = Constant{Type: typ}.MarshalJSON()
		_ = TypeEqual(typ, typ)
		_ = zeroWidth(typ)
		_ = minDataSize(typ)
	}
}
