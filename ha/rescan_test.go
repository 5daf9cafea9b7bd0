package ha

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/publish"
)

// TestRescannedVerdictsKeepTheirGeneration: a protocol judged again
// (auditor rescan) makes verdicts whose ids end in -g<generation>. The
// ledger takes them as verdicts (not foreign), and a leader publishes
// them with the -g suffix kept and the connection the stream counts: a
// block the stream holds connected once gets -1-g1, one the stream rolled
// back once -2-g1. Without the suffix, a verdict judged again would have
// the id of the one it replaces, and JetStream would drop it as a
// duplicate.
func TestRescannedVerdictsKeepTheirGeneration(t *testing.T) {
	f := newFixture(t)
	b1 := f.block(1, 1, 1)
	g1 := f.judged(1, 1, 2, 1, 1)
	if !strings.HasSuffix(g1.ID, "-created-1-g1") {
		t.Fatalf("encoder: id %s", g1.ID)
	}
	l := f.stream(100, b1.Verdicts[0])
	before := l.Counts()
	l.Apply(l.LastSeq()+1, g1)
	if c := l.Counts(); c.Verdicts != before.Verdicts+1 || c.Foreign != before.Foreign || c.Anomalies != before.Anomalies {
		t.Fatalf("a verdict of generation 1 applied: %+v after %+v", c, before)
	}

	// The leader's chain holds block 1 with a verdict of generation 1 the
	// stream lacks, and block 2, which the stream rolled back once.
	l = f.stream(100, b1.Verdicts[0], f.verdict(2, 2, 3, 1, false), f.retraction(f.verdict(2, 2, 3, 1, false), 2, 2, 1), f.rollback(2, 2, 1))
	chain := []Block{{ID: digest(1), Height: 1, Verdicts: []publish.Message{b1.Verdicts[0], g1}}, {ID: digest(2), Parent: digest(1), Height: 2,
		Verdicts: []publish.Message{f.judged(2, 2, 3, 1, 1)}}}
	ids, _ := plan(t, l, snapshot(2, chain, map[ergo.Digest]bool{digest(1): true}), Point{})
	want := []string{g1.ID, f.judged(2, 2, 3, 2, 1).ID}
	if !slices.Equal(ids, want) {
		t.Fatalf("planned\n%s\nwant\n%s", strings.Join(ids, "\n"), strings.Join(want, "\n"))
	}

	// The same rows, written after the comparison, translated.
	l = f.stream(100, b1.Verdicts[0], f.verdict(2, 2, 3, 1, false), f.retraction(f.verdict(2, 2, 3, 1, false), 2, 2, 1), f.rollback(2, 2, 1))
	p := &planner{enc: &publish.Encoder{}, id: "a1", epoch: 7, l: l}
	for i, m := range chain {
		last := m.Verdicts[len(m.Verdicts)-1]
		ok, err := p.translate(publish.Pending{Seq: int64(i + 1), Message: last})
		if err != nil || !ok || p.out[len(p.out)-1].msg.ID != want[i] {
			t.Fatalf("row %d (%s): planned %v (%v), want %s", i+1, last.ID, ok, err, want[i])
		}
	}
	if _, err := p.translate(publish.Pending{Seq: 3, Message: g1}); errors.Is(err, errDiverged) {
		t.Fatalf("a verdict the stream holds: %v", err)
	}
}

