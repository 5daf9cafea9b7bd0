package sigma

import (
	"strconv"
	"strings"
)

// Type is an ErgoTree type. Its dynamic type is one of PrimType, *CollType,
// *OptionType, *TupleType, *FuncType or TypeVar. Compare types with
// TypeEqual: the composite ones are pointers.
type Type interface {
	// String renders the type in ErgoScript syntax, e.g. "Coll[Byte]" or
	// "(Coll[Byte], Long)".
	String() string
	isType()
}

// PrimType is a type without type parameters. Its value is the type's code
// in the serialization format.
type PrimType uint8

// The primitive types. Boolean through UnsignedBigInt are "embeddable": a
// collection, option or pair of them is encoded in a single type byte.
const (
	TBoolean        PrimType = 1
	TByte           PrimType = 2
	TShort          PrimType = 3
	TInt            PrimType = 4
	TLong           PrimType = 5
	TBigInt         PrimType = 6
	TGroupElement   PrimType = 7
	TSigmaProp      PrimType = 8
	TUnsignedBigInt PrimType = 9 // ErgoTree v3 (protocol 6.0)

	TAny       PrimType = 97
	TUnit      PrimType = 98
	TBox       PrimType = 99
	TAvlTree   PrimType = 100
	TContext   PrimType = 101
	TString    PrimType = 102
	THeader    PrimType = 104
	TPreHeader PrimType = 105
	TGlobal    PrimType = 106
)

var primNames = map[PrimType]string{
	TBoolean: "Boolean", TByte: "Byte", TShort: "Short", TInt: "Int", TLong: "Long",
	TBigInt: "BigInt", TGroupElement: "GroupElement", TSigmaProp: "SigmaProp",
	TUnsignedBigInt: "UnsignedBigInt", TAny: "Any", TUnit: "Unit", TBox: "Box",
	TAvlTree: "AvlTree", TContext: "Context", TString: "String", THeader: "Header",
	TPreHeader: "PreHeader", TGlobal: "Global",
}

func (p PrimType) String() string {
	if n, ok := primNames[p]; ok {
		return n
	}
	return "PrimType(" + strconv.Itoa(int(p)) + ")"
}

func (PrimType) isType() {}

// embeddable reports whether p packs into the type byte of a constructor.
func (p PrimType) embeddable() bool { return p >= TBoolean && p <= TUnsignedBigInt }

// valid reports whether p is one of the primitive types above.
func (p PrimType) valid() bool { _, ok := primNames[p]; return ok }

// CollType is Coll[Elem].
type CollType struct{ Elem Type }

// OptionType is Option[Elem].
type OptionType struct{ Elem Type }

// TupleType is a tuple (A, B, ...). Well-formed tuples have 2 to 255 items.
type TupleType struct{ Items []Type }

// FuncType is a function type (Dom...) => Range, with optional type
// parameters. It only occurs in ErgoTree v3 type annotations.
type FuncType struct {
	Dom        []Type
	Range      Type
	TypeParams []TypeVar
}

// TypeVar is a type variable such as T in a generic method signature.
type TypeVar string

func (*CollType) isType()   {}
func (*OptionType) isType() {}
func (*TupleType) isType()  {}
func (*FuncType) isType()   {}
func (TypeVar) isType()     {}

// CollOf returns the type Coll[elem].
func CollOf(elem Type) *CollType {
	if p, ok := elem.(PrimType); ok {
		return primColls[p] // types are never changed: one value serves every reader
	}
	return &CollType{Elem: elem}
}

// primColls are the collection types of every primitive element type.
var primColls = func() (m [256]*CollType) {
	for i := range m {
		m[i] = &CollType{Elem: PrimType(i)}
	}
	return m
}()

// OptionOf returns the type Option[elem].
func OptionOf(elem Type) *OptionType { return &OptionType{Elem: elem} }

