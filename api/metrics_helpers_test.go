package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

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

// verdicts returns the auditor_verdicts samples by their labels.
func (m metrics) verdicts(t *testing.T) map[verdictKey]float64 {
	t.Helper()
	mf, ok := m["auditor_verdicts"]
	if !ok {
		t.Fatal("no metric auditor_verdicts")
	}
	if mf.GetType() != gaugeType {
		t.Fatalf("auditor_verdicts is a %s", mf.GetType())
	}
	out := map[verdictKey]float64{}
	for _, s := range mf.Metric {
		labels := map[string]string{}
		for _, l := range s.Label {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["protocol"] == "" || labels["class"] == "" || labels["verdict"] == "" || len(labels) > 4 {
			t.Fatalf("auditor_verdicts sample with labels %v", labels)
		}
		// reason="" is the same as no reason label.
		k := verdictKey{labels["protocol"], labels["class"], labels["verdict"], labels["reason"]}
		if _, dup := out[k]; dup {
			t.Fatalf("auditor_verdicts%v twice", k)
		}
		out[k] = s.GetGauge().GetValue()
	}
	return out
}
