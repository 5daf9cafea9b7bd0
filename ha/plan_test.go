package ha

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/publish"
)

// TestPlanPublishesTheChainToAnEmptyStream: every verdict, in chain
// order, connection 1, stamped with the leader's id and epoch, each
// expecting its predecessor's sequence.
func TestPlanPublishesTheChainToAnEmptyStream(t *testing.T) {
	f := newFixture(t)
	b1, b2 := f.block(1, 1, 1, 2), f.block(2, 2, 3)
	ids, p := plan(t, NewLedger(100), snapshot(2, []Block{b1, b2}, nil), Point{})
	want := []string{b1.Verdicts[0].ID, b1.Verdicts[1].ID, b2.Verdicts[0].ID}
	if !slices.Equal(ids, want) {
		t.Fatalf("planned %v, want %v", ids, want)
	}
	for i, pl := range p.out {
		ev, err := publish.DecodeEvent(pl.msg.Payload)
		if err != nil || ev.Publisher != "a1" || ev.LeaseEpoch != 7 || pl.seq != uint64(i+1) || !strings.HasSuffix(pl.msg.ID, "-1") {
			t.Fatalf("message %d: seq %d, %v, %+v", i, pl.seq, err, ev)
		}
	}
}

// TestPlanLeavesTheBranchTheChainLeft: the stream holds blocks 2 and 3 of
// a branch the leader's chain left at block 1 (its blocks 12 and 13
// instead, 12 re-including block 2's transaction): their verdicts are
// retracted, newest block first, each block rolled back with the fork
// point, then the chain's verdicts the stream lacks are published.
func TestPlanLeavesTheBranchTheChainLeft(t *testing.T) {
	f := newFixture(t)
	a1, a2, a3 := f.block(1, 1, 1, 2), f.block(2, 2, 3), f.block(3, 3, 4)
	l := f.stream(100, slices.Concat(a1.Verdicts, a2.Verdicts, a3.Verdicts)...)
	b2, b3 := f.block(12, 2, 3), f.block(13, 3, 5)
	snap := snapshot(3, []Block{a1, b2, b3}, map[ergo.Digest]bool{digest(1): true, digest(2): false, digest(3): false})
	ids, p := plan(t, l, snap, Point{digest(1), 1})
	want := []string{
		publish.RetractionID(digest(3), f.box(4).ComputeID(), "demo", "created", 1, 0), publish.RollbackID(digest(3), 1),
		publish.RetractionID(digest(2), f.box(3).ComputeID(), "demo", "created", 1, 0), publish.RollbackID(digest(2), 1),
		b2.Verdicts[0].ID, b3.Verdicts[0].ID,
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("planned\n%v\nwant\n%v", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}
	ev, _ := publish.DecodeEvent(p.out[1].msg.Payload)
	rd, err := ev.Rollback()
	if err != nil || rd.ForkID != digest(1) || rd.ForkHeight != 1 || rd.Depth != 2 || rd.OldTip != digest(3) || rd.NewTip != digest(13) || rd.NewHeight != 3 {
		t.Fatalf("rollback %+v (%v)", rd, err)
	}
	// The stream now holds the chain: nothing more to plan.
	snap.Main[digest(12)], snap.Main[digest(13)] = true, true
	if ids, _ := plan(t, l, snap, Point{}); len(ids) != 0 {
		t.Fatalf("planned again: %v", ids)
	}
	var open []ergo.Digest
	for _, b := range l.openBlocks(0) {
		open = append(open, b.id)
	}
	if !slices.Equal(open, []ergo.Digest{digest(13), digest(12), digest(1)}) {
		t.Fatalf("open blocks %v", open)
	}
}

// TestPlanReincludesInANewConnection: a block the stream rolled back,
// back on the leader's chain, is published in connection 2: new ids,
// where the same ids would be dropped as duplicates of what subscribers
// saw retracted.
func TestPlanReincludesInANewConnection(t *testing.T) {
	f := newFixture(t)
	a1, a2, c2 := f.block(1, 1, 1), f.block(2, 2, 2), f.block(22, 2, 2)
	l := f.stream(100, slices.Concat(a1.Verdicts, a2.Verdicts,
		[]publish.Message{f.retraction(a2.Verdicts[0], 2, 2, 1), f.rollback(2, 2, 1)}, c2.Verdicts)...)
	snap := snapshot(2, []Block{a1, a2}, map[ergo.Digest]bool{digest(1): true, digest(22): false})
	ids, _ := plan(t, l, snap, Point{digest(1), 1})
	want := []string{
		publish.RetractionID(digest(22), f.box(2).ComputeID(), "demo", "created", 1, 0), publish.RollbackID(digest(22), 1),
		publish.VerdictID(digest(2), f.box(2).ComputeID(), "demo", "created", 2, 0),
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("planned\n%v\nwant\n%v", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}
}

// TestPlanCompletesWhatAPredecessorLeftHalfDone: a block half published
// gets its missing verdicts in its connection; a block half retracted but
// on the chain is retracted to the end, rolled back and published anew; a
// block whose verdicts the stream holds otherwise than the leader made
// them (another version of the rules) is replaced.
func TestPlanCompletesWhatAPredecessorLeftHalfDone(t *testing.T) {
	f := newFixture(t)
	t.Run("half published", func(t *testing.T) {
		b1 := f.block(1, 1, 1, 2)
		ids, _ := plan(t, f.stream(100, b1.Verdicts[0]), snapshot(1, []Block{b1}, map[ergo.Digest]bool{digest(1): true}), Point{})
		if !slices.Equal(ids, []string{b1.Verdicts[1].ID}) {
			t.Fatalf("planned %v", ids)
		}
	})
	t.Run("half retracted", func(t *testing.T) {
		b0, b1 := f.block(9, 1, 9), f.block(10, 2, 1, 2)
		l := f.stream(100, b0.Verdicts[0], b1.Verdicts[0], b1.Verdicts[1], f.retraction(b1.Verdicts[1], 10, 2, 1))
		ids, _ := plan(t, l, snapshot(2, []Block{b0, b1}, map[ergo.Digest]bool{digest(9): true, digest(10): true}), Point{digest(9), 1})
		want := []string{
			publish.RetractionID(digest(10), f.box(1).ComputeID(), "demo", "created", 1, 0), publish.RollbackID(digest(10), 1),
			publish.VerdictID(digest(10), f.box(1).ComputeID(), "demo", "created", 2, 0),
			publish.VerdictID(digest(10), f.box(2).ComputeID(), "demo", "created", 2, 0),
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("planned\n%v\nwant\n%v", strings.Join(ids, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("other verdicts", func(t *testing.T) {
		b1 := f.block(1, 1, 1)
		invalid := Block{ID: b1.ID, Parent: b1.Parent, Height: 1, Verdicts: []publish.Message{f.verdict(1, 1, 1, 1, true)}}
		ids, p := plan(t, f.stream(100, b1.Verdicts[0]), snapshot(1, []Block{invalid}, map[ergo.Digest]bool{digest(1): true}), Point{})
		if len(ids) != 3 || ids[2] != publish.VerdictID(digest(1), f.box(1).ComputeID(), "demo", "created", 2, 0) {
			t.Fatalf("planned %v", ids)
		}
		ev, _ := publish.DecodeEvent(p.out[2].msg.Payload)
		if vd, err := ev.Verdict(); err != nil || vd.Verdict != "invalid" {
			t.Fatalf("republished %+v (%v)", vd, err)
		}
	})
}

// TestPlanWaitsForAChainBehindTheStream: a leader whose tip is below a
// block the stream holds does not compare: it would retract what its
// chain has not reached yet.
func TestPlanWaitsForAChainBehindTheStream(t *testing.T) {
	f := newFixture(t)
	b1, b2, b3 := f.block(1, 1, 1), f.block(2, 2, 2), f.block(3, 3, 3)
	l := f.stream(100, slices.Concat(b1.Verdicts, b2.Verdicts, b3.Verdicts)...)
	c, err := compare(l, snapshot(2, []Block{b1, b2}, map[ergo.Digest]bool{digest(1): true, digest(2): true, digest(3): false}))
	if err != nil || c.behind != 3 {
		t.Fatalf("behind %+v (%v), want 3", c, err)
	}
}

// TestTranslatePublishesTheOutboxAsTheStreamCounts: outbox rows written
// after the stream was brought to the chain are published in the
// stream's connections: a block the stream rolled back, connected again
// by the leader for the second time although the stream saw it once,
// gets connection 2; a verdict the stream holds is not published again;
// a retraction is built from the verdict the stream holds; a rollback
// before its block's retractions does not follow from the stream.
func TestTranslatePublishesTheOutboxAsTheStreamCounts(t *testing.T) {
	f := newFixture(t)
	b1, b2 := f.block(1, 1, 1), f.block(2, 2, 2)
	l := f.stream(100, slices.Concat(b1.Verdicts, b2.Verdicts)...)
	p := &planner{enc: &publish.Encoder{}, id: "a1", epoch: 7, l: l}
	row := func(seq int64, m publish.Message) publish.Pending { return publish.Pending{Seq: seq, Message: m} }
	// The leader's own third connection of block 2, say, writes connects 3.
	local := f.verdict(2, 2, 2, 3, false)
	cases := []struct {
		row     publish.Pending
		planned string // "" for none
		err     error
	}{
		{row(1, b2.Verdicts[0]), "", nil}, // held already
		{row(2, f.rollback(2, 2, 1)), "", errDiverged},
		{row(3, f.retraction(local, 2, 2, 3)), publish.RetractionID(digest(2), f.box(2).ComputeID(), "demo", "created", 1, 0), nil},
		{row(4, f.rollback(2, 2, 3)), publish.RollbackID(digest(2), 1), nil},
		{row(5, local), publish.VerdictID(digest(2), f.box(2).ComputeID(), "demo", "created", 2, 0), nil},
		{row(6, publish.Message{ID: "x", Subject: "auditor.x", Payload: []byte("not an event")}), "", nil},
	}
	for _, c := range cases {
		n := len(p.out)
		ok, err := p.translate(c.row)
		switch {
		case !errors.Is(err, c.err) || (c.err != nil) != (err != nil):
			t.Fatalf("row %d: %v, want %v", c.row.Seq, err, c.err)
		case ok != (c.planned != ""):
			t.Fatalf("row %d: planned %v, want %q", c.row.Seq, ok, c.planned)
		case ok && (p.out[n].msg.ID != c.planned || p.out[n].row != c.row.Seq):
			t.Fatalf("row %d: planned %s (row %d), want %s", c.row.Seq, p.out[n].msg.ID, p.out[n].row, c.planned)
		}
	}
	rep, err := (&publish.Encoder{}).ReportReady(publish.Report{Name: "audit", Time: time.UnixMilli(1)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := p.translate(row(7, rep)); !ok || err != nil || p.out[len(p.out)-1].msg.ID != rep.ID {
		t.Fatalf("report: %v %v", ok, err)
	}
}
