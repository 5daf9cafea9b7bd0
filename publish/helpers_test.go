package publish

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/async-emission/auditor/internal/poll"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLog logs to the test at warn level and above, so that failures show
// what the relay saw.
func testLog(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

// The write role's credentials on the servers startServer starts: the
// tests' clients publish over TCP as an operator would.
const testWriter, testWriterPassword = "writer", "writer-s3cret"

// startServer starts an embedded server listening on 127.0.0.1:port (0: a
// free port) with its store in dir and the write role for testWriter,
// shut down when the test ends.
func startServer(t testing.TB, dir string, port int) *Embedded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, EmbeddedConfig{Listen: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), StoreDir: dir,
		User: testWriter, Password: testWriterPassword}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e
}

// serverPort is the port the server listens on.
func serverPort(t testing.TB, e *Embedded) int {
	t.Helper()
	_, p, err := net.SplitHostPort(e.Server().Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// connect connects to url as testWriter with fast reconnects, closed when
// the test ends.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := Connect(context.Background(), ConnConfig{URLs: []string{url}, User: testWriter, Password: testWriterPassword,
		ReconnectWait: 20 * time.Millisecond}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func newJS(t testing.TB, nc *nats.Conn, cfg RelayConfig) jetstream.JetStream {
	t.Helper()
	js, err := NewJetStream(nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// fakeSource is an in-memory outbox.
type fakeSource struct {
	mu        sync.Mutex
	rows      []Pending
	published map[int64]bool
	calls     int  // Published calls
	dropMarks bool // Published succeeds without marking (a crash before the commit)
	failReads int  // Pending calls that fail before one succeeds
	onMark    func(marked int)
}

func newFakeSource() *fakeSource { return &fakeSource{published: map[int64]bool{}} }

// add appends n rows with ids <tag>-<seq> on subjects auditor.test.<seq%3>.
func (s *fakeSource) add(n int, tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		seq := int64(len(s.rows) + 1)
		s.rows = append(s.rows, Pending{Seq: seq, Message: Message{
			ID:      fmt.Sprintf("%s-%d", tag, seq),
			Subject: fmt.Sprintf("auditor.test.s%d", seq%3),
			Payload: fmt.Appendf(nil, `{"seq":%d}`, seq),
		}, Written: time.Now()})
	}
}

func (s *fakeSource) Pending(ctx context.Context, after int64, limit int) ([]Pending, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failReads > 0 {
		s.failReads--
		return nil, errors.New("disk on fire")
	}
	var out []Pending
	for _, r := range s.rows {
		if r.Seq > after && !s.published[r.Seq] && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *fakeSource) Published(ctx context.Context, seqs []int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.calls++
	if !s.dropMarks {
		for _, q := range seqs {
			s.published[q] = true
		}
	}
	n := len(s.published)
	hook := s.onMark
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return nil
}

func (s *fakeSource) marked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.published)
}

func (s *fakeSource) markAll(upTo int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq := int64(1); seq <= upTo; seq++ {
		s.published[seq] = true
	}
}

// allMarked waits until every row is marked.
func (s *fakeSource) waitAllMarked(t testing.TB, timeout time.Duration) {
	t.Helper()
	poll.NoError(t, timeout, "every row marked", func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.published) != len(s.rows) {
			return fmt.Errorf("%d of %d rows marked", len(s.published), len(s.rows))
		}
		return nil
	})
}

// runRelay runs r until the test ends (or stop is called) and reports
// Run's error.
func runRelay(t testing.TB, r *Relay) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// streamIDs reads the message ids stored in the stream, in order.
func streamIDs(t testing.TB, js jetstream.JetStream, name string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	st := s.CachedInfo().State
	var ids []string
	for seq := st.FirstSeq; seq <= st.LastSeq && st.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	return ids
}

// rowIDs lists the ids of the source's rows, in order.
func (s *fakeSource) rowIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.rows))
	for i, r := range s.rows {
		out[i] = r.ID
	}
	return out
}

// fastRelay is a relay configuration for tests: quick backoff and polls.
func fastRelay() RelayConfig {
	return RelayConfig{
		MaxInFlight:  64,
		PollInterval: 20 * time.Millisecond,
		AckTimeout:   2 * time.Second,
		BackoffMin:   5 * time.Millisecond,
		BackoffMax:   50 * time.Millisecond,
		DrainTimeout: 2 * time.Second,
		Stream:       &StreamConfig{},
	}
}
