package ha

import (
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
