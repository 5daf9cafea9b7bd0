package poll

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB that records a failure instead of stopping
// the test, so that the helpers' failures can be checked.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

// run calls f with a recorder and returns what it failed with ("" when
// it did not).
func run(t *testing.T, f func(tb testing.TB)) (failed string) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		failed = r.failed
	}()
	f(r)
	return ""
}

func TestUntilWaitsForTheCondition(t *testing.T) {
	calls := 0
	began := time.Now()
	failed := run(t, func(tb testing.TB) {
		Until(tb, 10*time.Second, "the third call", func() (bool, string) {
			calls++
			return calls == 3, fmt.Sprintf("call %d", calls)
		})
	})
	if failed != "" || calls != 3 || time.Since(began) > 5*time.Second {
		t.Errorf("failed %q after %d calls in %s", failed, calls, time.Since(began))
	}
}

func TestUntilFailsWithTheLastState(t *testing.T) {
	calls := 0
	failed := run(t, func(tb testing.TB) {
		Until(tb, 30*time.Millisecond, "a condition that never holds", func() (bool, string) {
			calls++
			return false, fmt.Sprintf("call %d", calls)
		})
	})
	want := fmt.Sprintf("a condition that never holds: not within 30ms; last: call %d", calls)
	if failed != want || calls < 2 {
		t.Errorf("failed %q, want %q", failed, want)
	}
}

func TestTrueAndNoError(t *testing.T) {
	if failed := run(t, func(tb testing.TB) {
		True(tb, 20*time.Millisecond, "never", func() bool { return false })
	}); failed != "never: not within 20ms; last: false" {
		t.Errorf("True failed %q", failed)
	}
	n := 0
	if failed := run(t, func(tb testing.TB) {
		NoError(tb, 10*time.Second, "a check", func() error {
			if n++; n < 4 {
				return errors.New("not yet")
			}
			return nil
		})
	}); failed != "" || n != 4 {
		t.Errorf("NoError failed %q after %d checks", failed, n)
	}
	if failed := run(t, func(tb testing.TB) {
		NoError(tb, 20*time.Millisecond, "a check", func() error { return errors.New("still wrong") })
	}); !strings.HasSuffix(failed, "last: still wrong") {
		t.Errorf("NoError failed %q", failed)
	}
}
