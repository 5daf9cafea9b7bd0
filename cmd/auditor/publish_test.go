package main

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/publish"
)

// extNATS is an external NATS server as an operator may run one:
// nats-server with JetStream and no authorization (anyone may do
// anything), in this process, listening on loopback.
type extNATS struct{ srv *server.Server }

// natsServer starts an external NATS server with JetStream on 127.0.0.1:port
// (0: a free port) with its store in dir, shut down when the test ends.
func natsServer(t *testing.T, dir string, port int) *extNATS {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("the NATS server did not start")
	}
	n := &extNATS{srv}
	t.Cleanup(n.Shutdown)
	return n
}

// ClientURL is the server's nats:// URL.
func (n *extNATS) ClientURL() string { return n.srv.ClientURL() }

// Shutdown stops the server and waits until it has stopped.
func (n *extNATS) Shutdown() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}

// scenarioConfig writes a configuration that watches the devnet's
// async-emission deployments and publishes to natsURL ("" for an embedded
// server serving this process only).
func scenarioConfig(t *testing.T, d *devnet.Devnet, nodeURL, natsURL string) (string, Config) {
	t.Helper()
	pcs, err := d.Protocols()
	if err != nil {
		t.Fatal(err)
	}
	nats := "[nats]\nlisten = \"\"\n"
	if natsURL != "" {
		nats = fmt.Sprintf("[nats]\nurl = [%q]\n", natsURL)
	}
	nats += "[http]\nlisten = \"\"\n[reports]\nschedule = \"\"\nsweep_interval = \"0s\"\n"
	text := "data_dir = " + strconv.Quote(t.TempDir()) + "\n[scan]\nnetwork = \"devnet\"\npoll_interval = \"1ms\"\n" + nats + devnet.ProtocolsTOML(pcs)
	path := filepath.Join(t.TempDir(), "auditor.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, func(c *Config) { c.Node.URL = nodeURL })
	if err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

func newScenarioDevnet(t testing.TB, cfg devnet.Config) (*devnet.Devnet, string) {
	t.Helper()
	if cfg.Scenario == nil {
		cfg.Scenario = &devnet.AsyncEmission{ForgeryRate: 0.3}
	}
	d, err := devnet.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return d, srv.URL
}

// streamMessages returns the message id of every message in the stream,
// in stream order, and the subjects by id.
func streamMessages(t *testing.T, url string) (ids []string, subjects map[string]string) {
	t.Helper()
	subjects = map[string]string{}
	eachStreamMessage(t, url, func(m *jetstream.RawStreamMsg) {
		id := m.Header.Get(nats.MsgIdHdr)
		ids = append(ids, id)
		subjects[id] = m.Subject
	})
	return ids, subjects
}

// eachStreamMessage calls each for every message in the stream, in order.
func eachStreamMessage(t *testing.T, url string, each func(*jetstream.RawStreamMsg)) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, publish.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		each(m)
	}
}

// outboxRows returns the message ids the store's outbox holds, in seq
// order, and how many are not acknowledged.
func outboxRows(t *testing.T, dir string) (ids []string, pending int) {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, dbFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT msg_id, published IS NULL FROM outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var unacked bool
		if err := rows.Scan(&id, &unacked); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if unacked {
			pending++
		}
	}
	return ids, pending
}

// sameEvents fails unless the stream holds exactly the outbox's events,
// each once, in the outbox's order.
func sameEvents(t *testing.T, what, natsURL, dir string) []string {
	t.Helper()
	want, pending := outboxRows(t, dir)
	got, _ := streamMessages(t, natsURL)
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s: message %s is in the stream twice", what, id)
		}
		seen[id] = true
	}
	if pending != 0 || len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("%s: the stream holds %d messages, the outbox %d (%d unacknowledged); first difference at %d",
			what, len(got), len(want), pending, firstDiff(got, want))
	}
	return got
}

// countUndone counts the retractions and the rollbacks among the events.
func countUndone(ids []string, subjects map[string]string) (retracted, rollbacks int) {
	for _, id := range ids {
		switch s := subjects[id]; {
		case s == "auditor.chain.rollback":
			rollbacks++
		case strings.Contains(s, ".retracted."):
			retracted++
		}
	}
	return retracted, rollbacks
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func verdictCount(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, c := range storeStatus(t, dir).Verdicts {
		if c.Reason == "" {
			n += c.Count
		}
	}
	return n
}

// TestStreamHoldsOneMessagePerVerdict: after a scenario sync the stream
// holds exactly one message per verdict in the store, on the verdict's
// subject, invalid verdicts of both protocols among them.
func TestStreamHoldsOneMessagePerVerdict(t *testing.T) {
	const blocks = 300
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 3, Blocks: blocks, TxsPerBlock: 2})
	ns := natsServer(t, t.TempDir(), 0)
	_, cfg := scenarioConfig(t, d, url, ns.ClientURL())
	if err := runAuditor(context.Background(), cfg, blocks, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	ids, subjects := streamMessages(t, ns.ClientURL())
	sameEvents(t, "after a sync", ns.ClientURL(), cfg.DataDir)
	if n := verdictCount(t, cfg.DataDir); int64(len(ids)) != n {
		t.Fatalf("%d messages for %d verdicts", len(ids), n)
	}
	invalid := map[string]int{}
	for _, s := range subjects {
		parts := strings.Split(s, ".")
		if len(parts) != 4 || parts[0] != "auditor" || parts[1] != devnet.AsyncEmissionProtocol && parts[1] != devnet.TreeProtocol {
			t.Fatalf("subject %s", s)
		}
		if parts[2] == "invalid" {
			invalid[parts[1]]++
		}
	}
	if invalid[devnet.AsyncEmissionProtocol] == 0 || invalid[devnet.TreeProtocol] == 0 {
		t.Fatalf("invalid verdicts published by protocol: %v", invalid)
	}
}

