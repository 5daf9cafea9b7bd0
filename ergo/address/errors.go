package address

import "fmt"

// ErrorKind identifies why an address was rejected. Use errors.Is to test
// for one; every error Parse and Validate return wraps exactly one
// ErrorKind.
type ErrorKind string

// Error implements error so that an ErrorKind can be the target of errors.Is.
func (k ErrorKind) Error() string { return string(k) }

const (
	// ErrBase58: the string has a character outside the Base58 alphabet.
	ErrBase58 = ErrorKind("invalid base58")
	// ErrLength: the address is empty, too short or too long, or its
	// content has the wrong length for its kind.
	ErrLength = ErrorKind("invalid address length")
	// ErrChecksum: the last 4 bytes are not the checksum of the rest.
	ErrChecksum = ErrorKind("checksum mismatch")
	// ErrNetwork: the prefix byte names neither mainnet nor testnet.
	ErrNetwork = ErrorKind("unknown network")
	// ErrKind: the prefix byte names no address type (P2PK, P2SH, P2S).
	ErrKind = ErrorKind("unknown address type")
	// ErrPublicKey: a P2PK address holds bytes that are not a valid
	// compressed secp256k1 point.
	ErrPublicKey = ErrorKind("invalid public key")
)

// Error is a rejected address. It wraps its Kind for errors.Is.
type Error struct {
	Kind   ErrorKind
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "address: " + string(e.Kind)
	}
	return "address: " + string(e.Kind) + ": " + e.Detail
}

// Unwrap lets errors.Is match the Kind.
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}
