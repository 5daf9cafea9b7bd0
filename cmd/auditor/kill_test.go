package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/internal/poll"
)

// reconciledMsg is what the relay logs when it marks, without
// republishing, pending events it finds at the stream's end.
const reconciledMsg = "rows already in the stream marked published"

// killAt waits until the store's tip reaches threshold and, midPublish,
// until the outbox holds events not marked acknowledged (the relay is
// publishing), else a random moment more; then it SIGKILLs p. It returns
// the events left pending and whether p had marked, at its start, events
// it found already in the stream.
func killAt(t *testing.T, p *process, watch *db.Store, threshold uint32, midPublish bool, rng *rand.Rand, what string) (pending int64, reconciled bool) {
	t.Helper()
	poll.Until(t, time.Minute, fmt.Sprintf("%s: progress to height %d", what, threshold), func() (bool, string) {
		if p.exited() {
			t.Fatalf("the auditor exited before %s (%v) at tip %d, threshold %d:\n%s", what, p.err, watchTip(t, watch), threshold, p.stderr)
		}
		tip := watchTip(t, watch)
		if !midPublish || tip < threshold {
			return tip >= threshold, fmt.Sprintf("tip %d", tip)
		}
		return watchPending(t, watch) > 0, fmt.Sprintf("tip %d, nothing pending", tip)
	})
	if !midPublish {
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
	}
	p.signal(t, syscall.SIGKILL)
	<-p.done
	return watchPending(t, watch), p.logged(reconciledMsg)
}

