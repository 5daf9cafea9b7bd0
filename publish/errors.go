package publish

import (
	"fmt"
	"strings"
)

// ErrorKind identifies a class of failure. Every error this package
// returns, except the caller's own context error, is an *Error wrapping one
// ErrorKind, so callers write errors.Is(err, publish.ErrConfig).
type ErrorKind string

// Error implements error so that an ErrorKind can be an errors.Is target.
func (k ErrorKind) Error() string { return string(k) }

const (
	// ErrConfig: a configuration value cannot be used (a bad listen
	// address, a subject prefix with wildcards, user and token both set).
	// Nothing was started or sent.
	ErrConfig = ErrorKind("invalid NATS configuration")
	// ErrServer: the embedded NATS server could not be started or did not
	// become ready.
	ErrServer = ErrorKind("embedded NATS server failed")
	// ErrConnect: no connection to NATS could be made (the servers refused
	// or were unreachable, authentication or TLS failed, a credentials file
	// could not be read).
	ErrConnect = ErrorKind("cannot connect to NATS")
	// ErrStream: the JetStream stream could not be created, updated or
	// read.
	ErrStream = ErrorKind("JetStream stream failure")
	// ErrPublish: JetStream did not acknowledge a message: it answered
	// with an error, the connection dropped, or no ack came in time. The
	// relay retries from the first unacknowledged row.
	ErrPublish = ErrorKind("publish failed")
	// ErrSource: the outbox (the relay's Source) failed.
	ErrSource = ErrorKind("outbox failure")
	// ErrEncode: an event cannot be built from what it was given (a box
	// that is not the verdict's, an empty protocol name, an original
	// message that is not a verdict event).
	ErrEncode = ErrorKind("cannot encode event")
	// ErrDecode: bytes received are not an event of this schema.
	ErrDecode = ErrorKind("not an auditor event")
	// ErrNoSpace: the file system of the embedded server's store cannot
	// hold what the stream may grow to (a *SpaceError says how much).
	ErrNoSpace = ErrorKind("not enough disk space for the NATS store")
)

// Error is a failure of one operation.
type Error struct {
	Op   string    // what was being done, e.g. "publish 0af3…-retracted-1"
	Kind ErrorKind // never empty
	Err  error     // the cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("publish: ")
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
