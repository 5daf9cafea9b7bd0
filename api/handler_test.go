package api_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/version"
	"github.com/async-emission/auditor/rules"
)

// TestAPI runs the server against one store synced from the devnet (the
// sync costs seconds): each subtest builds the handler it needs.
func TestAPI(t *testing.T) {
	c := syncChain(t)
	ctx := context.Background()
	tip, ok, err := c.store.Tip(ctx)
	if err != nil || !ok || tip.Height != c.height {
		t.Fatalf("store tip %+v (%v, %v), want height %d", tip, ok, err, c.height)
	}
	if c.follower.Connected == 0 || c.follower.NodeHeight < c.height {
		t.Fatalf("follower stats %+v after syncing %d blocks", c.follower, c.height)
	}

	t.Run("healthz", func(t *testing.T) { testHealthz(t, c) })
	t.Run("readyz", func(t *testing.T) { testReadyz(t, c) })
	t.Run("metrics", func(t *testing.T) { testMetrics(t, c) })
	t.Run("deploy files", func(t *testing.T) { testDeployFiles(t, c) })
	t.Run("OpenAPI", func(t *testing.T) { testOpenAPI(t, c) })
	t.Run("box pages", func(t *testing.T) { testBoxPage(t, c) })
	t.Run("status", func(t *testing.T) { testStatus(t, c) })
	t.Run("boxes", func(t *testing.T) { testBoxes(t, c) })
	t.Run("reports", func(t *testing.T) { testReports(t, c) })
	t.Run("methods", func(t *testing.T) { testMethods(t, c) })
	t.Run("store errors", func(t *testing.T) { testStoreErrors(t, c) })
	t.Run("cache", func(t *testing.T) { testCache(t, c) })
	t.Run("ServeListener", func(t *testing.T) { testServeListener(t, c) })
	t.Run("ServeListener listener fails", func(t *testing.T) { testServeListenerFails(t, c) })
	t.Run("Serve", func(t *testing.T) { testServe(t, c) })
}

// chainStats is what the follower that synced c reports, as the daemon
// passes it to the server.
func chainStats(c *chain) api.ChainStats {
	st := c.follower
	return api.ChainStats{NodeHeight: st.NodeHeight, Connected: st.Connected, Disconnected: st.Disconnected,
		Reorgs: st.Reorgs, DeepestReorg: st.DeepestReorg, NodeErrors: st.NodeErrors, LastConnectedAt: st.LastConnectedAt,
		Refusals: map[string]uint64{"difficulty": 2, "work": 1}, Withheld: 3} // as a node that lied would leave them
}

// The callbacks' values in the tests: distinct non-zero numbers, UTC
// times without monotonic readings (as JSON gives them back).
var (
	publishStats = api.PublishStats{Published: 11, Duplicates: 2, Errors: 3, InFlight: 4,
		LastAck: time.Date(2025, 3, 4, 5, 6, 7, 800_000_000, time.UTC)}
	reportStats = api.ReportStats{Runs: 5, Skipped: 6, Failures: 7, Running: true,
		LastSuccess: time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)}
	conservationStats = api.ConservationStats{CurrentAt: time.Date(2025, 3, 4, 5, 6, 0, 0, time.UTC), TipHeight: 58,
		Protocols: []api.ProtocolConservation{
			{Protocol: "demo", Lineages: 12, FailingLineages: 2, MisplacedBoxes: 3, MisplacedTokens: 5},
			{Protocol: "tree", Lineages: 9},
		}}
	haStatus = api.HAStatus{ID: "a1", Role: "standby", Leader: ptr("a2"), Epoch: ptr(uint64(7)), Takeovers: 1, Losses: 2,
		StreamSeq: ptr(uint64(42)), Superseded: ptr(uint64(3)), Reconciliations: ptr(uint64(4))}
)

func ptr[T any](v T) *T { return &v }

func testHealthz(t *testing.T, c *chain) {
	srv, _, _ := newServer(t, api.Config{Store: c.store})
	r := get(t, srv.Client(), srv.URL+"/healthz")
	r.wantCode(t, "GET /healthz", http.StatusOK)
	if string(r.body) != "ok\n" {
		t.Errorf("GET /healthz: body %q, want \"ok\\n\"", r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /healthz: Content-Type %q", ct)
	}
	if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("GET /healthz: X-Content-Type-Options %q, want nosniff", got)
	}
}

