package ha

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/natstest"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/publish"
)

// TestCompareJudgesEachProtocolByItsHistory: a verdict the stream holds
// and the leader's chain does not is judged by its protocol's history in
// the leader's store. Of a protocol the store has no history of (pruned,
// or another member's configuration), above the protocol's cursor (a
// backfill that has not got there), or of an earlier generation the
// leader has no rescan retraction of (a prune's): it is left, and its
// block is not rolled back. Of an earlier generation the leader's rescan
// retracted: it is retracted, the block staying. Else (the leader judged
// the block otherwise): the block is rolled back.
func TestCompareJudgesEachProtocolByItsHistory(t *testing.T) {
	f := newFixture(t)
	demo := f.event("demo", 5, 5, 1, 1, 0, false)
	stream := []publish.Message{demo,
		f.event("tree", 5, 5, 2, 1, 0, false),      // tree is backfilled to 4 in the leader's store
		f.event("gone", 5, 5, 3, 1, 0, false),      // gone was pruned
		f.event("back", 5, 5, 4, 1, 0, false),      // back was pruned and configured again (generation 1)
		f.event("rescanned", 5, 5, 5, 1, 0, false), // rescanned from 3 (generation 1)
	}
	blk := Block{ID: digest(5), Parent: digest(4), Height: 5, Verdicts: []publish.Message{demo}}
	snap := snapshot(5, []Block{blk}, map[ergo.Digest]bool{digest(5): true})
	snap.Protocols = map[string]Protocol{"demo": {Cursor: 5}, "tree": {Cursor: 4, BackfillFrom: 1},
		"back": {Cursor: 5, Generation: 1, BackfillFrom: 1}, "rescanned": {Cursor: 2, Generation: 1, BackfillFrom: 3}}
	l := f.stream(100, stream...)
	c, err := compare(l, snap)
	if err != nil || len(c.stale) != 0 || c.behind != 0 || len(c.older) != 2 {
		t.Fatalf("%+v %v: want two verdicts of older generations, nothing stale", c, err)
	}
	p := &planner{enc: &publish.Encoder{}, id: "a1", epoch: 7, l: l}
	r := c.older[slices.IndexFunc(c.older, func(r liveRef) bool { return r.key.protocol == "rescanned" })]
	rescinded := f.rescinded(stream[4], 5, 5, 1, 3, 1)
	n, err := p.rescind(c.older, map[VerdictRef]publish.Message{r.ref(): rescinded}, snap.Protocols)
	if err != nil || n != 1 || len(p.out) != 1 || p.out[0].msg.ID != publish.RetractionID(digest(5), f.box(5).ComputeID(), "rescanned", "created", 1, 0) {
		t.Fatalf("rescinded %d (%v): %+v", n, err, p.out)
	}
	if err := p.publishChain(snap.Blocks); err != nil || len(p.out) != 1 {
		t.Fatalf("published %d (%v)", len(p.out)-1, err)
	}
	if b := l.blocks[digest(5)]; !b.open() || b.retracting || len(b.live) != 4 {
		t.Fatalf("block 5 after: %+v", b)
	}

	// The leader's store retracted the rescanned protocol's verdict by a
	// disconnect (block 5 left its chain, before the rescan, and came
	// back): the stream never saw that disconnect, and the rescan could
	// not retract the verdict. Block 5 is stale, as one the chain left;
	// what the rescan did not retract is left as it was.
	l = f.stream(100, stream...)
	c, err = compare(l, snap)
	if err != nil {
		t.Fatal(err)
	}
	gone := f.retraction(stream[4], 5, 5, 1)
	found := map[VerdictRef]publish.Message{c.older[slices.IndexFunc(c.older, func(r liveRef) bool { return r.key.protocol == "rescanned" })].ref(): gone}
	if st := disconnected(c.older, found, 1, 5); len(st) != 1 || st[0].id != digest(5) {
		t.Fatalf("stale after a disconnect the stream did not see: %+v", st)
	}
	if st := disconnected(c.older, found, 6, 9); len(st) != 0 {
		t.Fatalf("a block outside the heights compared made stale: %+v", st)
	}
	p = &planner{enc: &publish.Encoder{}, id: "a1", epoch: 7, l: l}
	if n, err := p.rescind(c.older, found, snap.Protocols); n != 0 || err != nil {
		t.Fatalf("a disconnect's retraction published as a rescan's: %d %v", n, err)
	}

	// The leader's tree is past block 5 and has no verdict on box 2: it
	// judged the block otherwise.
	snap.Protocols["tree"] = Protocol{Cursor: 5, BackfillFrom: 1}
	if c, err := compare(f.stream(100, stream...), snap); err != nil || len(c.stale) != 1 {
		t.Fatalf("%+v %v: want block 5 stale", c, err)
	}
}

