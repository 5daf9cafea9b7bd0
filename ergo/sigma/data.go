package sigma

import (
	"bytes"
	"math/big"

	"github.com/async-emission/auditor/ergo/wire"
)

// maxBigIntBytes is the longest BigInt or UnsignedBigInt encoding (256 bits).
const maxBigIntBytes = 32

// maxCollLength is the largest collection length a putUShort prefix holds.
const maxCollLength = 0xffff

// ReadValue reads a data value of type t (the data serialization, without a
// type prefix). The Go type of the result is described at Value.
func ReadValue(r *wire.Reader, t Type) (Value, error) {
	return newDecoder(r).readValue(t)
}

// readValue reads one data value; like the reference DataSerializer, every
// value counts one nesting level.
func (d *decoder) readValue(t Type) (Value, error) {
	if err := d.enter("value"); err != nil {
		return nil, err
	}
	v, err := d.readValueBody(t)
	d.leave()
	return v, err
}

func (d *decoder) readValueBody(t Type) (Value, error) {
	r := d.r
	switch t := t.(type) {
	case PrimType:
		return d.readPrim(t)
	case *CollType:
		if t == nil {
			break
		}
		return d.readColl(t.Elem)
	case *OptionType:
		if t == nil {
			break
		}
		flag, err := r.Byte("option flag")
		if err != nil || flag == 0 {
			return Option{}, err
		}
		v, err := d.readValue(t.Elem)
		if err != nil {
			return nil, err
		}
		return Some(v), nil
	case *TupleType:
		if t == nil {
			break
		}
		items := make(Tuple, len(t.Items))
		for i, it := range t.Items {
			v, err := d.readValue(it)
			if err != nil {
				return nil, err
			}
			items[i] = v
		}
		return items, nil
	}
	return nil, failAt(ErrNotSerializable, r.Pos(), "value", "type %s has no data serialization", typeString(t))
}

// keep returns a number read as a Value, or nil when the decoder only
// checks: putting it in an interface would allocate.
func keep[T int16 | int32 | int64](d *decoder, v T, err error) (Value, error) {
	if d.check {
		return nil, err
	}
	return v, err
}

func (d *decoder) readPrim(t PrimType) (Value, error) {
	r := d.r
	switch t {
	case TBoolean:
		b, err := r.Byte("Boolean")
		return b != 0, err
	case TByte:
		b, err := r.Byte("Byte")
		return int8(b), err
	case TShort:
		v, err := r.I16("Short")
		return keep(d, v, err)
	case TInt:
		v, err := r.I32("Int")
		return keep(d, v, err)
	case TLong:
		v, err := r.I64("Long")
		return keep(d, v, err)
	case TBigInt:
		start := r.Pos()
		n, err := r.U16("BigInt length")
		if err != nil {
			return nil, err
		}
		if n == 0 || n > maxBigIntBytes {
			return nil, invalidAt(start, "BigInt length", "%d bytes (want 1 to %d)", n, maxBigIntBytes)
		}
		b, err := r.Fixed(int(n), "BigInt")
		if err != nil || d.check {
			return nil, err
		}
		return fromTwosComplement(b), nil
	case TUnsignedBigInt:
		start := r.Pos()
		n, err := r.U16("UnsignedBigInt length")
		if err != nil {
			return nil, err
		}
		if n > maxBigIntBytes {
			return nil, invalidAt(start, "UnsignedBigInt length", "%d bytes (want at most %d)", n, maxBigIntBytes)
		}
		b, err := r.Fixed(int(n), "UnsignedBigInt")
		if err != nil {
			return nil, err
		}
		return new(big.Int).SetBytes(b), nil
	case TGroupElement:
		return readGroupElement(r, "GroupElement")
	case TSigmaProp:
		return d.readSigmaBoolean()
	case TAvlTree:
		return d.readAvlTree()
	case TBox:
		b, err := d.readBox()
		if err != nil {
			return nil, err
		}
		return &b, nil
	case THeader:
		return d.readHeader()
	case TString:
		n, err := d.r.Count(maxInt32, 1, "String length")
		if err != nil {
			return nil, err
		}
		b, err := r.Fixed(n, "String")
		return string(b), err
	case TUnit:
		return Unit{}, nil
	}
	return nil, failAt(ErrNotSerializable, r.Pos(), "value", "type %s has no data serialization", t)
}

func (d *decoder) readColl(elem Type) (Value, error) {
	r := d.r
	start := r.Pos()
	switch elem {
	case TByte:
		n, err := d.r.Count(maxCollLength, 1, "Coll[Byte] length")
		if err != nil {
			return nil, err
		}
		b, err := r.Fixed(n, "Coll[Byte]")
		if d.check {
			return nil, err // checked, not kept: no value is built
		}
		return bytes.Clone(b), err
	case TBoolean:
		n, err := d.r.Count(maxCollLength, 0, "Coll[Boolean] length")
		if err != nil {
			return nil, err
		}
		packed, err := r.Fixed((n+7)/8, "Coll[Boolean]")
		if err != nil {
			return nil, err
		}
		return unpackBits(packed, n), nil
	}
	if zeroWidth(elem) {
		// The newest reference rule CheckZeroWidthCollection: a Coll[Unit]
		// would be 65535 elements per length byte.
		n, err := r.U16("collection length")
		if err != nil {
			return nil, err
		}
		if n != 0 {
			return nil, invalidAt(start, "collection", "%d elements of the zero-width type %s", n, elem)
		}
		return []Value{}, nil
	}
	n, err := d.r.Count(maxCollLength, minDataSize(elem), "collection length")
	if err != nil {
		return nil, err
	}
	if d.check {
		for range n {
			if _, err := d.readValue(elem); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	items := make([]Value, n)
	for i := range items {
		if items[i], err = d.readValue(elem); err != nil {
			return nil, err
		}
	}
	return items, nil
}

func (d *decoder) readAvlTree() (Value, error) {
	r := d.r
	var t AvlTree
	digest, err := r.Fixed(avlDigestSize, "AvlTree digest")
	if err != nil {
		return nil, err
	}
	copy(t.Digest[:], digest)
	flags, err := r.Byte("AvlTree flags")
	if err != nil {
		return nil, err
	}
	t.InsertAllowed, t.UpdateAllowed, t.RemoveAllowed = flags&0x01 != 0, flags&0x02 != 0, flags&0x04 != 0
	if t.KeyLength, err = r.U32("AvlTree key length"); err != nil {
		return nil, err
	}
	hasValueLength, err := r.Byte("AvlTree value length flag")
	if err != nil {
		return nil, err
	}
	if hasValueLength != 0 {
		vl, err := r.U32("AvlTree value length")
		if err != nil {
			return nil, err
		}
		t.ValueLength = &vl
	}
	return t, nil
}

// unpackBits expands n bits packed least-significant first.
func unpackBits(packed []byte, n int) []bool {
	bits := make([]bool, n)
	for i := range bits {
		bits[i] = packed[i/8]&(1<<(i%8)) != 0
	}
	return bits
}

// fromTwosComplement decodes a big-endian two's-complement integer.
func fromTwosComplement(b []byte) *big.Int {
	v := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return v
}
