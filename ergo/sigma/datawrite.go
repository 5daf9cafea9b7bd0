package sigma

import (
	"math/big"

	"github.com/async-emission/auditor/ergo/wire"
)

// WriteValue appends the serialization of v as a value of type t. It fails
// when v does not have the Go type that t calls for, or does not fit the
// encoding (a collection longer than 65535, a BigInt beyond 256 bits, ...).
// On failure w may hold a partial encoding.
func WriteValue(w *wire.Writer, t Type, v Value) error {
	return writeValue(w, t, v, 0)
}

func writeValue(w *wire.Writer, t Type, v Value, depth int) error {
	if depth >= maxLevel {
		return writeErr("value", "nested deeper than %d", maxLevel)
	}
	switch t := t.(type) {
	case PrimType:
		return writePrim(w, t, v, depth)
	case *CollType:
		if t == nil {
			break
		}
		return writeColl(w, t, v, depth)
	case *OptionType:
		if t == nil {
			break
		}
		o, ok := v.(Option)
		if !ok {
			return mismatch(t, v)
		}
		if !o.Defined {
			w.Byte(0)
			return nil
		}
		w.Byte(1)
		return writeValue(w, t.Elem, o.Value, depth+1)
	case *TupleType:
		if t == nil {
			break
		}
		items, ok := asValues(v)
		if !ok || len(items) != len(t.Items) {
			return mismatch(t, v)
		}
		for i, it := range t.Items {
			if err := writeValue(w, it, items[i], depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return writeErr("value", "type %s has no data serialization", typeString(t))
}

func writePrim(w *wire.Writer, t PrimType, v Value, depth int) error {
	switch t {
	case TBoolean:
		b, ok := v.(bool)
		if !ok {
			return mismatch(t, v)
		}
		if b {
			w.Byte(1)
		} else {
			w.Byte(0)
		}
	case TByte:
		b, ok := v.(int8)
		if !ok {
			return mismatch(t, v)
		}
		w.Byte(byte(b))
	case TShort:
		s, ok := v.(int16)
		if !ok {
			return mismatch(t, v)
		}
		w.I16(s)
	case TInt:
		i, ok := v.(int32)
		if !ok {
			return mismatch(t, v)
		}
		w.I32(i)
	case TLong:
		l, ok := v.(int64)
		if !ok {
			return mismatch(t, v)
		}
		w.I64(l)
	case TBigInt:
		b, ok := v.(*big.Int)
		if !ok || b == nil {
			return mismatch(t, v)
		}
		enc := toTwosComplement(b)
		if len(enc) > maxBigIntBytes {
			return writeErr("BigInt", "%s does not fit in 256 bits", b)
		}
		w.U16(uint16(len(enc)))
		w.Write(enc)
	case TUnsignedBigInt:
		b, ok := v.(*big.Int)
		if !ok || b == nil {
			return mismatch(t, v)
		}
		if b.Sign() < 0 || b.BitLen() > 8*maxBigIntBytes {
			return writeErr("UnsignedBigInt", "%s is not in [0, 2^256)", b)
		}
		enc := unsignedBytes(b)
		w.U16(uint16(len(enc)))
		w.Write(enc)
	case TGroupElement:
		g, ok := v.(GroupElement)
		if !ok {
			return mismatch(t, v)
		}
		w.Write(g[:])
	case TSigmaProp:
		sb, ok := v.(SigmaBoolean)
		if !ok {
			return mismatch(t, v)
		}
		return writeSigmaBoolean(w, sb, depth)
	case TAvlTree:
		a, ok := v.(AvlTree)
		if !ok {
			return mismatch(t, v)
		}
		w.Write(a.Digest[:])
		w.Byte(a.flags())
		w.U32(a.KeyLength)
		if a.ValueLength == nil {
			w.Byte(0)
		} else {
			w.Byte(1)
			w.U32(*a.ValueLength)
		}
	case TBox:
		b, ok := v.(*Box)
		if !ok || b == nil {
			return mismatch(t, v)
		}
		return b.Write(w)
	case THeader:
		h, ok := v.(*Header)
		if !ok || h == nil {
			return mismatch(t, v)
		}
		w.Write(h.Bytes)
	case TString:
		s, ok := v.(string)
		if !ok {
			return mismatch(t, v)
		}
		if len(s) > maxInt32 {
			return writeErr("String", "%d bytes exceed the limit", len(s))
		}
		w.U32(uint32(len(s)))
		w.Write([]byte(s))
	case TUnit:
		if _, ok := v.(Unit); !ok {
			return mismatch(t, v)
		}
	default:
		return writeErr("value", "type %s has no data serialization", t)
	}
	return nil
}

func writeColl(w *wire.Writer, t *CollType, v Value, depth int) error {
	switch t.Elem {
	case TByte:
		b, ok := v.([]byte)
		if !ok {
			return mismatch(t, v)
		}
		if len(b) > maxCollLength {
			return writeErr("Coll[Byte]", "%d elements exceed 65535", len(b))
		}
		w.U16(uint16(len(b)))
		w.Write(b)
		return nil
	case TBoolean:
		bits, ok := v.([]bool)
		if !ok {
			return mismatch(t, v)
		}
		if len(bits) > maxCollLength {
			return writeErr("Coll[Boolean]", "%d elements exceed 65535", len(bits))
		}
		w.U16(uint16(len(bits)))
		packBits(w, bits)
		return nil
	}
	items, ok := v.([]Value)
	if !ok {
		return mismatch(t, v)
	}
	if len(items) > maxCollLength {
		return writeErr("collection", "%d elements exceed 65535", len(items))
	}
	if len(items) > 0 && zeroWidth(t.Elem) {
		return writeErr("collection", "%d elements of the zero-width type %s", len(items), t.Elem)
	}
	w.U16(uint16(len(items)))
	for _, it := range items {
		if err := writeValue(w, t.Elem, it, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func mismatch(t Type, v Value) error {
	return writeErr("value", "%T is not a value of type %s", v, typeString(t))
}

// asValues accepts a tuple as either Tuple or []Value.
func asValues(v Value) ([]Value, bool) {
	switch v := v.(type) {
	case Tuple:
		return v, true
	case []Value:
		return v, true
	}
	return nil, false
}

// packBits is the inverse of unpackBits; the unused high bits of the last
// byte are zero.
func packBits(w *wire.Writer, bits []bool) {
	var cur byte
	for i, b := range bits {
		if b {
			cur |= 1 << (i % 8)
		}
		if i%8 == 7 {
			w.Byte(cur)
			cur = 0
		}
	}
	if len(bits)%8 != 0 {
		w.Byte(cur)
	}
}

// toTwosComplement encodes v in the minimal big-endian two's complement form
// (Java's BigInteger.toByteArray): always at least one byte.
func toTwosComplement(v *big.Int) []byte {
	// Java's bitLength: for negative v, the bit length of -v-1.
	bitLen := v.BitLen()
	if v.Sign() < 0 {
		m := new(big.Int).Neg(v)
		bitLen = m.Sub(m, big.NewInt(1)).BitLen()
	}
	n := bitLen/8 + 1
	x := new(big.Int).Set(v)
	if v.Sign() < 0 {
		x.Add(x, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	}
	return x.FillBytes(make([]byte, n))
}

// unsignedBytes encodes a non-negative integer as the reference writer does
// (BigIntegers.asUnsignedByteArray): the magnitude, and one zero byte for 0.
func unsignedBytes(v *big.Int) []byte {
	if v.Sign() == 0 {
		return []byte{0}
	}
	return v.Bytes()
}
