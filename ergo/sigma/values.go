package sigma

// Value is a decoded data value. Its Go type follows from the ErgoTree type
// it was read with:
//
//	Boolean                         bool
//	Byte, Short, Int, Long          int8, int16, int32, int64
//	BigInt, UnsignedBigInt          *big.Int
//	GroupElement                    GroupElement
//	SigmaProp                       SigmaBoolean
//	AvlTree                         AvlTree
//	Box                             *Box
//	Header                          *Header
//	String                          string
//	Unit                            Unit
//	Coll[Byte]                      []byte
//	Coll[Boolean]                   []bool
//	Coll[T] for other T             []Value
//	Option[T]                       Option
//	tuples                          Tuple
type Value = any

// Unit is the only value of type Unit.
type Unit struct{}

// Tuple is the value of a tuple type: one value per item, in order.
type Tuple []Value

// Option is the value of an Option[T]: Some(Value) when Defined, None
// otherwise. The zero Option is None.
type Option struct {
	Defined bool
	Value   Value
}

// Some returns the defined Option holding v.
func Some(v Value) Option { return Option{Defined: true, Value: v} }

// avlDigestSize is the size of an AVL+ tree digest: the 32-byte root hash
// and the tree height.
const avlDigestSize = 33

// AvlTree is the value of type AvlTree: an authenticated dictionary, given
// by its digest and the operations its owner allows.
type AvlTree struct {
	Digest        [33]byte // root hash and tree height
	InsertAllowed bool
	UpdateAllowed bool
	RemoveAllowed bool
	KeyLength     uint32
	// ValueLength is the fixed length of every value, or nil when values
	// may have any length.
	ValueLength *uint32
}

// flags packs the allowed operations as the enabledOperations byte.
func (t *AvlTree) flags() byte {
	var f byte
	if t.InsertAllowed {
		f |= 0x01
	}
	if t.UpdateAllowed {
		f |= 0x02
	}
	if t.RemoveAllowed {
		f |= 0x04
	}
	return f
}