// lifecycleChain is a chain of n blocks, block h with a verdict of
// protocol demo on box h; protocol tree (added later) has a verdict on
// box 100+h at every block, which the store judges as its backfill goes.
type lifecycleChain struct {
	f *chainFixture
	n uint32
}

func (lc lifecycleChain) store() *memChain {
	c := &memChain{done: map[int64]bool{}, protocols: map[string]Protocol{}, rescinded: map[VerdictRef]publish.Message{}}
	for h := uint32(1); h <= lc.n; h++ {
		c.add(lc.f.block(byte(h), h, byte(h)))
	}
	c.protocols["demo"] = Protocol{Cursor: lc.n}
	c.protocols["tree"] = Protocol{BackfillFrom: 1, Since: time.Now()}
	return c
}

// backfill judges tree up to height to in c.
func (lc lifecycleChain) backfill(c *memChain, to uint32) {
	for h := c.protocols["tree"].Cursor + 1; h <= to; h++ {
		c.judge("tree", h, lc.f.event("tree", byte(h), h, byte(100+h), 1, 0, false))
	}
}

// streamMessages reads the stream's messages, in order.
func streamMessages(t *testing.T, url string) []publish.Message {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	s, err := js.Stream(ctx, publish.DefaultStream)
	if err != nil {
		return nil
	}
	var out []publish.Message
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, publish.Message{ID: m.Header.Get(nats.MsgIdHdr), Subject: m.Subject, Payload: m.Data})
	}
	return out
}

// subscriberView replays the stream as a subscriber does and fails the
// test on what a subscriber must never see: an id twice, a retraction of
// a verdict not live, two live verdicts on a box, protocol and kind. It
// returns the live verdicts' ids, and how many rollbacks the stream holds.
func subscriberView(t *testing.T, msgs []publish.Message) (live []string, rollbacks int) {
	t.Helper()
	seen := map[string]bool{}
	byID := map[string]string{} // live verdict id -> box/protocol/kind
	keys := map[string]bool{}
	for i, m := range msgs {
		if seen[m.ID] {
			t.Fatalf("message %d: id %s twice", i+1, m.ID)
		}
		seen[m.ID] = true
		ev, err := publish.DecodeEvent(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case publish.TypeVerdict:
			d, _ := ev.Verdict()
			k := d.Box.ID.String() + "/" + d.Protocol + "/" + d.Kind
			if keys[k] {
				t.Fatalf("message %d (%s): a second live verdict on %s", i+1, m.ID, k)
			}
			keys[k], byID[m.ID] = true, k
		case publish.TypeRetracted:
			d, _ := ev.Retraction()
			k, ok := byID[d.Retracts]
			if !ok {
				t.Fatalf("message %d (%s) retracts %s, not live", i+1, m.ID, d.Retracts)
			}
			delete(byID, d.Retracts)
			delete(keys, k)
		case publish.TypeRollback:
			rollbacks++
		}
	}
	return slices.Sorted(maps.Keys(byID)), rollbacks
}

// chainIDs are the ids of the verdicts of c's chain, in the connection the
// stream holds its blocks in (1: none rolled back).
func chainIDs(c *memChain) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, b := range c.blocks {
		for _, m := range b.Verdicts {
			out = append(out, m.ID)
		}
	}
	slices.Sort(out)
	return out
}

