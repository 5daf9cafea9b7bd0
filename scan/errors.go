package scan

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/async-emission/auditor/ergo"
)

// ErrorKind identifies a class of failure. Every error the Client returns,
// except the caller's own context error, is an *Error wrapping exactly one
// ErrorKind, so callers write errors.Is(err, scan.ErrNotFound).
type ErrorKind string

// Error implements error so that an ErrorKind can be an errors.Is target.
func (k ErrorKind) Error() string { return string(k) }

const (
	// ErrUnreachable: no complete answer: the connection failed (refused,
	// reset, closed mid-body) or the attempt outlived RequestTimeout.
	// Retried.
	ErrUnreachable = ErrorKind("node unreachable")
	// ErrHTTPStatus: the node answered with a status other than 2xx or
	// 404. 429 and 5xx are retried; any other status is not.
	ErrHTTPStatus = ErrorKind("unexpected HTTP status")
	// ErrNotFound: the node answered 404: it does not hold what was asked
	// (for a block or header: it does not hold that block in full). Not
	// retried.
	ErrNotFound = ErrorKind("not found")
	// ErrBadResponse: the node answered 2xx with data the client refuses:
	// not the expected JSON, not verifying (the error then also wraps the
	// ergo error, e.g. ergo.ErrIDMismatch), or not what was asked for
	// (another block, a missing, extra or duplicate block, a broken chain).
	// Retried: a proxy can corrupt a body once; a node that keeps lying
	// exhausts the attempts. The data is never returned.
	ErrBadResponse = ErrorKind("bad response")
	// ErrTooLarge: the body exceeds MaxResponseBytes. Not retried: the same
	// request would get the same body.
	ErrTooLarge = ErrorKind("response too large")
	// ErrInvalidArgument: the call itself is wrong (e.g. fromHeight above
	// toHeight, duplicate ids); nothing was sent.
	ErrInvalidArgument = ErrorKind("invalid argument")
)

// Error is a failed call to the node. Its message names the request, the
// block when there is one, the kind, the cause and the number of attempts:
//
//	GET /blocks/54dd…982a: block 54dd…982a at height 700000: bad response:
//	blockTransactions.transactions[0].outputs[0].boxId: id does not match contents: … (after 6 attempts)
type Error struct {
	Kind    ErrorKind
	Request string // e.g. "GET /blocks/54dd…" (the API path, without the node's address)

	// The block the failure concerns, when known: BlockID is zero when it
	// is not, Height is zero when it is not (no block has height 0). For a
	// block that failed verification the height is the one it states.
	BlockID ergo.Digest
	Height  uint32

	Status   int   // the HTTP status, when the node answered with one that is an error
	Attempts int   // attempts made, 0 when nothing was sent
	Err      error // the cause: an ergo error, a transport error, the node's message; may be nil

	retryAfter    time.Duration // the node's Retry-After, when it gave one
	hasRetryAfter bool
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Request != "" {
		b.WriteString(e.Request)
		b.WriteString(": ")
	}
	if !e.BlockID.IsZero() {
		fmt.Fprintf(&b, "block %s", e.BlockID)
		if e.Height != 0 {
			fmt.Fprintf(&b, " at height %d", e.Height)
		}
		b.WriteString(": ")
	} else if e.Height != 0 {
		fmt.Fprintf(&b, "height %d: ", e.Height)
	}
	b.WriteString(string(e.Kind))
	if e.Status != 0 {
		fmt.Fprintf(&b, " %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Err != nil {
		b.WriteString(": ")
		// A verification error joins one line per discrepancy.
		b.WriteString(strings.ReplaceAll(e.Err.Error(), "\n", "; "))
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// retryable reports whether another attempt may get a different answer.
func (e *Error) retryable() bool {
	switch e.Kind {
	case ErrUnreachable, ErrBadResponse:
		return true
	case ErrHTTPStatus:
		return e.Status == http.StatusTooManyRequests || e.Status >= 500
	}
	return false
}

// badResponse is the error for data the client refuses.
func badResponse(format string, args ...any) *Error {
	return &Error{Kind: ErrBadResponse, Err: fmt.Errorf(format, args...)}
}

// badBlock is the error for a block (or header) that fails to verify or is
// not the one asked for; err is the cause, typically an ergo error.
func badBlock(id ergo.Digest, height uint32, err error) *Error {
	return &Error{Kind: ErrBadResponse, BlockID: id, Height: height, Err: err}
}

func invalidArgument(request, format string, args ...any) *Error {
	return &Error{Kind: ErrInvalidArgument, Request: request, Err: fmt.Errorf(format, args...)}
}
