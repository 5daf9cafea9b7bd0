package sigma

import (
	"fmt"

	"github.com/async-emission/auditor/ergo/wire"
)

// ErrorKind identifies a class of failure specific to ErgoTree decoding. Use
// errors.Is to test for one. Every *Error also matches wire.ErrInvalid, so a
// caller that only distinguishes malformed input from truncated input can
// keep using the wire kinds.
type ErrorKind string

// Error implements error so that an ErrorKind can be the target of errors.Is.
func (k ErrorKind) Error() string { return string(k) }

const (
	// ErrUnknownType: a type code that no ErgoTree type has.
	ErrUnknownType = ErrorKind("unknown type code")
	// ErrUnknownOpcode: an expression opcode that the reference
	// deserializer does not know.
	ErrUnknownOpcode = ErrorKind("unknown opcode")
	// ErrDepth: types, values or expressions nested deeper than the
	// reference deserializer allows.
	ErrDepth = ErrorKind("nesting too deep")
	// ErrNotSerializable: a type that has no data serialization (Any,
	// Context, Global, PreHeader, function types and type variables), or a
	// value that cannot be written with the type it is paired with.
	ErrNotSerializable = ErrorKind("value not serializable")
	// ErrNotConstant: a register or context-extension value is a
	// well-formed expression that does not reduce to a constant.
	ErrNotConstant = ErrorKind("expression is not a constant")
	// ErrInvalidPoint: 33 bytes that do not encode a secp256k1 point.
	ErrInvalidPoint = ErrorKind("invalid group element")
	// ErrNoRegister: a box register that is absent or out of range.
	ErrNoRegister = ErrorKind("no such register")
)

// Error is a decoding or encoding failure at a byte offset. It unwraps to its
// Kind and to wire.ErrInvalid.
type Error struct {
	Kind   ErrorKind
	Offset int    // offset of the byte that was being read; -1 when writing
	What   string // what was being read or written, e.g. "register R4"
	Detail string // optional extra context
}

func (e *Error) Error() string {
	msg := string(e.Kind)
	if e.Offset >= 0 {
		msg = fmt.Sprintf("%s at byte %d", msg, e.Offset)
	}
	if e.What != "" {
		msg = e.What + ": " + msg
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap lets errors.Is match both the Kind and wire.ErrInvalid.
func (e *Error) Unwrap() []error { return []error{e.Kind, wire.ErrInvalid} }

// failAt builds an *Error of the given kind at byte offset off.
func failAt(kind ErrorKind, off int, what, format string, args ...any) *Error {
	return &Error{Kind: kind, Offset: off, What: what, Detail: fmt.Sprintf(format, args...)}
}

// invalidAt builds a *wire.Error of kind wire.ErrInvalid at byte offset off:
// a well-formed value that is not allowed where it stands.
func invalidAt(off int, what, format string, args ...any) *wire.Error {
	return wire.Errorf(wire.ErrInvalid, off, what, format, args...)
}

// writeErr builds an *Error for a value that cannot be encoded.
func writeErr(what, format string, args ...any) *Error {
	return &Error{Kind: ErrNotSerializable, Offset: -1, What: what, Detail: fmt.Sprintf(format, args...)}
}
