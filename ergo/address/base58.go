package address

import (
	"math/big"
	"unicode/utf8"
)

// Base58 with the Bitcoin alphabet, as scorex.util.encode.Base58: a byte
// string is the big-endian number it spells, written in base 58, with each
// leading zero byte written as a leading '1'. The encoding is a bijection
// between byte strings and strings over the alphabet.
//
// The number is converted by math/big in base 58 (its Text is
// subquadratic, several times faster than digit-by-digit division on a 4 KiB
// P2S address), whose digits 0-9a-zA-V are then mapped to the alphabet.

const (
	base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	bigDigits      = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV" // math/big's first 58
)

// toBase58 and fromBase58 map between the two digit sets; fromBase58 maps
// bytes outside the alphabet to 0.
var toBase58, fromBase58 = func() (to, from [256]byte) {
	for i := range len(base58Alphabet) {
		to[bigDigits[i]] = base58Alphabet[i]
		from[base58Alphabet[i]] = bigDigits[i]
	}
	return to, from
}()

// base58Encode returns the Base58 encoding of b.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	digits := ""
	if zeros < len(b) {
		digits = new(big.Int).SetBytes(b[zeros:]).Text(58)
	}
	out := make([]byte, zeros+len(digits))
	for i := range zeros {
		out[i] = '1'
	}
	for i := range len(digits) {
		out[zeros+i] = toBase58[digits[i]]
	}
	return string(out)
}

// base58Decode returns the bytes s encodes, or an error wrapping ErrBase58
// that names the first character outside the alphabet.
func base58Decode(s string) ([]byte, error) {
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	digits := make([]byte, len(s)-zeros)
	for i := range digits {
		d := fromBase58[s[zeros+i]]
		if d == 0 {
			r, _ := utf8.DecodeRuneInString(s[zeros+i:])
			return nil, errorf(ErrBase58, "character %q at byte %d is not in the Base58 alphabet", r, zeros+i)
		}
		digits[i] = d
	}
	x := new(big.Int)
	if len(digits) > 0 {
		// Cannot fail: digits holds only base-58 digits, and no sign.
		x.SetString(string(digits), 58)
	}
	// The number has no leading zero byte: those are the leading '1's.
	out := make([]byte, zeros+(x.BitLen()+7)/8)
	x.FillBytes(out[zeros:])
	return out, nil
}
