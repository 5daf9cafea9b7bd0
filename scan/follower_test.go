package scan_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/testlog"
	"github.com/async-emission/auditor/scan"
)

// keepAll stores every box, so that digests cover every spend and read.
type keepAll = db.KeepAll

func newDevnet(t *testing.T, cfg devnet.Config) (*devnet.Devnet, string) {
	t.Helper()
	d, err := devnet.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return d, srv.URL
}

func openStore(t *testing.T, dir string) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(dir, "auditor.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newClient(t *testing.T, url string, log zerolog.Logger) *scan.Client {
	t.Helper()
	c, err := scan.NewClient(scan.ClientConfig{
		URL: url, RequestTimeout: 2 * time.Second, MaxAttempts: 8,
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func digest(t *testing.T, s *db.Store) (ergo.Digest, db.Status) {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.StateDigest, st
}

// syncTo runs a follower until height is connected and returns the store.
func syncTo(t *testing.T, url string, height uint32, cfg scan.FollowerConfig) *db.Store {
	t.Helper()
	store := openStore(t, t.TempDir())
	cfg.UntilHeight = height
	cfg.PollInterval = time.Millisecond
	f := scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{}, cfg, zerolog.Nop())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := f.Run(ctx); err != nil {
		t.Fatalf("sync to %d: %v", height, err)
	}
	return store
}

const seed = 42

func TestSyncFollowsTheFinalChain(t *testing.T) {
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: 150, TxsPerBlock: 8})
	store := syncTo(t, url, 150, scan.FollowerConfig{Params: consensus.Devnet(), Batch: 7, Ahead: 3})
	_, st := digest(t, store)
	if st.TipHeight != 150 || st.TipID != d.FinalID(150) {
		t.Fatalf("tip %d %s, want 150 %s", st.TipHeight, st.TipID, d.FinalID(150))
	}
	for _, h := range []uint32{1, 2, 77, 149} {
		id, ok, err := store.MainChainID(context.Background(), h)
		if err != nil || !ok || id != d.FinalID(h) {
			t.Fatalf("height %d: %s %v %v, want %s", h, id, ok, err, d.FinalID(h))
		}
	}
	if st.Boxes == 0 || st.Spends == 0 || st.DataInputReads == 0 {
		t.Fatalf("store holds too little of the chain: %+v", st)
	}
}

// runFollower starts a follower in the background; stop cancels it and
// returns Run's error.
func runFollower(t *testing.T, f *scan.Follower) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

// stepAndFollow steps the devnet to its end, waiting after every step until
// the store's tip is the devnet's visible tip.
func stepAndFollow(t *testing.T, d *devnet.Devnet, store *db.Store) (steps int) {
	t.Helper()
	for {
		wantH, wantID := d.Tip()
		poll.Until(t, 30*time.Second, fmt.Sprintf("the store to follow the devnet to %d", wantH), func() (bool, string) {
			tip, ok, err := store.Tip(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if wantH == 0 { // nothing visible yet: the store stays empty
				return !ok, "store not empty"
			}
			return ok && tip.Height == wantH && tip.ID == wantID, fmt.Sprintf("store at %d %s", tip.Height, tip.ID)
		})
		if !d.Step() {
			return steps
		}
		steps++
	}
}

// connects records the calls of FollowerConfig.OnConnect.
type connects struct {
	mu    sync.Mutex
	n     uint64
	wrong []string // calls whose times are not a fetch and a later commit
}

func (c *connects) observe(fetched, committed time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if fetched.IsZero() || committed.Before(fetched) || time.Since(committed) < 0 {
		c.wrong = append(c.wrong, fmt.Sprintf("fetched %s, committed %s", fetched, committed))
	}
}

// check fails t unless OnConnect was called once per block connected, each
// time with a fetch before the commit.
func (c *connects) check(t *testing.T, connected uint64) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n != connected || len(c.wrong) > 0 {
		t.Errorf("OnConnect called %d times for %d blocks connected; wrong times: %v", c.n, connected, c.wrong)
	}
}

