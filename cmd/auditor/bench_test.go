package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/publish"
	"github.com/async-emission/auditor/scan"
)

// The benchmarks of the README: how fast the auditor catches up with a
// chain, with and without publishing, and how soon after the node serves
// a new block its events are acknowledged by JetStream. Run them with
//
//	go test -run '^$' -bench 'CatchUpPublishing|TipLatency' -benchtime 1x -count 3 ./cmd/auditor/
//
// The simulated node runs in the same process and shares its CPUs.

// benchConfig is the daemon's configuration for the devnet's
// async-emission scenario: its [[protocol]] sections, an embedded NATS
// taking in-process connections only, no HTTP server, no reports.
func benchConfig(tb testing.TB, d *devnet.Devnet, nodeURL string) Config {
	tb.Helper()
	pcs, err := d.Protocols()
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "auditor.toml")
	text := devnetScanTOML + "[nats]\nlisten = \"\"\n[http]\nlisten = \"\"\n[reports]\nschedule = \"\"\n" + devnet.ProtocolsTOML(pcs)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg, err := loadConfig(path, func(c *Config) { c.Node.URL = nodeURL })
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// pipeline is the daemon's indexing and publishing path, wired as
// openDaemon wires it (store, node client, rules engine, follower behind
// the outbox gate; with publishing, the embedded NATS and the relay, and
// the store encoding events), without the HTTP server and the reports.
type pipeline struct {
	store    *db.Store
	link     *natsLink // nil: no publishing
	relay    *publish.Relay
	follower *scan.Follower

	stopRelay context.CancelFunc
	relayDone chan struct{}
}

