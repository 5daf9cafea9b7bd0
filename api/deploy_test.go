package api_test

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/async-emission/auditor/api"
)

// metricName is a name of the auditor's metrics, or of the Go and process
// collectors', in a file.
var metricName = regexp.MustCompile(`\b(?:auditor|go|process)_[a-z0-9_]*[a-z0-9]\b`)

// testDeployFiles keeps deploy/ honest: every metric the alerting rules,
// their tests and the Grafana dashboard name is one the auditor serves
// (the histograms' series included), and the dashboard is well formed.
func testDeployFiles(t *testing.T, c *chain) {
	srv, _, _ := newServer(t, api.Config{Store: c.store, Protocols: []string{"demo", "tree"},
		Chain:        func() api.ChainStats { return chainStats(c) },
		Publish:      func() api.PublishStats { return publishStats },
		Reports:      func() api.ReportStats { return reportStats },
		Conservation: func() (api.ConservationStats, bool) { return conservationStats, true },
		Latency:      api.NewLatency(),
		HA:           func() api.HAStatus { return haStatus },
		Checks:       []api.Check{{Name: "nats", Problems: func(context.Context) []string { return nil }}},
	})
	served := map[string]bool{}
	for name, mf := range scrape(t, srv.Client(), srv.URL) {
		served[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				served[name+s] = true
			}
		}
	}
	for _, file := range []string{"../deploy/prometheus/alerts.yml", "../deploy/prometheus/alerts_test.yml", "../deploy/grafana/auditor.json"} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		names := metricName.FindAllString(string(text), -1)
		if len(names) < 10 {
			t.Errorf("%s names %d metrics: %v", file, len(names), names)
		}
		for _, name := range slices.Compact(slices.Sorted(slices.Values(names))) {
			if !served[name] {
				t.Errorf("%s names %s, which the auditor does not serve", file, name)
			}
		}
	}

	text, err := os.ReadFile("../deploy/grafana/auditor.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name string `json:"name"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			GridPos struct{ X, Y, W, H int } `json:"gridPos"`
			Targets []struct {
				RefID string `json:"refId"`
				Expr  string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	dec := json.NewDecoder(strings.NewReader(string(text)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if d.UID == "" || d.Title == "" || !slices.Equal(vars, []string{"datasource", "instance", "protocol"}) {
		t.Errorf("dashboard uid %q, title %q, variables %v", d.UID, d.Title, vars)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.Title == "" || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %d %q: a duplicate id, no title, or out of the grid: %+v", p.ID, p.Title, p.GridPos)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %d %q: datasource %+v, %d queries; want the dashboard's variable and a query", p.ID, p.Title, p.Datasource, len(p.Targets))
		}
		for _, q := range p.Targets {
			if q.RefID == "" || !strings.Contains(q.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %d %q: query %s %q is not filtered by $instance", p.ID, p.Title, q.RefID, q.Expr)
			}
		}
	}
}
