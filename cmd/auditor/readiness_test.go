package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/testfs"
	"github.com/async-emission/auditor/scan"
)

// daemonRun is runAuditor in the background: following the chain (no
// --until-height) until the test stops it.
type daemonRun struct {
	t    *testing.T
	done chan error
	stop context.CancelFunc
}

func startDaemon(t *testing.T, cfg Config) *daemonRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &daemonRun{t: t, done: make(chan error, 1), stop: cancel}
	go func() { r.done <- runAuditor(ctx, cfg, 0, zerolog.Nop()) }()
	t.Cleanup(func() { r.close() })
	return r
}

// alive fails the test if the daemon has returned.
func (r *daemonRun) alive() {
	r.t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		r.t.Fatalf("the daemon returned: %v", err)
	default:
	}
}

// close stops the daemon and waits for it.
func (r *daemonRun) close() {
	r.stop()
	if err := <-r.done; err != nil {
		r.t.Errorf("the daemon: %v", err)
	}
	r.done <- nil
}

// readyz returns /readyz's status and answer.
func readyz(t *testing.T, base string) (int, api.Readiness) {
	t.Helper()
	code, body := httpGet(&http.Client{Timeout: 5 * time.Second}, base+"/readyz")
	var rd api.Readiness
	if code != 0 {
		if err := json.Unmarshal([]byte(body), &rd); err != nil {
			t.Fatalf("/readyz: %v: %s", err, body)
		}
	}
	return code, rd
}

// hasProblem reports whether the answer names a problem of this check
// whose reason says this.
func hasProblem(rd api.Readiness, check, says string) bool {
	for _, p := range rd.Problems {
		if p.Check == check && strings.Contains(p.Reason, says) {
			return true
		}
	}
	return false
}

// waitReadyz polls /readyz until cond holds.
func waitReadyz(t *testing.T, r *daemonRun, base, what string, cond func(int, api.Readiness) bool) api.Readiness {
	t.Helper()
	var rd api.Readiness
	poll.Until(t, 60*time.Second, what, func() (bool, string) {
		r.alive()
		var code int
		code, rd = readyz(t, base)
		return cond(code, rd), fmt.Sprintf("%d %+v", code, rd)
	})
	return rd
}

func loopbackAddr(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
}

// TestReadyzNamesEachCause: a daemon publishing to an external NATS is
// ready once synced; NATS stopped, /readyz fails naming the connection,
// and once events have waited past http.max_publish_delay, the publish
// delay too; NATS back, it is ready again; the stream deleted behind its
// back, /readyz names the stream (missing, then created again by the
// relay, which stays named until a restart).
func TestReadyzNamesEachCause(t *testing.T) {
	const initial, extra = 40, 20
	d, nodeURL := newScenarioDevnet(t, devnet.Config{Seed: 17, Blocks: initial + extra, TxsPerBlock: 2, BlockTime: time.Hour})
	for range initial {
		d.Step()
	}
	natsDir := t.TempDir()
	ns := natsServer(t, natsDir, 0)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ns.ClientURL(), "nats://"))
	natsPort, _ := strconv.Atoi(port)
	path, cfg := scenarioConfig(t, d, nodeURL, ns.ClientURL())
	cfg.HTTP.Listen = loopbackAddr(t)
	cfg.HTTP.MaxPublishDelay = Duration(300 * time.Millisecond)
	base := "http://" + cfg.HTTP.Listen
	r := startDaemon(t, cfg)

	waitReadyz(t, r, base, "ready once synced", func(code int, rd api.Readiness) bool {
		return code == http.StatusOK && rd.Ready && len(rd.Problems) == 0 && rd.TipHeight != nil && *rd.TipHeight == initial
	})

	ns.Shutdown()
	for range extra {
		d.Step()
	}
	rd := waitReadyz(t, r, base, "NATS down and events waiting, named", func(code int, rd api.Readiness) bool {
		return code == http.StatusServiceUnavailable && hasProblem(rd, "nats", "NATS connection") &&
			hasProblem(rd, api.CheckPublish, "for NATS to acknowledge it, more than 300ms")
	})
	t.Logf("NATS down: %+v", rd.Problems)

	ns = natsServer(t, natsDir, natsPort)
	waitReadyz(t, r, base, "ready again with NATS back", func(code int, rd api.Readiness) bool {
		return code == http.StatusOK && rd.Ready && *rd.TipHeight == initial+extra
	})

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(context.Background(), cfg.NATS.Stream); err != nil {
		t.Fatal(err)
	}
	rd = waitReadyz(t, r, base, "the stream deleted, named", func(code int, rd api.Readiness) bool {
		return code == http.StatusServiceUnavailable &&
			(hasProblem(rd, "stream", "does not exist") || hasProblem(rd, "stream", "was deleted and created again"))
	})
	t.Logf("stream deleted: %+v", rd.Problems)
	// The relay creates the stream again when it next fails to publish:
	// a report (made beside the daemon) gives it an event.
	var out, errOut strings.Builder
	if code := run([]string{"report", "--config", path, "--out", t.TempDir()}, &env{stdout: &out, stderr: &errOut}); code != exitOK {
		t.Fatalf("report: exit %d: %s", code, errOut.String())
	}
	rd = waitReadyz(t, r, base, "the stream created again, named until a restart", func(code int, rd api.Readiness) bool {
		return code == http.StatusServiceUnavailable && hasProblem(rd, "stream", "was deleted and created again")
	})
	t.Logf("stream created again: %+v", rd.Problems)
	ids, _ := streamMessages(t, ns.ClientURL())
	if len(ids) != 1 || !strings.HasPrefix(ids[0], "report-") {
		t.Fatalf("the stream created again holds %v, want the report's event", ids)
	}
}

