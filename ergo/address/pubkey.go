package address

import (
	"encoding/binary"
	"math/big"
	"math/bits"
)

// PublicKeySize is the size of a public key as Ergo serializes a secp256k1
// point (GroupElementSerializer): the SEC 1 compressed encoding, or 33 zero
// bytes for the point at infinity.
const PublicKeySize = 33

// secp256k1P is the order of the secp256k1 base field, 2^256 - 2^32 - 977.
var secp256k1P, _ = new(big.Int).SetString("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f", 16)

// checkPublicKey reports whether k is a public key that the reference's
// GroupElementSerializer reads and writes back unchanged: 02 or 03 followed
// by the x coordinate of a point of y² = x³ + 7 over the field, or 33 zero
// bytes. (The reference reads any key starting with 00 as the point at
// infinity and writes that as 33 zeros, so only 33 zeros round-trip.)
func checkPublicKey(k []byte) error {
	if len(k) != PublicKeySize {
		return errorf(ErrLength, "public key of %d bytes, want %d", len(k), PublicKeySize)
	}
	switch k[0] {
	case 0x00:
		for _, b := range k[1:] {
			if b != 0 {
				return errorf(ErrPublicKey, "non-canonical encoding of the point at infinity")
			}
		}
		return nil
	case 0x02, 0x03:
	default:
		return errorf(ErrPublicKey, "prefix byte %#02x, want 02 or 03", k[0])
	}
	x := new(big.Int).SetBytes(k[1:])
	if x.Cmp(secp256k1P) >= 0 {
		return errorf(ErrPublicKey, "x coordinate is not below the field order")
	}
	// A y exists iff x³ + 7 is a square modulo p, that is iff its Jacobi
	// symbol is 1. It is never 0: the group has prime order, so no point
	// has y = 0.
	rhs := new(big.Int).Mul(x, x)
	rhs.Mul(rhs.Mod(rhs, secp256k1P), x)
	rhs.Add(rhs, big.NewInt(7))
	if jacobi(limbs(rhs.Mod(rhs, secp256k1P)), secp256k1PLimbs) != 1 {
		return errorf(ErrPublicKey, "x coordinate is not on the secp256k1 curve")
	}
	return nil
}

// u256 is a 256-bit unsigned integer, least significant limb first.
type u256 [4]uint64

var secp256k1PLimbs = limbs(secp256k1P)

// limbs converts x, which must be below 2^256, to a u256.
func limbs(x *big.Int) u256 {
	var b [32]byte
	x.FillBytes(b[:])
	var u u256
	for i := range u {
		u[i] = binary.BigEndian.Uint64(b[24-8*i:])
	}
	return u
}

// jacobi returns the Jacobi symbol (a/n) for an odd n, by the binary
// algorithm: it only shifts, compares and subtracts fixed-size integers, so
// it costs a small fraction of math/big's Jacobi, which allocates at every
// step. FromErgoTree checks the key of every P2PK tree with it.
func jacobi(a, n u256) int {
	t := 1
	for a != (u256{}) {
		// Halve a until it is odd; (2/n) = -1 iff n ≡ 3 or 5 (mod 8), so
		// only the parity of the number of halvings matters.
		for a[0] == 0 {
			a = u256{a[1], a[2], a[3], 0} // 64 halvings: no sign change
		}
		if tz := uint(bits.TrailingZeros64(a[0])); tz > 0 {
			a = u256{a[0]>>tz | a[1]<<(64-tz), a[1]>>tz | a[2]<<(64-tz), a[2]>>tz | a[3]<<(64-tz), a[3] >> tz}
			if r := n[0] & 7; tz&1 == 1 && (r == 3 || r == 5) {
				t = -t
			}
		}
		// Both odd: reciprocity lets the larger be reduced by the smaller.
		if a.less(&n) {
			a, n = n, a
			if a[0]&3 == 3 && n[0]&3 == 3 {
				t = -t
			}
		}
		var borrow uint64
		a[0], borrow = bits.Sub64(a[0], n[0], 0)
		a[1], borrow = bits.Sub64(a[1], n[1], borrow)
		a[2], borrow = bits.Sub64(a[2], n[2], borrow)
		a[3], _ = bits.Sub64(a[3], n[3], borrow)
	}
	if n == (u256{1}) {
		return t
	}
	return 0 // gcd(a, n) = n > 1
}

func (x *u256) less(y *u256) bool {
	for i := 3; i >= 0; i-- {
		if x[i] != y[i] {
			return x[i] < y[i]
		}
	}
	return false
}