// TupleOf returns the tuple type of the given items.
func TupleOf(items ...Type) *TupleType { return &TupleType{Items: items} }

func (t *CollType) String() string {
	if t == nil {
		return "<nil>"
	}
	return "Coll[" + typeString(t.Elem) + "]"
}

func (t *OptionType) String() string {
	if t == nil {
		return "<nil>"
	}
	return "Option[" + typeString(t.Elem) + "]"
}

func (t *TupleType) String() string {
	if t == nil {
		return "<nil>"
	}
	return "(" + typeList(t.Items) + ")"
}

func (v TypeVar) String() string { return string(v) }

func (t *FuncType) String() string {
	if t == nil {
		return "<nil>"
	}
	var b strings.Builder
	if len(t.TypeParams) > 0 {
		b.WriteByte('[')
		for i, p := range t.TypeParams {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(string(p))
		}
		b.WriteByte(']')
	}
	b.WriteString("(" + typeList(t.Dom) + ") => " + typeString(t.Range))
	return b.String()
}

// typeString is t.String(), also for a nil t.
func typeString(t Type) string {
	if t == nil {
		return "<nil>"
	}
	return t.String()
}

func typeList(ts []Type) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = typeString(t)
	}
	return strings.Join(parts, ", ")
}

// TypeEqual reports whether a and b denote the same type.
func TypeEqual(a, b Type) bool {
	switch a := a.(type) {
	case PrimType:
		b, ok := b.(PrimType)
		return ok && a == b
	case TypeVar:
		b, ok := b.(TypeVar)
		return ok && a == b
	case *CollType:
		b, ok := b.(*CollType)
		return ok && a != nil && b != nil && TypeEqual(a.Elem, b.Elem)
	case *OptionType:
		b, ok := b.(*OptionType)
		return ok && a != nil && b != nil && TypeEqual(a.Elem, b.Elem)
	case *TupleType:
		b, ok := b.(*TupleType)
		return ok && a != nil && b != nil && typesEqual(a.Items, b.Items)
	case *FuncType:
		b, ok := b.(*FuncType)
		if !ok || a == nil || b == nil || !typesEqual(a.Dom, b.Dom) || !TypeEqual(a.Range, b.Range) ||
			len(a.TypeParams) != len(b.TypeParams) {
			return false
		}
		for i := range a.TypeParams {
			if a.TypeParams[i] != b.TypeParams[i] {
				return false
			}
		}
		return true
	}
	return false
}

func typesEqual(a, b []Type) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !TypeEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// zeroWidth reports whether every value of t serializes to no bytes at all
// (Unit, and tuples made only of such types). A collection of them could
// claim 65535 elements per length byte, so the reader refuses non-empty ones.
func zeroWidth(t Type) bool {
	switch t := t.(type) {
	case PrimType:
		return t == TUnit
	case *TupleType:
		if t == nil {
			return false
		}
		for _, it := range t.Items {
			if !zeroWidth(it) {
				return false
			}
		}
		return true
	}
	return false
}

// minDataSize is a lower bound on the serialized size of any value of type t.
// Readers use it to refuse collection lengths the remaining input cannot
// hold before allocating for them.
func minDataSize(t Type) int {
	switch t := t.(type) {
	case PrimType:
		switch t {
		case TUnit:
			return 0
		case TBigInt:
			return 2 // length and at least one byte
		case TGroupElement:
			return groupElementSize
		case TAvlTree:
			return avlDigestSize + 3 // flags, key length, value-length flag
		case TBox:
			return 2 + 32 + 5 // value, tree header, height, token and register counts; tx id; index
		case THeader:
			return 1 + 32*4 + 33 + 1 + 4 + 1 + 3 + groupElementSize + 8
		}
		return 1
	case *TupleType:
		if t == nil {
			return 1
		}
		n := 0
		for _, it := range t.Items {
			n += minDataSize(it)
		}
		return n
	}
	return 1
}
