package publish

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/async-emission/auditor/internal/poll"
)

// TestRelayPublishesInOrderOnce: every row reaches the stream once, in seq
// order, with its message id; rows are marked in batches; rows written
// later are picked up on Notify.
func TestRelayPublishesInOrderOnce(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	nc := connect(t, srv.ClientURL())
	cfg := fastRelay()
	cfg.PollInterval = time.Hour // only Notify wakes it
	var (
		acksMu sync.Mutex
		acks   int
		wrong  []string // OnAck calls that are not a write and a later ack
	)
	cfg.OnAck = func(written, acked time.Time) {
		acksMu.Lock()
		defer acksMu.Unlock()
		acks++
		if written.IsZero() || acked.Before(written) {
			wrong = append(wrong, fmt.Sprintf("written %s, acked %s", written, acked))
		}
	}
	js := newJS(t, nc, cfg)
	src := newFakeSource()
	src.add(1000, "a")
	r := NewRelay(src, js, cfg, testLog(t))
	stop := runRelay(t, r)
	src.waitAllMarked(t, 10*time.Second)

	src.add(37, "b")
	r.Notify()
	src.waitAllMarked(t, 10*time.Second)

	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
	if got, want := streamIDs(t, js, DefaultStream), src.rowIDs(); !slices.Equal(got, want) {
		t.Fatalf("stream holds %d messages, want the %d rows in order (first difference near %v)", len(got), len(want), firstDiff(got, want))
	}
	st := r.Stats()
	if st.Published != 1037 || st.Duplicates != 0 || st.Errors != 0 || st.InFlight != 0 || st.LastAck.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	if src.calls >= 1037/2 {
		t.Fatalf("%d Published calls for 1037 rows: not batched", src.calls)
	}
	acksMu.Lock()
	defer acksMu.Unlock()
	if acks != 1037 || len(wrong) > 0 {
		t.Fatalf("OnAck called %d times for 1037 rows acknowledged; wrong times: %v", acks, wrong)
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("index %d: %s vs %s", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// TestRelaySurvivesServerRestart: the server goes down mid-way and comes
// back on the same port and store; the relay backs off, reconnects and
// the stream ends with every row once, in order.
func TestRelaySurvivesServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, 0)
	port := serverPort(t, srv)
	nc := connect(t, srv.ClientURL())
	cfg := fastRelay()
	cfg.MaxInFlight = 16 // slower, so that the shutdown lands mid-way
	js := newJS(t, nc, cfg)
	src := newFakeSource()
	src.add(1500, "r")
	down := make(chan struct{})
	var once sync.Once
	src.onMark = func(n int) {
		if n >= 300 {
			once.Do(func() {
				srv.Shutdown() // in the relay's goroutine: acks in flight are lost
				close(down)
			})
		}
	}
	r := NewRelay(src, js, cfg, testLog(t).Level(100)) // failures are expected: quiet
	runRelay(t, r)
	<-down
	poll.NoError(t, 5*time.Second, "the relay to fail", func() error {
		if r.Stats().Errors == 0 {
			return errors.New("the relay has not noticed the server is down")
		}
		return nil
	})
	if m := src.marked(); m == 1500 {
		t.Fatal("every row marked while the server was down")
	}
	startServer(t, dir, port)
	src.waitAllMarked(t, 15*time.Second)
	if got, want := streamIDs(t, js, DefaultStream), src.rowIDs(); !slices.Equal(got, want) {
		t.Fatalf("stream holds %d messages, want the %d rows once each in order (%s)", len(got), len(want), firstDiff(got, want))
	}
	t.Logf("stats %+v", r.Stats())
}

// TestRelayResumesFromFirstUnacked: a relay restarted over an outbox whose
// first rows are marked publishes only the rest; one restarted after a
// crash that lost its marks republishes, and JetStream drops the repeats
// by message id.
func TestRelayResumesFromFirstUnacked(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	nc := connect(t, srv.ClientURL())
	cfg := fastRelay()
	cfg.Stream = nil // no reconciliation: exercise the duplicate window
	js := newJS(t, nc, cfg)
	ctx := context.Background()
	if _, err := EnsureStream(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	src.add(300, "x")
	src.markAll(100) // published by an earlier run
	src.dropMarks = true
	first := NewRelay(src, js, cfg, testLog(t))
	stop := runRelay(t, first)
	waitAcks(t, first, 200)
	stop()
	ids := streamIDs(t, js, DefaultStream)
	if want := src.rowIDs()[100:]; !slices.Equal(ids, want) {
		t.Fatalf("first run stored %d messages, want rows 101 to 300 (%s)", len(ids), firstDiff(ids, want))
	}

	// The marks of the first run were lost: the second run republishes.
	src.mu.Lock()
	src.dropMarks = false
	src.mu.Unlock()
	second := NewRelay(src, js, cfg, testLog(t))
	runRelay(t, second)
	src.waitAllMarked(t, 10*time.Second)
	if st := second.Stats(); st.Published != 200 || st.Duplicates != 200 {
		t.Fatalf("second run: %+v, want 200 acks, all duplicates", st)
	}
	if got := streamIDs(t, js, DefaultStream); !slices.Equal(got, ids) {
		t.Fatalf("the stream changed: %d messages", len(got))
	}
}

// TestRelayReconciles: with the stream configured, a relay started after a
// crash that lost marks finds the rows at the stream's end and marks them
// without republishing; when the stream ends otherwise it republishes.
func TestRelayReconciles(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	nc := connect(t, srv.ClientURL())
	cfg := fastRelay()
	js := newJS(t, nc, cfg)
	src := newFakeSource()
	src.add(120, "c")
	src.dropMarks = true
	first := NewRelay(src, js, cfg, testLog(t))
	stop := runRelay(t, first)
	waitAcks(t, first, 120)
	stop()
	src.mu.Lock()
	src.dropMarks = false
	src.mu.Unlock()
	src.markAll(20) // the crash lost the marks of rows 21 to 120

	second := NewRelay(src, js, cfg, testLog(t))
	stop = runRelay(t, second)
	src.waitAllMarked(t, 10*time.Second)
	stop()
	if st := second.Stats(); st.Reconciled != 100 || st.Published != 0 {
		t.Fatalf("second run: %+v, want 100 rows reconciled and none published", st)
	}

	// A foreign message at the stream's end: no reconciliation.
	src.add(10, "d")
	src.dropMarks = true
	third := NewRelay(src, js, cfg, testLog(t))
	stop = runRelay(t, third)
	waitAcks(t, third, 10)
	stop()
	if _, err := js.Publish(context.Background(), "auditor.someone.else", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	src.mu.Lock()
	src.dropMarks = false
	src.mu.Unlock()
	fourth := NewRelay(src, js, cfg, testLog(t))
	runRelay(t, fourth)
	src.waitAllMarked(t, 10*time.Second)
	if st := fourth.Stats(); st.Reconciled != 0 || st.Published != 10 || st.Duplicates != 10 {
		t.Fatalf("fourth run: %+v, want 10 duplicates", st)
	}
	if n := len(streamIDs(t, js, DefaultStream)); n != 131 {
		t.Fatalf("stream holds %d messages, want 131", n)
	}
}

// TestRelayDrain: when Run's context ends, every message JetStream stored
// is marked before Run returns.
func TestRelayDrain(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	nc := connect(t, srv.ClientURL())
	cfg := fastRelay()
	cfg.MarkBatch = 1 << 30 // marks only when caught up, or at the drain
	js := newJS(t, nc, cfg)
	src := newFakeSource()
	src.add(5000, "d")
	r := NewRelay(src, js, cfg, testLog(t))
	stop := runRelay(t, r)
	poll.NoError(t, 10*time.Second, "100 acks", func() error {
		if r.Stats().Published < 100 {
			return errors.New("not started")
		}
		return nil
	})
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	stored := len(streamIDs(t, js, DefaultStream))
	if m := src.marked(); m != stored || uint64(m) != r.Stats().Published {
		t.Fatalf("%d rows marked, %d stored, %d acked", m, stored, r.Stats().Published)
	}
	t.Logf("stopped after %d of 5000 rows", stored)
}

// TestRelayBacksOffOnSourceErrors: outbox failures are retried, not
// returned.
func TestRelayBacksOffOnSourceErrors(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	nc := connect(t, srv.ClientURL())
	cfg := fastRelay()
	js := newJS(t, nc, cfg)
	src := newFakeSource()
	src.add(50, "e")
	src.failReads = 3
	r := NewRelay(src, js, cfg, testLog(t).Level(100))
	runRelay(t, r)
	src.waitAllMarked(t, 10*time.Second)
	if st := r.Stats(); st.Errors != 3 || st.Published != 50 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRelayBackoff: the wait doubles from BackoffMin to BackoffMax, half
// of it random.
func TestRelayBackoff(t *testing.T) {
	r := NewRelay(nil, nil, RelayConfig{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}, testLog(t))
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 100: time.Second} {
		for range 20 {
			if d := r.backoff(n); d < want/2 || d > want {
				t.Fatalf("failure %d: wait %s, want %s to %s", n, d, want/2, want)
			}
		}
	}
}

// TestRelayRunTwice: a second Run while one runs is refused.
func TestRelayRunTwice(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	nc := connect(t, srv.ClientURL())
	js := newJS(t, nc, fastRelay())
	r := NewRelay(newFakeSource(), js, fastRelay(), testLog(t))
	runRelay(t, r)
	poll.NoError(t, 5*time.Second, "the relay running", func() error {
		// Wait for the stream too: a server shut down while it creates a
		// stream leaks the stream's goroutines.
		if _, err := js.Stream(context.Background(), DefaultStream); err != nil || !r.running.Load() {
			return fmt.Errorf("not running (%v)", err)
		}
		return nil
	})
	if err := r.Run(context.Background()); !errors.Is(err, ErrConfig) {
		t.Fatalf("second Run: %v", err)
	}
}

// waitAcks waits until r has had n acks.
func waitAcks(t *testing.T, r *Relay, n uint64) {
	t.Helper()
	poll.NoError(t, 10*time.Second, "the acks", func() error {
		if p := r.Stats().Published; p != n {
			return fmt.Errorf("%d acks, want %d", p, n)
		}
		return nil
	})
}
