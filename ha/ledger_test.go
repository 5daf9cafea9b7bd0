package ha

import (
	"testing"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/publish"
)

// TestLedgerCountsWhatItCannotTake: messages that are not the auditor's
// events, or whose id header is not their event's, are foreign; events
// that cannot follow what came before are anomalies; neither changes what
// the ledger holds, and a message at or below the last sequence applied
// is not applied again.
func TestLedgerCountsWhatItCannotTake(t *testing.T) {
	f := newFixture(t)
	b1 := f.block(1, 1, 1, 2)
	v1, v2 := b1.Verdicts[0], b1.Verdicts[1]
	l := f.stream(100, v1)
	applySteps(t, l, []ledgerStep{
		{publish.Message{ID: "x", Payload: []byte(`{"not":"an event"}`)}, 1, 0},
		{publish.Message{ID: "another id", Payload: v2.Payload}, 1, 0},
		{v1, 0, 1},                           // the same verdict twice in one connection
		{f.retraction(v2, 1, 1, 1), 0, 1},    // of a verdict not live
		{f.verdict(1, 1, 3, 2, false), 0, 1}, // a new connection while the block is connected
		{f.retraction(v1, 1, 1, 1), 0, 0},    // fine
		{f.verdict(1, 1, 2, 1, false), 0, 1}, // a verdict after a retraction of its connection
		{f.rollback(1, 1, 1), 0, 0},          // fine
		{f.verdict(1, 1, 2, 1, false), 0, 1}, // of a connection rolled back
		{f.verdict(1, 1, 2, 2, false), 0, 0}, // the block connected again
	})
	b := l.blocks[digest(1)]
	if b == nil || b.conn != 2 || b.rolled != 1 || len(b.live) != 1 || b.live[0].msg.ID != publish.VerdictID(digest(1), f.box(2).ComputeID(), "demo", "created", 2, 0) {
		t.Fatalf("block 1: %+v", b)
	}
	seq := l.LastSeq()
	l.Apply(seq, f.rollback(1, 1, 2))
	if l.LastSeq() != seq || !l.blocks[digest(1)].open() {
		t.Fatal("a message at the last sequence was applied again")
	}
}

// TestLedgerFloor: the ledger keeps the last window heights; below them
// the chain is taken as published, and the ledger keeps only the keys of
// the live verdicts (a backfill or a rescan publishes events there), of
// blocks with some or rolled back, compacted every quarter window. When
// the stream's first messages are gone, the height of the first chain
// event it holds is the floor too (a backfilled verdict of an old block
// does not lower it); a stream without chain events has floor 0
// (everything is to be published).
func TestLedgerFloor(t *testing.T) {
	f := newFixture(t)
	l := NewLedger(10)
	if l.Floor() != 0 {
		t.Fatalf("empty: floor %d", l.Floor())
	}
	for h := uint32(1); h <= 30; h++ {
		f.apply(l, f.verdict(byte(h), h, byte(h), 1, false))
	}
	if l.Floor() != 21 {
		t.Fatalf("floor %d, want 21", l.Floor())
	}
	for id, b := range l.blocks {
		if c := b.live[0].compact(); len(b.live) != 1 || c && b.height >= l.Floor() || !c && b.height < 18 || b.live[0].key.box != f.box(byte(b.height)).ComputeID() {
			t.Fatalf("block %s at %d: %+v (compacted every quarter window)", id, b.height, b.live)
		}
	}
	f.apply(l, f.rescinded(f.verdict(2, 2, 2, 1, false), 2, 2, 1, 1, 1))
	f.apply(l, f.judged(2, 2, 2, 1, 1))                                  // below the floor: compact at once
	f.apply(l, f.rescinded(f.verdict(3, 3, 3, 1, false), 3, 3, 1, 1, 1)) // block 3 keeps nothing
	for h := uint32(31); h <= 33; h++ {
		f.apply(l, f.verdict(byte(h), h, byte(h), 1, false))
	}
	if b := l.blocks[digest(2)]; b == nil || len(b.live) != 1 || !b.live[0].compact() || b.live[0].key.generation != 1 {
		t.Fatalf("block 2 rescanned: %+v", b)
	}
	if b := l.blocks[digest(3)]; b != nil {
		t.Fatalf("block 3, its verdict retracted by a rescan, kept: %+v", b)
	}
	if l.Reach("demo", 1) != 2 || l.Reach("demo", 0) != 33 || l.Reach("other", 0) != 0 {
		t.Fatalf("reach %d, %d", l.Reach("demo", 1), l.Reach("demo", 0))
	}
	gone := NewLedger(100)
	gone.Apply(40, f.verdict(1, 50, 1, 1, false)) // the stream's messages 1 to 39 aged out
	gone.Apply(41, f.judged(7, 5, 7, 1, 1))       // a backfill's verdict of an old block
	if gone.Floor() != 50 {
		t.Fatalf("front gone: floor %d, want 50", gone.Floor())
	}
	empty := NewLedger(100)
	empty.Skip(12)
	if empty.Floor() != 0 || empty.LastSeq() != 12 {
		t.Fatalf("no chain event: floor %d, last %d", empty.Floor(), empty.LastSeq())
	}
}

// FuzzLedgerApply: whatever the stream holds, Apply never panics, and the
// ledger stays coherent: a block's live verdicts are of a connected block,
// one per box, protocol, kind and generation, each carrying its block's
// connection and its key's generation.
func FuzzLedgerApply(f *testing.F) {
	fx := newFixture(f)
	b1 := fx.block(1, 1, 1, 2)
	for _, m := range []publish.Message{b1.Verdicts[0], b1.Verdicts[1], fx.retraction(b1.Verdicts[0], 1, 1, 1), fx.rollback(1, 1, 1), fx.verdict(1, 1, 1, 2, true),
		fx.rescinded(b1.Verdicts[0], 1, 1, 1, 1, 1), fx.judged(1, 1, 1, 1, 1)} {
		f.Add(m.ID, m.Payload, uint8(1))
	}
	f.Add("x", []byte(`{"specversion":"1.0","id":"x","source":"s","type":"org.ergoplatform.auditor.chain.rollback.v1","time":"2020-01-01T00:00:00Z","datacontenttype":"application/json","data":{"block":{"connects":-1}}}`), uint8(3))
	f.Fuzz(func(t *testing.T, id string, payload []byte, step uint8) {
		l := NewLedger(100)
		l.Apply(1, b1.Verdicts[0])
		l.Apply(l.LastSeq()+uint64(step), publish.Message{ID: id, Payload: payload})
		l.Apply(l.LastSeq()+1, publish.Message{ID: id, Payload: payload})
		for bid, b := range l.blocks {
			if len(b.live) > 0 && !b.open() {
				t.Fatalf("block %s: live verdicts in a closed block %+v", bid, b)
			}
			keys := map[eventKey]bool{}
			for _, e := range b.live {
				if keys[e.key] {
					t.Fatalf("block %s: two live verdicts on %+v", bid, e.key)
				}
				keys[e.key] = true
				if c, g, ok := publish.IDConnects(e.msg.ID); !ok || c != b.conn || g != e.key.generation {
					t.Fatalf("block %s: live %s in connection %d, key %+v", bid, e.msg.ID, b.conn, e.key)
				}
				if e.key.box == (ergo.Digest{}) && len(payload) == 0 {
					t.Fatal("a live verdict from nothing")
				}
			}
		}
	})
}