// TestNATSOutageLosesNothing: NATS stopped for part of a sync and
// restarted: the scanner goes on, and the stream ends complete, in order,
// with no duplicates.
func TestNATSOutageLosesNothing(t *testing.T) {
	const blocks = 600
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 4, Blocks: blocks, TxsPerBlock: 2})
	natsDir := t.TempDir()
	ns := natsServer(t, natsDir, 0)
	natsURL := ns.ClientURL()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(natsURL, "nats://"))
	p, _ := strconv.Atoi(port)
	_, cfg := scenarioConfig(t, d, url, natsURL)
	cfg.Scan.FetchBatch = 4 // a slower sync, so the outage spans blocks

	done := make(chan error, 1)
	go func() { done <- runAuditor(context.Background(), cfg, blocks, zerolog.Nop()) }()
	watch, err := db.Open(context.Background(), filepath.Join(cfg.DataDir, dbFile), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	waitTip := func(h uint32) {
		deadline := time.Now().Add(time.Minute)
		for {
			tip, _, err := watch.Tip(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tip.Height >= h {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the tip stays at %d, below %d", tip.Height, h)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitTip(150)
	ns.Shutdown()
	down, _, _ := watch.Tip(context.Background())
	waitTip(down.Height + 200) // the scanner indexes on while NATS is down
	_, pendingDown, err := watch.OutboxCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ns = natsServer(t, natsDir, p)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if pendingDown == 0 {
		t.Fatal("nothing was pending while NATS was down: the outage tested nothing")
	}
	sameEvents(t, "after an outage", ns.ClientURL(), cfg.DataDir)
}

// TestReorgRetractsAndRepublishes: a reorg produces retracted events for
// the disconnected blocks' verdicts and chain.rollback events; what the
// new branch concludes is published under ids of its own blocks.
func TestReorgRetractsAndRepublishes(t *testing.T) {
	t.Run("other transactions", func(t *testing.T) { testReorgRetractsAndRepublishes(t, false) })
	// The usual case on a real chain: the new branch re-includes the
	// transactions, so every box of the abandoned blocks is retracted and
	// published again from another block, under another message id.
	t.Run("the same transactions", func(t *testing.T) { testReorgRetractsAndRepublishes(t, true) })
}

func testReorgRetractsAndRepublishes(t *testing.T, reinclude bool) {
	const blocks = 160
	d, url := newScenarioDevnet(t, devnet.Config{Seed: 6, Blocks: blocks, TxsPerBlock: 2,
		BlockTime: time.Hour, ReorgEvery: 9, ReorgDepth: 3, ReorgReinclude: reinclude})
	ns := natsServer(t, t.TempDir(), 0)
	_, cfg := scenarioConfig(t, d, url, ns.ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAuditor(ctx, cfg, 0, zerolog.Nop()) }()
	watch, err := db.Open(context.Background(), filepath.Join(cfg.DataDir, dbFile), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	for more := true; more; more = d.Step() {
		h, id := d.Tip()
		deadline := time.Now().Add(time.Minute)
		for {
			tip, _, err := watch.Tip(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tip.Height == h && tip.ID == id || h == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the store is at %d; the devnet at %d", tip.Height, h)
			}
			time.Sleep(time.Millisecond)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ids, subjects := streamMessages(t, ns.ClientURL())
	sameEvents(t, "after reorgs", ns.ClientURL(), cfg.DataDir)
	retracted, rollbacks := countUndone(ids, subjects)
	verdictBlocks := map[string]map[string]bool{} // box → blocks whose verdict events name it
	for _, id := range ids {
		switch s := subjects[id]; {
		case s == "auditor.chain.rollback", strings.Contains(s, ".retracted."):
		default:
			parts := strings.Split(id, "-") // block-box-protocol-kind-connects
			if verdictBlocks[parts[1]] == nil {
				verdictBlocks[parts[1]] = map[string]bool{}
			}
			verdictBlocks[parts[1]][parts[0]] = true
		}
	}
	republished := 0
	for _, bs := range verdictBlocks {
		if len(bs) > 1 {
			republished++
		}
	}
	t.Logf("%d messages: %d retracted, %d rollbacks, %d boxes published from two blocks", len(ids), retracted, rollbacks, republished)
	if retracted == 0 || rollbacks == 0 || republished == 0 {
		t.Fatalf("%d retracted, %d rollbacks, %d boxes republished: want some of each", retracted, rollbacks, republished)
	}
	// Re-included transactions: every retracted verdict but the
	// re-included blocks' own second retraction is published again from
	// the final chain's block.
	if reinclude && republished*2 < retracted {
		t.Fatalf("%d boxes republished for %d retractions: the branches re-include the final chain's transactions", republished, retracted)
	}
	// Every verdict on the main chain is published, and every other one retracted.
	if live := int64(len(ids) - rollbacks - 2*retracted); live != verdictCount(t, cfg.DataDir) {
		t.Fatalf("%d verdict events not retracted, %d verdicts stored", live, verdictCount(t, cfg.DataDir))
	}
}