// TestLedgerAppliesRescanRetractions: a rescan's retraction (no
// disconnected block: the block stays connected) removes the verdict it
// names from its block's live events, and a verdict of the new generation
// on the same box may follow in the same connection; the block can still
// be disconnected afterwards. A rescan's retraction of a verdict not live,
// or of another connection, is an anomaly; one that also names a
// disconnected block is not of this schema. Nothing panics.
func TestLedgerAppliesRescanRetractions(t *testing.T) {
	f := newFixture(t)
	v := f.verdict(1, 1, 1, 1, false)
	w := f.verdict(1, 1, 2, 1, false)
	g1 := f.judged(1, 1, 1, 1, 1)
	l := f.stream(100, v, w, f.rescinded(v, 1, 1, 1, 1, 1), g1)
	b := l.blocks[digest(1)]
	if b == nil || !b.open() || b.retracting || b.conn != 1 || len(b.live) != 2 || b.live[0].msg.ID != w.ID || b.live[1].msg.ID != g1.ID {
		t.Fatalf("block 1 after the rescan: %+v", b)
	}
	if c := l.Counts(); c.Retractions != 1 || c.Verdicts != 3 {
		t.Fatalf("counts %+v", c)
	}
	applySteps(t, l, []ledgerStep{
		{f.rescinded(v, 1, 1, 1, 1, 1), 0, 1},                            // not live any more
		{f.rescinded(f.verdict(1, 1, 2, 2, false), 1, 1, 2, 1, 1), 0, 1}, // of a connection the stream does not hold
		{withDisconnected(t, f.rescinded(w, 1, 1, 1, 1, 1)), 1, 0},       // a rescan's and a disconnect's at once
		{f.retraction(w, 1, 1, 1), 0, 0},                                 // the block disconnected after all
		{f.retraction(g1, 1, 1, 1), 0, 0},                                //
		{f.rollback(1, 1, 1), 0, 0},                                      //
		{f.judged(1, 1, 1, 2, 1), 0, 0},                                  // connected again
		{f.rescinded(f.judged(1, 1, 1, 2, 1), 1, 1, 2, 1, 2), 0, 0},      // and rescanned again
		{f.rescinded(f.judged(1, 1, 1, 2, 1), 1, 1, 2, 1, 2), 0, 1},      // twice
	})
	if b := l.blocks[digest(1)]; !b.open() || b.conn != 2 || len(b.live) != 0 {
		t.Fatalf("block 1 at the end: %+v", b)
	}
}

// withDisconnected adds a disconnected block to a rescan's retraction.
func withDisconnected(t *testing.T, m publish.Message) publish.Message {
	t.Helper()
	ev, err := publish.DecodeEvent(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ev.Retraction()
	if err != nil {
		t.Fatal(err)
	}
	d.DisconnectedBlock = &publish.BlockData{ID: d.BlockID, Height: d.Height, Connects: 1}
	if ev.Data, err = json.Marshal(d); err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return publish.Message{ID: m.ID, Subject: m.Subject, Payload: payload}
}

// TestTranslateRescanRetraction: the leader's own rescan retraction of a
// verdict (in its store's connection of the block) is published as the
// retraction of the verdict the stream holds live, in the stream's
// connection, with its rescan; then the verdict judged again, in that
// connection with its generation. A rescan's retraction of a verdict the
// stream does not hold live is not published.
func TestTranslateRescanRetraction(t *testing.T) {
	f := newFixture(t)
	v1 := f.verdict(1, 1, 1, 1, false)
	l := f.stream(100, v1, f.retraction(v1, 1, 1, 1), f.rollback(1, 1, 1), f.verdict(1, 1, 1, 2, false)) // the stream's connection 2
	p := &planner{enc: &publish.Encoder{}, id: "a1", epoch: 7, l: l}
	local := f.verdict(1, 1, 1, 1, false) // the leader connected the block once
	for i, c := range []struct {
		row  publish.Message
		want string
	}{
		{f.rescinded(local, 1, 1, 1, 1, 1), publish.RetractionID(digest(1), f.box(1).ComputeID(), "demo", "created", 2, 0)},
		{f.judged(1, 1, 1, 1, 1), publish.VerdictID(digest(1), f.box(1).ComputeID(), "demo", "created", 2, 1)},
		{f.rescinded(f.verdict(1, 1, 5, 1, false), 1, 1, 1, 1, 1), ""},
	} {
		n := len(p.out)
		ok, err := p.translate(publish.Pending{Seq: int64(i + 1), Message: c.row})
		if err != nil || ok != (c.want != "") || (ok && p.out[n].msg.ID != c.want) {
			t.Fatalf("row %d (%s): %v %v, want %q", i+1, c.row.ID, ok, err, c.want)
		}
		if ok {
			ev, _ := publish.DecodeEvent(p.out[n].msg.Payload)
			if d, err := ev.Retraction(); err == nil && (d.Rescan == nil || d.Rescan.Generation != 1 || d.DisconnectedBlock != nil) {
				t.Fatalf("row %d: %+v", i+1, d)
			}
		}
	}
	if c := p.l.Counts(); c.Anomalies != 0 || c.Foreign != 0 {
		t.Fatalf("the projection: %+v", c)
	}
}