// TestFullNATSDiskRecovers: the embedded server's store is on a small
// tmpfs that something else fills up. The daemon goes on indexing, the
// events wait in the outbox and /readyz names the store's failure and the
// publish delay; once the space is freed it publishes them without a
// restart, /readyz is ready again, and the stream holds every event of
// the outbox exactly once, in order.
func TestFullNATSDiskRecovers(t *testing.T) {
	const initial, extra = 60, 60
	mnt := testfs.Tmpfs(t, 24<<20, false)
	d, nodeURL := newScenarioDevnet(t, devnet.Config{Seed: 18, Blocks: initial + extra, TxsPerBlock: 3, BlockTime: time.Hour})
	for range initial {
		d.Step()
	}
	_, cfg := scenarioConfig(t, d, nodeURL, "")
	cfg.NATS.StoreDir = filepath.Join(mnt, "nats")
	cfg.NATS.MaxBytes = 8 << 20
	cfg.NATS.Listen = loopbackAddr(t) // for the test to read the stream, as a reader
	cfg.HTTP.Listen = loopbackAddr(t)
	cfg.HTTP.MaxPublishDelay = Duration(time.Second)
	base := "http://" + cfg.HTTP.Listen
	natsURL := "nats://" + cfg.NATS.Listen
	watch := openWatch(t, cfg.DataDir)
	r := startDaemon(t, cfg)
	waitReadyz(t, r, base, "ready once synced", func(code int, rd api.Readiness) bool {
		return code == http.StatusOK && *rd.TipHeight == initial
	})

	junk := filepath.Join(mnt, "junk")
	testfs.Fill(t, junk)
	for range extra {
		d.Step()
	}
	rd := waitReadyz(t, r, base, "the full disk named", func(code int, rd api.Readiness) bool {
		return code == http.StatusServiceUnavailable && hasProblem(rd, "nats_store", "no space left on device") &&
			hasProblem(rd, api.CheckPublish, "for NATS to acknowledge it")
	})
	pendingFull := watchPending(t, watch)
	t.Logf("disk full at tip %d, %d events pending: %+v", watchTip(t, watch), pendingFull, rd.Problems)
	if pendingFull == 0 {
		t.Fatal("nothing pending with the disk full")
	}

	if err := os.Remove(junk); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitReadyz(t, r, base, "ready again once the space is freed", func(code int, rd api.Readiness) bool {
		return code == http.StatusOK && *rd.TipHeight == initial+extra && watchPending(t, watch) == 0
	})
	t.Logf("recovered %s after the space was freed", time.Since(start).Round(time.Millisecond))
	ids := sameEvents(t, "after the disk was freed", natsURL, cfg.DataDir)
	if n := verdictCount(t, cfg.DataDir); int64(len(ids)) != n {
		t.Fatalf("%d messages for %d verdicts", len(ids), n)
	}
}

