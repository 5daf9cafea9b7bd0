package report

import "time"

// Clock is the time the scheduler and the reports read: the real clock,
// or a test's.
type Clock interface {
	Now() time.Time
	// After delivers the time on the channel once d has passed (at once
	// when d <= 0). An abandoned channel costs nothing once d has passed.
	After(d time.Duration) <-chan time.Time
}

// RealClock is the system clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
