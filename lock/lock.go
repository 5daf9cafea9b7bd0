//go:build unix

// Package lock gives one process a directory: an exclusive lock on a file
// inside it (flock), held for as long as the process keeps it and released
// by the kernel however the process ends, a SIGKILL included. The file
// records the holder's process id, so that a refused process can say which
// process holds the directory.
package lock

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrorKind identifies a class of failure; every error Acquire returns is
// an *Error that wraps one.
type ErrorKind string

// Error implements error so that an ErrorKind can be an errors.Is target.
func (k ErrorKind) Error() string { return string(k) }

const (
	// ErrHeld: another process holds the directory.
	ErrHeld = ErrorKind("in use by another process")
	// ErrUnwritable: the directory or its lock file cannot be created or
	// written (a read-only mount, missing permissions).
	ErrUnwritable = ErrorKind("not writable")
)

// Error is a failure to lock a directory.
type Error struct {
	Kind ErrorKind
	Dir  string // the directory, absolute
	Path string // the lock file
	PID  int    // with ErrHeld, the holder's process id; 0 when it has not written it yet
	Err  error  // the cause, if any
}

func (e *Error) Error() string {
	switch e.Kind {
	case ErrHeld:
		holder := "another process"
		if e.PID > 0 {
			holder = "process " + strconv.Itoa(e.PID)
		}
		return fmt.Sprintf("%s is in use by %s (it holds the lock on %s)", e.Dir, holder, e.Path)
	case ErrUnwritable:
		return fmt.Sprintf("%s is not writable: %v", e.Dir, e.Err)
	}
	return fmt.Sprintf("%s: %s: %v", e.Dir, e.Kind, e.Err)
}

// Unwrap exposes the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// Lock is a directory held by this process.
type Lock struct {
	f    *os.File
	path string
}

// Acquire creates dir (and its parents, mode 0750) if needed, and takes the
// exclusive lock on the file name inside it, writing this process's id
// there. It does not wait: a directory another process holds is an ErrHeld
// naming that process. The lock is held until Release, or until the
// process ends. Two Acquires of one directory in one process also exclude
// each other.
func Acquire(dir, name string) (*Lock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, &Error{Kind: ErrUnwritable, Dir: dir, Err: err}
	}
	path := filepath.Join(abs, name)
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, &Error{Kind: ErrUnwritable, Dir: abs, Path: path, Err: err}
	}
	// O_CLOEXEC (Go's default): a child process does not inherit the lock.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, &Error{Kind: ErrUnwritable, Dir: abs, Path: path, Err: err}
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &Error{Kind: ErrHeld, Dir: abs, Path: path, PID: holder(path)}
		}
		return nil, &Error{Kind: ErrUnwritable, Dir: abs, Path: path, Err: fmt.Errorf("lock %s: %w", path, err)}
	}
	l := &Lock{f: f, path: path}
	if err := l.writePID(); err != nil {
		l.Release()
		return nil, &Error{Kind: ErrUnwritable, Dir: abs, Path: path, Err: err}
	}
	return l, nil
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// writePID replaces the file's contents with this process's id.
func (l *Lock) writePID() error {
	if err := l.f.Truncate(0); err != nil {
		return err
	}
	if _, err := l.f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return err
	}
	return nil
}

// holder reads the process id a lock file records. The holder writes it
// right after taking the lock (over an id a killed holder may have left),
// so an id that is missing, or of no live process, is read again for a
// moment.
func holder(path string) int {
	for range 20 {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0
		}
		if pid, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && pid > 0 && alive(pid) {
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}

// alive tells whether a process exists (signal 0 checks without sending).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Path is the lock file.
func (l *Lock) Path() string { return l.path }

// Release gives the directory up. The file stays, emptied (removing it
// would let a process that opened it before the removal lock a file nobody
// else sees).
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	l.f.Truncate(0)    //nolint:errcheck // the id of a process that let go; harmless if left
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