// TestFullExternalNATSDiskRecovers: an external nats-server whose store
// fills up keeps failing the stream, even once space is freed, until it
// restarts (the auditor cannot restart it); the daemon keeps the events
// and retries all along, and once the operator restarts NATS they all go
// out, each once, in order.
func TestFullExternalNATSDiskRecovers(t *testing.T) {
	const initial, extra = 40, 40
	mnt := testfs.Tmpfs(t, 24<<20, false)
	d, nodeURL := newScenarioDevnet(t, devnet.Config{Seed: 21, Blocks: initial + extra, TxsPerBlock: 3, BlockTime: time.Hour})
	for range initial {
		d.Step()
	}
	natsDir := filepath.Join(mnt, "nats")
	ns := natsServer(t, natsDir, 0)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(ns.ClientURL(), "nats://"))
	natsPort, _ := strconv.Atoi(port)
	_, cfg := scenarioConfig(t, d, nodeURL, ns.ClientURL())
	cfg.NATS.MaxBytes = 8 << 20
	watch := openWatch(t, cfg.DataDir)
	r := startDaemon(t, cfg)
	synced := func(tip uint32) func() (bool, string) {
		return func() (bool, string) {
			r.alive()
			got, pending := watchTip(t, watch), watchPending(t, watch)
			return got == tip && pending == 0, fmt.Sprintf("tip %d, %d pending", got, pending)
		}
	}
	poll.Until(t, 30*time.Second, "the first sync, published", synced(initial))

	junk := filepath.Join(mnt, "junk")
	testfs.Fill(t, junk)
	for range extra {
		d.Step()
	}
	poll.Until(t, 30*time.Second, "the new blocks indexed, their events pending", func() (bool, string) {
		r.alive()
		tip, pending := watchTip(t, watch), watchPending(t, watch)
		return tip == initial+extra && pending > 0, fmt.Sprintf("tip %d, %d pending", tip, pending)
	})
	if err := os.Remove(junk); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * relayAckTimeout) // freed, but the server still fails the stream
	stuck := watchPending(t, watch)
	ns.Shutdown()
	ns = natsServer(t, natsDir, natsPort)
	poll.Until(t, 60*time.Second, "the events published once NATS restarted", synced(initial+extra))
	t.Logf("%d events still pending with the space freed, until NATS restarted", stuck)
	sameEvents(t, "after the external server's disk was freed and it restarted", ns.ClientURL(), cfg.DataDir)
}

