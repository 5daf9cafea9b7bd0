package report

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock the test moves by hand: After's channels fire when
// Advance passes their time. No test sleeps on it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	changed chan struct{} // closed and replaced when waiters change
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(at time.Time) *fakeClock {
	return &fakeClock{now: at, changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	c.signal()
	return ch
}

// signal wakes waitForWaiters; c.mu is held.
func (c *fakeClock) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the time on by d and fires every waiter due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
	c.signal()
}

// AdvanceTo moves the time on to t.
func (c *fakeClock) AdvanceTo(t time.Time) { c.Advance(t.Sub(c.Now())) }

// waitForWaiters blocks until n channels are waiting, and returns the
// earliest time one fires at.
func (c *fakeClock) waitForWaiters(t *testing.T, n int) time.Time {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		if len(c.waiters) >= n {
			first := c.waiters[0].at
			for _, w := range c.waiters {
				if w.at.Before(first) {
					first = w.at
				}
			}
			c.mu.Unlock()
			return first
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %d timers", n)
		}
	}
}
