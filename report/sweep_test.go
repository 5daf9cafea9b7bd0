package report

import (
	"context"
	"errors"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/testchain"
	"github.com/async-emission/auditor/rules"
)

// countingSweepStore is the real store, counting the sweeps it serves.
type countingSweepStore struct {
	*db.Store
	sweeps atomic.Int64
}

func (s *countingSweepStore) ConservationData(ctx context.Context, ps []db.ReportProtocol) (*db.ReportData, error) {
	s.sweeps.Add(1)
	return s.Store.ConservationData(ctx, ps)
}

// TestSweeperFindsWhatWasPlanted: a sweep of the sample history finds the
// planted failures, agrees with a report's, sweeps again only when the tip
// moved, and takes each report's result.
func TestSweeperFindsWhatWasPlanted(t *testing.T) {
	s := newSample(t)
	store := &countingSweepStore{Store: s.store}
	ctx := context.Background()
	sw, err := NewSweeper(store, []rules.Protocol{s.protocol}, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sw.Last(); ok {
		t.Fatal("a result before the first sweep")
	}
	if err := sw.SweepNow(ctx); err != nil {
		t.Fatal(err)
	}
	first, ok := sw.Last()
	want := ProtocolSweep{Name: "demo", Lineages: s.lineages, FailingLineages: len(s.failing), MisplacedBoxes: len(s.misplaced)}
	if !ok || len(first.Protocols) != 1 || first.Tip.Height != 120 || first.Empty || first.Read.IsZero() || first.Current != first.Read {
		t.Fatalf("sweep %+v", first)
	}
	got := first.Protocols[0]
	got.Misplaced = ""
	if got != want || first.Protocols[0].Misplaced == "0" {
		t.Fatalf("swept %+v, planted %+v", first.Protocols[0], want)
	}

	// A report of the same state finds the same.
	rep, err := newReporter(t, s.store, t.TempDir(), newFakeClock(reportTime), s.protocol).Run(ctx, Chain{})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Report.Protocols[0].Conservation; sweepOf("demo", &c) != first.Protocols[0] {
		t.Errorf("the report finds %+v, the sweep %+v", sweepOf("demo", &c), first.Protocols[0])
	}

	// The tip has not moved: no sweep, the result is current.
	later := first.Read.Add(time.Minute)
	sw.now = func() time.Time { return later }
	if err := sw.SweepNow(ctx); err != nil {
		t.Fatal(err)
	}
	again, _ := sw.Last()
	if store.sweeps.Load() != 1 || again.Read != first.Read || !again.Current.Equal(later) {
		t.Fatalf("%d sweeps; after a check of an unmoved tip: read %s, current %s", store.sweeps.Load(), again.Read, again.Current)
	}

	// The tip moves: a new sweep.
	s.builder.next()
	sw.now = func() time.Time { return later.Add(time.Minute) }
	if err := sw.SweepNow(ctx); err != nil {
		t.Fatal(err)
	}
	moved, _ := sw.Last()
	if store.sweeps.Load() != 2 || moved.Tip.Height != 121 || moved.Protocols[0] != first.Protocols[0] {
		t.Fatalf("%d sweeps; after the tip moved: %+v", store.sweeps.Load(), moved)
	}

	// A report's result replaces an older one, not a newer one.
	r := &Report{Chain: ChainStatus{TipHeight: 7}, Protocols: []ProtocolReport{{Name: "demo",
		Conservation: Conservation{LineagesChecked: 3, FailingLineages: []LineageFailure{{}}}}}}
	sw.report(moved.Read.Add(-time.Second), r)
	if last, _ := sw.Last(); last.Tip.Height != 121 {
		t.Errorf("a report that read before the last sweep replaced it: %+v", last)
	}
	sw.report(moved.Read.Add(time.Second), r)
	if last, _ := sw.Last(); last.Tip.Height != 7 || last.Protocols[0].Lineages != 3 || last.Protocols[0].FailingLineages != 1 {
		t.Errorf("a report that read after the last sweep: %+v", last)
	}
}

// TestSweeperRuns: Run sweeps at once, then as the tip moves, and stops
// with its context; a Reporter with the Sweeper hands it its result.
func TestSweeperRuns(t *testing.T) {
	s := newSample(t)
	sw, err := NewSweeper(s.store, []rules.Protocol{s.protocol}, time.Millisecond, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sw.Run(ctx) }()
	poll.True(t, 10*time.Second, "the first sweep", func() bool { l, ok := sw.Last(); return ok && l.Tip.Height == 120 })
	s.builder.next()
	poll.True(t, 10*time.Second, "a sweep of the new tip", func() bool { l, _ := sw.Last(); return l.Tip.Height == 121 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}

	// Without an interval, the reports keep it current.
	quiet, err := NewSweeper(s.store, []rules.Protocol{s.protocol}, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewReporter(s.store, nil, Config{Dir: t.TempDir(), Protocols: []rules.Protocol{s.protocol}, Sweeper: quiet}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(context.Background(), Chain{}); err != nil {
		t.Fatal(err)
	}
	if l, ok := quiet.Last(); !ok || l.Tip.Height != 121 || l.Protocols[0].FailingLineages != len(s.failing) {
		t.Fatalf("after a report: %+v (%v)", l, ok)
	}
	if _, err := NewSweeper(s.store, nil, -time.Second, zerolog.Nop()); err == nil {
		t.Error("a negative interval accepted")
	}
}

// BenchmarkSweep times one conservation sweep of a store synced from the
// devnet's async-emission scenario, both protocols, as `auditor demo`
// makes it (AUDITOR_SWEEP_BLOCKS blocks, default 1210).
func BenchmarkSweep(b *testing.B) {
	blocks := uint32(1210)
	if v := os.Getenv("AUDITOR_SWEEP_BLOCKS"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			b.Fatal(err)
		}
		blocks = uint32(n)
	}
	c := testchain.New(b, devnet.Config{Seed: 2026, Blocks: int(blocks), TxsPerBlock: 4,
		Scenario: &devnet.AsyncEmission{ForgeryRate: 0.1}})
	store, _ := testchain.OpenStore(b)
	c.Sync(b, store, blocks)
	sw, err := NewSweeper(store, c.Protocols, 0, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		sw.mu.Lock()
		sw.last = nil // sweep again, though the tip has not moved
		sw.mu.Unlock()
		if err := sw.SweepNow(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	last, _ := sw.Last()
	for _, p := range last.Protocols {
		b.Logf("%s: %d lineages, %d failing, %d misplaced participant boxes", p.Name, p.Lineages, p.FailingLineages, p.MisplacedBoxes)
	}
}