// TestStrangerCannotWriteTheDefaultEmbeddedServer: the daemon with its
// default embedded NATS (listening on loopback, no credentials set): a
// client without credentials cannot publish on auditor.>, purge or delete
// the stream; it can subscribe (it sees the events of new blocks) and
// fetch from a consumer of its own; the stream stays the outbox's.
func TestStrangerCannotWriteTheDefaultEmbeddedServer(t *testing.T) {
	const initial, extra = 30, 10
	d, nodeURL := newScenarioDevnet(t, devnet.Config{Seed: 19, Blocks: initial + extra, TxsPerBlock: 2, BlockTime: time.Hour})
	for range initial {
		d.Step()
	}
	_, cfg := scenarioConfig(t, d, nodeURL, "")
	def := DefaultConfig()
	cfg.NATS = def.NATS
	cfg.NATS.Listen = loopbackAddr(t)
	natsURL := "nats://" + cfg.NATS.Listen
	watch := openWatch(t, cfg.DataDir)
	r := startDaemon(t, cfg)
	poll.Until(t, 30*time.Second, "the sync, published", func() (bool, string) {
		r.alive()
		tip, pending := watchTip(t, watch), watchPending(t, watch)
		return tip == initial && pending == 0, fmt.Sprintf("tip %d, %d pending", tip, pending)
	})

	violations := make(chan error, 16)
	nc, err := nats.Connect(natsURL, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case violations <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("a client without credentials: %v", err)
	}
	defer nc.Close()
	refused := func(what string) {
		t.Helper()
		select {
		case v := <-violations:
			if !strings.Contains(strings.ToLower(v.Error()), "permissions violation") {
				t.Fatalf("%s: %v", what, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no permissions violation", what)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 250*time.Millisecond) }

	if err := nc.Publish("auditor.demo.invalid.emitted", []byte(`{"forged":true}`)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	refused("publish on auditor.>")
	s, err := js.Stream(ctx, cfg.NATS.Stream)
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := short()
	if err := s.Purge(c1); err == nil {
		t.Fatal("purge: allowed")
	}
	c2()
	refused("purge")
	c1, c2 = short()
	if err := js.DeleteStream(c1, cfg.NATS.Stream); err == nil {
		t.Fatal("delete: allowed")
	}
	c2()
	refused("delete")

	// Reading: a subscription sees the next blocks' events; a consumer
	// fetches what the stream holds.
	sub, err := nc.SubscribeSync("auditor.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for range extra {
		d.Step()
	}
	if m, err := sub.NextMsg(30 * time.Second); err != nil || !strings.HasPrefix(m.Subject, "auditor.") {
		t.Fatalf("subscription: %v", err)
	}
	poll.Until(t, 30*time.Second, "the new blocks, published", func() (bool, string) {
		r.alive()
		tip, pending := watchTip(t, watch), watchPending(t, watch)
		return tip == initial+extra && pending == 0, fmt.Sprintf("tip %d, %d pending", tip, pending)
	})
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("create a consumer: %v", err)
	}
	batch, err := cons.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	fetched := 0
	for m := range batch.Messages() {
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
		fetched++
	}
	if fetched != 5 || batch.Error() != nil {
		t.Fatalf("fetched %d (%v)", fetched, batch.Error())
	}
	ids := sameEvents(t, "after the stranger's attempts", natsURL, cfg.DataDir)
	for _, id := range ids {
		if strings.Contains(id, "forged") {
			t.Fatal("a forged event is in the stream")
		}
	}
	select {
	case v := <-violations:
		t.Fatalf("reading was refused: %v", v)
	default:
	}
}

// TestReadyzNamesTheNodesChain: /readyz fails, naming the node, while the
// node's best chain is one the auditor refuses (a block mined below the
// required difficulty) or a branch whose blocks it withholds, and is ready
// again once the node serves a chain it can follow.
func TestReadyzNamesTheNodesChain(t *testing.T) {
	d, nodeURL := newScenarioDevnet(t, devnet.Config{Seed: 19, Blocks: 60, TxsPerBlock: 2, BlockTime: time.Hour})
	for range 40 {
		d.Step()
	}
	ns := natsServer(t, t.TempDir(), 0)
	_, cfg := scenarioConfig(t, d, nodeURL, ns.ClientURL())
	cfg.HTTP.Listen = loopbackAddr(t)
	base := "http://" + cfg.HTTP.Listen
	r := startDaemon(t, cfg)
	ready := func(what string) {
		t.Helper()
		waitReadyz(t, r, base, what, func(code int, rd api.Readiness) bool { return code == http.StatusOK && rd.Ready })
	}
	ready("ready once synced")

	if _, err := d.ShowBranch(context.Background(), devnet.Branch{Fork: 38, Length: 3, Break: consensus.RuleDifficulty}); err != nil {
		t.Fatal(err)
	}
	rd := waitReadyz(t, r, base, "a refused chain named", func(code int, rd api.Readiness) bool {
		return code == http.StatusServiceUnavailable && hasProblem(rd, "node", "breaks the difficulty rule")
	})
	t.Logf("refused: %+v", rd.Problems)
	d.ShowFinal()
	ready("ready with the node back on the chain")

	if _, err := d.ShowBranch(context.Background(), devnet.Branch{Fork: 38, Length: 3, Withhold: true}); err != nil {
		t.Fatal(err)
	}
	rd = waitReadyz(t, r, base, "a withheld branch named", func(code int, rd api.Readiness) bool {
		return code == http.StatusServiceUnavailable && hasProblem(rd, "node", "does not serve its blocks")
	})
	t.Logf("withheld: %+v", rd.Problems)
	d.ServeBranch()
	ready("ready once the branch is served and adopted")
}

// TestReadyzNamesAStalledBackfill: the backfill check names each protocol
// whose backfill a failing node has held longer than the bound, with the
// height its history reaches and the node's error; not before the bound,
// not without a failure, not with the check off, and not a protocol whose
// history is done.
func TestReadyzNamesAStalledBackfill(t *testing.T) {
	stalled := scan.BackfillStats{
		Failing: &scan.BackfillFailure{Since: time.Now().Add(-90 * time.Second), Err: "GET /blocks/x: 404 Not Found: pruned"},
		Protocols: map[string]scan.BackfillProgress{
			"tree": {From: 3, Cursor: 1840, Tip: 5000},
			"demo": {From: 1, Cursor: 5000, Tip: 5000, Done: true},
			"aaa":  {From: 10, Cursor: 9, Tip: 5000},
		},
	}
	check := func(st scan.BackfillStats, bound time.Duration) []string {
		return backfillProblems(func() scan.BackfillStats { return st }, bound)(t.Context())
	}
	got := check(stalled, time.Minute)
	if len(got) != 2 || !strings.Contains(got[0], "protocol aaa") || !strings.Contains(got[1], "protocol tree") {
		t.Fatalf("problems %q: want aaa's and tree's, in that order", got)
	}
	for _, want := range []string{"1m30s", "more than 1m0s", "height 1840 of 5000", "404 Not Found: pruned"} {
		if !strings.Contains(got[1], want) {
			t.Errorf("%q does not say %q", got[1], want)
		}
	}
	if got := check(stalled, 2*time.Minute); len(got) != 0 {
		t.Errorf("within the bound: %q", got)
	}
	if got := check(stalled, 0); len(got) != 0 {
		t.Errorf("with the check off: %q", got)
	}
	moving := stalled
	moving.Failing = nil
	if got := check(moving, time.Minute); len(got) != 0 {
		t.Errorf("without a failure: %q", got)
	}
}
