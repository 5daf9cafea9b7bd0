package sigma

import (
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"

	"github.com/async-emission/auditor/ergo/wire"
)

// groupElementSize is the size of an encoded secp256k1 point.
const groupElementSize = 33

// GroupElement is a point of the secp256k1 group in compressed SEC1 form: a
// 0x02/0x03 prefix and the big-endian x coordinate. The identity (point at
// infinity) is 33 zero bytes.
type GroupElement [groupElementSize]byte

// Generator returns the generator of secp256k1 (GroupGenerator in
// ErgoScript).
func Generator() GroupElement { return generator }

var generator = GroupElement{0x02,
	0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b, 0x07,
	0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98}

// IsIdentity reports whether g is the point at infinity.
func (g GroupElement) IsIdentity() bool { return g == GroupElement{} }

// String returns the lowercase hex encoding.
func (g GroupElement) String() string { return hex.EncodeToString(g[:]) }

// validPoints remembers recently verified points. Keys recur across boxes
// (pool payouts, exchange and contract keys) and the curve check costs
// microseconds. A slot holds one point and only valid points are stored, so
// a hit is an exact 33-byte match; a miss only costs the check.
var validPoints [1 << 14]atomic.Pointer[GroupElement]

// validPoint reports whether enc, which is not the identity, is a point.
func validPoint(enc *GroupElement) bool {
	// The x coordinate is uniformly distributed: its bytes are the hash.
	slot := &validPoints[binary.LittleEndian.Uint16(enc[1:])%uint16(len(validPoints))]
	if p := slot.Load(); p != nil && *p == *enc {
		return true
	}
	if !onCurve(enc) {
		return false
	}
	p := *enc
	slot.Store(&p)
	return true
}

// CheckGroupElement checks 33 bytes as the reference GroupElementSerializer
// reads them: the identity (first byte 0) or a compressed secp256k1 point;
// otherwise an error wrapping ErrInvalidPoint.
func CheckGroupElement(b [33]byte) error {
	_, err := readGroupElement(wire.NewReader(b[:]), "group element")
	return err
}

// readGroupElement reads a point as the reference GroupElementSerializer
// does: 33 bytes whose first byte 0 means the identity (whatever follows),
// otherwise a compressed point that must decode.
func readGroupElement(r *wire.Reader, what string) (GroupElement, error) {
	var g GroupElement
	start := r.Pos()
	b, err := r.Fixed(groupElementSize, what)
	if err != nil {
		return g, err
	}
	if b[0] == 0 {
		return g, nil
	}
	copy(g[:], b)
	if !validPoint(&g) {
		return GroupElement{}, failAt(ErrInvalidPoint, start, what, "%x is not a compressed secp256k1 point", b)
	}
	return g, nil
}
