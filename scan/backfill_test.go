package scan_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	stdslices "slices" // trust_test.go has a type of that name
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/testchain"
	"github.com/async-emission/auditor/internal/testlog"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// recEvent is a verdict event as recEncoder writes it: what the test
// compares of two stores' events.
type recEvent struct {
	Protocol, Kind, Class, Verdict string
	Reasons                        []rules.Reason
	Box, Block                     ergo.Digest
	Height                         uint32
	Generation                     int
}

// recEncoder writes verdict events as JSON recEvents, on t.<protocol>.<verdict>.
type recEncoder struct{}

func (recEncoder) Verdict(v *rules.Verdict, _ *ergo.Box, b db.BlockRef) (db.Message, error) {
	e := recEvent{Protocol: v.Protocol, Kind: string(v.Kind), Class: string(v.Class), Verdict: v.Status(), Reasons: v.Reasons,
		Box: v.BoxID, Block: b.ID, Height: b.Height, Generation: b.Generation}
	payload, err := json.Marshal(e)
	id := fmt.Sprintf("%s-%s-%s-%s-%d-g%d", b.ID, v.BoxID, v.Protocol, v.Kind, b.Connects, b.Generation)
	return db.Message{ID: id, Subject: "t." + v.Protocol + "." + v.Status(), Payload: payload}, err
}

func (recEncoder) Retraction(orig db.Message, _ db.BlockRef) (db.Message, error) {
	return db.Message{ID: orig.ID + "-retracted", Subject: "t.retracted", Payload: orig.Payload}, nil
}

func (recEncoder) Rescinded(orig db.Message, _ db.BlockRef, r db.Rescan) (db.Message, error) {
	return db.Message{ID: fmt.Sprintf("%s-rescinded-g%d", orig.ID, r.Generation), Subject: "t.rescinded", Payload: orig.Payload}, nil
}

func (recEncoder) Rollback(_ db.Reorg, b db.BlockRef) (db.Message, error) {
	return db.Message{ID: fmt.Sprintf("%s-rollback-%d", b.ID, b.Connects), Subject: "t.rollback", Payload: []byte("{}")}, nil
}

