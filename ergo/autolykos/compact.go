package autolykos

import "math/big"

// The compact ("nBits") difficulty encoding is the one Bitcoin uses for its
// targets, but Ergo stores the required difficulty in it, not the target.
// The reference is DifficultySerializer in the Ergo node. The top byte is a
// length in bytes, the low 23 bits a mantissa and bit 23 a sign:
//
//	difficulty = (-1)^sign × mantissa × 256^(length-3)
//
// where a length below 3 keeps only the top length bytes of the mantissa.
const (
	compactSignBit  = 0x00800000
	compactMantissa = 0x007fffff
	maxCompactSize  = 0xff // the length byte
)

// DecodeCompactBits decodes Ergo's compact encoding of the required
// difficulty, as the node's DifficultySerializer.decodeCompactBits does.
// A negative or zero difficulty has no target (the node fails on it too), so
// it is reported as an error wrapping ErrDifficulty.
func DecodeCompactBits(nBits uint32) (*big.Int, error) {
	size := int(nBits >> 24)
	mantissa := nBits & compactMantissa
	d := new(big.Int)
	if size <= 3 {
		// The reference reads only size bytes of the mantissa.
		d.SetUint64(uint64(mantissa >> (8 * (3 - size))))
	} else {
		d.SetUint64(uint64(mantissa))
		d.Lsh(d, uint(8*(size-3)))
	}
	switch {
	case d.Sign() == 0:
		return nil, errorf(ErrDifficulty, "nBits %#08x encodes a zero difficulty", nBits)
	case nBits&compactSignBit != 0:
		// The sign bit is part of the first mantissa byte, which is read
		// whenever size >= 1, and d != 0 implies size >= 1 here.
		return nil, errorf(ErrDifficulty, "nBits %#08x encodes a negative difficulty", nBits)
	}
	return d, nil
}

// EncodeCompactBits is the inverse of DecodeCompactBits, as the node's
// DifficultySerializer.encodeCompactBits: it keeps the three most
// significant bytes of d (truncating, not rounding), so
// DecodeCompactBits(EncodeCompactBits(d)) equals d only when d has at most
// 23 significant bits followed by whole zero bytes. Every difficulty that
// DecodeCompactBits returns is such a value, and re-encodes to its canonical
// nBits.
//
// A negative d is encoded with the sign bit set, which DecodeCompactBits
// rejects. EncodeCompactBits returns 0, which DecodeCompactBits also
// rejects, for a nil or zero d and for one too large to encode (2^2039 or
// more), so that a simulated chain cannot silently mine on a difficulty
// other than the one it chose.
func EncodeCompactBits(d *big.Int) uint32 {
	if d == nil || d.Sign() == 0 {
		return 0
	}
	abs := new(big.Int).Abs(d)
	// The reference takes the size from Java's two's-complement encoding
	// (BigInteger.toByteArray), which has room for a sign bit: that is why
	// the mantissa's bit 23 is always clear below and the reference's "shift
	// the mantissa right if bit 23 is set" step never applies.
	size := abs.BitLen()/8 + 1
	if size > maxCompactSize {
		return 0
	}
	var mantissa uint64
	if size <= 3 {
		mantissa = abs.Uint64() << (8 * (3 - size))
	} else {
		mantissa = abs.Rsh(abs, uint(8*(size-3))).Uint64()
	}
	bits := uint32(size)<<24 | uint32(mantissa)
	if d.Sign() < 0 {
		bits |= compactSignBit
	}
	return bits
}
