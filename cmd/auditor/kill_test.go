package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/devnet"
)

// reconciledMsg is what the relay logs when it marks, without
// republishing, pending events it finds at the stream's end.
const reconciledMsg = "rows already in the stream marked published"

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

	// The uninterrupted run: in-process, to an embedded NATS.
	_, ref := scenarioConfig(t, d, url, "")
	if err := runAuditor(context.Background(), ref, blocks, zerolog.Nop()); err != nil {
		t.Fatal(err)
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
		pollUntil(t, time.Minute, fmt.Sprintf("kill %d: progress to height %d", kills+1, threshold), func() (bool, string) {
			if p.exited() {
				t.Fatalf("the auditor exited before kill %d (%v) at tip %d, threshold %d:\n%s", kills+1, p.err, watchTip(t, watch), threshold, p.stderr)
			}
			tip := watchTip(t, watch)
			if !midPublish || tip < threshold {
				return tip >= threshold, fmt.Sprintf("tip %d", tip)
			}
			// Past the threshold, wait for events in the outbox that are
			// not marked acknowledged: the relay is publishing.
			return watchPending(t, watch) > 0, fmt.Sprintf("tip %d, nothing pending", tip)
		})
		if !midPublish {
			time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		}
		p.signal(t, syscall.SIGKILL)
		<-p.done
		if p.logged(reconciledMsg) {
			reconciled++
		}
		kills++
		pending := watchPending(t, watch)
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
