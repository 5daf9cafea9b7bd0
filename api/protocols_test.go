package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/internal/testchain"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// TestProtocolHistories: the status and the metrics show how far each
// protocol's history reaches, and a backfill's progress: a store that
// watched the demo protocol alone to height 40, the action tree added.
func TestProtocolHistories(t *testing.T) {
	const height = 40
	ctx := context.Background()
	tc := testchain.New(t, devnet.Config{Seed: 5, Blocks: height, TxsPerBlock: 3, Scenario: &devnet.AsyncEmission{}})
	store, _ := testchain.OpenStore(t)
	f := scan.NewFollower(tc.Client(t), store, rules.NewEngine(tc.Protocols[:1], nil, zerolog.Nop()),
		scan.FollowerConfig{Params: consensus.Devnet(), UntilHeight: height, PollInterval: time.Millisecond}, zerolog.Nop())
	if err := f.Run(ctx); err != nil {
		t.Fatal(err)
	}
	demo, tree := tc.Protocols[0], tc.Protocols[1]
	if _, err := store.RegisterProtocols(ctx, []db.ProtocolStart{{Name: demo.Name, StartHeight: demo.StartHeight},
		{Name: tree.Name, StartHeight: tree.StartHeight}}, nil); err != nil {
		t.Fatal(err)
	}
	srv, _, _ := newServer(t, api.Config{Store: store, Backfill: func() map[string]api.BackfillStats {
		return map[string]api.BackfillStats{tree.Name: {BlocksPerSecond: 12.5, Remaining: 3 * time.Second}}
	}})

	r := get(t, srv.Client(), srv.URL+"/api/v1/status")
	r.wantCode(t, "GET /api/v1/status", http.StatusOK)
	var st api.Status
	if err := json.Unmarshal(r.body, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Protocols) != 2 {
		t.Fatalf("protocols %+v", st.Protocols)
	}
	d, tr := st.Protocols[0], st.Protocols[1]
	if d.Name != demo.Name || d.Backfilling || d.Cursor != height || d.Progress != 1 || d.BlocksPerSecond != nil {
		t.Errorf("the demo protocol: %+v", d)
	}
	from := tree.StartHeight
	if tr.Name != tree.Name || !tr.Backfilling || tr.Cursor != from-1 || tr.BackfillFrom != from || tr.RemainingBlocks != height-from+1 ||
		tr.Progress != 0 || tr.BlocksPerSecond == nil || *tr.BlocksPerSecond != 12.5 || tr.TimeLeftSeconds == nil || *tr.TimeLeftSeconds != 3 {
		t.Errorf("the tree, backfilling: %+v", tr)
	}

	m := scrape(t, srv.Client(), srv.URL)
	samples := func(name string) map[string]float64 {
		t.Helper()
		mf, ok := m[name]
		if !ok || mf.GetType() != dto.MetricType_GAUGE {
			t.Fatalf("no gauge %s", name)
		}
		out := map[string]float64{}
		for _, s := range mf.Metric {
			for _, l := range s.Label {
				if l.GetName() == "protocol" {
					out[l.GetValue()] = s.GetGauge().GetValue()
				}
			}
		}
		return out
	}
	if c := samples("auditor_protocol_cursor_height"); c[demo.Name] != height || c[tree.Name] != float64(from-1) {
		t.Errorf("cursors %v", c)
	}
	if r := samples("auditor_protocol_backfill_remaining_blocks"); r[demo.Name] != 0 || r[tree.Name] != float64(height-from+1) {
		t.Errorf("remaining blocks %v", r)
	}
	if r := samples("auditor_protocol_backfill_blocks_per_second"); len(r) != 1 || r[tree.Name] != 12.5 {
		t.Errorf("backfill rates %v", r)
	}
}
