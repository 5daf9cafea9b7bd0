package db

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// ErrorKind identifies a class of failure. Every error the store returns is
// an *Error that wraps one ErrorKind, except when an operation is cancelled
// (it then wraps the context's error), so callers use errors.Is(err,
// db.ErrNotChild) or errors.Is(err, context.Canceled).
type ErrorKind string

// Error implements error so that an ErrorKind can be an errors.Is target.
func (k ErrorKind) Error() string { return string(k) }

const (
	// ErrNotChild: ConnectBlock was given a block whose parent is not the
	// tip, or whose height is not the tip's plus one.
	ErrNotChild = ErrorKind("block does not extend the tip")
	// ErrNotTip: DisconnectBlock was given a block that is not the tip.
	ErrNotTip = ErrorKind("block is not the tip")
	// ErrBelowStart: DisconnectBlock was given the tip when the tip is the
	// parent of the store's first block: the store holds nothing below it,
	// so the scanner must rebuild the store from a lower height.
	ErrBelowStart = ErrorKind("block is below the store's first block")
	// ErrConflict: the block contradicts the stored state. It creates a box
	// or transaction that is already stored, spends a stored box a second
	// time, or restates a stored header with another height or parent.
	ErrConflict = ErrorKind("block conflicts with the stored state")
	// ErrInvalidBlock: the block cannot be stored as given (nil, height 0,
	// an output with more than six registers or an empty ErgoTree, an
	// amount above 2^63-1).
	ErrInvalidBlock = ErrorKind("block cannot be stored")
	// ErrSchema: the file is not an auditor database, or its schema is
	// newer than this build (it is never downgraded).
	ErrSchema = ErrorKind("unsupported database schema")
	// ErrCorrupt: stored rows break an invariant the store keeps.
	ErrCorrupt = ErrorKind("database inconsistent")
	// ErrStorage: SQLite or the file system failed.
	ErrStorage = ErrorKind("storage failure")
)

// Error is a failure of one store operation.
type Error struct {
	Op     string    // what was being done, e.g. "connect block 700001 db95…"
	Kind   ErrorKind // empty when the operation was cancelled
	Detail string
	Err    error // the underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("db: ")
	b.WriteString(e.Op)
	for _, part := range []string{string(e.Kind), e.Detail} {
		if part != "" {
			b.WriteString(": ")
			b.WriteString(part)
		}
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != "" {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func newError(op string, kind ErrorKind, format string, args ...any) *Error {
	return &Error{Op: op, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// storageError classifies a failure during op: the context's error when ctx
// is done (a cancelled transaction reports sql.ErrTxDone, which says less),
// the kind of a kindError, ErrConflict for a violated constraint,
// ErrStorage otherwise.
func storageError(ctx context.Context, op, detail string, err error) *Error {
	if cerr := ctx.Err(); cerr != nil {
		return &Error{Op: op, Detail: detail, Err: cerr}
	}
	var ke *kindError
	if errors.As(err, &ke) {
		if detail != "" {
			detail += ": "
		}
		return &Error{Op: op, Kind: ke.kind, Detail: detail + ke.msg}
	}
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrConstraint {
		return &Error{Op: op, Kind: ErrConflict, Detail: detail, Err: err}
	}
	return &Error{Op: op, Kind: ErrStorage, Detail: detail, Err: err}
}

// kindError is a failure of a known kind found below the operation that
// reports it (a value that cannot be stored, a row that breaks an
// invariant); storageError turns it into an *Error of that kind.
type kindError struct {
	kind ErrorKind
	msg  string
}

func (e *kindError) Error() string { return string(e.kind) + ": " + e.msg }

func (e *kindError) Is(target error) bool { return target == e.kind }

func corrupt(format string, args ...any) error {
	return &kindError{kind: ErrCorrupt, msg: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) error {
	return &kindError{kind: ErrInvalidBlock, msg: fmt.Sprintf(format, args...)}
}
