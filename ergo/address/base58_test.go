package address

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestBase58Vectors(t *testing.T) {
	// Bitcoin Core, src/test/data/base58_encode_decode.json.
	for _, c := range []struct{ hex, enc string }{
		{"", ""},
		{"61", "2g"},
		{"626262", "a3gV"},
		{"636363", "aPEr"},
		{"73696d706c792061206c6f6e6720737472696e67", "2cFupjhnEsSn59qHXstmK2ffpLv2"},
		{"00eb15231dfceb60925886b67d065299925915aeb172c06647", "1NS17iag9jJgTHD1VXjvLCEnZuQ3rJDE9L"},
		{"516b6fcd0f", "ABnLTmg"},
		{"bf4f89001e670274dd", "3SEo3LWLoPntC"},
		{"572e4794", "3EFU7m"},
		{"ecac89cad93923c02321", "EJDM8drfXA6uyA"},
		{"10c8511e", "Rt5zm"},
		{"00000000000000000000", "1111111111"},
		// Leading zeros before, and zero digits inside, a value.
		{"00", "1"},
		{"0000", "11"},
		{"0001", "12"},
		{"000039", "11z"},
		{"00003a", "1121"},
		{"0000000000000000000000000000000000000001", strings.Repeat("1", 19) + "2"},
	} {
		b, _ := hex.DecodeString(c.hex)
		if got := base58Encode(b); got != c.enc {
			t.Errorf("encode %s = %q, want %q", c.hex, got, c.enc)
		}
		got, err := base58Decode(c.enc)
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("decode %q = %x, %v; want %s", c.enc, got, err, c.hex)
		}
	}
}

// naiveBase58 is the textbook digit-by-digit conversion, to cross-check
// the one through math/big.
func naiveBase58(b []byte) string {
	digits := []byte{} // least significant first
	for _, x := range b {
		carry := int(x)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	var out strings.Builder
	for i := 0; i < len(b) && b[i] == 0; i++ {
		out.WriteByte('1')
	}
	for i := len(digits) - 1; i >= 0; i-- {
		out.WriteByte(base58Alphabet[digits[i]])
	}
	return out.String()
}

func TestBase58RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1000, 1 + MaxTreeSize + ChecksumSize}
	for n := range 300 {
		sizes = append(sizes, n)
	}
	for _, n := range sizes {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		for i := range rng.IntN(4) { // leading zero bytes
			if i < len(b) {
				b[i] = 0
			}
		}
		enc := base58Encode(b)
		if want := naiveBase58(b); enc != want {
			t.Fatalf("encode %x = %q, naive %q", b, enc, want)
		}
		dec, err := base58Decode(enc)
		if err != nil || !bytes.Equal(dec, b) {
			t.Fatalf("decode(encode(%x)) = %x, %v", b, dec, err)
		}
	}
}

func TestBase58Invalid(t *testing.T) {
	for _, s := range []string{"0", "O", "I", "l", "+", "/", " 2g", "2g ", "2g\n", "\x00", "é", "2\xff", "ABnLTmg0"} {
		if b, err := base58Decode(s); !errors.Is(err, ErrBase58) {
			t.Errorf("decode %q = %x, %v; want ErrBase58", s, b, err)
		}
	}
}
