// Package autolykos checks Ergo's Autolykos v2 proof of work from raw header
// data, so that an auditor need not take a node's word that a header is
// valid.
//
// The reference is AutolykosPowScheme in the Ergo node (ergo-core,
// org.ergoplatform.mining) with the mainnet parameters k = 32 and n = 26.
// For a header of version 2 or later the puzzle is solved when
//
//	hit(msg, nonce, height, N) < q / difficulty
//
// where msg is the Blake2b-256 hash of the header bytes without the PoW
// solution, q is the order of the secp256k1 group and difficulty is decoded
// from the header's nBits (DecodeCompactBits).
//
// Autolykos v1 (header version 1, mainnet heights 1 to 417791) is not
// checked: Verify returns an error wrapping ErrV1Unchecked for it, and a
// caller must report such a header's PoW as unchecked.
//
// Every function is safe for concurrent use and none panics on any input.
package autolykos

import (
	"context"
	"encoding/binary"
	"math/big"
	"math/bits"
	"sync"

	"golang.org/x/crypto/blake2b"
)

// Parameters of the mainnet puzzle (AutolykosPowScheme with k = 32, n = 26).
const (
	// K is the number of table elements summed in a solution.
	K = 32
	// NBase is the table size of Autolykos v1 and the initial table size
	// of v2: 2^26.
	NBase = 1 << 26
	// IncreaseStart is the first height at which the v2 table is larger
	// than NBase.
	IncreaseStart = 600 * 1024
	// IncreasePeriod is the number of blocks between two 5% increases of
	// the v2 table size.
	IncreasePeriod = 50 * 1024
	// IncreaseEnd is the height from which the v2 table size no longer
	// grows: N is 2,143,944,600 there and above.
	IncreaseEnd = 4198400
)

// q is the order of the secp256k1 group.
var q, _ = new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)

// N returns the number of elements of the table the puzzle is solved on for
// a header of the given version and height. It is NBase for version 1; for
// any other version it is NBase up to height IncreaseStart-1, then grows by
// 5% (rounding down to a multiple of 105 as the reference's integer
// arithmetic does) at IncreaseStart and every IncreasePeriod blocks after,
// up to IncreaseEnd.
func N(version uint8, height uint32) uint32 {
	if version == 1 || height < IncreaseStart {
		return NBase
	}
	height = min(height, IncreaseEnd)
	n := uint32(NBase)
	for range (height-IncreaseStart)/IncreasePeriod + 1 {
		n = n / 100 * 105 // at most 2,143,944,600: no overflow
	}
	return n
}

// Target returns the bound a hit must be below: q / difficulty, where
// difficulty is decoded from nBits. The error wraps ErrDifficulty.
func Target(nBits uint32) (*big.Int, error) {
	d, err := DecodeCompactBits(nBits)
	if err != nil {
		return nil, err
	}
	return d.Quo(q, d), nil
}

// Hit computes the Autolykos v2 hit of a nonce for msg, the Blake2b-256 hash
// of a header's bytes without its PoW solution, at the given height, on a
// table of n elements (N(version, height) for an Ergo header).
//
// With H = Blake2b-256, M the 8 KiB constant formed by the big-endian 64-bit
// integers 0 to 1023, and h the 4-byte big-endian height:
//
//	i     = (last 8 bytes of H(msg ‖ nonce)) mod n, as 4 big-endian bytes
//	f     = H(i ‖ h ‖ M) without its first byte
//	s     = H(f ‖ msg ‖ nonce), and s' = s ‖ s[0:3]
//	j_k   = (s'[k:k+4] as an unsigned 32-bit integer) mod n, k = 0 … 31
//	e_k   = H(j_k ‖ h ‖ M) without its first byte, as an unsigned integer
//	hit   = H(e_0 + … + e_31 as 32 big-endian bytes), as an unsigned integer
//
// Hit returns nil if n is 0 (no table is empty), as math/big returns nil
// where there is no result.
func Hit(msg [32]byte, nonce [8]byte, height uint32, n uint32) *big.Int {
	if n == 0 {
		return nil
	}
	s := newScratch(height)
	defer s.release()
	hit := s.hit(&msg, &nonce, n)
	return new(big.Int).SetBytes(hit[:])
}

// Verify checks the proof of work of a header with the given version,
// height and nBits, whose hash without PoW is msg and whose nonce is nonce.
// It returns nil when the hit is below the target, and otherwise an *Error
// wrapping ErrPowInvalid (with the hit and target) or ErrDifficulty. For
// version 1 it checks nothing and returns an *Error wrapping ErrV1Unchecked.
//
// As in the reference, every version other than 1 is checked as v2 (mainnet
// headers have versions 1 to 4).
func Verify(msg [32]byte, nonce [8]byte, version uint8, height uint32, nBits uint32) error {
	if version == 1 {
		return errorf(ErrV1Unchecked, "header version 1 at height %d", height)
	}
	target, err := Target(nBits)
	if err != nil {
		return err
	}
	hit := Hit(msg, nonce, height, N(version, height))
	if hit.Cmp(target) < 0 {
		return nil
	}
	e := errorf(ErrPowInvalid, "header version %d at height %d, nonce %x", version, height, nonce)
	e.Hit, e.Target = hit, target
	return e
}

