package address

import (
	"github.com/async-emission/auditor/ergo/sigma"
)

// PublicKeySize is the size of a public key as Ergo serializes a secp256k1
// point (GroupElementSerializer): the SEC 1 compressed encoding, or 33 zero
// bytes for the point at infinity.
const PublicKeySize = 33

// checkPublicKey reports whether k is a public key that the reference's
// GroupElementSerializer reads and writes back unchanged: 02 or 03 followed
// by the x coordinate of a point of y² = x³ + 7 over the field, or 33 zero
// bytes. (The reference reads any key starting with 00 as the point at
// infinity and writes that as 33 zeros, so only 33 zeros round-trip.) The
// curve check is the ErgoTree parser's (sigma.CheckGroupElement), which
// remembers the keys it has seen: FromErgoTree checks the key of every
// P2PK tree, and keys recur.
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
	if sigma.CheckGroupElement([PublicKeySize]byte(k)) != nil {
		return errorf(ErrPublicKey, "not a point of the secp256k1 curve (x not on it, or not below the field order)")
	}
	return nil
}
