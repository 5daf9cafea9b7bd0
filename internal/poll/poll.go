// Package poll waits, in tests, for a condition to hold: it checks the
// condition again and again, with a pause that grows from 100µs to 20ms,
// and fails the test once the timeout has passed, with what it waited for
// and what the condition last said. Tests wait for a state this way
// rather than sleeping for a time that happens to be long enough.
package poll

import (
	"testing"
	"time"
)

// Until calls cond until it reports true, and fails tb when timeout passes
// first, naming what and the state cond last described. cond may call
// tb.Fatal.
func Until(tb testing.TB, timeout time.Duration, what string, cond func() (ok bool, state string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for pause := 100 * time.Microsecond; ; pause = min(2*pause, 20*time.Millisecond) {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s; last: %s", what, timeout, state)
		}
		time.Sleep(pause)
	}
}

// True is Until for a condition without a state to report.
func True(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	Until(tb, timeout, what, func() (bool, string) { return cond(), "false" })
}

// NoError is Until for a check that returns what is still wrong: it
// waits until check returns nil, and fails with its last error.
func NoError(tb testing.TB, timeout time.Duration, what string, check func() error) {
	tb.Helper()
	Until(tb, timeout, what, func() (bool, string) {
		err := check()
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}