func TestReorgsGiveTheSameStateAsAStraightSync(t *testing.T) {
	const blocks = 160
	_, straightURL := newDevnet(t, devnet.Config{Seed: seed, Blocks: blocks, TxsPerBlock: 6})
	want, _ := digest(t, syncTo(t, straightURL, blocks, scan.FollowerConfig{Params: consensus.Devnet()}))

	for _, c := range []struct {
		every, depth int
		reinclude    bool // the branches re-include the final chain's transactions
	}{{5, 1, false}, {9, 3, false}, {9, 3, true}, {23, 17, false}, {61, 50, true}} {
		t.Run(fmt.Sprintf("every %d depth %d same txs %t", c.every, c.depth, c.reinclude), func(t *testing.T) {
			d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: blocks, TxsPerBlock: 6,
				BlockTime: time.Hour /* stepped by hand */, ReorgEvery: c.every, ReorgDepth: c.depth, ReorgReinclude: c.reinclude})
			store := openStore(t, t.TempDir())
			var seen connects
			f := scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{},
				scan.FollowerConfig{Params: consensus.Devnet(), PollInterval: time.Millisecond, Batch: 4, Ahead: 2,
					OnConnect: seen.observe}, zerolog.Nop())
			stop := runFollower(t, f)
			stepAndFollow(t, d, store)
			if err := stop(); !errors.Is(err, context.Canceled) {
				t.Fatalf("follower stopped with %v", err)
			}
			got, st := digest(t, store)
			if got != want {
				t.Fatalf("state digest %s after reorgs, %s after a straight sync (tip %d)", got, want, st.TipHeight)
			}
			stats := f.Stats()
			if stats.Reorgs == 0 || stats.DeepestReorg != uint32(c.depth) {
				t.Fatalf("saw %d reorgs, deepest %d; want some, deepest %d", stats.Reorgs, stats.DeepestReorg, c.depth)
			}
			if st.OrphanedHeaders == 0 {
				t.Fatal("no orphaned headers recorded")
			}
			// The blocks of the branches adopted count like the others.
			seen.check(t, stats.Connected)
		})
	}
}

func TestRestartResumesAndRollsBackAStaleTip(t *testing.T) {
	const blocks = 60
	_, straightURL := newDevnet(t, devnet.Config{Seed: seed, Blocks: blocks, TxsPerBlock: 5})
	want, _ := digest(t, syncTo(t, straightURL, blocks, scan.FollowerConfig{Params: consensus.Devnet()}))

	// Follow onto a competing branch, stop, let the devnet switch back
	// while the auditor is down, and start again: the new follower must
	// notice that its stored tip left the best chain.
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: blocks, TxsPerBlock: 5,
		BlockTime: time.Hour, ReorgEvery: 20, ReorgDepth: 4})
	dir := t.TempDir()
	store := openStore(t, dir)
	cfg := scan.FollowerConfig{Params: consensus.Devnet(), PollInterval: time.Millisecond}
	stop := runFollower(t, scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{}, cfg, zerolog.Nop()))
	for h, _ := d.Tip(); h < 20; h, _ = d.Tip() { // up to the first competing branch
		d.Step()
	}
	h, alt := d.Tip()
	if alt == d.FinalID(h) {
		t.Fatalf("devnet shows no competing branch at %d", h)
	}
	poll.Until(t, 30*time.Second, "the store to follow the competing branch", func() (bool, string) {
		tip, _, _ := store.Tip(context.Background())
		return tip.ID == alt, tip.ID.String()
	})
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	store.Close()
	for d.Step() { // the node moves on while the auditor is down
	}
	store = openStore(t, dir)
	stop = runFollower(t, scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{}, cfg, zerolog.Nop()))
	stepAndFollow(t, d, store)
	stop()
	if got, _ := digest(t, store); got != want {
		t.Fatalf("digest %s after a restart onto a stale tip, want %s", got, want)
	}
}

func TestReorgDeeperThanAllowedStops(t *testing.T) {
	// At height 20 the devnet shows a 6-block competing branch: following
	// it is a 5-deep reorg (allowed); switching back is 6 deep (refused).
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: 40, TxsPerBlock: 3,
		BlockTime: time.Hour, ReorgEvery: 20, ReorgDepth: 6})
	store := openStore(t, t.TempDir())
	f := scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{},
		scan.FollowerConfig{Params: consensus.Devnet(), PollInterval: time.Millisecond, MaxReorgDepth: 5}, zerolog.Nop())
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- f.Run(ctx) }()
	var last ergo.Digest // the last visible tip the follower reached
	for {
		_, id := d.Tip()
		var stopped error
		poll.Until(t, 30*time.Second, "the follower to reach the tip or stop", func() (bool, string) {
			select {
			case stopped = <-done:
				return true, ""
			default:
			}
			tip, _, _ := store.Tip(context.Background())
			return tip.ID == id, fmt.Sprintf("store at %d", tip.Height)
		})
		if stopped != nil {
			if !errors.Is(stopped, scan.ErrReorgTooDeep) {
				t.Fatalf("stopped with %v, want ErrReorgTooDeep", stopped)
			}
			if tip, _, _ := store.Tip(context.Background()); tip.ID != last {
				t.Fatalf("the refused reorg changed the store: tip %s, was %s", tip.ID, last)
			}
			if f.Stats().DeepestReorg != 5 {
				t.Fatalf("deepest reorg followed %d, want 5", f.Stats().DeepestReorg)
			}
			return
		}
		last = id
		if !d.Step() {
			t.Fatal("a 6-deep reorg passed a 5-deep limit")
		}
	}
}

