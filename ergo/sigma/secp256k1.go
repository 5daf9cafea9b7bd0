package sigma

import (
	"encoding/binary"
	"math/bits"
)

// This file decides whether a compressed secp256k1 encoding names a point,
// that is whether x < p and x³ + 7 is a square modulo p, with fixed-size
// field arithmetic: math/big needs several microseconds per check.

// fieldElem is an integer below 2^256 in four little-endian 64-bit limbs.
// Arithmetic results are congruent modulo p but not always fully reduced.
type fieldElem [4]uint64

// fieldP is p = 2^256 - 2^32 - 977, and fieldC = 2^256 mod p.
var fieldP = fieldElem{0xfffffffefffffc2f, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff}

const fieldC = 0x1000003d1

// feFromBytes reads a big-endian 32-byte integer.
func feFromBytes(b []byte) fieldElem {
	return fieldElem{
		binary.BigEndian.Uint64(b[24:]), binary.BigEndian.Uint64(b[16:]),
		binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b[0:]),
	}
}

// less reports whether a < b as integers.
func (a *fieldElem) less(b *fieldElem) bool {
	for i := 3; i >= 0; i-- {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// normalize returns the representative of a in [0, p).
func (a fieldElem) normalize() fieldElem {
	if a.less(&fieldP) {
		return a
	}
	var r fieldElem
	var borrow uint64
	for i := range r {
		r[i], borrow = bits.Sub64(a[i], fieldP[i], borrow)
	}
	return r // a < 2^256 < 2p, so one subtraction suffices
}

// addSmall returns a + v for v < 2^63.
func (a fieldElem) addSmall(v uint64) fieldElem {
	var carry uint64
	a[0], carry = bits.Add64(a[0], v, 0)
	for i := 1; i < 4; i++ {
		a[i], carry = bits.Add64(a[i], 0, carry)
	}
	return a.foldCarry(carry)
}

// foldCarry adds carry·2^256 ≡ carry·C.
func (a fieldElem) foldCarry(carry uint64) fieldElem {
	for carry != 0 {
		a[0], carry = bits.Add64(a[0], fieldC*carry, 0)
		for i := 1; i < 4; i++ {
			a[i], carry = bits.Add64(a[i], 0, carry)
		}
	}
	return a
}

// mulAdd adds x·y to the 192-bit accumulator (c0, c1, c2).
func mulAdd(c0, c1, c2, x, y uint64) (uint64, uint64, uint64) {
	hi, lo := bits.Mul64(x, y)
	var c uint64
	c0, c = bits.Add64(c0, lo, 0)
	c1, c = bits.Add64(c1, hi, c)
	return c0, c1, c2 + c
}

// feMul returns a·b modulo p: the 512-bit product by columns, then
// lo + hi·2^256 ≡ lo + hi·C folded twice.
func feMul(a, b *fieldElem) fieldElem {
	var t0, t1, t2, t3, t4, t5, t6, t7 uint64
	var c0, c1, c2 uint64
	c0, c1, c2 = mulAdd(c0, c1, c2, a[0], b[0])
	t0, c0, c1, c2 = c0, c1, c2, 0
	c0, c1, c2 = mulAdd(c0, c1, c2, a[0], b[1])
	c0, c1, c2 = mulAdd(c0, c1, c2, a[1], b[0])
	t1, c0, c1, c2 = c0, c1, c2, 0
	c0, c1, c2 = mulAdd(c0, c1, c2, a[0], b[2])
	c0, c1, c2 = mulAdd(c0, c1, c2, a[1], b[1])
	c0, c1, c2 = mulAdd(c0, c1, c2, a[2], b[0])
	t2, c0, c1, c2 = c0, c1, c2, 0
	c0, c1, c2 = mulAdd(c0, c1, c2, a[0], b[3])
	c0, c1, c2 = mulAdd(c0, c1, c2, a[1], b[2])
	c0, c1, c2 = mulAdd(c0, c1, c2, a[2], b[1])
	c0, c1, c2 = mulAdd(c0, c1, c2, a[3], b[0])
	t3, c0, c1, c2 = c0, c1, c2, 0
	c0, c1, c2 = mulAdd(c0, c1, c2, a[1], b[3])
	c0, c1, c2 = mulAdd(c0, c1, c2, a[2], b[2])
	c0, c1, c2 = mulAdd(c0, c1, c2, a[3], b[1])
	t4, c0, c1, c2 = c0, c1, c2, 0
	c0, c1, c2 = mulAdd(c0, c1, c2, a[2], b[3])
	c0, c1, c2 = mulAdd(c0, c1, c2, a[3], b[2])
	t5, c0, c1 = c0, c1, c2
	c0, c1, _ = mulAdd(c0, c1, 0, a[3], b[3])
	t6, t7 = c0, c1

	// lo + hi·C, where hi·C is below 2^290.
	var r fieldElem
	var k uint64
	c0, c1, c2 = mulAdd(t0, 0, 0, t4, fieldC)
	r[0], c0, c1 = c0, c1, c2
	c0, c1, c2 = mulAdd(c0, c1, 0, t5, fieldC)
	c0, k = bits.Add64(c0, t1, 0)
	c1 += k
	r[1], c0, c1 = c0, c1, c2
	c0, c1, c2 = mulAdd(c0, c1, 0, t6, fieldC)
	c0, k = bits.Add64(c0, t2, 0)
	c1 += k
	r[2], c0, c1 = c0, c1, c2
	c0, c1, _ = mulAdd(c0, c1, 0, t7, fieldC)
	c0, k = bits.Add64(c0, t3, 0)
	c1 += k
	r[3] = c0
	// Fold the top limb c1 (below 2^35) back in.
	hi, lo := bits.Mul64(c1, fieldC)
	r[0], k = bits.Add64(r[0], lo, 0)
	r[1], k = bits.Add64(r[1], hi, k)
	r[2], k = bits.Add64(r[2], 0, k)
	r[3], k = bits.Add64(r[3], 0, k)
	return r.foldCarry(k)
}

// sqrN returns a^(2^n).
func sqrN(a fieldElem, n int) fieldElem {
	for range n {
		a = feMul(&a, &a)
	}
	return a
}

// isSquare reports whether a (below p) is a square modulo p: whether
// r = a^((p+1)/4) satisfies r² = a. The exponent is reached with the
// addition chain of libsecp256k1, whose blocks of ones in (p+1)/4 have
// lengths 2, 22 and 223.
func isSquare(a fieldElem) bool {
	x2 := sqrN(a, 1)
	x2 = feMul(&x2, &a)
	x3 := sqrN(x2, 1)
	x3 = feMul(&x3, &a)
	x6 := sqrN(x3, 3)
	x6 = feMul(&x6, &x3)
	x9 := sqrN(x6, 3)
	x9 = feMul(&x9, &x3)
	x11 := sqrN(x9, 2)
	x11 = feMul(&x11, &x2)
	x22 := sqrN(x11, 11)
	x22 = feMul(&x22, &x11)
	x44 := sqrN(x22, 22)
	x44 = feMul(&x44, &x22)
	x88 := sqrN(x44, 44)
	x88 = feMul(&x88, &x44)
	x176 := sqrN(x88, 88)
	x176 = feMul(&x176, &x88)
	x220 := sqrN(x176, 44)
	x220 = feMul(&x220, &x44)
	x223 := sqrN(x220, 3)
	x223 = feMul(&x223, &x3)
	t := sqrN(x223, 23)
	t = feMul(&t, &x22)
	t = sqrN(t, 6)
	t = feMul(&t, &x2)
	r := sqrN(t, 2)
	return sqrN(r, 1).normalize() == a.normalize()
}

// onCurve reports whether the compressed encoding names a point of the
// curve y² = x³ + 7.
func onCurve(enc *GroupElement) bool {
	if enc[0] != 0x02 && enc[0] != 0x03 {
		return false
	}
	x := feFromBytes(enc[1:])
	if !x.less(&fieldP) {
		return false
	}
	y2 := feMul(&x, &x)
	y2 = feMul(&y2, &x)
	return isSquare(y2.addSmall(7))
}