// settled waits until the stream's live verdicts are want, and checks
// that it holds no rollback and each generation of protocol's verdicts in
// block order.
func settled(t *testing.T, url, what string, want []string, protocol string) []publish.Message {
	t.Helper()
	var msgs []publish.Message
	poll.Until(t, 20*time.Second, what, func() (bool, string) {
		msgs = streamMessages(t, url)
		live, _ := subscriberView(t, msgs)
		return slices.Equal(live, want), fmt.Sprintf("%d live of %d", len(live), len(want))
	})
	_, rollbacks := subscriberView(t, msgs)
	if rollbacks != 0 {
		t.Fatalf("%s: %d rollbacks: good blocks rolled back", what, rollbacks)
	}
	last := map[int]uint32{}
	for _, m := range msgs {
		ev, _ := publish.DecodeEvent(m.Payload)
		if d, err := ev.Verdict(); err == nil && d.Protocol == protocol {
			g := publish.IDGeneration(m.ID)
			if d.Height < last[g] {
				t.Fatalf("%s: %s's verdict of height %d after one of %d (generation %d)", what, protocol, d.Height, last[g], g)
			}
			last[g] = d.Height
		}
	}
	return msgs
}

// lifecycleMember is the configuration of member id in these tests: a
// window of 8 heights (so that a backfill reaches below it), rounds of 5
// events.
func lifecycleMember(id string) Config {
	return Config{Lease: LeaseConfig{ID: id, TTL: time.Second, Replicas: 1}, Stream: publish.StreamConfig{Replicas: 1},
		PollInterval: 20 * time.Millisecond, Window: 8, PlanEvents: 5}
}

// takesOverQuietly starts member id on c, a store less advanced than the
// stream's publisher: it takes the lease, compares, publishes nothing and
// handles its outbox.
func takesOverQuietly(t *testing.T, url string, c *memChain, id string) *runMember {
	t.Helper()
	m := startMemberWith(t, url, c, lifecycleMember(id))
	poll.Until(t, 10*time.Second, id+" leading", func() (bool, string) {
		st := m.Status()
		return st.Role == Leader && st.Reconciliations > 0 && c.pending() == 0, fmt.Sprintf("%+v, %d pending", st.LeaseState, c.pending())
	})
	if st := m.Status(); st.Published != 0 {
		t.Fatalf("%s, behind the stream's publisher, published %d events at its takeover", id, st.Published)
	}
	return m
}

// stopMember stops m (it gives the lease up) and waits for it.
func stopMember(m *runMember) {
	m.stop()
	<-m.done
}

// TestTakeoverMidBackfill: protocol tree is added to a group whose
// stream holds the chain's demo verdicts (30 blocks; the members compare
// the last 8 heights). The leader a publishes tree's backfill to height
// 10 and stops; b, whose backfill is further (25), takes over and
// publishes what the stream lacks of it, below the window first, in block
// order; b stops, and a, behind it (18), takes over: it rolls back
// nothing, publishes nothing b published, and goes on from 26 as its
// backfill reaches the tip. The stream ends holding every verdict of the
// chain once, tree's in block order, no retraction, no rollback.
func TestTakeoverMidBackfill(t *testing.T) {
	url := natstest.NewCluster(t, 1).URLs()[0]
	lc := lifecycleChain{f: newFixture(t), n: 30}
	a, b := lc.store(), lc.store()
	ma := startMemberWith(t, url, a, lifecycleMember("a"))
	lc.backfill(a, 10)
	ma.Notify()
	settled(t, url, "a's chain, tree to 10", chainIDs(a), "tree")

	lc.backfill(b, 25)
	stopMember(ma)
	mb := startMemberWith(t, url, b, lifecycleMember("b"))
	settled(t, url, "b's chain, tree to 25", chainIDs(b), "tree")

	lc.backfill(a, 18)
	stopMember(mb)
	ma = takesOverQuietly(t, url, a, "a")
	lc.backfill(a, 30)
	ma.Notify()
	msgs := settled(t, url, "a's chain, tree to 30", chainIDs(a), "tree")
	if len(msgs) != len(chainIDs(a)) {
		t.Fatalf("%d messages for %d verdicts: %v", len(msgs), len(chainIDs(a)), msgs)
	}
	poll.Until(t, 10*time.Second, "a's outbox handled", func() (bool, string) { return a.pending() == 0, fmt.Sprint(a.pending()) })
	if st := ma.Status(); st.Published != 5 || st.Errors != 0 {
		t.Fatalf("a published %d (tree 26 to 30), %d errors", st.Published, st.Errors)
	}
}

