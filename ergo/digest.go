package ergo

import (
	"encoding/hex"

	"golang.org/x/crypto/blake2b"
)

// Digest is a 32-byte Blake2b-256 hash: a box, transaction, header or token
// id, or a Merkle root. It renders as lowercase hex.
type Digest [32]byte

// Hash returns the Blake2b-256 digest of b.
func Hash(b []byte) Digest { return blake2b.Sum256(b) }

// ParseDigest decodes 64 hex characters.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 64 {
		return d, errorf(ErrLength, "", "a 32-byte id is 64 hex characters, got %d", len(s))
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return d, &Error{Kind: ErrHex, Err: err}
	}
	return d, nil
}

func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether every byte is zero.
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText renders the digest as hex (and so as a JSON string).
func (d Digest) MarshalText() ([]byte, error) {
	out := make([]byte, 64)
	hex.Encode(out, d[:])
	return out, nil
}

// UnmarshalText parses 64 hex characters.
func (d *Digest) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return errorf(ErrLength, "", "a 32-byte id is 64 hex characters, got %d", len(b))
	}
	if _, err := hex.Decode(d[:], b); err != nil {
		return &Error{Kind: ErrHex, Err: err}
	}
	return nil
}

// HexBytes is a byte string that renders as lowercase hex.
type HexBytes []byte

func (h HexBytes) String() string { return hex.EncodeToString(h) }

// MarshalText renders the bytes as hex.
func (h HexBytes) MarshalText() ([]byte, error) {
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h)
	return out, nil
}