// newPipeline opens a pipeline on a fresh data directory. wrapSource and
// wrapStore, when set, wrap the relay's outbox and the follower's store.
func newPipeline(tb testing.TB, cfg Config, publishing bool, untilHeight uint32,
	wrapSource func(publish.Source) publish.Source, wrapStore func(scan.Store) scan.Store) *pipeline {
	tb.Helper()
	ctx := context.Background()
	cfg.DataDir = tb.TempDir()
	p := &pipeline{}
	var err error
	if p.store, err = db.Open(ctx, filepath.Join(cfg.DataDir, dbFile), zerolog.Nop()); err != nil {
		tb.Fatal(err)
	}
	client, err := scan.NewClient(scan.ClientConfig{URL: cfg.Node.URL, RequestTimeout: time.Duration(cfg.Node.RequestTimeout), MaxAttempts: cfg.Node.MaxAttempts}, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	if publishing {
		if p.link, err = openNATS(ctx, cfg, zerolog.Nop()); err != nil {
			tb.Fatal(err)
		}
		var src publish.Source = outboxSource{p.store}
		if wrapSource != nil {
			src = wrapSource(src)
		}
		p.relay = publish.NewRelay(src, p.link.JS, relayConfig(cfg.NATS), zerolog.Nop())
		p.store.SetEvents(eventEncoder{encoder(cfg.NATS)}, p.relay.Notify)
		var rctx context.Context
		rctx, p.stopRelay = context.WithCancel(ctx)
		p.relayDone = make(chan struct{})
		go func() {
			defer close(p.relayDone)
			p.relay.Run(rctx) //nolint:errcheck // returns its context's error
		}()
	}
	var store scan.Store = &gatedStore{Store: p.store, max: int64(cfg.NATS.OutboxMax)}
	if wrapStore != nil {
		store = wrapStore(store)
	}
	p.follower = scan.NewFollower(client, store, newEngine(cfg, zerolog.Nop()), followerConfig(cfg, untilHeight), zerolog.Nop())
	return p
}

// drained waits until JetStream has acknowledged every event of the
// outbox, polling every millisecond.
func (p *pipeline) drained(tb testing.TB, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		_, pending, err := p.store.OutboxCounts(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d events still pending after %s", pending, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func (p *pipeline) close() {
	if p.relay != nil {
		p.stopRelay()
		<-p.relayDone
		p.link.Close()
	}
	p.store.Close()
}

func (p *pipeline) verdicts(tb testing.TB) int64 {
	st, err := p.store.Status(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	var n int64
	for _, c := range st.Verdicts {
		if c.Reason == "" {
			n += c.Count
		}
	}
	return n
}

// warmNode has the devnet render every block once (it keeps them in its
// cache), so that no timed fetch waits for the node to rebuild one.
func warmNode(tb testing.TB, nodeURL string, blocks uint32) {
	tb.Helper()
	ctx := context.Background()
	c, err := scan.NewClient(scan.ClientConfig{URL: nodeURL}, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	for lo := uint32(1); lo <= blocks; lo += 64 {
		hs, err := c.ChainSlice(ctx, lo, min(lo+63, blocks))
		if err != nil {
			tb.Fatal(err)
		}
		ids := make([]ergo.Digest, 0, len(hs))
		for _, h := range hs {
			if h.Height >= lo && h.Height <= lo+63 {
				ids = append(ids, h.ID)
			}
		}
		if _, err := c.Blocks(ctx, ids); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkCatchUpPublishing syncs a fresh store with the async-emission
// scenario's chain, without publishing (publish=off: the store encodes no
// event) and with it (publish=on: every verdict through the outbox and the
// relay to an embedded JetStream; an op ends once the outbox is drained).
func BenchmarkCatchUpPublishing(b *testing.B) {
	if testing.Short() {
		b.Skip("a benchmark of a few thousand blocks")
	}
	const blocks = 3000
	d, err := devnet.New(devnet.Config{Seed: 21, Blocks: blocks, TxsPerBlock: 4,
		Scenario: &devnet.AsyncEmission{ForgeryRate: 0.3}, CacheBytes: 1 << 30}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	warmNode(b, srv.URL, blocks)
	cfg := benchConfig(b, d, srv.URL)

	for _, publishing := range []bool{false, true} {
		b.Run(map[bool]string{false: "publish=off", true: "publish=on"}[publishing], func(b *testing.B) {
			var elapsed time.Duration
			var events, verdicts int64
			b.StopTimer()
			for range b.N {
				p := newPipeline(b, cfg, publishing, blocks, nil, nil)
				b.StartTimer()
				start := time.Now()
				if err := p.follower.Run(context.Background()); err != nil {
					b.Fatal(err)
				}
				if publishing {
					p.drained(b, time.Minute)
				}
				elapsed += time.Since(start)
				b.StopTimer()
				written, _, err := p.store.OutboxCounts(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				events += written
				verdicts += p.verdicts(b)
				if publishing && (written == 0 || p.relay.Stats().Published < uint64(written)) {
					b.Fatalf("%d events written, %d published", written, p.relay.Stats().Published)
				}
				if !publishing && written != 0 {
					b.Fatalf("%d events written without publishing", written)
				}
				p.close()
			}
			b.ReportMetric(float64(blocks*b.N)/elapsed.Seconds(), "blocks/s")
			b.ReportMetric(float64(verdicts)/elapsed.Seconds(), "verdicts/s")
			if publishing {
				b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
			}
		})
	}
}

// servedRecorder is the node's handler, recording when it has served
// each block's full-block request (GET /blocks/{id}, or the batch POST
// /blocks/headerIds the follower sends).
type servedRecorder struct {
	h      http.Handler
	mu     sync.Mutex
	served map[string]time.Time // block id (hex) → the end of its first serving
}

func (s *servedRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ids []string
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/blocks/headerIds":
		body, err := io.ReadAll(r.Body)
		if err == nil && json.Unmarshal(body, &ids) != nil {
			ids = nil
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/blocks/"):
		if id := strings.TrimPrefix(r.URL.Path, "/blocks/"); len(id) == 64 && !strings.Contains(id, "/") {
			ids = []string{id}
		}
	}
	s.h.ServeHTTP(w, r)
	if len(ids) == 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	for _, id := range ids {
		if _, ok := s.served[id]; !ok {
			s.served[id] = now
		}
	}
	s.mu.Unlock()
}

// at returns when block id was served. The client may have read the
// answer (and the auditor connected the block) before the handler
// returned, so it waits a little for the record.
func (s *servedRecorder) at(id string) (time.Time, bool) {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(100 * time.Microsecond) {
		s.mu.Lock()
		t, ok := s.served[id]
		s.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return t, ok
		}
	}
}

// ackRecorder is the relay's outbox, recording when the relay marks each
// block's events published: the relay does so as soon as JetStream has
// acknowledged them (at once when its window empties, as it does after a
// block's few events), so the time of the mark of a block's last event is
// the time its last ack reached the auditor. (This, rather than polling
// the outbox's published column, which holds milliseconds, or a consumer
// of the stream, which sees a message stored, not the ack the auditor
// waits for.)
type ackRecorder struct {
	publish.Source
	mu     sync.Mutex
	ids    map[int64]string     // seq → message id, of the rows read
	acked  map[string]time.Time // block id (hex) → when its last event was marked
	marked chan struct{}        // a value after each mark
}

func (a *ackRecorder) Pending(ctx context.Context, after int64, limit int) ([]publish.Pending, error) {
	rows, err := a.Source.Pending(ctx, after, limit)
	a.mu.Lock()
	for _, r := range rows {
		a.ids[r.Seq] = r.ID
	}
	a.mu.Unlock()
	return rows, err
}

func (a *ackRecorder) Published(ctx context.Context, seqs []int64) error {
	now := time.Now()
	a.mu.Lock()
	for _, seq := range seqs {
		// <block>-<box>-<protocol>-<kind>-<connects>: the block first.
		if id := a.ids[seq]; len(id) > 64 && id[64] == '-' {
			a.acked[id[:64]] = now // rows are marked in seq order: the last wins
		}
		delete(a.ids, seq)
	}
	a.mu.Unlock()
	err := a.Source.Published(ctx, seqs)
	select {
	case a.marked <- struct{}{}:
	default:
	}
	return err
}

func (a *ackRecorder) at(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.acked[id]
	return t, ok
}

// connectNotifier is the follower's store, telling the height of each
// block it connects.
type connectNotifier struct {
	scan.Store
	connected chan uint32
}

func (c *connectNotifier) ConnectBlocks(ctx context.Context, blocks []*ergo.FullBlock, judge db.Judge) error {
	err := c.Store.ConnectBlocks(ctx, blocks, judge)
	if err == nil {
		for _, b := range blocks {
			c.connected <- b.Header.Height
		}
	}
	return err
}

// BenchmarkTipLatency follows the tip of the async-emission scenario's
// chain as the devnet shows one block at a time (Step, by hand), with the
// follower polling the node every millisecond, and measures for each block
// with events the time from the node serving the block to JetStream's ack
// of its last event reaching the auditor: p50 and p99 in milliseconds
// (the target is a p99 under 50 ms). An op is 300 blocks.
func BenchmarkTipLatency(b *testing.B) {
	if testing.Short() {
		b.Skip("a benchmark of hundreds of blocks")
	}
	const warm, perOp = 30, 300
	total := warm + perOp*b.N
	// A block time, so that nothing is visible until Step shows it (with
	// BlockTime 0 the whole chain would be at once); Run is never called.
	d, err := devnet.New(devnet.Config{Seed: 22, Blocks: total, TxsPerBlock: 4, BlockTime: time.Hour,
		Scenario: &devnet.AsyncEmission{ForgeryRate: 0.3}}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	node := &servedRecorder{h: d.Handler(), served: map[string]time.Time{}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	cfg := benchConfig(b, d, srv.URL)
	cfg.Scan.PollInterval = Duration(time.Millisecond)

	acks := &ackRecorder{ids: map[int64]string{}, acked: map[string]time.Time{}, marked: make(chan struct{}, 1)}
	conn := &connectNotifier{connected: make(chan uint32, total)}
	p := newPipeline(b, cfg, true, 0,
		func(s publish.Source) publish.Source { acks.Source = s; return acks },
		func(s scan.Store) scan.Store { conn.Store = s; return conn })
	defer p.close()
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan error, 1)
	go func() { followed <- p.follower.Run(ctx) }()
	defer func() {
		cancel()
		<-followed
	}()

	// show shows the next block and waits until it is connected and every
	// event is acknowledged.
	show := func() (id string, visible time.Time) {
		if !d.Step() {
			b.Fatal("the devnet has no more blocks")
		}
		visible = time.Now()
		h, tip := d.Tip()
		timeout := time.After(30 * time.Second)
		for connected := uint32(0); connected < h; {
			select {
			case connected = <-conn.connected:
			case err := <-followed:
				b.Fatalf("the follower stopped: %v", err)
			case <-timeout:
				b.Fatalf("block %d not connected in 30s", h)
			}
		}
		for {
			_, pending, err := p.store.OutboxCounts(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if pending == 0 {
				return tip.String(), visible
			}
			select {
			case <-acks.marked:
			case <-time.After(10 * time.Millisecond):
			case <-timeout:
				b.Fatalf("block %d: %d events not acknowledged in 30s", h, pending)
			}
		}
	}
	for range warm {
		show()
	}
	var latencies, fromVisible []time.Duration
	quiet := 0 // blocks without events
	b.ResetTimer()
	for range perOp * b.N {
		id, visible := show()
		served, ok := node.at(id)
		if !ok {
			b.Fatalf("block %s was never served", id)
		}
		acked, ok := acks.at(id)
		if !ok {
			quiet++
			continue
		}
		latencies = append(latencies, acked.Sub(served))
		fromVisible = append(fromVisible, acked.Sub(visible))
	}
	b.StopTimer()
	if len(latencies) < perOp*b.N/4 {
		b.Fatalf("only %d of %d blocks had events", len(latencies), perOp*b.N)
	}
	pct := func(ds []time.Duration, q float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(q*float64(len(ds))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(latencies, 0.50), "p50-ms")
	b.ReportMetric(pct(latencies, 0.99), "p99-ms")
	// From the moment the block is visible (the node's /info names it)
	// instead: the follower's polling and header checks included.
	b.ReportMetric(pct(fromVisible, 0.50), "p50-visible-ms")
	b.ReportMetric(pct(fromVisible, 0.99), "p99-visible-ms")
	b.ReportMetric(float64(len(latencies)), "blocks-with-events")
	b.Logf("%d blocks with events, %d without; from served: p50 %.2f ms, p99 %.2f ms, max %.2f ms; from visible: p50 %.2f ms, p99 %.2f ms",
		len(latencies), quiet, pct(latencies, 0.5), pct(latencies, 0.99), pct(latencies, 1), pct(fromVisible, 0.5), pct(fromVisible, 0.99))
}