func TestConfirmations(t *testing.T) {
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: 30, TxsPerBlock: 3, BlockTime: time.Hour})
	store := openStore(t, t.TempDir())
	stop := runFollower(t, scan.NewFollower(newClient(t, url, zerolog.Nop()), store, keepAll{},
		scan.FollowerConfig{Params: consensus.Devnet(), PollInterval: time.Millisecond, Confirmations: 3}, zerolog.Nop()))
	for d.Step() {
	}
	poll.Until(t, 30*time.Second, "the store to reach the tip less 3 confirmations", func() (bool, string) {
		tip, _, _ := store.Tip(context.Background())
		return tip.Height == 27 && tip.ID == d.FinalID(27), fmt.Sprintf("store at %d", tip.Height)
	})
	stop()
}

// faulty wraps the devnet's handler with the faults a real network and a
// flaky or lying node produce. It is a wrapper around the real devnet, not
// a mock: every answer it lets through is the devnet's.
type faulty struct {
	next     http.Handler
	n        atomic.Int64
	injected atomic.Int64
	lieAbout ergo.Digest // the block whose JSON is corrupted the first times
	lies     atomic.Int64
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.n.Add(1)
	switch {
	case n%7 == 0:
		f.injected.Add(1)
		http.Error(w, `{"error":500,"reason":"internal"}`, http.StatusInternalServerError)
		return
	case n%11 == 0:
		f.injected.Add(1)
		select { // outlast the client's per-request timeout
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	case n%13 == 0:
		f.injected.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	rec := httptest.NewRecorder()
	f.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	// Corrupt one box id of the target block the first two times it is
	// served, in any response that carries it.
	if f.lies.Load() < 2 && bytes.Contains(body, []byte(`"headerId":"`+f.lieAbout.String())) {
		if i := bytes.Index(body, []byte(`"boxId":"`)); i >= 0 {
			f.lies.Add(1)
			body = bytes.Clone(body)
			p := i + len(`"boxId":"`)
			if body[p] == '0' { // another hex digit: still well-formed, now wrong
				body[p] = '1'
			} else {
				body[p] = '0'
			}
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(body)
}

func TestNodeFaultsAreRetriedAndStoreNothingWrong(t *testing.T) {
	const blocks = 80
	d, cleanURL := newDevnet(t, devnet.Config{Seed: seed, Blocks: blocks, TxsPerBlock: 5})
	want, _ := digest(t, syncTo(t, cleanURL, blocks, scan.FollowerConfig{Params: consensus.Devnet()}))

	f := &faulty{next: d.Handler(), lieAbout: d.FinalID(37)}
	srv := httptest.NewServer(f)
	defer srv.Close()
	logs := &testlog.Buffer{}
	log := zerolog.New(logs)
	store := openStore(t, t.TempDir())
	c, err := scan.NewClient(scan.ClientConfig{URL: srv.URL, RequestTimeout: 100 * time.Millisecond, MaxAttempts: 3,
		BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	follower := scan.NewFollower(c, store, keepAll{}, scan.FollowerConfig{Params: consensus.Devnet(),
		PollInterval: time.Millisecond, UntilHeight: blocks, Batch: 5}, log)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := follower.Run(ctx); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got, _ := digest(t, store); got != want {
		t.Fatalf("digest %s through faults, %s without", got, want)
	}
	if f.injected.Load() == 0 || f.lies.Load() == 0 {
		t.Fatalf("faults injected: %d, lies told: %d", f.injected.Load(), f.lies.Load())
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"warn"`) {
		t.Fatal("no warning logged for the faults")
	}
	if strings.Contains(out, `"level":"error"`) {
		t.Fatal("a node fault was logged at error level")
	}
}

// batchRecorder is the store, recording how many blocks each commit holds.
type batchRecorder struct {
	*db.Store
	mu      sync.Mutex
	batches []int
}

func (r *batchRecorder) ConnectBlocks(ctx context.Context, blocks []*ergo.FullBlock, judge db.Judge) error {
	r.mu.Lock()
	r.batches = append(r.batches, len(blocks))
	r.mu.Unlock()
	return r.Store.ConnectBlocks(ctx, blocks, judge)
}

// TestCatchUpCommitsInBatchesAndTheTipOneByOne: far from the node's tip,
// blocks are committed many to a transaction; within TipDistance of it,
// and when following it, one each. The state is a straight sync's.
func TestCatchUpCommitsInBatchesAndTheTipOneByOne(t *testing.T) {
	const blocks = 300
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: blocks, TxsPerBlock: 3, BlockTime: time.Hour})
	for h, _ := d.Tip(); h < 280; h, _ = d.Tip() {
		d.Step()
	}
	rec := &batchRecorder{Store: openStore(t, t.TempDir())}
	var seen connects
	f := scan.NewFollower(newClient(t, url, zerolog.Nop()), rec, keepAll{}, scan.FollowerConfig{
		Params: consensus.Devnet(), PollInterval: time.Millisecond, CommitBlocks: 50, CommitEvery: time.Hour,
		OnConnect: seen.observe}, zerolog.Nop())
	stop := runFollower(t, f)
	stepAndFollow(t, d, rec.Store)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var big, ones, total int
	for _, n := range rec.batches {
		total += n
		switch {
		case n > 50:
			t.Fatalf("a commit of %d blocks, more than CommitBlocks", n)
		case n > 1:
			big++
		default:
			ones++
		}
	}
	t.Logf("%d blocks in %d commits: %d batches, %d single blocks", total, len(rec.batches), big, ones)
	if total != blocks || big < 5 || ones < 20 {
		t.Fatalf("commits %v: want the catch-up batched and the last blocks one by one", rec.batches)
	}
	seen.check(t, blocks)
	want, _ := digest(t, syncTo(t, url, blocks, scan.FollowerConfig{Params: consensus.Devnet()}))
	if got, _ := digest(t, rec.Store); got != want {
		t.Fatal("a batched catch-up differs from a straight sync")
	}
}

// slowBlocks delays every block request, so that a catch-up lasts.
type slowBlocks struct {
	next  http.Handler
	delay time.Duration
}

func (s slowBlocks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/blocks/headerIds" {
		time.Sleep(s.delay) // a slow node, not a wait for a condition
	}
	s.next.ServeHTTP(w, r)
}

// TestNodeHeightIsCurrentDuringACatchUp: while a long catch-up runs, the
// node's height the stats show (and the lag with it) follows the node,
// not the height the catch-up started from.
func TestNodeHeightIsCurrentDuringACatchUp(t *testing.T) {
	d, err := devnet.New(devnet.Config{Seed: seed, Blocks: 500, TxsPerBlock: 2, BlockTime: time.Hour}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for h, _ := d.Tip(); h < 300; h, _ = d.Tip() {
		d.Step()
	}
	srv := httptest.NewServer(slowBlocks{next: d.Handler(), delay: 40 * time.Millisecond})
	defer srv.Close()
	store := openStore(t, t.TempDir())
	f := scan.NewFollower(newClient(t, srv.URL, zerolog.Nop()), store, keepAll{}, scan.FollowerConfig{
		Params: consensus.Devnet(), PollInterval: time.Millisecond, Batch: 4, Ahead: 1, NodeInfoEvery: 10 * time.Millisecond}, zerolog.Nop())
	stop := runFollower(t, f)
	defer stop()
	poll.Until(t, 30*time.Second, "the catch-up to start", func() (bool, string) {
		return f.Stats().Connected > 0 && f.Stats().NodeHeight == 300, ""
	})
	for h, _ := d.Tip(); h < 400; h, _ = d.Tip() {
		d.Step()
	}
	poll.Until(t, 30*time.Second, "the node's new height, within the first catch-up", func() (bool, string) {
		tip, _, _ := store.Tip(context.Background())
		if tip.Height >= 300 {
			t.Fatalf("the catch-up to 300 ended before the node's height was read again (node height %d)", f.Stats().NodeHeight)
		}
		return f.Stats().NodeHeight == 400, fmt.Sprintf("node height %d, tip %d", f.Stats().NodeHeight, tip.Height)
	})
}
