package api

import (
	"context"
	"errors"
	"testing"
	"time"
)

// clock is a time the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCacheTTL(t *testing.T) {
	clk := &clock{time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	loads := 0
	c := newCache(2*time.Second, func(context.Context) (int, error) { loads++; return loads, nil })
	c.now = clk.now
	ctx := context.Background()
	for _, step := range []struct {
		advance time.Duration
		want    int
	}{
		{0, 1},                 // the first get loads
		{0, 1},                 // cached
		{2*time.Second - 1, 1}, // still within the TTL
		{1, 2},                 // the TTL is over: loaded again
		{time.Second, 2},       // cached from the second load on
		{time.Second + time.Nanosecond, 3},
	} {
		clk.t = clk.t.Add(step.advance)
		got, err := c.get(ctx)
		if err != nil || got != step.want {
			t.Fatalf("after %v: get = %d, %v; want %d", step.advance, got, err, step.want)
		}
	}
}

func TestCacheErrorNotCached(t *testing.T) {
	errLoad := errors.New("load failed")
	fail := true
	loads := 0
	c := newCache(time.Hour, func(context.Context) (string, error) {
		loads++
		if fail {
			return "stale", errLoad
		}
		return "fresh", nil
	})
	ctx := context.Background()
	if got, err := c.get(ctx); !errors.Is(err, errLoad) || got != "" {
		t.Fatalf("get = %q, %v; want the zero value and %v", got, err, errLoad)
	}
	fail = false
	if got, err := c.get(ctx); err != nil || got != "fresh" || loads != 2 {
		t.Fatalf("get after a failed load = %q, %v after %d loads; want a new load", got, err, loads)
	}
	fail = true
	if got, err := c.get(ctx); err != nil || got != "fresh" || loads != 2 {
		t.Fatalf("get within the TTL = %q, %v after %d loads; want the cached value", got, err, loads)
	}
}

// TestCacheWaiterGivesUp: a get waiting for another's load returns its
// context's error; the load goes on and is cached.
func TestCacheWaiterGivesUp(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	loads := 0
	c := newCache(time.Hour, func(context.Context) (int, error) {
		loads++
		close(entered)
		<-release
		return 42, nil
	})
	first := make(chan error, 1)
	go func() {
		v, err := c.get(context.Background())
		if err == nil && v != 42 {
			err = errors.New("wrong value")
		}
		first <- err
	}()
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("get with a cancelled context during a load: %v, want %v", err, context.Canceled)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if v, err := c.get(context.Background()); err != nil || v != 42 || loads != 1 {
		t.Fatalf("get = %d, %v after %d loads; want the cached 42", v, err, loads)
	}
}
