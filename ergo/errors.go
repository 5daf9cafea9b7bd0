package ergo

import (
	"errors"
	"fmt"
	"strings"
)

// ErrorKind identifies a class of failure. Every error this package returns
// wraps exactly one ErrorKind, so callers use errors.Is(err, ergo.ErrHex).
type ErrorKind string

// Error implements error so that an ErrorKind can be an errors.Is target.
func (k ErrorKind) Error() string { return string(k) }

// Decoding failures: the input is not a well-formed node JSON value.
const (
	ErrJSON         = ErrorKind("malformed JSON")
	ErrMissingField = ErrorKind("missing field")
	ErrHex          = ErrorKind("invalid hex")
	ErrLength       = ErrorKind("wrong length")
	ErrNumber       = ErrorKind("invalid number")
	ErrAmount       = ErrorKind("invalid amount")
	ErrRegister     = ErrorKind("invalid register")
	ErrErgoTree     = ErrorKind("invalid ErgoTree")
	ErrExtension    = ErrorKind("invalid extension")
	ErrBytes        = ErrorKind("invalid serialized bytes")
	ErrUnknownKind  = ErrorKind("unrecognized object")
)

// Verification failures: the input is well-formed but a value it states
// differs from the one derived from its contents.
const (
	ErrIDMismatch   = ErrorKind("id does not match contents")
	ErrRootMismatch = ErrorKind("root does not match contents")
	ErrLink         = ErrorKind("inconsistent link")
	ErrStated       = ErrorKind("stated value does not match contents")
	ErrPoW          = ErrorKind("invalid proof of work")
)

// Error is a failure located at a field path such as
// "blockTransactions.transactions[3].outputs[0].assets[1].amount".
type Error struct {
	Kind   ErrorKind
	Field  string // dotted path of the offending field; empty for the whole value
	Detail string
	Err    error // underlying cause, if any (e.g. a *wire.Error)
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(string(e.Kind))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause to errors.Is / errors.As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

func errorf(kind ErrorKind, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// within prefixes the field path of err with parent, so that nested
// decoders and checks report full paths. A joined error has each of its
// errors prefixed.
func within(parent string, err error) error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok && !isError(err) {
		errs := joined.Unwrap()
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = within(parent, e)
		}
		return errors.Join(out...)
	}
	if e, ok := err.(*Error); ok {
		c := *e
		switch {
		case c.Field == "":
			c.Field = parent
		case strings.HasPrefix(c.Field, "["):
			c.Field = parent + c.Field
		default:
			c.Field = parent + "." + c.Field
		}
		return &c
	}
	return &Error{Kind: ErrJSON, Field: parent, Err: err}
}

func isError(err error) bool {
	_, ok := err.(*Error)
	return ok
}

func index(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }
