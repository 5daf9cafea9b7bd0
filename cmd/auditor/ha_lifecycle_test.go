package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/internal/natstest"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/publish"
)

// TestHALifecycle is the HA group meeting the protocol lifecycle (issues
// 17 and 15), in this process: two auditors of a group compare the last
// 8+64 heights with the stream (scan.max_reorg_depth 8) and follow a devnet
// that forks every 9 blocks (from height 85: the first blocks are shown at
// once), watching the demo protocol alone. At height 100 the action tree
// is added to every member's configuration, one restart at a time (each
// backfills it from its start at height 3, mostly below the heights
// compared, while the chain goes on; the blocks come slowly to a backfill,
// so that it takes a while);
// the leader is stopped in the middle of its backfill (the other takes
// over, its own backfill less or more advanced) and started again. Then
// the group is stopped, `auditor rescan --protocol demo --from 30` is run
// in each member's directory, and the group started again: the demo
// protocol's verdicts from 30 are retracted (far below the window too) and
// judged again under -g1 ids. The subscriber's log, replayed, holds
// exactly the verdicts of the final main chain, each once after the
// retractions, with no message id twice and no gap.
func TestHALifecycle(t *testing.T) {
	t.Parallel() // beside TestHAClusterFailover, which mostly waits
	const blocks, shown, added, rescanFrom = 112, 85, 100, 30
	d, err := devnet.New(devnet.Config{Seed: 41, Blocks: blocks, TxsPerBlock: 2, BlockTime: time.Hour, ReorgEvery: 9, ReorgDepth: 3,
		Scenario: &devnet.AsyncEmission{ForgeryRate: 0.3}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// A backfill asks for old blocks by their ids: each such request waits
	// while slow is set, the follower's at the tip too (a few a block).
	var slow atomic.Bool
	node := d.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() && r.URL.Path == "/blocks/headerIds" {
			time.Sleep(25 * time.Millisecond)
		}
		node.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	pcs, err := d.Protocols()
	if err != nil {
		t.Fatal(err)
	}
	demoOnly, both := pcs[:1], pcs
	urls := natstest.NewCluster(t, 1).URLs()
	rec := record(t, urls)

	type member struct {
		id, dir, path string
		cfg           Config
		watch         *db.Store
		stop          context.CancelFunc
		done          chan error
	}
	configure := func(m *member, pcs []devnet.ProtocolConfig) {
		m.path, m.cfg = haConfigOf(t, m.dir, srv.URL, urls, m.id, 2*time.Second, "", pcs)
		m.cfg.Scan.MaxReorgDepth, m.cfg.Scan.FetchBatch, m.cfg.Scan.FetchAhead = 8, 2, 1
	}
	start := func(m *member) {
		ctx, cancel := context.WithCancel(context.Background())
		m.stop, m.done = cancel, make(chan error, 1)
		go func() { m.done <- runAuditor(ctx, m.cfg, 0, zerolog.Nop()) }()
	}
	stop := func(m *member) {
		m.stop()
		if err := <-m.done; err != nil {
			t.Fatalf("%s stopped with %v", m.id, err)
		}
		m.stop = nil
	}
	members := map[string]*member{}
	var stores []*db.Store
	// The first blocks at once: the auditors catch up with them, and see
	// the forks from there.
	for range shown {
		d.Step()
	}
	for _, id := range []string{"a1", "a2"} {
		m := &member{id: id, dir: t.TempDir()}
		configure(m, demoOnly)
		m.watch = openWatch(t, m.dir)
		members[id], stores = m, append(stores, m.watch)
		start(m)
		t.Cleanup(func() {
			if m.stop != nil {
				m.stop()
				<-m.done
			}
		})
	}
	stepping := stepper(d, 5*time.Millisecond, atTip(stores...))
	defer func() { stepping() }()
	leader := func(after uint64) (*member, uint64) {
		var id string
		var epoch uint64
		poll.Until(t, 20*time.Second, fmt.Sprintf("a leader after epoch %d", after), func() (bool, string) {
			id, epoch = leaseHolder(t, urls)
			return id != "" && epoch > after, fmt.Sprintf("holder %q epoch %d", id, epoch)
		})
		return members[id], epoch
	}
	atHeight := func(h uint32) {
		poll.Until(t, 30*time.Second, fmt.Sprintf("the chain at %d", h), func() (bool, string) {
			tip, _ := d.Tip()
			return tip >= h, fmt.Sprintf("at %d", tip)
		})
	}
	history := func(m *member, name string) db.ProtocolHistory {
		hs, err := m.watch.ProtocolHistories(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			if h.Name == name {
				return h
			}
		}
		return db.ProtocolHistory{}
	}

	// The tree added to every member, the standby first.
	atHeight(added)
	lead, epoch := leader(0)
	standby := members[map[string]string{"a1": "a2", "a2": "a1"}[lead.id]]
	slow.Store(true)
	stop(standby)
	configure(standby, both)
	start(standby)
	stop(lead) // the standby, backfilling, takes over
	configure(lead, both)
	start(lead)
	next, epoch := leader(epoch)
	// The leader stopped in the middle of its backfill; the other takes
	// over.
	var cursor uint32
	poll.Until(t, 30*time.Second, next.id+" half through its backfill", func() (bool, string) {
		cursor = history(next, "tree").Cursor
		tip, _ := d.Tip()
		return cursor > 20, fmt.Sprintf("the tree's cursor at %d, the tip at %d", cursor, tip)
	})
	stop(next)
	if h, tip := history(next, "tree").Cursor, storeStatus(t, next.dir).TipHeight; h+10 > tip {
		t.Fatalf("%s stopped with the tree's history at %d, the tip at %d: not in the middle of the backfill", next.id, h, tip)
	}
	start(next)
	_, epoch = leader(epoch)
	slow.Store(false)
	atHeight(added + 5)
	poll.Until(t, 30*time.Second, "both backfills done", func() (bool, string) {
		a, b := history(members["a1"], "tree"), history(members["a2"], "tree")
		tip, _ := d.Tip()
		return a.Cursor >= added+5 && b.Cursor >= added+5, fmt.Sprintf("%d, %d; tip %d", a.Cursor, b.Cursor, tip)
	})

	// The demo protocol judged again from 30 in every member.
	stepping()
	for _, m := range members {
		stop(m)
		var out bytes.Buffer
		if code := run([]string{"rescan", "--config", m.path, "--protocol", "demo", "--from", strconv.Itoa(rescanFrom)}, &env{stdout: &out, stderr: &out}); code != exitOK {
			t.Fatalf("%s: rescan: exit %d: %s", m.id, code, out.String())
		}
	}
	for _, m := range members {
		start(m)
	}
	stepping = stepper(d, 5*time.Millisecond, atTip(stores...))
	for d.Step() {
	}
	stepping()
	if h, id := d.Tip(); h != blocks || id != d.FinalID(h) {
		t.Fatalf("the devnet ends at %d on a competing branch", h)
	}
	final := d.FinalID(blocks)
	var want map[verdictKey]verdictValue
	var r replayed
	poll.Until(t, 60*time.Second, "the final chain published", func() (bool, string) {
		for _, m := range members {
			if st := storeStatus(t, m.dir); st.TipID != final {
				return false, fmt.Sprintf("%s at %d", m.id, st.TipHeight)
			}
			if h := history(m, "demo"); h.Cursor != blocks {
				return false, fmt.Sprintf("%s: demo judged again to %d", m.id, h.Cursor)
			}
		}
		want = storeVerdictMap(t, members["a1"].dir)
		var ok bool
		var gap string
		if r, ok, gap = rec.replaySettled(t); !ok {
			return false, gap
		}
		return len(r.live) == len(want), fmt.Sprintf("%d live of %d", len(r.live), len(want))
	})
	sameVerdicts(t, "after the backfill, the takeovers and the rescan", r.live, want)
	if other := storeVerdictMap(t, members["a2"].dir); len(other) != len(want) {
		t.Fatalf("a2 holds %d verdicts, a1 %d", len(other), len(want))
	}
	var rescinded, again, tree int
	for _, m := range rec.log() {
		ev, _ := publish.DecodeEvent(m.payload)
		if rd, err := ev.Retraction(); err == nil && rd.Rescan != nil {
			rescinded++
		}
		if vd, err := ev.Verdict(); err == nil {
			if publish.IDGeneration(m.id) == 1 {
				again++
			}
			if vd.Protocol == "tree" {
				tree++
			}
		}
	}
	if rescinded == 0 || again == 0 || tree == 0 || r.rollbacks == 0 {
		t.Fatalf("%d rescan retractions, %d verdicts judged again, %d of the tree, %d rollbacks", rescinded, again, tree, r.rollbacks)
	}
	for _, m := range members {
		poll.Until(t, 10*time.Second, m.id+"'s outbox handled", func() (bool, string) {
			_, pending := outboxRows(t, m.dir)
			return pending == 0, fmt.Sprintf("%d pending", pending)
		})
	}
	t.Logf("%d messages: %d verdicts (%d of the tree, %d judged again), %d retractions (%d by the rescan), %d rollbacks; epochs %v",
		len(rec.log()), r.verdicts, tree, again, r.retractions, rescinded, r.rollbacks, r.epochs)
}