// TestKilledThirtyTimesWithForksAndNATSRestarts: `auditor run`, publishing
// to an external NATS, follows a chain that forks every few blocks (the
// devnet shows each competing branch, then the final one) and is SIGKILLed
// thirty times, restarted each time: half of the kills land while the
// outbox holds events JetStream has not acknowledged (some during a NATS
// outage), and NATS itself is restarted under the running auditor several
// times. In the end the stream holds every event the outbox was written,
// each once and in order (its count is the events written, with no
// duplicate), nothing is pending, the events not retracted are one per
// stored verdict, and the state digest is that of a straight sync of the
// final chain.
func TestKilledThirtyTimesWithForksAndNATSRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	const (
		// Not at a fork: --until-height must not stop on a competing
		// branch that the final chain then replaces.
		blocks     = 302
		kills      = 30
		reorgEvery = 12
		reorgDepth = 3
	)
	bin := auditorBinary(t)
	dcfg := devnet.Config{Seed: 20, Blocks: blocks, TxsPerBlock: 3, ReorgEvery: reorgEvery, ReorgDepth: reorgDepth}

	// The straight sync: the final chain at once, no fork seen, no kill.
	straight := dcfg
	straight.ReorgEvery, straight.ReorgDepth = 0, 0 // one seed, one final chain, reorgs or not
	refDevnet, refURL := newScenarioDevnet(t, straight)
	start := time.Now()
	refPath, refCfg := scenarioConfig(t, refDevnet, refURL, "")
	if p := startProcess(t, bin, "run", "--config", refPath, "--node", refURL, "--until-height", fmt.Sprint(blocks)); p.wait(t, time.Minute) != nil {
		t.Fatalf("the straight sync failed:\n%s", p.stderr)
	}
	t.Logf("the straight sync took %s", time.Since(start).Round(time.Millisecond))
	want := storeStatus(t, refCfg.DataDir)
	began := time.Now()

	// The chain as it grows, forks shown: a block a millisecond, but near a
	// fork only once the auditor has the tip (or a moment has passed: it
	// may be dead), so that it sees the forks.
	dcfg.BlockTime = time.Hour // only Step shows blocks, and the forks
	d, url := newScenarioDevnet(t, dcfg)
	natsDir := t.TempDir()
	ns := natsServer(t, natsDir, 0)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ns.ClientURL(), "nats://"))
	natsPort, _ := strconv.Atoi(port)
	cfgPath, cfg := scenarioConfig(t, d, url, ns.ClientURL())
	watch := openWatch(t, cfg.DataDir)
	ctx, stopStepping := context.WithCancel(context.Background())
	var stepper sync.WaitGroup
	stepper.Add(1)
	go func() {
		defer stepper.Done()
		for ctx.Err() == nil && d.Step() {
			h, id := d.Tip()
			wait := 2 * time.Second
			if r := h % reorgEvery; r+reorgDepth+1 < reorgEvery && r > 1 {
				wait = 0
			}
			for deadline := time.Now().Add(wait); time.Now().Before(deadline); {
				if tip, ok, err := watch.Tip(ctx); err == nil && ok && tip.Height == h && tip.ID == id {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Millisecond):
			}
		}
	}()
	defer func() { stopStepping(); stepper.Wait() }()

	rng := rand.New(rand.NewPCG(2026, 30))
	args := []string{"run", "--config", cfgPath, "--node", url, "--until-height", fmt.Sprint(blocks)}
	natsDown := false
	restartNATS := func() {
		ns = natsServer(t, natsDir, natsPort)
		natsDown = false
	}
	var (
		leftPending  int // kills after which the outbox held unacknowledged events
		natsRestarts int
		reconciled   int // restarts that found acknowledged events not marked
		log          []string
	)
	for k := range kills {
		tip := watchTip(t, watch)
		if tip >= blocks-10 {
			t.Fatalf("the chain is nearly synced after %d kills: too short for %d", k, kills)
		}
		// A random threshold in the next stretch of at most 1/(40-k) of
		// what remains, so that a quarter of the chain is left after 30.
		threshold := tip + 1 + uint32(rng.IntN(max(1, int(blocks-tip)/(40-k))))
		midPublish := k%2 == 1
		p := startProcess(t, bin, args...)
		alive := func() {
			if p.exited() {
				t.Fatalf("the auditor exited before kill %d (%v) at tip %d, threshold %d:\n%s", k+1, p.err, watchTip(t, watch), threshold, p.stderr)
			}
		}
		switch k % 6 {
		case 2: // NATS restarted under the running auditor, mid-stretch
			mid := tip + (threshold-tip)/2
			poll.Until(t, time.Minute, fmt.Sprintf("kill %d: progress to %d", k+1, mid), func() (bool, string) {
				alive()
				return watchTip(t, watch) >= mid, fmt.Sprintf("tip %d", watchTip(t, watch))
			})
			ns.Shutdown()
			time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
			restartNATS()
			natsRestarts++
		case 5: // NATS down from here to after the kill: events pile up
			ns.Shutdown()
			natsDown = true
		}
		pending, found := killAt(t, p, watch, threshold, midPublish, rng, fmt.Sprintf("kill %d", k+1))
		if found {
			reconciled++
		}
		if pending > 0 {
			leftPending++
		}
		log = append(log, fmt.Sprintf("%d@%d", pending, watchTip(t, watch)))
		if natsDown {
			restartNATS()
			natsRestarts++
		}
	}
	t.Logf("%d kills after %s", kills, time.Since(began).Round(time.Millisecond))
	// The rest of the chain at once: the last run catches up.
	stopStepping()
	stepper.Wait()
	for d.Step() {
	}
	p := startProcess(t, bin, args...)
	if err := p.wait(t, 2*time.Minute); err != nil {
		t.Fatalf("final run: %v\n%s", err, p.stderr)
	}
	if p.logged(reconciledMsg) {
		reconciled++
	}
	t.Logf("the final run after %s", time.Since(began).Round(time.Millisecond))
	t.Logf("events pending@tip after each kill: %s; %d NATS restarts; %d restarts found acknowledged events unmarked", strings.Join(log, " "), natsRestarts, reconciled)
	if leftPending < kills/2 {
		t.Fatalf("only %d of %d kills left events unpublished", leftPending, kills)
	}

	// The stream is the outbox: every event written, once, in order.
	ids, subjects := streamMessages(t, ns.ClientURL())
	sameEvents(t, fmt.Sprintf("after %d kills", kills), ns.ClientURL(), cfg.DataDir)
	written, _ := outboxRows(t, cfg.DataDir)
	retracted, rollbacks := countUndone(ids, subjects)
	if rollbacks == 0 || retracted == 0 {
		t.Fatalf("%d rollbacks, %d retractions: the auditor saw no fork", rollbacks, retracted)
	}
	if live := int64(len(ids) - rollbacks - 2*retracted); live != verdictCount(t, cfg.DataDir) {
		t.Fatalf("%d verdict events not retracted, %d verdicts stored", live, verdictCount(t, cfg.DataDir))
	}
	got := storeStatus(t, cfg.DataDir)
	if got.StateDigest != want.StateDigest || got.TipHeight != blocks {
		t.Fatalf("after %d kills: tip %d digest %s; the straight sync: tip %d digest %s", kills, got.TipHeight, got.StateDigest, want.TipHeight, want.StateDigest)
	}
	t.Logf("after %d kills (%d leaving events pending) and %d NATS restarts: %d events written, %d in the stream (%d retractions, %d rollbacks), no duplicate; digest %s",
		kills, leftPending, natsRestarts, len(written), len(ids), retracted, rollbacks, got.StateDigest)
}

