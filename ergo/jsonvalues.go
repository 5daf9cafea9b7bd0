package ergo

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"strconv"
)

// The j* types are the leaves of the node-JSON decoding layer. Their
// UnmarshalJSON methods never fail on content: they record what they found
// (and any problem) so that the conversion into the model can report the
// problem with its full field path, whichever JSON decoder drove them.

var jsonNull = []byte("null")

// jstring returns the contents of a JSON string literal without escapes, or
// ok=false. Node JSON never escapes hex or decimal strings; an escaped one is
// rejected rather than interpreted.
func jstring(raw []byte) (s []byte, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	s = raw[1 : len(raw)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	return s, true
}

// jHex is a hex string.
type jHex struct {
	b   []byte
	set bool
	err *Error
}

func (h *jHex) UnmarshalJSON(raw []byte) error {
	*h = jHex{}
	if bytes.Equal(raw, jsonNull) {
		return nil
	}
	h.set = true
	s, ok := jstring(raw)
	if !ok {
		h.err = errorf(ErrHex, "", "expected a hex string, got %.40s", raw)
		return nil
	}
	h.b = make([]byte, hex.DecodedLen(len(s)))
	if _, err := hex.Decode(h.b, s); err != nil {
		h.err = &Error{Kind: ErrHex, Err: err}
	}
	return nil
}

// bytes returns the decoded bytes of a required field.
func (h *jHex) bytes(field string) ([]byte, error) {
	if h.err != nil {
		return nil, within(field, h.err)
	}
	if !h.set {
		return nil, errorf(ErrMissingField, field, "required")
	}
	return h.b, nil
}

// fixed decodes a required field of exactly n bytes into dst.
func (h *jHex) fixed(field string, dst []byte) error {
	b, err := h.bytes(field)
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return errorf(ErrLength, field, "want %d bytes, got %d", len(dst), len(b))
	}
	copy(dst, b)
	return nil
}

// digest decodes a required 32-byte id.
func (h *jHex) digest(field string) (d Digest, err error) {
	err = h.fixed(field, d[:])
	return d, err
}

// optDigest decodes an optional 32-byte id; given reports whether it was.
func (h *jHex) optDigest(field string) (d Digest, given bool, err error) {
	if !h.set && h.err == nil {
		return d, false, nil
	}
	d, err = h.digest(field)
	return d, err == nil, err
}

// jNum is a non-negative integer given as a JSON number or a decimal string
// (some APIs quote amounts). It must fit in 64 bits; bounds narrower than
// that are checked by the caller.
type jNum struct {
	v   uint64
	set bool
	err *Error
}

// numberLiteral returns the digits of a JSON number or of a decimal string,
// or null=true for JSON null.
func numberLiteral(raw []byte) (digits []byte, null bool) {
	if bytes.Equal(raw, jsonNull) {
		return nil, true
	}
	if s, ok := jstring(raw); ok {
		return s, false
	}
	return raw, false
}

func (n *jNum) UnmarshalJSON(raw []byte) error {
	*n = jNum{}
	digits, null := numberLiteral(raw)
	if null {
		return nil
	}
	n.set = true
	v, err := strconv.ParseUint(string(digits), 10, 64)
	switch {
	case err == nil:
		n.v = v
	case len(digits) > 0 && digits[0] == '-':
		n.err = errorf(ErrAmount, "", "negative value %s", digits)
	case isDigits(digits):
		n.err = errorf(ErrAmount, "", "%s overflows 64 bits", digits)
	default:
		n.err = errorf(ErrNumber, "", "expected a non-negative integer, got %.40s", raw)
	}
	return nil
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// uint returns a required value no greater than max.
func (n *jNum) uint(field string, max uint64) (uint64, error) {
	if n.err != nil {
		return 0, within(field, n.err)
	}
	if !n.set {
		return 0, errorf(ErrMissingField, field, "required")
	}
	if n.v > max {
		return 0, errorf(ErrNumber, field, "%d exceeds the maximum %d", n.v, max)
	}
	return n.v, nil
}

// amount returns a required value that is positive and at most MaxInt64:
// Ergo amounts are signed 64-bit Longs in the protocol, so anything above
// that overflows even though the wire format is unsigned.
func (n *jNum) amount(field string) (uint64, error) {
	v, err := n.uint(field, maxAmount)
	if err != nil {
		if n.err == nil && n.set {
			return 0, errorf(ErrAmount, field, "%d overflows a signed 64-bit amount", n.v)
		}
		return 0, err
	}
	if v == 0 {
		return 0, errorf(ErrAmount, field, "must be positive")
	}
	return v, nil
}

const maxAmount = 1<<63 - 1

// jBig is an arbitrary-precision integer given as a JSON number or a string
// (difficulty, v1 PoW distance, node scores).
type jBig struct {
	v   *big.Int
	set bool
	err *Error
}

func (n *jBig) UnmarshalJSON(raw []byte) error {
	*n = jBig{}
	digits, null := numberLiteral(raw)
	if null {
		return nil
	}
	n.set = true
	v, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		n.err = errorf(ErrNumber, "", "expected an integer, got %.60s", raw)
		return nil
	}
	n.v = v
	return nil
}

func (n *jBig) get(field string) (*big.Int, error) {
	if n.err != nil {
		return nil, within(field, n.err)
	}
	if !n.set {
		return nil, errorf(ErrMissingField, field, "required")
	}
	return n.v, nil
}
