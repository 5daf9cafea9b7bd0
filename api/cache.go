package api

import (
	"context"
	"time"
)

// cache holds the last value load returned for ttl. One load runs at a
// time: callers that come during a load wait for it (or for their ctx)
// and share its value, so a burst of requests reads the store once. A
// failed load is not cached.
type cache[T any] struct {
	ttl  time.Duration
	load func(context.Context) (T, error)
	now  func() time.Time

	// sem, a token held while the fields below are read or written (and
	// during a load), is a mutex that a waiting ctx can give up on.
	sem chan struct{}
	val T
	at  time.Time
	ok  bool
}

func newCache[T any](ttl time.Duration, load func(context.Context) (T, error)) *cache[T] {
	return &cache[T]{ttl: ttl, load: load, now: time.Now, sem: make(chan struct{}, 1)}
}

func (c *cache[T]) get(ctx context.Context) (T, error) {
	var zero T
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	defer func() { <-c.sem }()
	if c.ok && c.now().Sub(c.at) < c.ttl {
		return c.val, nil
	}
	v, err := c.load(ctx)
	if err != nil {
		return zero, err
	}
	c.val, c.at, c.ok = v, c.now(), true
	return v, nil
}
