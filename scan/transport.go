package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// request is one call to the node, repeated as is by each attempt.
type request struct {
	method string
	url    string
	body   []byte // JSON body of a POST; nil for a GET
	name   string // "GET /blocks/at/700000": the API path, for errors and logs
}

func (c *Client) newRequest(method, path string, query url.Values, body []byte) *request {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawQuery = query.Encode()
	name := method + " " + path
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	return &request{method: method, url: u.String(), body: body, name: name}
}

// fetch sends r and decodes the answer. After a failure another attempt
// may cure (Error.retryable: no complete answer, 429, 5xx, or an answer
// decode refuses) it waits (delay) and tries again, MaxAttempts times in
// all. It returns ctx.Err() as soon as ctx is done, also while it waits.
func fetch[T any](ctx context.Context, c *Client, r *request, decode func(body []byte) (T, *Error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	for attempt := 1; ; attempt++ {
		c.attempts.Add(1)
		if attempt > 1 {
			c.retries.Add(1)
		}
		start := time.Now()
		body, e := c.attempt(ctx, r)
		if e == nil {
			v, derr := decode(body)
			if derr == nil {
				c.log.Debug().Str("request", r.name).Int("attempt", attempt).Int("bytes", len(body)).
					Dur("took", time.Since(start)).Msg("ergo node answered")
				return v, nil
			}
			c.badResponses.Add(1)
			e = derr
		}
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		e.Request = r.name
		if !e.retryable() || attempt >= c.cfg.MaxAttempts {
			e.Attempts = attempt
			return zero, e
		}
		delay := c.delay(attempt, e)
		c.log.Warn().Str("request", r.name).Int("attempt", attempt).Int("max_attempts", c.cfg.MaxAttempts).
			Dur("delay", delay).Err(e).Msg("ergo node request failed; retrying")
		if err := sleep(ctx, delay); err != nil {
			return zero, err
		}
	}
}

// attempt sends r once and returns the body of a 2xx answer. RequestTimeout
// bounds the whole exchange: connecting, sending, and reading the body.
func (c *Client) attempt(ctx context.Context, r *request) ([]byte, *Error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, r.url, body)
	if err != nil { // the URL was validated by NewClient; this is a bug
		return nil, &Error{Kind: ErrInvalidArgument, Err: err}
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cfg.APIKey != "" {
		req.Header["api_key"] = []string{c.cfg.APIKey} // the node's spelling, not canonicalized
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.unreachable(actx, err)
	}
	defer resp.Body.Close()

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return c.readBody(actx, resp)
	case code == http.StatusNotFound:
		return nil, &Error{Kind: ErrNotFound, Status: code, Err: nodeMessage(resp.Body)}
	default:
		e := &Error{Kind: ErrHTTPStatus, Status: code, Err: nodeMessage(resp.Body)}
		if e.retryable() {
			e.retryAfter, e.hasRetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return nil, e
	}
}

// readBody reads a 2xx body, at most MaxResponseBytes of it, holding no
// more than that (and a chunk) while it reads: a body of announced length
// is read into a slice of that length; one of unknown length (chunked) is
// read in pooled chunks and copied into one slice only once it is known to
// fit, so that refusing an endless answer costs the limit, not a multiple
// of it.
func (c *Client) readBody(actx context.Context, resp *http.Response) ([]byte, *Error) {
	limit := c.cfg.MaxResponseBytes
	if resp.ContentLength > limit {
		return nil, &Error{Kind: ErrTooLarge, Err: fmt.Errorf("the node announces %d bytes, more than MaxResponseBytes (%d)", resp.ContentLength, limit)}
	}
	if resp.ContentLength >= 0 {
		buf := make([]byte, resp.ContentLength)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			return nil, c.unreachable(actx, fmt.Errorf("reading the body: %w", err))
		}
		return buf, nil
	}
	var chunks []*[]byte
	defer func() {
		for _, ch := range chunks {
			chunkPool.Put(ch)
		}
	}()
	var total int64
	for {
		ch := chunkPool.Get().(*[]byte)
		chunks = append(chunks, ch)
		n, err := io.ReadFull(resp.Body, *ch)
		total += int64(n)
		if total > limit {
			return nil, &Error{Kind: ErrTooLarge, Err: fmt.Errorf("more than MaxResponseBytes (%d)", limit)}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return nil, c.unreachable(actx, fmt.Errorf("reading the body: %w", err))
		}
	}
	out := make([]byte, 0, total)
	for _, ch := range chunks {
		out = append(out, (*ch)[:min(int64(len(*ch)), total-int64(len(out)))]...)
	}
	return out, nil
}

// chunkSize is the unit a body of unknown length is read in.
const chunkSize = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// unreachable is the error for an exchange that failed without a complete
// answer. A lapsed RequestTimeout is reported as such, not as the context
// error it surfaces as, so that callers never mistake it for their own.
func (c *Client) unreachable(actx context.Context, err error) *Error {
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		return &Error{Kind: ErrUnreachable, Err: fmt.Errorf("no complete answer within RequestTimeout (%s)", c.cfg.RequestTimeout)}
	}
	var ue *url.Error // repeats the method and the full URL; the request is named already
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &Error{Kind: ErrUnreachable, Err: err}
}

// nodeMessage reads what an error answer says: the node's
// {"error":…,"reason":…,"detail":…} reason and detail, or the start of the
// body. The rest of the body is drained so that the connection can be
// reused. It returns nil for an empty body.
func nodeMessage(body io.Reader) error {
	const keep, drain = 1 << 10, 64 << 10
	b, _ := io.ReadAll(io.LimitReader(body, keep))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drain))
	var m struct {
		Reason string `json:"reason"`
		Detail string `json:"detail"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &m) == nil && (m.Reason != "" || m.Detail != "") {
		msg = strings.TrimPrefix(m.Reason+": "+m.Detail, ": ")
		msg = strings.TrimSuffix(msg, ": ")
	}
	if msg == "" {
		return nil
	}
	if len(msg) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return fmt.Errorf("the node says %q", msg)
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 64); err == nil {
		if s > uint64(math.MaxInt64/time.Second) {
			return math.MaxInt64, true
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// delay is the wait after the failed attempt number failed: the node's
// Retry-After when it gave one, else the jittered backoff; always within
// [BackoffMin, BackoffMax].
func (c *Client) delay(failed int, e *Error) time.Duration {
	if e.hasRetryAfter {
		return min(max(e.retryAfter, c.cfg.BackoffMin), c.cfg.BackoffMax)
	}
	return backoff(failed, c.cfg.BackoffMin, c.cfg.BackoffMax)
}

// backoff is exponential backoff with full jitter: the wait before retry
// number n (n ≥ 1) is uniformly random in [lo, min(hi, lo·2ⁿ)].
func backoff(n int, lo, hi time.Duration) time.Duration {
	ceil := lo
	for i := 0; i < n && ceil < hi; i++ {
		if ceil > hi/2 {
			ceil = hi
			break
		}
		ceil *= 2
	}
	ceil = min(ceil, hi)
	if ceil <= lo {
		return lo
	}
	return lo + rand.N(ceil-lo+1)
}

// sleep waits for d or until ctx is done, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