// Solve searches for a nonce that solves the v2 puzzle for msg at the given
// height and nBits, trying the nonces start, start+1, … (as 8-byte
// big-endian integers, wrapping at 2^64). It is meant for a simulated chain
// with an easy difficulty: each try costs one Hit.
//
// Solve returns the context's error as soon as ctx is done (it is checked
// before every try, so an already cancelled context returns at once), an
// error wrapping ErrDifficulty for an unusable nBits, ErrV1Unchecked for
// version 1 (v1 solutions are not produced here) and ErrNoSolution if all
// 2^64 nonces fail.
func Solve(ctx context.Context, msg [32]byte, version uint8, height, nBits uint32, start uint64) (nonce [8]byte, err error) {
	if version == 1 {
		return nonce, errorf(ErrV1Unchecked, "cannot solve a version 1 header")
	}
	target, err := Target(nBits)
	if err != nil {
		return nonce, err
	}
	// target <= q < 2^256: it fits in 32 bytes, and comparing big-endian
	// byte strings of equal length compares the integers.
	var bound [32]byte
	target.FillBytes(bound[:])
	n := N(version, height)
	s := newScratch(height)
	defer s.release()
	for x := start; ; {
		if err := ctx.Err(); err != nil {
			return [8]byte{}, err
		}
		binary.BigEndian.PutUint64(nonce[:], x)
		if hit := s.hit(&msg, &nonce, n); less(&hit, &bound) {
			return nonce, nil
		}
		if x++; x == start {
			return [8]byte{}, errorf(ErrNoSolution, "nBits %#08x at height %d", nBits, height)
		}
	}
}

// less reports whether a < b as unsigned big-endian integers.
func less(a, b *[32]byte) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

const tableConstLen = 1024 * 8 // len(M)

// scratch holds the input of the table-element hash, index ‖ height ‖ M,
// with M written once when the scratch is created: Hit hashes 33 such 8 KiB
// inputs, and rebuilding or copying M for each would be wasted work.
type scratch struct {
	buf [4 + 4 + tableConstLen]byte
}

var scratchPool = sync.Pool{New: func() any {
	s := new(scratch)
	for i := range 1024 {
		binary.BigEndian.PutUint64(s.buf[8+8*i:], uint64(i))
	}
	return s
}}

// newScratch takes a scratch from the pool and sets its height bytes.
func newScratch(height uint32) *scratch {
	s := scratchPool.Get().(*scratch)
	binary.BigEndian.PutUint32(s.buf[4:8], height)
	return s
}

func (s *scratch) release() { scratchPool.Put(s) }

// element returns H(index ‖ h ‖ M) for the height set in s.
func (s *scratch) element(index uint32) [32]byte {
	binary.BigEndian.PutUint32(s.buf[0:4], index)
	return blake2b.Sum256(s.buf[:])
}

// hit computes the hit as 32 big-endian bytes; n must not be 0.
func (s *scratch) hit(msg *[32]byte, nonce *[8]byte, n uint32) [32]byte {
	var seed [31 + 32 + 8]byte // f ‖ msg ‖ nonce; msg ‖ nonce first
	copy(seed[31:63], msg[:])
	copy(seed[63:], nonce[:])

	pre := blake2b.Sum256(seed[31:])
	i := uint32(binary.BigEndian.Uint64(pre[24:]) % uint64(n))
	f := s.element(i)
	copy(seed[:31], f[1:])

	var ext [32 + 3]byte
	sh := blake2b.Sum256(seed[:])
	copy(ext[:], sh[:])
	copy(ext[32:], sh[:3])

	// The sum of 32 elements of 248 bits is below 2^253: four 64-bit limbs
	// (least significant first) hold it without overflow.
	var sum [4]uint64
	for k := range K {
		e := s.element(binary.BigEndian.Uint32(ext[k:]) % n)
		var c uint64
		sum[0], c = bits.Add64(sum[0], binary.BigEndian.Uint64(e[24:]), 0)
		sum[1], c = bits.Add64(sum[1], binary.BigEndian.Uint64(e[16:]), c)
		sum[2], c = bits.Add64(sum[2], binary.BigEndian.Uint64(e[8:]), c)
		sum[3], _ = bits.Add64(sum[3], binary.BigEndian.Uint64(e[0:])&(1<<56-1), c)
	}
	var out [32]byte
	for l := range sum {
		binary.BigEndian.PutUint64(out[24-8*l:], sum[l])
	}
	return blake2b.Sum256(out[:])
}
