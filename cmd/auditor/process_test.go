package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/testlog"
	"github.com/async-emission/auditor/report"
	"github.com/async-emission/auditor/rules"
)

// logged reports whether the process logged a line with this message
// (the daemon logs JSON when stderr is not a terminal).
func (p *process) logged(msg string) bool {
	return strings.Contains(p.stderr.String(), fmt.Sprintf(`"message":%q`, msg))
}

// process is `auditor` run as a child process.
type process struct {
	cmd    *exec.Cmd
	stderr *testlog.Buffer
	done   chan struct{} // closed once Wait returned
	err    error         // Wait's result, once done is closed
}

// startProcess starts the auditor binary with args. The process is killed,
// if still running, when the test ends.
func startProcess(t testing.TB, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), stderr: &testlog.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process; a process that has exited is not an
// error.
func (p *process) signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to timeout for the process to exit and returns Wait's
// error; it fails the test if the process does not exit in time.
func (p *process) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("the auditor did not exit within %s:\n%s", timeout, p.stderr)
		return nil
	}
}

// freePort returns a loopback TCP port nobody listened on a moment ago,
// for a child process to listen on.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// httpGet returns the status and body of GET url, or the error as the
// body with status 0.
func httpGet(c *http.Client, url string) (int, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(body)
}