func testReadyz(t *testing.T, c *chain) {
	const maxLag = 5
	tip := c.height
	at := func(node uint32) func() api.ChainStats {
		return func() api.ChainStats {
			s := chainStats(c)
			s.NodeHeight = node
			return s
		}
	}
	check := func(name string, problems ...string) api.Check {
		return api.Check{Name: name, Problems: func(context.Context) []string { return problems }}
	}
	natsDown, natsUp := check("nats", "connection closed"), check("nats")
	u32 := func(v uint32) *uint32 { return &v }

	empty, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "empty.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { empty.Close() })
	faulty := &faultyStore{Store: c.store}
	faulty.fail.Store(true)
	// A store with an event NATS has not acknowledged, written now.
	waiting, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "waiting.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { waiting.Close() })
	if err := waiting.AppendEvent(context.Background(), "report", db.Message{ID: "r", Subject: "a.report.ready", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		cfg      api.Config
		want     api.Readiness
		problems []api.Problem // reasons are substrings of the problems', in order
	}{{
		name:     "no chain",
		cfg:      api.Config{Store: c.store, MaxLag: maxLag},
		want:     api.Readiness{TipHeight: u32(tip), MaxLag: maxLag},
		problems: []api.Problem{{api.CheckChain, "the chain is not followed"}},
	}, {
		name:     "node height unknown",
		cfg:      api.Config{Store: c.store, MaxLag: maxLag, Chain: at(0)},
		want:     api.Readiness{TipHeight: u32(tip), MaxLag: maxLag},
		problems: []api.Problem{{api.CheckChain, "the node's height is not known yet"}},
	}, {
		name: "lagging",
		cfg:  api.Config{Store: c.store, MaxLag: maxLag, Chain: at(tip + maxLag + 1), Checks: []api.Check{natsUp}},
		want: api.Readiness{NodeHeight: u32(tip + maxLag + 1), TipHeight: u32(tip), Lag: u32(maxLag + 1),
			MaxLag: maxLag},
		problems: []api.Problem{{api.CheckLag, fmt.Sprintf("%d blocks behind the node, more than %d", maxLag+1, maxLag)}},
	}, {
		name: "nats down",
		cfg:  api.Config{Store: c.store, MaxLag: maxLag, Chain: at(tip + 1), Checks: []api.Check{natsDown}},
		want: api.Readiness{NodeHeight: u32(tip + 1), TipHeight: u32(tip), Lag: u32(1),
			MaxLag: maxLag},
		problems: []api.Problem{{"nats", "connection closed"}},
	}, {
		name: "lagging, nats down, the stream gone and the scanner's own two",
		cfg: api.Config{Store: c.store, MaxLag: maxLag, Chain: at(tip + 100), Checks: []api.Check{
			natsDown, check("stream", "stream AUDITOR does not exist"), check("scanner", "the node is behind", "a chain was refused")}},
		want: api.Readiness{NodeHeight: u32(tip + 100), TipHeight: u32(tip), Lag: u32(100),
			MaxLag: maxLag},
		problems: []api.Problem{{api.CheckLag, "100 blocks behind the node"}, {"nats", "connection closed"},
			{"stream", "does not exist"}, {"scanner", "the node is behind"}, {"scanner", "a chain was refused"}},
	}, {
		name:     "empty store",
		cfg:      api.Config{Store: empty, MaxLag: maxLag, Chain: at(tip)},
		want:     api.Readiness{NodeHeight: u32(tip), MaxLag: maxLag},
		problems: []api.Problem{{api.CheckStore, "no block is connected yet"}},
	}, {
		name:     "store unreadable",
		cfg:      api.Config{Store: faulty, MaxLag: maxLag, Chain: at(tip)},
		want:     api.Readiness{NodeHeight: u32(tip), MaxLag: maxLag},
		problems: []api.Problem{{api.CheckStore, "the store cannot be read"}},
	}, {
		name: "an event waiting longer than MaxPublishDelay",
		cfg:  api.Config{Store: waiting, MaxLag: maxLag, Chain: at(tip), MaxPublishDelay: time.Nanosecond},
		want: api.Readiness{NodeHeight: u32(tip), MaxLag: maxLag},
		problems: []api.Problem{{api.CheckStore, "no block is connected yet"},
			{api.CheckPublish, "an event has waited"}},
	}, {
		name:     "an event waiting, within MaxPublishDelay",
		cfg:      api.Config{Store: waiting, MaxLag: maxLag, Chain: at(tip), MaxPublishDelay: time.Hour},
		want:     api.Readiness{NodeHeight: u32(tip), MaxLag: maxLag},
		problems: []api.Problem{{api.CheckStore, "no block is connected yet"}},
	}, {
		name: "at MaxLag, nats up",
		cfg:  api.Config{Store: c.store, MaxLag: maxLag, Chain: at(tip + maxLag), Checks: []api.Check{natsUp}},
		want: api.Readiness{Ready: true, NodeHeight: u32(tip + maxLag), TipHeight: u32(tip),
			Lag: u32(maxLag), MaxLag: maxLag},
	}, {
		name: "synced, no other check",
		cfg:  api.Config{Store: c.store, MaxLag: maxLag, Chain: at(tip)},
		want: api.Readiness{Ready: true, NodeHeight: u32(tip), TipHeight: u32(tip), Lag: u32(0),
			MaxLag: maxLag},
	}, {
		name: "store ahead of the node's last answer",
		cfg:  api.Config{Store: c.store, MaxLag: 0, Chain: at(tip - 3)},
		want: api.Readiness{Ready: true, NodeHeight: u32(tip - 3), TipHeight: u32(tip), Lag: u32(0)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _, logs := newServer(t, tc.cfg)
			r := get(t, srv.Client(), srv.URL+"/readyz")
			wantCode := http.StatusServiceUnavailable
			if tc.want.Ready {
				wantCode = http.StatusOK
			}
			r.wantCode(t, "GET /readyz", wantCode)
			if !strings.Contains(string(r.body), `"problems":[`) {
				t.Errorf("GET /readyz: %s has no problems list", r.body)
			}
			var got api.Readiness
			r.decodeJSON(t, "GET /readyz", &got)
			problems := got.Problems
			got.Problems = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("GET /readyz: %s, want %+v", r.body, tc.want)
			}
			if len(problems) != len(tc.problems) {
				t.Fatalf("GET /readyz: problems %+v, want %d like %+v", problems, len(tc.problems), tc.problems)
			}
			for i, want := range tc.problems {
				if problems[i].Check != want.Check || !strings.Contains(problems[i].Reason, want.Reason) {
					t.Errorf("GET /readyz: problem %d is %+v, want check %q with a reason containing %q", i, problems[i], want.Check, want.Reason)
				}
			}
			if strings.Contains(string(r.body), "secret") {
				t.Errorf("GET /readyz shows the store's error: %s", r.body)
			}
			if tc.cfg.Store == faulty && !strings.Contains(logs.String(), errStore.Error()) {
				t.Errorf("the store's error is not logged: %s", logs)
			}
			// The metric counts the same problems by check, every check
			// there, zero included.
			want := map[string]float64{api.CheckChain: 0, api.CheckStore: 0, api.CheckLag: 0, api.CheckPublish: 0}
			for _, c := range tc.cfg.Checks {
				want[c.Name] = 0
			}
			for _, p := range tc.problems {
				want[p.Check]++
			}
			if got := scrape(t, srv.Client(), srv.URL).labelled(t, "auditor_readiness_problems", "check"); !reflect.DeepEqual(got, want) {
				t.Errorf("auditor_readiness_problems %v, want %v", got, want)
			}
		})
	}
}