// verdictEvents returns the verdict events the store's outbox holds, in
// order (retracted ones included: they were published).
func verdictEvents(t *testing.T, s *db.Store) []recEvent {
	t.Helper()
	rows, err := s.OutboxPending(context.Background(), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var out []recEvent
	for _, r := range rows {
		if strings.HasPrefix(r.Subject, "t.") && strings.Count(r.Subject, ".") == 2 && !strings.HasPrefix(r.Subject, "t.retracted") &&
			!strings.HasPrefix(r.Subject, "t.rescinded") && r.Subject != "t.rollback" {
			var e recEvent
			if err := json.Unmarshal(r.Payload, &e); err != nil {
				t.Fatal(err)
			}
			out = append(out, e)
		}
	}
	return out
}

// permitStore lets a backfill commit only when the test gives it a
// permit (all of them once permits is closed), and tells of each commit
// (or failure) on done.
type permitStore struct {
	*db.Store
	permits chan struct{}
	done    chan struct{}
}

func (p *permitStore) BackfillBlocks(ctx context.Context, blocks []*ergo.FullBlock, judge db.Judge) error {
	select {
	case _, open := <-p.permits:
		if !open {
			return p.Store.BackfillBlocks(ctx, blocks, judge)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { p.done <- struct{}{} }()
	return p.Store.BackfillBlocks(ctx, blocks, judge)
}

// rewindWatch counts the disconnects that bring back the cursor of a
// protocol whose history was still being backfilled when the reorg began
// (below the tip then).
type rewindWatch struct {
	*db.Store
	protocol string
	rewound  atomic.Int32
	began    map[ergo.Digest]uint32 // the cursor as each reorg (by its old tip) began; the follower's goroutine only
}

func (w *rewindWatch) DisconnectBlock(ctx context.Context, id ergo.Digest, reorg *db.Reorg) error {
	tip, _, err := w.Tip(ctx)
	if err != nil {
		return err
	}
	if c, ok := cursorOf(ctx, w.Store, w.protocol); ok && reorg != nil {
		if w.began == nil {
			w.began = map[ergo.Digest]uint32{}
		}
		if _, seen := w.began[reorg.OldTip.ID]; !seen {
			w.began[reorg.OldTip.ID] = c
		}
		if w.began[reorg.OldTip.ID] < reorg.OldTip.Height && c >= tip.Height {
			w.rewound.Add(1)
		}
	}
	return w.Store.DisconnectBlock(ctx, id, reorg)
}

func cursorOf(ctx context.Context, s *db.Store, protocol string) (uint32, bool) {
	hs, err := s.ProtocolHistories(ctx)
	if err != nil {
		return 0, false
	}
	for _, h := range hs {
		if h.Name == protocol {
			return h.Cursor, true
		}
	}
	return 0, false
}

// verdictLines are a store's verdicts, one line each, sorted.
func verdictLines(t *testing.T, s *db.Store) []string {
	t.Helper()
	vs, err := s.Verdicts(context.Background(), db.VerdictFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%s %s %s %s %s@%d %s %v %s", v.Protocol, v.Kind, v.Class, v.Action, v.BoxID, v.Height, v.Status(), v.Reasons, v.BlockID)
	}
	stdslices.Sort(out)
	return out
}

// firstDiff describes where two sorted line lists differ.
func firstDiff(want, got []string) string {
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			return fmt.Sprintf("line %d: want %s, got %s", i, want[i], got[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(got), len(want))
}

// TestProtocolAddedLaterIsBackfilled: a store follows the scenario with the
// demo protocol alone; at height 120 the action tree, deployed at height 3,
// is added and the auditor restarted. Its history is backfilled from height
// 3 while the follower goes on at the tip, through reorgs — one of them
// deep enough to bring the backfill's cursor back — until it joins the
// follower. The store then equals, row for row (state digest, verdicts,
// lineages), one that watched both protocols from the start, and every
// event the added protocol published, during the backfill and after, is
// one that store published too, for the same block: no orphan_token nor
// any other false alarm, at any point.
func TestProtocolAddedLaterIsBackfilled(t *testing.T) {
	const blocks, added = 280, 120
	scenario := func() *devnet.AsyncEmission { return &devnet.AsyncEmission{ForgeryRate: 0.25} }
	ref := testchain.New(t, devnet.Config{Seed: 11, Blocks: blocks, TxsPerBlock: 2, Scenario: scenario()})
	refStore, _ := testchain.OpenStore(t)
	ref.Sync(t, refStore, blocks)

	c := testchain.New(t, devnet.Config{Seed: 11, Blocks: blocks, TxsPerBlock: 2, Scenario: scenario(),
		BlockTime: time.Hour /* stepped by hand */, ReorgEvery: 9, ReorgDepth: 5})
	demo, tree := c.Protocols[0], c.Protocols[1]
	if tree.StartHeight >= added-100 {
		t.Fatalf("the tree is deployed at %d, not far below %d", tree.StartHeight, added)
	}
	both := rules.NewEngine(c.Protocols, nil, zerolog.Nop())
	cfg := scan.FollowerConfig{Params: consensus.Devnet(), PollInterval: time.Millisecond, Batch: 4, Ahead: 2}

	// The store that watches both from the start, and the one that watches
	// the demo protocol alone, follow the devnet step by step.
	fromStart, _ := testchain.OpenStore(t)
	fromStart.SetEvents(recEncoder{}, nil)
	stopFromStart := runFollower(t, scan.NewFollower(c.Client(t), fromStart, both, cfg, zerolog.Nop()))
	store, path := testchain.OpenStore(t)
	store.SetEvents(recEncoder{}, nil)
	stop := runFollower(t, scan.NewFollower(c.Client(t), store, rules.NewEngine([]rules.Protocol{demo}, nil, zerolog.Nop()), cfg, zerolog.Nop()))
	atTip := func(ss ...*db.Store) {
		t.Helper()
		wantH, wantID := c.Devnet.Tip()
		for _, s := range ss {
			poll.Until(t, 30*time.Second, fmt.Sprintf("the stores to follow the devnet to %d", wantH), func() (bool, string) {
				tip, ok, err := s.Tip(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return ok && tip.Height == wantH && tip.ID == wantID, fmt.Sprintf("store at %d", tip.Height)
			})
		}
	}
	for h, _ := c.Devnet.Tip(); h < added; h, _ = c.Devnet.Tip() {
		c.Devnet.Step()
		atTip(fromStart, store)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if evs := verdictEvents(t, store); stdslices.ContainsFunc(evs, func(e recEvent) bool { return e.Protocol == tree.Name }) {
		t.Fatal("the tree was judged before it was added")
	}
	store.Close()

	// The restart with both protocols: the tree is registered (its history
	// empty up to its start height) and backfilled, the follower and the
	// backfill running at once.
	store, err := db.Open(context.Background(), path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	store.SetEvents(recEncoder{}, nil)
	changes, err := store.RegisterProtocols(context.Background(),
		[]db.ProtocolStart{{Name: demo.Name, StartHeight: demo.StartHeight}, {Name: tree.Name, StartHeight: tree.StartHeight}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Name != tree.Name || changes[0].What != "added" || changes[0].BackfillFrom != tree.StartHeight {
		t.Fatalf("registering the tree: %+v", changes)
	}
	watched := &rewindWatch{Store: store, protocol: tree.Name}
	stop = runFollower(t, scan.NewFollower(c.Client(t), watched, both, cfg, zerolog.Nop()))
	permits := &permitStore{Store: store, permits: make(chan struct{}), done: make(chan struct{})}
	logs := &testlog.Buffer{}
	bf := scan.NewBackfill(c.Client(t), permits, both, scan.BackfillConfig{Batch: 1, Ahead: 2, CommitBlocks: 1, ProgressEvery: time.Millisecond},
		zerolog.New(logs))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	backfilled := make(chan error, 1)
	go func() { backfilled <- bf.Run(ctx) }()
	give := func(n int) bool { // one block each, committed; false once the backfill has ended
		for range n {
			select {
			case permits.permits <- struct{}{}:
				<-permits.done
			case err := <-backfilled:
				backfilled <- err
				return false
			}
		}
		return true
	}
	// Two blocks backfilled for each block the tip moves (the cursor
	// gains one), until the cursor is 2 blocks below the tip; then one,
	// so that it stays there until a reorg (which disconnects 4 or 5
	// blocks) has brought it back.
	steps, joinedAt := 0, uint32(0)
	for c.Devnet.Step() {
		steps++
		atTip(fromStart, store)
		tip, _, _ := store.Tip(context.Background())
		cursor, _ := cursorOf(context.Background(), store, tree.Name)
		n, d := 2, int(tip.Height-cursor)
		switch {
		case watched.rewound.Load() > 0:
		case d <= 2:
			n = 1
		case d <= 6:
			n = d - 1
		}
		if !give(n) && joinedAt == 0 {
			joinedAt = tip.Height
		}
	}
	close(permits.permits)
	if err := <-backfilled; err != nil {
		t.Fatalf("backfill: %v", err)
	}
	atTip(fromStart, store)
	if joinedAt == 0 {
		h, _ := c.Devnet.Tip()
		joinedAt = h
	}
	st := bf.Stats()
	t.Logf("%d steps after the restart; the backfill judged %d blocks (%d batches stale) and joined the follower at %d; "+
		"%d disconnects brought its cursor back", steps, st.Blocks, st.Stale, joinedAt, watched.rewound.Load())
	if watched.rewound.Load() == 0 {
		t.Error("no reorg brought the backfill's cursor back")
	}
	progress := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		var l struct {
			Msg             string   `json:"message"`
			Protocol        string   `json:"protocol"`
			BlocksPerSecond *float64 `json:"blocks_per_second"`
			TimeLeft        *float64 `json:"time_left"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "backfilling" && l.Protocol == tree.Name &&
			l.BlocksPerSecond != nil && l.TimeLeft != nil {
			progress++
		}
	}
	if progress == 0 {
		t.Errorf("no progress line with a rate and the time left:\n%s", logs.String())
	}
	if joinedAt >= blocks-5 {
		t.Errorf("the backfill joined at %d: the tip did not keep moving after it", joinedAt)
	}
	for _, stop := range []func() error{stopFromStart, stop} {
		if err := stop(); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
	}

	want, wantSt := digest(t, refStore)
	for name, s := range map[string]*db.Store{"the store that watched both from the start": fromStart, "the backfilled store": store} {
		got, st := digest(t, s)
		if got != want {
			t.Errorf("%s: state digest %s, want %s (%d boxes, %d spends, %d reads, %d txs; want %d, %d, %d, %d)", name, got, want,
				st.Boxes, st.Spends, st.DataInputReads, st.Transactions, wantSt.Boxes, wantSt.Spends, wantSt.DataInputReads, wantSt.Transactions)
		}
		if w, g := verdictLines(t, refStore), verdictLines(t, s); !stdslices.Equal(w, g) {
			t.Errorf("%s: verdicts differ: %s", name, firstDiff(w, g))
		}
	}

	// Every verdict event of the backfilled store is one the store that
	// watched from the start published for the same block.
	truth := map[string]recEvent{}
	for _, e := range verdictEvents(t, fromStart) {
		truth[fmt.Sprintf("%s %s %s %s", e.Block, e.Box, e.Protocol, e.Kind)] = e
	}
	treeEvents, backfilledEvents := 0, 0
	for _, e := range verdictEvents(t, store) {
		w, ok := truth[fmt.Sprintf("%s %s %s %s", e.Block, e.Box, e.Protocol, e.Kind)]
		switch {
		case !ok:
			t.Errorf("a %s %s event on box %s at %d that the store watching from the start never published: %v",
				e.Protocol, e.Verdict, e.Box, e.Height, e.Reasons)
		case w.Verdict != e.Verdict || !stdslices.Equal(w.Reasons, e.Reasons) || w.Class != e.Class:
			t.Errorf("box %s at %d: %s %s %v, the store watching from the start published %s %s %v",
				e.Box, e.Height, e.Class, e.Verdict, e.Reasons, w.Class, w.Verdict, w.Reasons)
		}
		if e.Protocol == tree.Name {
			treeEvents++
			if e.Height < added {
				backfilledEvents++
			}
			if stdslices.Contains(e.Reasons, rules.ReasonOrphanToken) && (!ok || !stdslices.Contains(w.Reasons, rules.ReasonOrphanToken)) {
				t.Errorf("a false orphan_token on box %s at %d", e.Box, e.Height)
			}
		}
	}
	if backfilledEvents == 0 || treeEvents == backfilledEvents {
		t.Fatalf("%d events of the tree, %d of them backfilled: want some of each kind", treeEvents, backfilledEvents)
	}
	t.Logf("%d events of the tree, %d of them from the backfill", treeEvents, backfilledEvents)
}

// TestBackfillNamesANodeThatFails: a backfill whose node fails (a pruned
// node that no longer serves old blocks, one that is down) retries, and
// its stats say since when it has failed and why, so that readiness can
// name it; once the node serves the blocks again, the backfill reaches
// the tip and the failure is gone.
func TestBackfillNamesANodeThatFails(t *testing.T) {
	const blocks = 60
	c := testchain.New(t, devnet.Config{Seed: 5, Blocks: blocks, TxsPerBlock: 2, Scenario: &devnet.AsyncEmission{ForgeryRate: 0.2}})
	demo, tree := c.Protocols[0], c.Protocols[1]
	store, _ := testchain.OpenStore(t)
	f := scan.NewFollower(c.Client(t), store, rules.NewEngine([]rules.Protocol{demo}, nil, zerolog.Nop()),
		scan.FollowerConfig{Params: consensus.Devnet(), UntilHeight: blocks, PollInterval: time.Millisecond}, zerolog.Nop())
	if err := f.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.RegisterProtocols(t.Context(),
		[]db.ProtocolStart{{Name: demo.Name, StartHeight: demo.StartHeight}, {Name: tree.Name, StartHeight: tree.StartHeight}}, nil); err != nil {
		t.Fatal(err)
	}

	var failing atomic.Bool
	failing.Store(true)
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() && strings.HasPrefix(r.URL.Path, "/blocks") {
			http.Error(w, `{"error": 404, "reason": "not-found", "detail": "pruned"}`, http.StatusNotFound)
			return
		}
		c.Devnet.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(node.Close)
	client, err := scan.NewClient(scan.ClientConfig{URL: node.URL, MaxAttempts: 2, BackoffMin: time.Millisecond, BackoffMax: time.Millisecond}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	both := rules.NewEngine(c.Protocols, nil, zerolog.Nop())
	bf := scan.NewBackfill(client, store, both, scan.BackfillConfig{RetryInterval: time.Millisecond}, zerolog.Nop())
	done := make(chan error, 1)
	began := time.Now()
	go func() { done <- bf.Run(t.Context()) }()

	poll.Until(t, 30*time.Second, "the backfill to retry a failing node", func() (bool, string) {
		st := bf.Stats()
		return st.NodeErrors >= 3 && st.Failing != nil, fmt.Sprintf("%d node errors, failing %+v", st.NodeErrors, st.Failing)
	})
	st := bf.Stats()
	if st.Failing.Since.Before(began) || !strings.Contains(st.Failing.Err, "404") || !strings.Contains(st.Failing.Err, "pruned") {
		t.Errorf("failing %+v: want a time since the start and the node's 404", st.Failing)
	}
	if p := st.Protocols[tree.Name]; p.Done || p.Cursor != tree.StartHeight-1 || st.Blocks != 0 {
		t.Errorf("the tree's backfill moved while the node failed: %+v, %d blocks", p, st.Blocks)
	}

	failing.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the backfill did not end once the node served the blocks")
	}
	st = bf.Stats()
	if p := st.Protocols[tree.Name]; !p.Done || p.Cursor != blocks || st.Failing != nil {
		t.Errorf("after the node recovered: %+v, failing %+v", p, st.Failing)
	}
}