// TestTakeoverAfterRescan: the group's stream holds the chain of 30
// blocks (demo and tree); demo is rescanned from height 5 in every store
// (generation 1) while the group is down, and b's backfill judges it
// again to 24 before b starts. b takes over first: it retracts demo's
// verdicts from 5 (below the window too) by the rescan, every one before
// the first verdict judged again, with no rollback, and publishes demo's
// verdicts judged again (some now invalid, with ids ending in -g1); b
// stops, and a, whose backfill is behind (12), takes over: it retracts
// nothing more, republishes nothing, and publishes from 25 as its
// backfill reaches the tip. Each verdict of the final chain is live once.
func TestTakeoverAfterRescan(t *testing.T) {
	url := natstest.NewCluster(t, 1).URLs()[0]
	f := newFixture(t)
	lc, lcb := lifecycleChain{f: f, n: 31}, lifecycleChain{f: f, n: 30}
	a, b := lc.store(), lcb.store()
	lc.backfill(a, 31)
	lcb.backfill(b, 30)
	ma := startMemberWith(t, url, a, lifecycleMember("a"))
	settled(t, url, "the chain", chainIDs(a), "tree")
	stopMember(ma)

	rejudge := func(c *memChain, to uint32) {
		for h := c.protocols["demo"].Cursor + 1; h <= to; h++ {
			c.judge("demo", h, f.event("demo", byte(h), h, byte(h), 1, 1, h%2 == 0))
		}
	}
	for _, c := range []*memChain{a, b} {
		c.rescan(t, f.enc, "demo", 5, 1)
	}
	// b connects block 31 only now, judging the tree there, not demo
	// (its history of demo ends at 4): it has no retraction of the demo
	// verdict a published there.
	blk := f.block(31, 31)
	blk.Verdicts = []publish.Message{f.event("tree", 31, 31, 131, 1, 0, false)}
	b.add(blk)
	b.protocols["tree"] = Protocol{Cursor: 31, BackfillFrom: 1}
	rejudge(b, 24) // into the window (23 to 30), which b compares in rounds of 5 events
	mb := startMemberWith(t, url, b, lifecycleMember("b"))
	settled(t, url, "demo retracted from 5, judged again to 24", chainIDs(b), "demo")
	stopMember(mb)

	rejudge(a, 12)
	ma = takesOverQuietly(t, url, a, "a")
	rejudge(a, 31)
	ma.Notify()
	msgs := settled(t, url, "demo judged again to 30", chainIDs(a), "demo")
	var rescinded, g1, lastRescinded, firstG1 int
	for i, m := range msgs {
		ev, _ := publish.DecodeEvent(m.Payload)
		if d, err := ev.Retraction(); err == nil && d.Rescan != nil {
			rescinded, lastRescinded = rescinded+1, i
		}
		if _, g, _ := publish.IDConnects(m.ID); g == 1 {
			if g1++; g1 == 1 {
				firstG1 = i
			}
		}
	}
	if rescinded != 27 || g1 != 27 || len(msgs) != 62+27+27 {
		t.Fatalf("%d messages: %d rescan retractions, %d of generation 1; want 27 and 27 of 116", len(msgs), rescinded, g1)
	}
	// Every retraction of the rescan came before the first verdict of the
	// generation it began: a takeover after that verdict has none to look
	// for.
	if lastRescinded > firstG1 {
		t.Fatalf("a rescan retraction (message %d) after the first verdict of generation 1 (message %d)", lastRescinded+1, firstG1+1)
	}
}