// expectedVerdicts counts the devnet's expectations as auditor_verdicts
// (by protocol/class/verdict) and auditor_verdict_reasons (by
// protocol/code) do, with a zero for every class, verdict and code of
// each protocol in zeros.
func expectedVerdicts(exp []devnet.Expectation, zeros ...string) (verdicts, reasons map[string]float64) {
	verdicts, reasons = map[string]float64{}, map[string]float64{}
	for _, p := range zeros {
		for _, c := range rules.Classes() {
			verdicts[p+"/"+string(c)+"/verified"] += 0
			verdicts[p+"/"+string(c)+"/invalid"] += 0
		}
		for _, r := range rules.Reasons() {
			reasons[p+"/"+string(r)] += 0
		}
	}
	for _, e := range exp {
		verdicts[e.Protocol+"/"+e.Class+"/"+e.Verdict]++
		for _, r := range e.Reasons {
			reasons[e.Protocol+"/"+r]++
		}
	}
	return verdicts, reasons
}

func testMetrics(t *testing.T, c *chain) {
	ctx := context.Background()
	tip, _, err := c.store.Tip(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs := chainStats(c)
	// The scenario has no reorg: set the reorg counters apart from 0 to
	// see them passed on.
	cs.NodeHeight, cs.Disconnected, cs.Reorgs, cs.DeepestReorg, cs.NodeErrors = tip.Height+3, 9, 2, 4, 1
	var chainCalls, publishCalls, reportCalls atomic.Int64
	lat := api.NewLatency()
	at := time.Now()
	lat.BlockConnected(at, at.Add(3*time.Millisecond))
	lat.BlockConnected(at, at.Add(2*time.Second))
	lat.EventAcknowledged(at, at.Add(40*time.Millisecond))
	lat.EventAcknowledged(at.Add(time.Millisecond), at) // a write time in milliseconds, read after the ack: 0
	lat.EventAcknowledged(time.Time{}, at)              // a row of unknown write time: not observed
	srv, _, _ := newServer(t, api.Config{Store: c.store,
		Chain:        func() api.ChainStats { chainCalls.Add(1); return cs },
		Publish:      func() api.PublishStats { publishCalls.Add(1); return publishStats },
		Reports:      func() api.ReportStats { reportCalls.Add(1); return reportStats },
		Latency:      lat,
		Conservation: func() (api.ConservationStats, bool) { return conservationStats, true },
		HA:           func() api.HAStatus { return haStatus },
	})
	m := scrape(t, srv.Client(), srv.URL)
	m.lint(t)
	if n := chainCalls.Load(); n != 1 {
		t.Errorf("a scrape called Chain %d times, want once", n)
	}
	if n, p := publishCalls.Load(), reportCalls.Load(); n != 1 || p != 1 {
		t.Errorf("a scrape called Publish %d and Reports %d times, want once each", n, p)
	}

	gauges := map[string]float64{
		"auditor_store_up":                               1,
		"auditor_tip_height":                             float64(tip.Height),
		"auditor_node_height":                            float64(cs.NodeHeight),
		"auditor_lag_blocks":                             3,
		"auditor_reorg_depth_max_blocks":                 4,
		"auditor_outbox_pending_events":                  float64(c.pending),
		"auditor_publish_in_flight_events":               4,
		"auditor_publish_last_ack_timestamp_seconds":     float64(publishStats.LastAck.UnixNano()) / 1e9,
		"auditor_report_last_success_timestamp_seconds":  float64(reportStats.LastSuccess.Unix()),
		"auditor_last_block_connected_timestamp_seconds": float64(cs.LastConnectedAt.UnixNano()) / 1e9,
		"auditor_conservation_tip_height":                58,
		"auditor_conservation_current_timestamp_seconds": float64(conservationStats.CurrentAt.Unix()),
		"auditor_ha_leader":                              0,
		"auditor_ha_epoch":                               7,
		"auditor_ha_stream_sequence":                     42,
	}
	counters := map[string]float64{
		"auditor_outbox_events_written_total": float64(c.written),
		"auditor_blocks_connected_total":      float64(c.follower.Connected),
		"auditor_blocks_disconnected_total":   9,
		"auditor_reorgs_total":                2,
		"auditor_node_errors_total":           1,
		"auditor_events_published_total":      11,
		"auditor_events_duplicate_total":      2,
		"auditor_publish_errors_total":        3,
		"auditor_report_runs_total":           5,
		"auditor_report_skipped_total":        6,
		"auditor_report_failures_total":       7,
		"auditor_node_withheld_total":         3,
		"auditor_ha_takeovers_total":          1,
		"auditor_ha_lease_losses_total":       2,
		"auditor_ha_superseded_events_total":  3,
		"auditor_ha_reconciliations_total":    4,
	}
	for name, want := range gauges {
		if got := m.value(t, name, gaugeType); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	bi := m["auditor_build_info"].GetMetric()
	if len(bi) != 1 || bi[0].GetGauge().GetValue() != 1 {
		t.Fatalf("auditor_build_info %v, want one series of 1", bi)
	}
	build := map[string]string{}
	for _, l := range bi[0].GetLabel() {
		build[l.GetName()] = l.GetValue()
	}
	if b := version.Get(); build["version"] != b.Version || build["goversion"] != b.GoVersion || build["revision"] != b.Revision {
		t.Errorf("auditor_build_info labels %v, want the build %+v", build, b)
	}
	for name, want := range counters {
		if got := m.value(t, name, counterType); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := m.labelled(t, "auditor_ha_leader_info", "leader"); !reflect.DeepEqual(got, map[string]float64{"a2": 1}) {
		t.Errorf("auditor_ha_leader_info %v, want a2", got)
	}
	// One refusal sample per rule, zero included.
	refusals := map[string]float64{}
	for _, s := range m["auditor_node_refusals_total"].GetMetric() {
		refusals[s.GetLabel()[0].GetValue()] = s.GetCounter().GetValue()
	}
	if len(refusals) != len(consensus.Rules) || refusals["difficulty"] != 2 || refusals["work"] != 1 || refusals["pow"] != 0 {
		t.Errorf("auditor_node_refusals_total %v, want every rule, difficulty 2 and work 1", refusals)
	}
	if c.pending != c.written-c.acked || c.pending == 0 {
		t.Fatalf("fixture: %d written, %d pending, %d acked", c.written, c.pending, c.acked)
	}

	for name, want := range map[string]struct {
		count      uint64
		sum        float64
		le, within float64 // within observations at or below le
	}{
		"auditor_block_connect_delay_seconds": {2, 2.003, 0.005, 1},
		"auditor_event_ack_delay_seconds":     {2, 0.04, 0.001, 1},
	} {
		h := m.histogram(t, name)
		var within float64
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == want.le {
				within = float64(b.GetCumulativeCount())
			}
		}
		if h.GetSampleCount() != want.count || math.Abs(h.GetSampleSum()-want.sum) > 1e-9 || within != want.within ||
			len(h.GetBucket()) != len(api.LatencyBuckets)+1 { // and +Inf
			t.Errorf("%s: %d observations summing to %v, %v at or below %v, %d buckets; want %+v",
				name, h.GetSampleCount(), h.GetSampleSum(), within, want.le, len(h.GetBucket()), want)
		}
	}

	for name, want := range map[string]map[string]float64{
		"auditor_conservation_lineages":                     {"demo": 12, "tree": 9},
		"auditor_conservation_failing_lineages":             {"demo": 2, "tree": 0},
		"auditor_conservation_misplaced_participant_boxes":  {"demo": 3, "tree": 0},
		"auditor_conservation_misplaced_participant_tokens": {"demo": 5, "tree": 0},
	} {
		if got := m.labelled(t, name, "protocol"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s %v, want %v", name, got, want)
		}
	}

	// Without Config.Protocols, what the store holds.
	want, wantReasons := expectedVerdicts(c.exp)
	if got := m.verdicts(t); !reflect.DeepEqual(got, want) {
		t.Errorf("auditor_verdicts:\n got %v\nwant %v (from the devnet's expectations)", got, want)
	}
	if got := m.reasons(t); !reflect.DeepEqual(got, wantReasons) {
		t.Errorf("auditor_verdict_reasons:\n got %v\nwant %v (from the devnet's expectations)", got, wantReasons)
	}
	// One family per meaning: the sum of the invalid verdicts is the
	// number of invalid verdicts, not inflated by their reasons.
	var invalid, sumInvalid, withReasons float64
	for _, e := range c.exp {
		if e.Verdict == devnet.VerdictInvalid {
			invalid++
			if len(e.Reasons) > 1 {
				withReasons++
			}
		}
	}
	for k, n := range m.verdicts(t) {
		if strings.HasSuffix(k, "/invalid") {
			sumInvalid += n
		}
	}
	if sumInvalid != invalid || invalid == 0 || withReasons == 0 || len(wantReasons) == 0 {
		t.Errorf("sum(auditor_verdicts{verdict=\"invalid\"}) = %v, want %v (the scenario: %v invalid, %v with more than one code)",
			sumInvalid, invalid, invalid, withReasons)
	}

	t.Run("without callbacks", func(t *testing.T) {
		srv, _, _ := newServer(t, api.Config{Store: c.store})
		m := scrape(t, srv.Client(), srv.URL)
		if got := m.value(t, "auditor_tip_height", gaugeType); got != float64(tip.Height) {
			t.Errorf("auditor_tip_height = %v, want %d", got, tip.Height)
		}
		for _, name := range []string{"auditor_node_height", "auditor_lag_blocks", "auditor_blocks_connected_total",
			"auditor_events_published_total", "auditor_report_runs_total", "auditor_block_connect_delay_seconds",
			"auditor_conservation_failing_lineages", "auditor_conservation_tip_height"} {
			if _, ok := m[name]; ok {
				t.Errorf("%s served without its callback", name)
			}
		}
		if _, ok := m["go_goroutines"]; !ok {
			t.Error("no Go collector metrics")
		}
	})
	t.Run("no conservation sweep yet", func(t *testing.T) {
		srv, _, _ := newServer(t, api.Config{Store: c.store,
			Conservation: func() (api.ConservationStats, bool) { return api.ConservationStats{}, false }})
		m := scrape(t, srv.Client(), srv.URL)
		for name := range m {
			if strings.HasPrefix(name, "auditor_conservation_") {
				t.Errorf("%s served before the first sweep", name)
			}
		}
	})
	t.Run("node height unknown", func(t *testing.T) {
		s := chainStats(c)
		s.NodeHeight = 0
		srv, _, _ := newServer(t, api.Config{Store: c.store, Chain: func() api.ChainStats { return s }})
		m := scrape(t, srv.Client(), srv.URL)
		for _, name := range []string{"auditor_node_height", "auditor_lag_blocks"} {
			if _, ok := m[name]; ok {
				t.Errorf("%s served before the node's height is known", name)
			}
		}
		if got := m.value(t, "auditor_blocks_connected_total", counterType); got != float64(s.Connected) {
			t.Errorf("auditor_blocks_connected_total = %v, want %d", got, s.Connected)
		}
	})
	t.Run("store unreadable", func(t *testing.T) {
		faulty := &faultyStore{Store: c.store}
		faulty.fail.Store(true)
		srv, _, logs := newServer(t, api.Config{Store: faulty, Chain: func() api.ChainStats { return cs }})
		m := scrape(t, srv.Client(), srv.URL)
		if got := m.value(t, "auditor_store_up", gaugeType); got != 0 {
			t.Errorf("auditor_store_up = %v with the store failing, want 0", got)
		}
		for _, name := range []string{"auditor_tip_height", "auditor_verdicts", "auditor_outbox_pending_events",
			"auditor_lag_blocks"} {
			if _, ok := m[name]; ok {
				t.Errorf("%s served with the store failing", name)
			}
		}
		if got := m.value(t, "auditor_node_height", gaugeType); got != float64(cs.NodeHeight) {
			t.Errorf("auditor_node_height = %v, want %d", got, cs.NodeHeight)
		}
		if !strings.Contains(logs.String(), errStore.Error()) {
			t.Errorf("the store's error is not logged: %s", logs)
		}
		// A failed read is not cached: the next scrape reads again.
		faulty.fail.Store(false)
		m = scrape(t, srv.Client(), srv.URL)
		if got := m.value(t, "auditor_store_up", gaugeType); got != 1 {
			t.Errorf("auditor_store_up = %v once the store reads again, want 1", got)
		}
		if got := m.verdicts(t); !reflect.DeepEqual(got, want) {
			t.Errorf("auditor_verdicts after a failed scrape: %v, want %v", got, want)
		}
	})
	t.Run("configured protocols", func(t *testing.T) {
		// Every class, verdict and code of a configured protocol has a
		// sample, zero included; a protocol without verdicts too.
		srv, _, _ := newServer(t, api.Config{Store: c.store, Protocols: []string{"demo", "tree", "quiet"}})
		m := scrape(t, srv.Client(), srv.URL)
		want, wantReasons := expectedVerdicts(c.exp, "demo", "tree", "quiet")
		if got := m.verdicts(t); !reflect.DeepEqual(got, want) {
			t.Errorf("auditor_verdicts:\n got %v\nwant %v", got, want)
		}
		if got := m.reasons(t); !reflect.DeepEqual(got, wantReasons) {
			t.Errorf("auditor_verdict_reasons:\n got %v\nwant %v", got, wantReasons)
		}
		if got := m.verdicts(t)["quiet/emitted/invalid"]; got != 0 || len(m.verdicts(t)) != 3*2*len(rules.Classes()) {
			t.Errorf("auditor_verdicts has %d samples (quiet/emitted/invalid %v), want %d", len(m.verdicts(t)), got, 3*2*len(rules.Classes()))
		}
	})
}

func testStatus(t *testing.T, c *chain) {
	ctx := context.Background()
	st, err := c.store.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cs := chainStats(c)
	cs.NodeHeight = st.TipHeight + 2
	srv, h, _ := newServer(t, api.Config{Store: c.store,
		Chain:        func() api.ChainStats { return cs },
		Publish:      func() api.PublishStats { return publishStats },
		Reports:      func() api.ReportStats { return reportStats },
		Conservation: func() (api.ConservationStats, bool) { return conservationStats, true },
	})
	r := get(t, srv.Client(), srv.URL+"/api/v1/status")
	r.wantCode(t, "GET /api/v1/status", http.StatusOK)
	var got api.Status
	r.decodeJSON(t, "GET /api/v1/status", &got)

	want := api.NewStatus(st, c.written, c.pending)
	node, lag, last := cs.NodeHeight, uint32(2), cs.LastConnectedAt.UTC()
	want.Chain = &api.ChainStatus{NodeHeight: &node, Lag: &lag, BlocksConnected: cs.Connected,
		BlocksDisconnected: cs.Disconnected, Reorgs: cs.Reorgs, DeepestReorg: cs.DeepestReorg,
		NodeErrors: cs.NodeErrors, LastConnectedAt: &last, Refusals: cs.Refusals, Withheld: cs.Withheld}
	want.Publish, want.Reports, want.Conservation = &publishStats, &reportStats, &conservationStats
	build := version.Get()
	want.Build = &build
	if !reflect.DeepEqual(got, want) {
		t.Errorf("GET /api/v1/status:\n got %s\nwant %+v", r.body, want)
	}
	if got.EventsWritten != c.written || got.OutboxPending != c.pending {
		t.Errorf("events_written %d, outbox_pending %d; want %d and %d", got.EventsWritten, got.OutboxPending,
			c.written, c.pending)
	}
	if got.Empty || got.TipHeight != c.height || got.Boxes == 0 || got.StateDigest.IsZero() {
		t.Errorf("status of the synced store: %s", r.body)
	}
	// The verdicts as the devnet expects them.
	wantVerdicts := map[string]map[rules.Class]*api.VerdictCounts{}
	for _, e := range c.exp {
		byClass := wantVerdicts[e.Protocol]
		if byClass == nil {
			byClass = map[rules.Class]*api.VerdictCounts{}
			wantVerdicts[e.Protocol] = byClass
		}
		vc := byClass[rules.Class(e.Class)]
		if vc == nil {
			vc = &api.VerdictCounts{Reasons: map[rules.Reason]int64{}}
			byClass[rules.Class(e.Class)] = vc
		}
		if e.Verdict == devnet.VerdictVerified {
			vc.Verified++
		} else {
			vc.Invalid++
		}
		for _, r := range e.Reasons {
			vc.Reasons[rules.Reason(r)]++
		}
	}
	if !reflect.DeepEqual(got.Verdicts, wantVerdicts) {
		t.Errorf("verdicts %s, want %v", r.body, wantVerdicts)
	}
	// Handler.Status is what the endpoint serves.
	direct, err := h.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(direct, want) {
		t.Errorf("Handler.Status: %+v, want %+v", direct, want)
	}

	t.Run("without callbacks", func(t *testing.T) {
		srv, _, _ := newServer(t, api.Config{Store: c.store})
		r := get(t, srv.Client(), srv.URL+"/api/v1/status")
		r.wantCode(t, "GET /api/v1/status", http.StatusOK)
		var got api.Status
		r.decodeJSON(t, "GET /api/v1/status", &got)
		want := api.NewStatus(st, c.written, c.pending)
		want.Build = &build
		if !reflect.DeepEqual(got, want) {
			t.Errorf("GET /api/v1/status:\n got %s\nwant %+v", r.body, want)
		}
		for _, key := range []string{`"chain"`, `"publish"`, `"reports"`} {
			if strings.Contains(string(r.body), key) {
				t.Errorf("%s in the status without its callback: %s", key, r.body)
			}
		}
	})
}

func testBoxes(t *testing.T, c *chain) {
	ctx := context.Background()
	srv, _, _ := newServer(t, api.Config{Store: c.store})
	client := srv.Client()

	// One box of each (kind, verdict) the devnet expects.
	picked := map[[2]string]devnet.Expectation{}
	for _, e := range c.exp {
		k := [2]string{string(e.Kind), e.Verdict}
		if _, ok := picked[k]; !ok {
			picked[k] = e
		}
	}
	for _, k := range [][2]string{{string(devnet.VerdictCreated), devnet.VerdictVerified},
		{string(devnet.VerdictCreated), devnet.VerdictInvalid}} {
		if _, ok := picked[k]; !ok {
			t.Fatalf("the devnet expects no %s verdict: %v", k, picked)
		}
	}
	for k, e := range picked {
		t.Run(k[0]+" "+k[1], func(t *testing.T) {
			url := srv.URL + "/api/v1/boxes/" + e.BoxID.String()
			r := get(t, client, url)
			r.wantCode(t, "GET "+url, http.StatusOK)
			var got api.Explanation
			r.decodeJSON(t, "GET "+url, &got)
			ex, ok, err := c.store.Explain(ctx, e.BoxID)
			if err != nil || !ok {
				t.Fatalf("Explain(%s): %v, %v", e.BoxID, ok, err)
			}
			if want := api.Explain(ex); !reflect.DeepEqual(got, want) {
				t.Errorf("GET %s:\n got %s\nwant %+v", url, r.body, want)
			}
			if got.Box.ID != e.BoxID {
				t.Errorf("box id %s, want %s", got.Box.ID, e.BoxID)
			}
			i := slices.IndexFunc(got.Verdicts, func(v api.Verdict) bool {
				return string(v.Kind) == string(e.Kind) && v.Protocol == e.Protocol
			})
			if i < 0 {
				t.Fatalf("no %s verdict of %s in %s", e.Kind, e.Protocol, r.body)
			}
			v := got.Verdicts[i]
			var codes []string
			for _, r := range v.Reasons {
				codes = append(codes, string(r.Code))
				if r.Sentence == "" {
					t.Errorf("reason %s without its sentence", r.Code)
				}
			}
			if string(v.Class) != e.Class || v.Verdict != e.Verdict || !slices.Equal(codes, e.Reasons) ||
				v.TxID != e.TxID || v.Height != e.Height || v.BoxID != e.BoxID {
				t.Errorf("verdict %+v (reasons %q), want %+v (case %s)", v, codes, e, e.Case)
			}
		})
	}

	t.Run("transactions", func(t *testing.T) {
		// The boxes an explained box's transaction spent were spent by it
		// (and are listed at their output index); those it read were not.
		explain := func(id ergo.Digest) api.Explanation {
			t.Helper()
			url := srv.URL + "/api/v1/boxes/" + id.String()
			r := get(t, client, url)
			r.wantCode(t, "GET "+url, http.StatusOK)
			var ex api.Explanation
			r.decodeJSON(t, "GET "+url, &ex)
			return ex
		}
		var spent, read int
		for _, e := range c.exp {
			if e.Kind != devnet.VerdictCreated {
				continue
			}
			ex := explain(e.BoxID)
			if ex.Transaction.ID != e.TxID {
				t.Errorf("box %s: transaction %s, want %s", e.BoxID, ex.Transaction.ID, e.TxID)
			}
			for _, rel := range ex.Transaction.Spent {
				spent++
				b := explain(rel.BoxID).Box
				if b.SpentTxID == nil || *b.SpentTxID != e.TxID || b.OutputIndex != rel.Position {
					t.Errorf("box %s lists %+v as spent by %s: it is %+v", e.BoxID, rel, e.TxID, b)
				}
			}
			for _, rel := range ex.Transaction.DataInputs {
				read++
				if b := explain(rel.BoxID).Box; b.SpentTxID != nil && *b.SpentTxID == e.TxID {
					t.Errorf("box %s lists %s as read by %s, which spent it", e.BoxID, rel.BoxID, e.TxID)
				}
			}
		}
		if spent == 0 || read == 0 {
			t.Errorf("the explanations list %d spent and %d read boxes: want some of each", spent, read)
		}
	})
	t.Run("malformed id", func(t *testing.T) {
		for _, id := range []string{"xyz", strings.Repeat("a", 63), strings.Repeat("a", 65), strings.Repeat("zz", 32)} {
			r := get(t, client, srv.URL+"/api/v1/boxes/"+id)
			r.wantCode(t, "GET box "+id, http.StatusBadRequest)
			if msg := r.errorBody(t, "GET box "+id); !strings.Contains(msg, "box id") {
				t.Errorf("GET box %s: error %q", id, msg)
			}
		}
	})
	t.Run("not stored", func(t *testing.T) {
		var id ergo.Digest
		for i := range id {
			id[i] = 0xa5
		}
		if _, ok, err := c.store.Explain(ctx, id); err != nil || ok {
			t.Fatalf("Explain(%s): %v, %v: want no box", id, ok, err)
		}
		r := get(t, client, srv.URL+"/api/v1/boxes/"+id.String())
		r.wantCode(t, "GET a box not stored", http.StatusNotFound)
		if msg := r.errorBody(t, "GET a box not stored"); !strings.Contains(msg, id.String()) {
			t.Errorf("error %q does not name the box", msg)
		}
	})
}

func testReports(t *testing.T, c *chain) {
	dir := t.TempDir()
	files := map[string]string{
		"audit-1.json":          `{"ok":true}`,
		"audit-1.html":          "<!doctype html><title>audit</title>",
		".audit-2.json.tmp":     `{"partial`,
		".hidden/secret.json":   `{"secret":1}`,
		"daily/audit-3.json":    `{"day":3}`,
		"daily/.audit-4.json.x": `{"partial`,
	}
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Links (to a file and a directory outside, to a file and a directory
	// inside) and a named pipe are not served: only regular files are.
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.json"), []byte(`{"outside":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"passwd.json":       filepath.Join(outside, "secret.json"),
		"out":               outside,
		"inside.json":       "audit-1.json",
		"daily-again":       "daily",
		"daily/up.json":     "../audit-1.json",
		"daily/escape.json": "../../" + filepath.Base(outside) + "/secret.json",
	} {
		if err := os.Symlink(target, filepath.Join(dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, _, _ := newServer(t, api.Config{Store: c.store, ReportsDir: dir})
	client := srv.Client()
	for _, p := range []string{"passwd.json", "out/secret.json", "out/", "inside.json", "daily-again/audit-3.json",
		"daily-again/", "daily/up.json", "daily/escape.json", "pipe.json"} {
		r := get(t, client, srv.URL+"/reports/"+p)
		r.wantCode(t, "GET /reports/"+p, http.StatusNotFound)
		if strings.Contains(string(r.body), "outside") || strings.Contains(string(r.body), "audit") {
			t.Errorf("GET /reports/%s serves what a link points to: %q", p, r.body)
		}
	}
	for _, tc := range []struct{ path, ctype string }{
		{"audit-1.json", "application/json"},
		{"audit-1.html", "text/html; charset=utf-8"},
		{"daily/audit-3.json", "application/json"},
	} {
		r := get(t, client, srv.URL+"/reports/"+tc.path)
		r.wantCode(t, "GET /reports/"+tc.path, http.StatusOK)
		if string(r.body) != files[tc.path] {
			t.Errorf("GET /reports/%s: %q, want %q", tc.path, r.body, files[tc.path])
		}
		if ct := r.header.Get("Content-Type"); ct != tc.ctype {
			t.Errorf("GET /reports/%s: Content-Type %q, want %q", tc.path, ct, tc.ctype)
		}
	}
	for _, p := range []string{".audit-2.json.tmp", ".hidden/secret.json", ".hidden/", "daily/.audit-4.json.x",
		"%2eaudit-2.json.tmp", "daily/../.audit-2.json.tmp", "missing.json"} {
		r := get(t, client, srv.URL+"/reports/"+p)
		r.wantCode(t, "GET /reports/"+p, http.StatusNotFound)
		if strings.Contains(string(r.body), "partial") || strings.Contains(string(r.body), "secret") {
			t.Errorf("GET /reports/%s shows a hidden file: %q", p, r.body)
		}
	}
	for _, tc := range []struct {
		path      string
		want, not []string
	}{
		{"", []string{"audit-1.json", "audit-1.html", "daily/"}, []string{".audit-2", ".hidden", "passwd", "out", "inside", "daily-again", "pipe"}},
		{"daily/", []string{"audit-3.json"}, []string{".audit-4", "up.json", "escape.json"}},
	} {
		r := get(t, client, srv.URL+"/reports/"+tc.path)
		r.wantCode(t, "GET /reports/"+tc.path, http.StatusOK)
		for _, s := range tc.want {
			if !strings.Contains(string(r.body), s) {
				t.Errorf("listing of /reports/%s lacks %s: %s", tc.path, s, r.body)
			}
		}
		for _, s := range tc.not {
			if strings.Contains(string(r.body), s) {
				t.Errorf("listing of /reports/%s shows %s: %s", tc.path, s, r.body)
			}
		}
	}

	t.Run("no directory", func(t *testing.T) {
		srv, _, _ := newServer(t, api.Config{Store: c.store})
		for _, p := range []string{"", "audit-1.json"} {
			get(t, srv.Client(), srv.URL+"/reports/"+p).wantCode(t, "GET /reports/"+p, http.StatusNotFound)
		}
	})
}

func testMethods(t *testing.T, c *chain) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.json"), []byte(`{"r":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	box := c.exp[0].BoxID.String()
	srv, _, _ := newServer(t, api.Config{Store: c.store, ReportsDir: dir, Chain: func() api.ChainStats {
		return chainStats(c)
	}, MaxLag: 100})
	client := srv.Client()
	paths := []string{"/healthz", "/readyz", "/metrics", "/api/v1/status", "/api/v1/boxes/" + box, "/reports/r.json"}
	for _, p := range paths {
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			r := do(t, client, m, srv.URL+p)
			r.wantCode(t, m+" "+p, http.StatusMethodNotAllowed)
			if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
				t.Errorf("%s %s: Allow %q", m, p, allow)
			}
		}
		g := get(t, client, srv.URL+p)
		g.wantCode(t, "GET "+p, http.StatusOK)
		h := do(t, client, http.MethodHead, srv.URL+p)
		h.wantCode(t, "HEAD "+p, http.StatusOK)
		if len(h.body) != 0 {
			t.Errorf("HEAD %s: body %q", p, h.body)
		}
		if got, want := h.header.Get("Content-Type"), g.header.Get("Content-Type"); got != want {
			t.Errorf("HEAD %s: Content-Type %q, GET's is %q", p, got, want)
		}
	}
	if h := do(t, client, http.MethodHead, srv.URL+"/reports/r.json"); h.header.Get("Content-Length") != "7" {
		t.Errorf("HEAD /reports/r.json: Content-Length %q, want 7", h.header.Get("Content-Length"))
	}
	for _, p := range []string{"/", "/nope", "/api/v1/", "/api/v1/nope", "/api/v1/boxes/", "/api/v1/boxes/" + box + "/x",
		"/healthz/x", "/metricsx"} {
		get(t, client, srv.URL+p).wantCode(t, "GET "+p, http.StatusNotFound)
		do(t, client, http.MethodPost, srv.URL+p).wantCode(t, "POST "+p, http.StatusNotFound)
	}
}

func testStoreErrors(t *testing.T, c *chain) {
	ctx := context.Background()
	faulty := &faultyStore{Store: c.store}
	srv, h, logs := newServer(t, api.Config{Store: faulty})
	client := srv.Client()
	box := c.exp[0].BoxID.String()
	faulty.fail.Store(true)

	for _, p := range []string{"/api/v1/status", "/api/v1/boxes/" + box} {
		r := get(t, client, srv.URL+p)
		r.wantCode(t, "GET "+p, http.StatusInternalServerError)
		msg := r.errorBody(t, "GET "+p)
		for _, leak := range []string{"secret", "auditor.db", "SELECT", "disk I/O"} {
			if strings.Contains(msg, leak) {
				t.Errorf("GET %s: error %q leaks %q", p, msg, leak)
			}
		}
	}
	if got := strings.Count(logs.String(), errStore.Error()); got != 2 {
		t.Errorf("the store's error is logged %d times, want once per request: %s", got, logs)
	}
	for _, l := range logLines(t, logs) {
		if l["level"] != "error" || l["path"] == nil {
			t.Errorf("log line %v: want an error naming the path", l)
		}
	}
	if _, err := h.Status(ctx); !errors.Is(err, errStore) {
		t.Errorf("Handler.Status: %v, want %v", err, errStore)
	}

	// A failed read is not cached.
	faulty.fail.Store(false)
	r := get(t, client, srv.URL+"/api/v1/status")
	r.wantCode(t, "GET /api/v1/status once the store reads again", http.StatusOK)
	var st api.Status
	r.decodeJSON(t, "GET /api/v1/status", &st)
	if st.EventsWritten != c.written || st.TipHeight != c.height {
		t.Errorf("status once the store reads again: %s", r.body)
	}

	t.Run("closed store", func(t *testing.T) {
		// A real store that fails: closed.
		closed, err := db.Open(ctx, filepath.Join(t.TempDir(), "closed.db"), zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if err := closed.Close(); err != nil {
			t.Fatal(err)
		}
		srv, _, logs := newServer(t, api.Config{Store: closed})
		for _, p := range []string{"/api/v1/status", "/api/v1/boxes/" + box} {
			r := get(t, srv.Client(), srv.URL+p)
			r.wantCode(t, "GET "+p, http.StatusInternalServerError)
			if msg := r.errorBody(t, "GET "+p); strings.Contains(msg, "closed") || strings.Contains(msg, "sql") {
				t.Errorf("GET %s: error %q leaks the store's", p, msg)
			}
		}
		if !strings.Contains(logs.String(), "closed") {
			t.Errorf("the store's error is not logged: %s", logs)
		}
	})
}

// testCache checks that concurrent requests share one read of the store,
// and that the scrapes use the status read too.
func testCache(t *testing.T, c *chain) {
	const n = 8
	store := newCountingStore(c.store, true)
	h, err := api.NewHandler(api.Config{Store: store, CacheTTL: time.Hour}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var inside atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inside.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	client := srv.Client()

	var wg sync.WaitGroup
	answers := make([]response, n)
	for i := range n {
		wg.Go(func() { answers[i] = get(t, client, srv.URL+"/api/v1/status") })
	}
	// Every request is in the handler while the first read is held.
	<-store.entered
	poll.True(t, 10*time.Second, "the requests to reach the handler", func() bool { return inside.Load() == n })
	if got := store.statusReads.Load(); got != 1 {
		t.Errorf("%d reads of the status started for %d concurrent requests, want 1", got, n)
	}
	close(store.gate)
	wg.Wait()
	for i, r := range answers {
		r.wantCode(t, fmt.Sprintf("request %d", i), http.StatusOK)
		if string(r.body) != string(answers[0].body) {
			t.Errorf("request %d: %s; request 0: %s", i, r.body, answers[0].body)
		}
	}
	if s, o := store.statusReads.Load(), store.outboxReads.Load(); s != 1 || o != 1 {
		t.Errorf("%d requests read the status %d times and the outbox %d times, want once each", n, s, o)
	}
	// A scrape counts the verdicts with the store's VerdictCounts, and
	// reads neither the status again nor the outbox (cached).
	m := scrape(t, client, srv.URL)
	if got, want := m.verdicts(t), first(expectedVerdicts(c.exp)); !reflect.DeepEqual(got, want) {
		t.Errorf("auditor_verdicts %v, want %v", got, want)
	}
	if got := m.value(t, "auditor_outbox_pending_events", gaugeType); got != float64(c.pending) {
		t.Errorf("auditor_outbox_pending_events %v, want %d", got, c.pending)
	}
	if s, o := store.statusReads.Load(), store.outboxReads.Load(); s != 1 || o != 1 {
		t.Errorf("after a scrape: %d reads of the status, %d of the outbox, want 1 each (cached)", s, o)
	}
	if len(store.entered) != 0 {
		t.Errorf("%d more reads of the status", len(store.entered))
	}

	t.Run("a scrape reads no status", func(t *testing.T) {
		fresh := newCountingStore(c.store, false)
		h, err := api.NewHandler(api.Config{Store: fresh}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		m := scrape(t, srv.Client(), srv.URL)
		if got, want := m.verdicts(t), first(expectedVerdicts(c.exp)); !reflect.DeepEqual(got, want) {
			t.Errorf("auditor_verdicts %v, want %v", got, want)
		}
		if got := fresh.statusReads.Load(); got != 0 {
			t.Errorf("a scrape read the whole status %d times: the store counts verdicts by itself", got)
		}
	})

	t.Run("a client that gives up", func(t *testing.T) {
		// A request waiting for another's read returns when its client
		// gives up; the read goes on for the others.
		store := newCountingStore(c.store, true)
		h, err := api.NewHandler(api.Config{Store: store}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		var inside, done atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inside.Add(1)
			defer done.Add(1)
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		first := make(chan response, 1)
		go func() { first <- get(t, srv.Client(), srv.URL+"/api/v1/status") }()
		<-store.entered

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v1/status", nil)
		if err != nil {
			t.Fatal(err)
		}
		gaveUp := make(chan error, 1)
		go func() {
			resp, err := srv.Client().Do(req)
			if err == nil {
				resp.Body.Close()
			}
			gaveUp <- err
		}()
		poll.True(t, 10*time.Second, "the second request to reach the handler", func() bool { return inside.Load() == 2 })
		cancel()
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Errorf("the request given up: %v, want %v", err, context.Canceled)
		}
		// Its handler returns while the first read is still held.
		poll.True(t, 10*time.Second, "the handler of the request given up to return", func() bool { return done.Load() == 1 })
		select {
		case r := <-first:
			t.Fatalf("the first request answered %d while its read is held", r.code)
		default:
		}
		close(store.gate)
		r := <-first
		r.wantCode(t, "the request whose read was held", http.StatusOK)
		if got := store.statusReads.Load(); got != 1 {
			t.Errorf("%d reads of the status, want 1", got)
		}
	})
}

// first returns the first of two values.
func first[A, B any](a A, _ B) A { return a }
