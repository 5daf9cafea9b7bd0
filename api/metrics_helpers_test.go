package api_test

import (
	"bytes"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metrics are the families of one scrape, by name.
type metrics map[string]*dto.MetricFamily

const (
	gaugeType   = dto.MetricType_GAUGE
	counterType = dto.MetricType_COUNTER
)

// scrape gets /metrics from the server at url and parses the exposition.
func scrape(t *testing.T, client *http.Client, url string) metrics {
	t.Helper()
	r := get(t, client, url+"/metrics")
	r.wantCode(t, "GET /metrics", http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the text exposition", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, r.body)
	}
	return mfs
}

// lint checks the families as `promtool check metrics` does (the same
// linter): names, units, suffixes, help texts.
func (m metrics) lint(t *testing.T) {
	t.Helper()
	var mfs []*dto.MetricFamily
	for _, name := range slices.Sorted(maps.Keys(m)) {
		mfs = append(mfs, m[name])
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// value returns the value of the family name, which must be of type typ
// and have one sample without labels.
func (m metrics) value(t *testing.T, name string, typ dto.MetricType) float64 {
	t.Helper()
	mf, ok := m[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	if mf.GetType() != typ {
		t.Fatalf("%s is a %s, want a %s", name, mf.GetType(), typ)
	}
	if len(mf.Metric) != 1 || len(mf.Metric[0].Label) != 0 {
		t.Fatalf("%s: %d samples, want one without labels: %v", name, len(mf.Metric), mf.Metric)
	}
	if typ == counterType {
		return mf.Metric[0].GetCounter().GetValue()
	}
	return mf.Metric[0].GetGauge().GetValue()
}

// labelled returns the samples of the gauge family name by their label
// values, in the order of names; each sample must have exactly those
// labels, set.
func (m metrics) labelled(t *testing.T, name string, names ...string) map[string]float64 {
	t.Helper()
	mf, ok := m[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	if mf.GetType() != gaugeType {
		t.Fatalf("%s is a %s", name, mf.GetType())
	}
	out := map[string]float64{}
	for _, s := range mf.Metric {
		labels := map[string]string{}
		for _, l := range s.Label {
			labels[l.GetName()] = l.GetValue()
		}
		var values []string
		for _, n := range names {
			if labels[n] == "" {
				t.Fatalf("%s sample with labels %v, want %v", name, labels, names)
			}
			values = append(values, labels[n])
		}
		if len(labels) != len(names) {
			t.Fatalf("%s sample with labels %v, want %v", name, labels, names)
		}
		k := strings.Join(values, "/")
		if _, dup := out[k]; dup {
			t.Fatalf("%s{%s} twice", name, k)
		}
		out[k] = s.GetGauge().GetValue()
	}
	return out
}

// histogram returns the one sample of the histogram family name.
func (m metrics) histogram(t *testing.T, name string) *dto.Histogram {
	t.Helper()
	mf, ok := m[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	if mf.GetType() != dto.MetricType_HISTOGRAM || len(mf.Metric) != 1 {
		t.Fatalf("%s is a %s with %d samples, want one histogram", name, mf.GetType(), len(mf.Metric))
	}
	return mf.Metric[0].GetHistogram()
}

// verdicts returns the auditor_verdicts samples by protocol/class/verdict.
func (m metrics) verdicts(t *testing.T) map[string]float64 {
	t.Helper()
	return m.labelled(t, "auditor_verdicts", "protocol", "class", "verdict")
}

// reasons returns the auditor_verdict_reasons samples by protocol/code.
func (m metrics) reasons(t *testing.T) map[string]float64 {
	t.Helper()
	return m.labelled(t, "auditor_verdict_reasons", "protocol", "code")
}
