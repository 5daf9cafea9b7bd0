package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ha"
	"github.com/async-emission/auditor/internal/natstest"
	"github.com/async-emission/auditor/internal/poll"
)

// leaseHolder reads who holds the lease of the default bucket.
func leaseHolder(t testing.TB, urls []string) (string, uint64) {
	t.Helper()
	nc, err := nats.Connect(urls[0])
	if err != nil {
		return "", 0
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	id, epoch, err := ha.ReadLease(ctx, js, ha.DefaultBucket)
	if err != nil {
		return "", 0
	}
	return id, epoch
}

// stepper shows the devnet's chain block by block until it is all
// visible or stop is called: the next block once caught(height, id) says
// the auditors have the tip (or a second has passed), every interval at
// the fastest. So the chain goes at the auditors' pace, and every fork is
// seen.
func stepper(d *devnet.Devnet, interval time.Duration, caught func(ctx context.Context, height uint32, id ergo.Digest) bool) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil && d.Step() {
			h, id := d.Tip()
			next := time.Now().Add(interval)
			for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && !caught(ctx, h, id); {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Millisecond):
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(next)):
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// atTip tells whether every store has the tip id.
func atTip(stores ...*db.Store) func(ctx context.Context, height uint32, id ergo.Digest) bool {
	return func(ctx context.Context, _ uint32, id ergo.Digest) bool {
		for _, s := range stores {
			if tip, ok, err := s.Tip(ctx); err != nil || !ok || tip.ID != id {
				return false
			}
		}
		return true
	}
}

// TestHAHandoverInProcess: two auditors of a group, in this process (so
// that the race detector watches the HA code), follow a devnet that forks
// every few blocks and publish to one NATS server; the leader is stopped
// cleanly (it gives the lease up) three times and started again once the
// other has taken over and compared its chain with the stream. The
// subscriber's log, replayed, holds exactly the verdicts of the final
// chain, each once, with no gap and no id twice; each auditor's outbox is
// all published or superseded. Then /metrics, /readyz, /api/v1/status and
// auditor status --json show who leads under which epoch.
func TestHAHandoverInProcess(t *testing.T) {
	const blocks, handovers = 60, 3
	d, nodeURL := newScenarioDevnet(t, devnet.Config{Seed: 31, Blocks: blocks, TxsPerBlock: 2, BlockTime: time.Hour, ReorgEvery: 7, ReorgDepth: 3})
	urls := natstest.NewCluster(t, 1).URLs()
	rec := record(t, urls)
	type member struct {
		id, path string
		cfg      Config
		stop     context.CancelFunc
		done     chan error
	}
	members := map[string]*member{}
	start := func(m *member) {
		ctx, cancel := context.WithCancel(context.Background())
		m.stop, m.done = cancel, make(chan error, 1)
		go func() { m.done <- runAuditor(ctx, m.cfg, 0, zerolog.Nop()) }()
	}
	var watched []*db.Store
	for _, id := range []string{"a1", "a2"} {
		path, cfg := haConfigFile(t, d, nodeURL, urls, id, 2*time.Second, "")
		cfg.HTTP.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		m := &member{id: id, path: path, cfg: cfg}
		members[id] = m
		watched = append(watched, openWatch(t, cfg.DataDir))
		start(m)
		t.Cleanup(func() { m.stop(); <-m.done })
	}
	stop := stepper(d, 10*time.Millisecond, atTip(watched...))
	defer stop()
	var epoch uint64
	for k := range handovers {
		// The leader has published under its own epoch before it is
		// stopped: each tenure shows in the stream.
		var holder string
		poll.Until(t, 20*time.Second, "a leader publishing", func() (bool, string) {
			var e uint64
			holder, e = leaseHolder(t, urls)
			r, ok, gap := rec.replaySettled(t)
			if !ok {
				return false, gap
			}
			publisher := r.epochs[e]
			return holder != "" && e > epoch && publisher == holder,
				fmt.Sprintf("holder %q epoch %d, published under it by %q", holder, e, publisher)
		})
		_, epoch = leaseHolder(t, urls)
		at := uint32((k + 1) * blocks / (handovers + 1))
		poll.Until(t, 30*time.Second, fmt.Sprintf("the chain at %d", at), func() (bool, string) {
			h, _ := d.Tip()
			return h >= at, fmt.Sprintf("height %d", h)
		})
		m := members[holder]
		m.stop()
		if err := <-m.done; err != nil {
			t.Fatalf("handover %d: %s stopped with %v", k+1, holder, err)
		}
		// The other takes over (at once: the lease was given up) before
		// the stopped one starts again, as a standby.
		poll.Until(t, 20*time.Second, "the other auditor taking over", func() (bool, string) {
			h, e := leaseHolder(t, urls)
			return h != "" && h != holder && e > epoch, fmt.Sprintf("holder %q epoch %d", h, e)
		})
		start(m)
	}
	stop()
	for d.Step() {
	}
	final := d.FinalID(blocks)
	var want map[verdictKey]verdictValue
	var r replayed
	poll.Until(t, 60*time.Second, "the final chain published", func() (bool, string) {
		for _, m := range members {
			if st := storeStatus(t, m.cfg.DataDir); st.TipID != final {
				return false, fmt.Sprintf("%s at %d", m.id, st.TipHeight)
			}
		}
		want = storeVerdictMap(t, members["a1"].cfg.DataDir)
		var ok bool
		var gap string
		if r, ok, gap = rec.replaySettled(t); !ok {
			return false, gap
		}
		return len(r.live) == len(want), fmt.Sprintf("%d live of %d", len(r.live), len(want))
	})
	sameVerdicts(t, "after the handovers", r.live, want)
	if r.retractions == 0 || r.rollbacks == 0 {
		t.Errorf("%d retractions, %d rollbacks: the group saw no fork", r.retractions, r.rollbacks)
	}
	if len(r.epochs) < handovers+1 {
		t.Errorf("%d epochs in the stream after %d handovers", len(r.epochs), handovers)
	}
	for _, m := range members {
		poll.Until(t, 10*time.Second, m.id+"'s outbox handled", func() (bool, string) {
			_, pending := outboxRows(t, m.cfg.DataDir)
			return pending == 0, fmt.Sprintf("%d pending", pending)
		})
	}
	t.Logf("%d messages: %d verdicts, %d retractions, %d rollbacks; epochs %v", len(rec.log()), r.verdicts, r.retractions, r.rollbacks, r.epochs)

	// Who leads, as each auditor shows it: each view agrees with the
	// lease as read just before it (on a loaded machine a renewal can
	// miss its TTL and the lease move: the views are read again then).
	client := &http.Client{Timeout: 5 * time.Second}
	for _, m := range members {
		base := "http://" + m.cfg.HTTP.Listen
		poll.Until(t, 10*time.Second, m.id+" ready", func() (bool, string) {
			code, body := httpGet(client, base+"/readyz")
			return code == http.StatusOK, body
		})
		poll.Until(t, 20*time.Second, m.id+"'s views of the lease", func() (bool, string) {
			leader, epoch := leaseHolder(t, urls)
			role, gauge := "standby", 0.0
			if m.id == leader {
				role, gauge = "leader", 1
			}
			_, metrics := httpGet(client, base+"/metrics")
			v, _ := metricValue(metrics, "auditor_ha_leader")
			e, _ := metricValue(metrics, "auditor_ha_epoch")
			if v != gauge || e != float64(epoch) || !strings.Contains(metrics, fmt.Sprintf("auditor_ha_leader_info{leader=%q} 1", leader)) {
				return false, fmt.Sprintf("metrics: leader %v epoch %v; the lease: %s, %d", v, e, leader, epoch)
			}
			sameLease := func(body string) bool {
				var st api.Status
				return json.Unmarshal([]byte(body), &st) == nil && st.HA != nil && st.HA.Role == role && st.HA.Leader != nil &&
					*st.HA.Leader == leader && *st.HA.Epoch == epoch && st.HA.ID == m.id
			}
			if _, body := httpGet(client, base+"/api/v1/status"); !sameLease(body) {
				return false, fmt.Sprintf("/api/v1/status (cached 2s): %s; the lease: %s, %d", body, leader, epoch)
			}
			var out, errOut strings.Builder
			if code := run([]string{"status", "--config", m.path, "--json"}, &env{stdout: &out, stderr: &errOut}); code != exitOK || !sameLease(out.String()) {
				return false, fmt.Sprintf("auditor status --json: exit %d %s %s; the lease: %s, %d", code, errOut.String(), out.String(), leader, epoch)
			}
			return true, ""
		})
	}
}

// TestHAClusterFailover is issue 17's test: three auditor processes of a
// group publish to a three-node NATS cluster (nats-server processes; the
// stream and the lease's bucket replicated three times) while following a
// devnet that forks every ten blocks. The leader is SIGKILLed at random
// moments ten times, each time restarted as a standby once another has
// taken over; once it is paused with SIGSTOP until another took over and
// published, then resumed; one NATS node is killed with the sixth leader
// and started again before the tenth. A subscriber with a durable consumer
// records every message. In the end the log, replayed, holds exactly the
// verdicts of the final chain (each once, after the retractions), no
// message id twice, no gap in the stream's sequence, and epochs that never
// go down, each published by one auditor: no leader published after the
// next one started. The time from each kill to the first event of the
// next leader is logged.
func TestHAClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills processes")
	}
	t.Parallel() // mostly waits (leases expiring, processes starting): beside TestHALifecycle
	const (
		blocks     = 2000 // at most: the chain stops where it is once the kills are done
		kills      = 10
		ttl        = time.Second
		reorgEvery = 10
	)
	d, nodeURL := newScenarioDevnet(t, devnet.Config{Seed: 17, Blocks: blocks, TxsPerBlock: 2, BlockTime: time.Hour, ReorgEvery: reorgEvery, ReorgDepth: 3})
	auditorBinary(t)
	natstest.Binary(t)
	began := time.Now()
	g := newHAGroup(t, d, nodeURL, 3, ttl, "a1", "a2", "a3")
	// What happens is logged as it happens: a failure shows the steps before it.
	t.Logf("%s the group started", time.Since(began).Round(time.Millisecond))
	stop := stepper(d, 100*time.Millisecond, g.caught)
	defer stop()
	rng := rand.New(rand.NewPCG(2026, 17))

	var (
		epoch                uint64 // the last one killed or paused: the next leader's is above
		failovers            []time.Duration
		paused, natsStopped  bool
		natsStarted, skipped int
	)
	since := func() string { return time.Since(began).Round(time.Millisecond).String() }
	for len(failovers) < kills {
		id, e := g.leader(epoch)
		// Something published under this epoch, then a random moment more.
		g.firstAfter(e-1, 30*time.Second)
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		m := g.members[id]
		switch n := len(failovers); {
		case n == 4 && !paused:
			// The leader paused past its lease: another takes over and
			// publishes; once resumed, the old one publishes nothing more
			// (the replay checks that epochs never go down).
			paused, epoch = true, e
			m.p.signal(t, syscall.SIGSTOP)
			at := time.Now()
			_, next := g.firstAfter(epoch, 30*time.Second)
			m.p.signal(t, syscall.SIGCONT)
			poll.Until(t, 10*time.Second, id+" standing by after SIGCONT", func() (bool, string) {
				g.alive()
				return m.p.logged("stopped publishing: the lease is lost"), "no step-down logged"
			})
			t.Logf("%s paused %s (epoch %d) %s, until epoch %d published", since(), id, epoch, time.Since(at).Round(time.Millisecond), next)
			continue
		case n == 6 && !natsStopped:
			// One NATS node killed with the leader: the group goes on
			// with two, through the Raft elections of what it led.
			natsStopped = true
			g.nats.Stop(2)
			t.Log(since() + " killed NATS node 3")
		case n == 9 && natsStarted == 0:
			natsStarted++
			g.nats.Start(2)
			t.Log(since() + " started NATS node 3 again")
		}
		if h, e2 := leaseHolder(t, g.nats.URLs()); h != id || e2 != e {
			skipped++ // the lease moved meanwhile (a renewal too slow): not a kill of the leader
			continue
		}
		epoch = e
		killed := time.Now()
		m.running.Store(false)
		m.p.signal(t, syscall.SIGKILL)
		<-m.p.done
		m.p = nil
		at, next := g.firstAfter(epoch, 30*time.Second)
		failovers = append(failovers, at.Sub(killed))
		h, _ := d.Tip()
		t.Logf("%s kill %d: %s (epoch %d) at height %d; epoch %d's first event %s later", since(), len(failovers), id, epoch, h, next, at.Sub(killed).Round(time.Millisecond))
		g.start(id)
	}
	stop()
	// Out of the competing branch, if one is shown: the chain ends there.
	for h, id := d.Tip(); id != d.FinalID(h) && d.Step(); h, id = d.Tip() {
	}
	if h, _ := d.Tip(); h >= blocks {
		t.Fatalf("the chain ended (height %d) before the kills did: too short", h)
	}
	t.Logf("%s the chain stops", since())
	r := g.settle(60 * time.Second)
	if os.Getenv("HA_DEBUG") != "" {
		g.haLog()
	}
	if skipped > 0 {
		t.Logf("%d times the lease moved between the test's look and its kill", skipped)
	}
	var orphaned int64
	for _, m := range g.members {
		orphaned += storeStatus(t, m.cfg.DataDir).OrphanedHeaders
	}
	if orphaned == 0 {
		t.Fatal("no auditor stored a header off the final chain: the group saw no fork")
	}
	slices.Sort(failovers)
	t.Logf("%d messages (%d verdicts, %d retractions, %d rollbacks) in %d epochs (the auditors stored %d headers off the final chain); from a leader's death to its successor's first event (TTL %s): median %s, max %s; %s in all",
		len(g.rec.log()), r.verdicts, r.retractions, r.rollbacks, len(r.epochs), orphaned, ttl,
		failovers[len(failovers)/2].Round(time.Millisecond), failovers[len(failovers)-1].Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// BenchmarkHAFailover measures, with the default lease TTL, the time from
// the leader's death (SIGKILL) to the first event its successor
// publishes, as a subscriber receives it: three auditor processes of a
// group on a three-node NATS cluster, following a devnet that shows a
// block every 50 ms (nearly every one with events). One op is one kill;
// the median and the longest are reported.
func BenchmarkHAFailover(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and kills processes")
	}
	d, nodeURL := newScenarioDevnet(b, devnet.Config{Seed: 17, Blocks: 100000, TxsPerBlock: 2, BlockTime: time.Hour})
	g := newHAGroup(b, d, nodeURL, 3, ha.DefaultLeaseTTL, "a1", "a2", "a3")
	stop := stepper(d, 50*time.Millisecond, g.caught)
	defer stop()
	var (
		epoch     uint64
		failovers []time.Duration
	)
	b.ResetTimer()
	for len(failovers) < b.N {
		id, e := g.leader(epoch)
		g.firstAfter(e-1, time.Minute)
		if h, e2 := leaseHolder(b, g.nats.URLs()); h != id || e2 != e {
			continue
		}
		m := g.members[id]
		m.running.Store(false)
		killed := time.Now()
		m.p.signal(b, syscall.SIGKILL)
		<-m.p.done
		m.p = nil
		at, _ := g.firstAfter(e, time.Minute)
		failovers = append(failovers, at.Sub(killed))
		epoch = e
		g.start(id)
	}
	b.StopTimer()
	slices.Sort(failovers)
	b.ReportMetric(failovers[len(failovers)/2].Seconds(), "s/failover-median")
	b.ReportMetric(failovers[len(failovers)-1].Seconds(), "s/failover-max")
	b.ReportMetric(0, "ns/op")
}
