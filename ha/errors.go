package ha

import (
	"fmt"
	"strings"
)

// ErrorKind identifies a class of failure. Every error this package
// returns, except the caller's own context error, wraps one ErrorKind, so
// callers write errors.Is(err, ha.ErrLease).
type ErrorKind string

// Error implements error so that an ErrorKind can be an errors.Is target.
func (k ErrorKind) Error() string { return string(k) }

const (
	// ErrConfig: the configuration cannot be used (no id, a bucket name
	// JetStream refuses, a lease TTL out of range).
	ErrConfig = ErrorKind("invalid HA configuration")
	// ErrLease: the lease's key-value bucket could not be created, read
	// or written.
	ErrLease = ErrorKind("lease failure")
	// ErrLeaseLost: this auditor no longer holds the lease (another took
	// it, or it could not renew it in time); it publishes nothing more
	// under it.
	ErrLeaseLost = ErrorKind("lease lost")
	// ErrStream: the events stream could not be read, or refused a
	// message (another publisher appended to it first: the leader reads
	// it again).
	ErrStream = ErrorKind("stream failure")
	// ErrChain: the auditor's own store could not be read or written.
	ErrChain = ErrorKind("store failure")
	// ErrPlan: what the stream holds and the auditor's chain could not be
	// reconciled (an event that cannot be rebuilt, say).
	ErrPlan = ErrorKind("cannot plan the events to publish")
)

// Error is a failure of one operation.
type Error struct {
	Op   string
	Kind ErrorKind
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ha: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(string(e.Kind))
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

func newError(kind ErrorKind, op string, err error) *Error {
	return &Error{Op: op, Kind: kind, Err: err}
}

func errorf(kind ErrorKind, op, format string, args ...any) *Error {
	return &Error{Op: op, Kind: kind, Err: fmt.Errorf(format, args...)}
}