// metricValue returns the value of an unlabelled sample in a Prometheus
// text exposition.
func metricValue(exposition, name string) (float64, bool) {
	for line := range strings.SplitSeq(exposition, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// openWatch opens the store of dataDir through a connection of the test's
// own, to watch a running auditor's progress (WAL: readers see each commit).
func openWatch(t testing.TB, dataDir string) *db.Store {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	s, err := db.Open(context.Background(), filepath.Join(dataDir, dbFile), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func watchTip(t testing.TB, s *db.Store) uint32 {
	t.Helper()
	tip, _, err := s.Tip(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tip.Height
}

func watchPending(t *testing.T, s *db.Store) int64 {
	t.Helper()
	_, pending, err := s.OutboxCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pending
}

// TestRunProcessServesAndStopsCleanly runs `auditor run` as a process
// following a node (no --until-height) and publishing to an external NATS:
// once synced it is healthy and ready, its metrics and status show the
// node's height; then new blocks come, it is sent SIGTERM while indexing
// them, and it exits 0 within the bound, the outbox drained into the
// stream.
func TestRunProcessServesAndStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the auditor as a process")
	}
	const initial, extra = 150, 80
	bin := auditorBinary(t)
	// A block time, so that nothing is visible until Step shows it.
	d, nodeURL := newScenarioDevnet(t, devnet.Config{Seed: 8, Blocks: initial + extra, TxsPerBlock: 2, BlockTime: time.Hour})
	for range initial {
		if !d.Step() {
			t.Fatal("the devnet stopped stepping")
		}
	}
	ns := natsServer(t, t.TempDir(), 0)
	cfgPath, cfg := scenarioConfig(t, d, nodeURL, ns.ClientURL())
	// The conservation sweep every 100 ms (the other tests sweep once, at
	// start): the gauges reach the tip.
	text, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, bytes.Replace(text, []byte(`sweep_interval = "0s"`), []byte(`sweep_interval = "100ms"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	watch := openWatch(t, cfg.DataDir)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	base := "http://" + addr
	p := startProcess(t, bin, "run", "--config", cfgPath, "--node", nodeURL, "--http", addr)
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		if p.exited() {
			t.Fatalf("the auditor exited (%v):\n%s", p.err, p.stderr)
		}
		return httpGet(client, base+path)
	}

	poll.Until(t, 15*time.Second, "/healthz", func() (bool, string) {
		code, body := get("/healthz")
		return code == http.StatusOK && body == "ok\n", fmt.Sprintf("%d %q", code, body)
	})
	poll.Until(t, 30*time.Second, "/readyz", func() (bool, string) {
		code, body := get("/readyz")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	_, body := get("/readyz")
	var rd api.Readiness
	if err := json.Unmarshal([]byte(body), &rd); err != nil || !rd.Ready || rd.NodeHeight == nil || *rd.NodeHeight != initial {
		t.Fatalf("/readyz: %v %s", err, body)
	}

	// The store's reads are cached for a while (api.DefaultCacheTTL): poll.
	var st api.Status
	poll.Until(t, 15*time.Second, "/api/v1/status at the node's height", func() (bool, string) {
		code, body := get("/api/v1/status")
		st = api.Status{}
		if err := json.Unmarshal([]byte(body), &st); code != http.StatusOK || err != nil {
			return false, fmt.Sprintf("%d %v %s", code, err, body)
		}
		return st.TipHeight == initial && st.OutboxPending == 0, fmt.Sprintf("tip %d, %d pending", st.TipHeight, st.OutboxPending)
	})
	if st.Chain == nil || st.Chain.NodeHeight == nil || *st.Chain.NodeHeight != initial || st.Chain.Lag == nil || *st.Chain.Lag != 0 ||
		st.Chain.BlocksConnected != initial || st.Publish == nil || st.Publish.Published == 0 || st.Reports != nil ||
		st.EventsWritten == 0 || len(st.Verdicts[devnet.AsyncEmissionProtocol]) == 0 {
		t.Fatalf("/api/v1/status: %+v (chain %+v, publish %+v)", st, st.Chain, st.Publish)
	}

	var metrics string
	poll.Until(t, 15*time.Second, "/metrics at the node's height", func() (bool, string) {
		code, body := get("/metrics")
		metrics = body
		tip, _ := metricValue(body, "auditor_tip_height")
		pending, ok := metricValue(body, "auditor_outbox_pending_events")
		return code == http.StatusOK && tip == initial && ok && pending == 0, fmt.Sprintf("%d: tip %v, %v pending", code, tip, pending)
	})
	for name, want := range map[string]float64{
		"auditor_store_up":                    1,
		"auditor_node_height":                 initial,
		"auditor_lag_blocks":                  0,
		"auditor_blocks_connected_total":      initial,
		"auditor_outbox_events_written_total": float64(st.EventsWritten),
	} {
		if v, ok := metricValue(metrics, name); !ok || v != want {
			t.Errorf("/metrics: %s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	for _, family := range []string{
		"auditor_verdicts{", "auditor_events_published_total", "auditor_events_duplicate_total",
		"auditor_publish_errors_total", "auditor_publish_in_flight_events", "auditor_publish_last_ack_timestamp_seconds",
		"auditor_blocks_disconnected_total", "auditor_reorgs_total", "auditor_node_errors_total",
		"auditor_last_block_connected_timestamp_seconds", "go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, "\n"+family) {
			t.Errorf("/metrics has no %s", family)
		}
	}
	if strings.Contains(metrics, "auditor_report_runs_total") {
		t.Error("/metrics has report metrics without a report schedule")
	}
	if v, _ := metricValue(metrics, "auditor_events_published_total"); v < float64(st.EventsWritten) {
		t.Errorf("/metrics: %v events published of %d written", v, st.EventsWritten)
	}
	// The latency histograms: one observation per block connected and per
	// event acknowledged (every ack had happened: nothing is pending).
	for histogram, counter := range map[string]string{
		"auditor_block_connect_delay_seconds": "auditor_blocks_connected_total",
		"auditor_event_ack_delay_seconds":     "auditor_events_published_total",
	} {
		n, ok := metricValue(metrics, histogram+"_count")
		want, _ := metricValue(metrics, counter)
		if !ok || n != want || n == 0 {
			t.Errorf("/metrics: %s_count = %v (present %v), want %s = %v", histogram, n, ok, counter, want)
		}
	}
	// The conservation gauges: what a sweep of the store finds, once the
	// daemon's sweep has read the tip.
	protocols, _ := rules.ParseProtocols(cfg.Protocols)
	var sweeper *report.Sweeper
	sweeper, err = report.NewSweeper(watch, protocols, 0, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := sweeper.SweepNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	sweep, _ := sweeper.Last()
	poll.Until(t, 15*time.Second, "/metrics swept at the tip", func() (bool, string) {
		_, metrics = get("/metrics")
		h, _ := metricValue(metrics, "auditor_conservation_tip_height")
		return h == initial, fmt.Sprintf("swept at %v", h)
	})
	for _, p := range sweep.Protocols {
		for name, want := range map[string]int{
			"auditor_conservation_lineages":                    p.Lineages,
			"auditor_conservation_failing_lineages":            p.FailingLineages,
			"auditor_conservation_misplaced_participant_boxes": p.MisplacedBoxes,
		} {
			if v, ok := metricValue(metrics, fmt.Sprintf("%s{protocol=%q}", name, p.Name)); !ok || v != float64(want) {
				t.Errorf("/metrics: %s{protocol=%q} = %v (present %v), want %d", name, p.Name, v, ok, want)
			}
		}
	}
	if len(sweep.Protocols) == 0 || sweep.Protocols[0].Lineages == 0 {
		t.Errorf("the scenario's sweep found no lineage: %+v", sweep)
	}
	if t.Failed() {
		t.FailNow()
	}

	// New blocks; SIGTERM while the auditor indexes them, with events in
	// the outbox if the test catches it so.
	for range extra {
		d.Step()
	}
	var pendingAtSignal int64
	poll.Until(t, 30*time.Second, "indexing the new blocks", func() (bool, string) {
		if p.exited() {
			t.Fatalf("the auditor exited (%v):\n%s", p.err, p.stderr)
		}
		tip := watchTip(t, watch)
		pendingAtSignal = watchPending(t, watch)
		return tip > initial && (pendingAtSignal > 0 || tip == initial+extra), fmt.Sprintf("tip %d", tip)
	})
	tipAtSignal := watchTip(t, watch)
	stopAt := time.Now()
	p.signal(t, syscall.SIGTERM)
	if err := p.wait(t, 15*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr)
	}
	t.Logf("SIGTERM at tip %d with %d events pending: exit 0 after %s", tipAtSignal, pendingAtSignal, time.Since(stopAt).Round(time.Millisecond))
	if !p.logged("outbox drained") {
		t.Errorf("no \"outbox drained\" in the log:\n%s", p.stderr)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("the HTTP address still accepts connections after the exit")
	}
	if _, pending := outboxRows(t, cfg.DataDir); pending != 0 {
		t.Fatalf("%d events pending after a clean stop", pending)
	}
	ids := sameEvents(t, "after SIGTERM", ns.ClientURL(), cfg.DataDir)
	if n := verdictCount(t, cfg.DataDir); int64(len(ids)) != n {
		t.Fatalf("%d messages for %d verdicts", len(ids), n)
	}
}

// TestRunProcessSecondSignalStopsAtOnce: a SIGTERM while the auditor waits
// for the outbox to drain (NATS down, events pending) is followed by a
// second one, which has its default effect: the process dies of it at
// once instead of waiting out the drain bound, leaving the events in the
// outbox for the next start.
func TestRunProcessSecondSignalStopsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the auditor as a process")
	}
	const initial, extra = 60, 40
	bin := auditorBinary(t)
	d, nodeURL := newScenarioDevnet(t, devnet.Config{Seed: 9, Blocks: initial + extra, TxsPerBlock: 2, BlockTime: time.Hour})
	for range initial {
		d.Step()
	}
	ns := natsServer(t, t.TempDir(), 0)
	cfgPath, cfg := scenarioConfig(t, d, nodeURL, ns.ClientURL())
	watch := openWatch(t, cfg.DataDir)
	p := startProcess(t, bin, "run", "--config", cfgPath, "--node", nodeURL)
	alive := func() {
		if p.exited() {
			t.Fatalf("the auditor exited (%v):\n%s", p.err, p.stderr)
		}
	}
	poll.Until(t, 30*time.Second, "the first sync, published", func() (bool, string) {
		alive()
		tip, pending := watchTip(t, watch), watchPending(t, watch)
		return tip == initial && pending == 0, fmt.Sprintf("tip %d, %d pending", tip, pending)
	})
	ns.Shutdown()
	for range extra {
		d.Step()
	}
	poll.Until(t, 30*time.Second, "events pending with NATS down", func() (bool, string) {
		alive()
		tip, pending := watchTip(t, watch), watchPending(t, watch)
		return tip == initial+extra && pending > 0, fmt.Sprintf("tip %d, %d pending", tip, pending)
	})

	first := time.Now()
	p.signal(t, syscall.SIGTERM)
	// The scanner has stopped: the daemon now waits for the outbox to
	// drain, which it cannot with NATS down, up to shutdownTimeout.
	poll.Until(t, 10*time.Second, "the first signal's stop", func() (bool, string) {
		alive()
		return p.logged("stopping"), "no \"stopping\" in the log"
	})
	// Signalled again (and again, should one land before the handler is
	// released), the process dies at once.
	poll.Until(t, 3*time.Second, "the exit after a second SIGTERM", func() (bool, string) {
		if p.exited() {
			return true, ""
		}
		p.signal(t, syscall.SIGTERM)
		time.Sleep(20 * time.Millisecond)
		return p.exited(), "still running"
	})
	took := time.Since(first)
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		t.Fatalf("exit after two SIGTERMs: %v, want death by SIGTERM\n%s", p.err, p.stderr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("exit after two SIGTERMs: %v, want death by SIGTERM\n%s", p.err, p.stderr)
	}
	if took >= shutdownTimeout/2 {
		t.Fatalf("the second SIGTERM took %s to stop the auditor (the drain bound is %s)", took, shutdownTimeout)
	}
	if p.logged("outbox drained") {
		t.Fatal("the outbox drained with NATS down")
	}
	if _, pending := outboxRows(t, cfg.DataDir); pending == 0 {
		t.Fatal("no event left pending: the drain was not interrupted")
	}
	t.Logf("died of the second SIGTERM %s after the first (%v)", took.Round(time.Millisecond), p.err)
}

// TestRunAuditorLeavesNoGoroutines runs the whole daemon in-process (an
// embedded NATS, the HTTP server, a report every second) to its
// --until-height, and checks that it leaves no goroutine behind.
func TestRunAuditorLeavesNoGoroutines(t *testing.T) {
	const initial, blocks = 40, 80
	d, err := devnet.New(devnet.Config{Seed: 10, Blocks: blocks, TxsPerBlock: 2, BlockTime: time.Hour,
		Scenario: &devnet.AsyncEmission{ForgeryRate: 0.3}}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// The node counts the connections the auditor keeps open to it.
	var connMu sync.Mutex
	open := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(d.Handler())
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		connMu.Lock()
		defer connMu.Unlock()
		switch s {
		case http.StateClosed, http.StateHijacked:
			delete(open, c)
		default:
			open[c] = true
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	nodeURL := srv.URL
	for range initial {
		d.Step()
	}
	_, cfg := scenarioConfig(t, d, nodeURL, "")
	cfg.HTTP.Listen = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	cfg.Reports.Schedule = "@every 1s"
	// No keep-alive: the test's own connections would outlive the run.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	ignore := goleak.IgnoreCurrent()
	done := make(chan error, 1)
	go func() { done <- runAuditor(context.Background(), cfg, blocks, zerolog.Nop()) }()
	exited := func() {
		select {
		case err := <-done:
			t.Fatalf("runAuditor returned early: %v", err)
		default:
		}
	}
	// The HTTP server serves, and the scheduler makes a report before the
	// chain is complete.
	poll.Until(t, 30*time.Second, "a scheduled report", func() (bool, string) {
		exited()
		code, body := httpGet(client, "http://"+cfg.HTTP.Listen+"/metrics")
		runs, _ := metricValue(body, "auditor_report_runs_total")
		tip, _ := metricValue(body, "auditor_tip_height")
		return code == http.StatusOK && runs >= 1 && tip == initial, fmt.Sprintf("%d: %v reports, tip %v", code, runs, tip)
	})
	if code, body := httpGet(client, "http://"+cfg.HTTP.Listen+"/api/v1/status"); code != http.StatusOK {
		t.Fatalf("/api/v1/status: %d %s", code, body)
	}
	for d.Step() {
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runAuditor did not return at --until-height")
	}
	if tip := storeStatus(t, cfg.DataDir).TipHeight; tip != blocks {
		t.Fatalf("tip %d, want %d", tip, blocks)
	}
	reports, _ := filepath.Glob(filepath.Join(cfg.reportsDir(), "*.json"))
	if len(reports) == 0 {
		t.Fatalf("no report in %s", cfg.reportsDir())
	}
	// runAuditor closes its node client's idle connections: the node sees
	// every connection closed.
	poll.Until(t, 10*time.Second, "the node's connections closed", func() (bool, string) {
		connMu.Lock()
		defer connMu.Unlock()
		return len(open) == 0, fmt.Sprintf("%d open", len(open))
	})
	goleak.VerifyNone(t, ignore)
}
