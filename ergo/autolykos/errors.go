package autolykos

import (
	"fmt"
	"math/big"
)

// ErrorKind identifies a class of proof-of-work failure. Use errors.Is to
// test for one; every error this package returns wraps exactly one
// ErrorKind (or is the context's error, from Solve).
type ErrorKind string

// Error implements error so that an ErrorKind can be the target of errors.Is.
func (k ErrorKind) Error() string { return string(k) }

const (
	// ErrPowInvalid: the hit of a version 2+ header is not below its target.
	ErrPowInvalid = ErrorKind("proof of work is invalid")
	// ErrDifficulty: nBits does not encode a positive difficulty, so no
	// target can be derived from it.
	ErrDifficulty = ErrorKind("invalid difficulty")
	// ErrV1Unchecked: the header is Autolykos v1 (version 1, mainnet heights
	// below 417792), whose proof of work this package does not check. A
	// caller that gets it must report the PoW as unchecked, never as valid.
	ErrV1Unchecked = ErrorKind("Autolykos v1 proof of work is not checked")
	// ErrNoSolution: Solve tried every one of the 2^64 nonces without
	// finding a hit below the target.
	ErrNoSolution = ErrorKind("no nonce solves the puzzle")
)

// Error is a proof-of-work failure. It wraps its Kind, so errors.Is(err,
// ErrPowInvalid) and the like work on it; errors.As gives access to the
// hit and target of an invalid solution.
type Error struct {
	Kind   ErrorKind
	Detail string   // what failed, e.g. the height or the nBits value
	Hit    *big.Int // the computed hit (ErrPowInvalid only)
	Target *big.Int // the target the hit had to be below (ErrPowInvalid only)
}

func (e *Error) Error() string {
	msg := "autolykos: " + string(e.Kind)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Hit != nil && e.Target != nil {
		msg += fmt.Sprintf(": hit %064x is not below target %064x", e.Hit, e.Target)
	}
	return msg
}

// Unwrap lets errors.Is match the Kind.
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}