// TestKilledMidPublishTenTimes: `auditor run` publishing to an external
// NATS is SIGKILLed ten times during a sync, half of the kills landing
// while the outbox holds events JetStream has not acknowledged (or the
// relay has not marked), and restarted each time. The stream ends with
// every event of the store's outbox exactly once, in order, nothing
// pending, one message per stored verdict, and the very events and state
// of an uninterrupted run.
func TestKilledMidPublishTenTimes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	const blocks = 700
	bin := auditorBinary(t)
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 12, Blocks: blocks, TxsPerBlock: 4})

	// The uninterrupted run, to an embedded NATS.
	refPath, ref := scenarioConfig(t, d, url, "")
	if p := startProcess(t, bin, "run", "--config", refPath, "--node", url, "--until-height", fmt.Sprint(blocks)); p.wait(t, time.Minute) != nil {
		t.Fatalf("the uninterrupted run failed:\n%s", p.stderr)
	}
	want := storeStatus(t, ref.DataDir)
	wantIDs, _ := outboxRows(t, ref.DataDir)
	if want.Boxes == 0 || len(wantIDs) == 0 {
		t.Fatalf("the uninterrupted run stored too little to compare: %+v, %d events", want, len(wantIDs))
	}

	ns := natsServer(t, t.TempDir(), 0)
	cfgPath, cfg := scenarioConfig(t, d, url, ns.ClientURL())
	watch := openWatch(t, cfg.DataDir)
	rng := rand.New(rand.NewPCG(2026, 12))
	args := []string{"run", "--config", cfgPath, "--node", url, "--until-height", fmt.Sprint(blocks)}
	var (
		kills       int
		leftPending int // kills after which the outbox held unacknowledged events
		reconciled  int // restarts that found acknowledged events not marked
		log         []string
	)
	for kills < 10 {
		tip := watchTip(t, watch)
		if tip >= blocks {
			t.Fatalf("the sync finished after %d kills; the chain is too short to kill it 10 times", kills)
		}
		// As in TestKilledRunResumesToTheSameState: a random threshold in
		// the next stretch of at most 1/(15-kills) of what remains.
		threshold := tip + 1 + uint32(rng.IntN(int(blocks-tip)/(15-kills)))
		midPublish := kills%2 == 1
		p := startProcess(t, bin, args...)
		pending, found := killAt(t, p, watch, threshold, midPublish, rng, fmt.Sprintf("kill %d", kills+1))
		if found {
			reconciled++
		}
		kills++
		if pending > 0 {
			leftPending++
		}
		log = append(log, fmt.Sprintf("%d@%d", pending, watchTip(t, watch)))
	}
	p := startProcess(t, bin, args...)
	if err := p.wait(t, time.Minute); err != nil {
		t.Fatalf("final run: %v\n%s", err, p.stderr)
	}
	if p.logged(reconciledMsg) {
		reconciled++
	}
	t.Logf("events pending@tip after each kill: %s; %d restarts found some of them in the stream", strings.Join(log, " "), reconciled)
	if leftPending == 0 {
		t.Fatal("no kill left events unpublished: the kills tested nothing of the relay")
	}

	// The stream holds the outbox's events, each once, in order; nothing is
	// pending.
	ids, subjects := streamMessages(t, ns.ClientURL())
	sameEvents(t, fmt.Sprintf("after %d kills", kills), ns.ClientURL(), cfg.DataDir)
	var verdictEvents int64
	for _, id := range ids {
		if s := subjects[id]; strings.HasPrefix(s, cfg.NATS.SubjectPrefix+".") && !strings.Contains(s, ".retracted.") &&
			!strings.HasSuffix(s, ".chain.rollback") && !strings.HasSuffix(s, ".report.ready") {
			verdictEvents++
		}
	}
	if n := verdictCount(t, cfg.DataDir); verdictEvents != n || n != int64(len(ids)) {
		t.Fatalf("%d messages, %d verdict events, %d verdicts stored", len(ids), verdictEvents, n)
	}
	// … and they are the events of the uninterrupted run.
	if !slices.Equal(ids, wantIDs) {
		t.Fatalf("after %d kills the stream holds %d events, the uninterrupted run's outbox %d; first difference at %d",
			kills, len(ids), len(wantIDs), firstDiff(ids, wantIDs))
	}
	got := storeStatus(t, cfg.DataDir)
	if got.StateDigest != want.StateDigest || got.TipHeight != blocks {
		t.Fatalf("after %d kills: tip %d digest %s; uninterrupted: tip %d digest %s", kills, got.TipHeight, got.StateDigest, want.TipHeight, want.StateDigest)
	}
	t.Logf("after %d kills (%d leaving events pending): %d events, %d boxes, digest %s", kills, leftPending, len(ids), got.Boxes, got.StateDigest)
}
