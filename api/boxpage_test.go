package api_test

import (
	"context"
	"html"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/internal/readable"
)

// testBoxPage reads the explanation pages of a result built on another
// and built upon, and of an invalid box: each says what the JSON says —
// the verdicts with their reasons' sentences, the value in ERG — and
// links every box it names to that box's page.
func testBoxPage(t *testing.T, c *chain) {
	srv, _, _ := newServer(t, api.Config{Store: c.store})
	var built, invalid *api.Explanation
	for _, e := range c.exp {
		ex, ok, err := c.store.Explain(context.Background(), e.BoxID)
		if err != nil || !ok {
			t.Fatalf("explain %s: %v %v", e.BoxID, ok, err)
		}
		j := api.Explain(ex)
		if built == nil && len(j.BuiltOn) > 0 && len(j.Dependents) > 0 && j.Lineage != nil {
			built = &j
		}
		if invalid == nil && e.Verdict == devnet.VerdictInvalid && len(e.Reasons) > 1 {
			invalid = &j
		}
	}
	if built == nil || invalid == nil {
		t.Fatal("the scenario has no result built on another and built upon, or no box with two reason codes")
	}
	for _, ex := range []*api.Explanation{built, invalid} {
		id := ex.Box.ID.String()
		r := get(t, srv.Client(), srv.URL+"/boxes/"+id)
		r.wantCode(t, "GET /boxes/"+id, http.StatusOK)
		page := string(r.body)
		if ct := r.header.Get("Content-Type"); ct != "text/html; charset=utf-8" || strings.Contains(page, "<script") {
			t.Errorf("GET /boxes/%s: %s, or a script", id, ct)
		}
		want := []string{`href="../api/v1/boxes/` + id + `"`, readable.ERG(strconv.FormatUint(ex.Box.Value, 10))}
		for _, v := range ex.Verdicts {
			want = append(want, ">"+v.Verdict+"<")
			for _, reason := range v.Reasons {
				want = append(want, string(reason.Code), html.EscapeString(reason.Sentence))
			}
		}
		link := func(id string) string { return `href="` + id + `"` }
		for _, b := range ex.Transaction.Spent {
			want = append(want, link(b.BoxID.String()))
		}
		for _, b := range ex.Transaction.DataInputs {
			want = append(want, link(b.BoxID.String()))
		}
		for _, b := range ex.BuiltOn {
			want = append(want, link(b.BoxID.String()))
			if b.ProvedBy != nil {
				want = append(want, link(b.ProvedBy.String()))
			}
		}
		for _, d := range ex.Dependents {
			want = append(want, link(d.BoxID.String()))
		}
		if ex.Lineage != nil {
			want = append(want, link(ex.Lineage.Current.String()), readable.Group(strconv.FormatUint(ex.Lineage.Minted, 10)))
			for _, e := range ex.Lineage.Emissions {
				want = append(want, link(e.BoxID.String()))
			}
		}
		for _, w := range want {
			if !strings.Contains(page, w) {
				t.Errorf("GET /boxes/%s does not hold %q", id, w)
			}
		}
	}
}
