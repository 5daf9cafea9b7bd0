package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/testlog"
)

// newServer serves a handler of cfg on a loopback httptest server (closed
// at the test's end), logging to the returned buffer.
func newServer(t *testing.T, cfg api.Config) (*httptest.Server, *api.Handler, *testlog.Buffer) {
	t.Helper()
	logs := &testlog.Buffer{}
	h, err := api.NewHandler(cfg, zerolog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, h, logs
}

// response is an answer read whole.
type response struct {
	code   int
	header http.Header
	body   []byte
}

// do sends a request without body and reads the answer.
func do(t *testing.T, client *http.Client, method, url string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, body}
}

func get(t *testing.T, client *http.Client, url string) response {
	t.Helper()
	return do(t, client, http.MethodGet, url)
}

// wantCode fails the test unless r has status code want.
func (r response) wantCode(t *testing.T, what string, want int) {
	t.Helper()
	if r.code != want {
		t.Fatalf("%s: status %d, want %d; body %q", what, r.code, want, r.body)
	}
}

// decodeJSON decodes r's body into v, strictly, after checking it is JSON.
func (r response) decodeJSON(t *testing.T, what string, v any) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q, want application/json", what, ct)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: decode %q: %v", what, r.body, err)
	}
	if dec.More() {
		t.Fatalf("%s: more than one JSON value in %q", what, r.body)
	}
}

// errorBody checks that r is a JSON error answer and returns its message.
func (r response) errorBody(t *testing.T, what string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.decodeJSON(t, what, &e)
	if e.Error == "" {
		t.Fatalf("%s: empty error in %q", what, r.body)
	}
	return e.Error
}

// logLines returns the log's JSON lines decoded.
func logLines(t *testing.T, b *testlog.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for l := range strings.Lines(b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// errStore is the fault faultyStore injects; its text stands for the
// internals (paths, SQL) an answer must not show.
var errStore = errors.New("/secret/data/auditor.db: disk I/O error in SELECT count(*) FROM boxes")

// faultyStore is the real store, failing every read while fail is set.
type faultyStore struct {
	*db.Store
	fail atomic.Bool
}

func (s *faultyStore) err() error {
	if s.fail.Load() {
		return errStore
	}
	return nil
}

func (s *faultyStore) Status(ctx context.Context) (db.Status, error) {
	if err := s.err(); err != nil {
		return db.Status{}, err
	}
	return s.Store.Status(ctx)
}

func (s *faultyStore) VerdictCounts(ctx context.Context) ([]db.VerdictCount, error) {
	if err := s.err(); err != nil {
		return nil, err
	}
	return s.Store.VerdictCounts(ctx)
}

func (s *faultyStore) Tip(ctx context.Context) (db.Tip, bool, error) {
	if err := s.err(); err != nil {
		return db.Tip{}, false, err
	}
	return s.Store.Tip(ctx)
}

func (s *faultyStore) Explain(ctx context.Context, id ergo.Digest) (*db.Explanation, bool, error) {
	if err := s.err(); err != nil {
		return nil, false, err
	}
	return s.Store.Explain(ctx, id)
}

func (s *faultyStore) OutboxCounts(ctx context.Context) (int64, int64, error) {
	if err := s.err(); err != nil {
		return 0, 0, err
	}
	return s.Store.OutboxCounts(ctx)
}

// countingStore is the real store counting the reads of the status and
// of the outbox counts. While gate is set, a read of the status reports
// itself on entered, then waits for gate to be closed.
type countingStore struct {
	*db.Store
	statusReads, outboxReads atomic.Int64
	gate                     chan struct{}
	entered                  chan struct{}
}

func newCountingStore(s *db.Store, gated bool) *countingStore {
	c := &countingStore{Store: s}
	if gated {
		c.gate, c.entered = make(chan struct{}), make(chan struct{}, 64)
	}
	return c
}

func (s *countingStore) Status(ctx context.Context) (db.Status, error) {
	s.statusReads.Add(1)
	if s.gate != nil {
		s.entered <- struct{}{}
		select {
		case <-s.gate:
		case <-ctx.Done():
			return db.Status{}, ctx.Err()
		}
	}
	return s.Store.Status(ctx)
}

func (s *countingStore) OutboxCounts(ctx context.Context) (int64, int64, error) {
	s.outboxReads.Add(1)
	return s.Store.OutboxCounts(ctx)
}
