package report

import (
	"context"
	"database/sql"
	"encoding/json"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

var reportTime = time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)

func newReporter(t testing.TB, store Store, dir string, clock Clock, p ...rules.Protocol) *Reporter {
	t.Helper()
	r, err := NewReporter(store, nil, Config{Dir: dir, Retention: 3, Protocols: p, Clock: clock}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// readReport decodes a report's JSON file.
func readReport(t testing.TB, path string) *Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields() // the Go types are the documented schema
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// TestReportAgainstTheStore makes a report of the sample history and
// checks it against what was planted and against the verdicts table, read
// with SQL of its own.
func TestReportAgainstTheStore(t *testing.T) {
	s := newSample(t)
	dir := t.TempDir()
	clock := newFakeClock(reportTime)
	res, err := newReporter(t, s.store, dir, clock, s.protocol).Run(context.Background(), Chain{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(dir, "report-20261124T030000Z.json"), filepath.Join(dir, "report-20261124T030000Z.html")}; !slices.Equal(res.Files, want) {
		t.Fatalf("files %q, want %q", res.Files, want)
	}
	r := readReport(t, res.Files[0])
	if !reflect.DeepEqual(r, res.Report) {
		t.Fatal("the JSON file does not decode to the report made")
	}
	if r.Schema != Schema || !r.Period.First || r.Period.FromHeight != 1 || r.Period.ToHeight != 120 || r.Chain.TipHeight != 120 ||
		r.Chain.Following || r.Chain.NodeHeight != nil || r.Chain.TipTime == nil {
		t.Fatalf("header %+v %+v", r.Period, r.Chain)
	}
	if len(r.Protocols) != 1 {
		t.Fatalf("%d protocols", len(r.Protocols))
	}
	p := r.Protocols[0]

	// Every planted conservation failure, and nothing else.
	gotFailing := map[ergo.Digest][]string{}
	for _, f := range p.Conservation.FailingLineages {
		gotFailing[f.TokenID] = f.Problems
	}
	if !reflect.DeepEqual(gotFailing, s.failing) {
		t.Errorf("failing lineages %v, planted %v", gotFailing, s.failing)
	}
	gotMisplaced := map[ergo.Digest]string{}
	for _, m := range p.Conservation.Participant.MisplacedList {
		gotMisplaced[m.BoxID] = m.Problem
	}
	if !reflect.DeepEqual(gotMisplaced, s.misplaced) {
		t.Errorf("misplaced participant tokens %v, planted %v", gotMisplaced, s.misplaced)
	}
	if p.Conservation.OK || r.Summary.Conserved || r.Summary.FailingLineages != 2 || r.Summary.MisplacedParticipantBoxes != 3 {
		t.Errorf("conservation %+v, summary %+v", p.Conservation, r.Summary)
	}
	sweep := p.Conservation.Participant
	if sum(sweep.InFunnel, sweep.InEmission, sweep.InParticipant, sweep.Misplaced).Cmp(sum(sweep.Live)) != 0 {
		t.Errorf("participant tokens do not add up: %+v", sweep)
	}

	// Counts equal to the verdicts table.
	all, reasons := countVerdicts(t, s.path, 0)
	checkCounts(t, "all time", p.Verdicts.AllTime, all, reasons)
	checkCounts(t, "period", p.Verdicts.Period, all, reasons) // the first report's period is everything
	if p.InvalidTotal != p.Verdicts.Period.Invalid || int64(len(p.Invalid)) != p.InvalidTotal {
		t.Errorf("invalid list %d of %d, %d counted", len(p.Invalid), p.InvalidTotal, p.Verdicts.Period.Invalid)
	}
	for _, b := range p.Invalid {
		if len(b.Reasons) == 0 || b.Reasons[0].Sentence != rules.Reason(b.Reasons[0].Code).Sentence() || b.Reasons[0].Sentence == "" {
			t.Errorf("invalid box %s: reasons %+v", b.BoxID, b.Reasons)
		}
	}
	var histogram int64
	for _, h := range p.Heights {
		histogram += h.Verified + h.Invalid
	}
	if histogram != p.Verdicts.AllTime.Total || len(p.Heights) == 0 || p.Heights[0].From != 1 || p.Heights[len(p.Heights)-1].To < 120 {
		t.Errorf("histogram holds %d verdicts of %d: %+v", histogram, p.Verdicts.AllTime.Total, p.Heights)
	}

	// Lineages: emitted = minted − balance − burnt; a conserved one's held
	// tokens are its balance plus what it emitted and did not burn.
	if len(p.Lineages) != s.lineages {
		t.Errorf("%d lineages", len(p.Lineages))
	}
	for _, l := range p.Lineages {
		want := new(big.Int).Sub(sum(l.Minted), sum(l.Balance, l.Burnt))
		if sum(l.Emitted).Cmp(want) != 0 {
			t.Errorf("lineage %s: emitted %s, want %s", l.TokenID, l.Emitted, want)
		}
		if l.Conserved == (s.failing[l.TokenID] != nil) {
			t.Errorf("lineage %s: conserved %t", l.TokenID, l.Conserved)
		}
	}

	// The report is recorded; the next one's period starts above it.
	last, ok, err := s.store.LastReport(context.Background())
	if err != nil || !ok || last.ID != res.ID || last.ToHeight != 120 || last.JSONPath != res.Files[0] || last.HTMLPath != res.Files[1] {
		t.Fatalf("last report %+v %v %v", last, ok, err)
	}
	var summary Summary
	if err := json.Unmarshal(last.Summary, &summary); err != nil || !reflect.DeepEqual(summary, r.Summary) {
		t.Fatalf("recorded summary %s: %v", last.Summary, err)
	}
	clock.Advance(time.Hour)
	res2, err := newReporter(t, s.store, dir, clock, s.protocol).Run(context.Background(), Chain{
		Following: true, NodeHeight: 125, TipHeight: 120, Reorgs: 2, DeepestReorg: 3, BlocksPerSecond: 12.5})
	if err != nil {
		t.Fatal(err)
	}
	r2 := res2.Report
	if r2.Period.First || r2.Period.FromHeight != 121 || r2.Period.FromTime == nil || !r2.Period.FromTime.Equal(reportTime) ||
		r2.Summary.Verdicts != 0 || r2.Summary.VerdictsAllTime != r.Summary.VerdictsAllTime || len(r2.Protocols[0].Invalid) != 0 {
		t.Errorf("second report: period %+v summary %+v", r2.Period, r2.Summary)
	}
	if c := r2.Chain; !c.Following || *c.NodeHeight != 125 || *c.Lag != 5 || *c.Reorgs != 2 || *c.DeepestReorg != 3 || *c.BlocksPerSecond != 12.5 {
		t.Errorf("chain %+v", c)
	}
}

// countVerdicts counts the verdicts table above height since, by class
// and verdict, and by reason code.
func countVerdicts(t *testing.T, path string, since uint32) (map[[2]string]int64, map[string]int64) {
	t.Helper()
	// A connection of the test's own, read-only, on the store's file.
	conn, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	byClass := map[[2]string]int64{}
	rows, err := conn.Query(`SELECT class, verdict, count(*) FROM verdicts WHERE height > ? GROUP BY 1, 2`, since)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var class, verdict string
		var n int64
		if err := rows.Scan(&class, &verdict, &n); err != nil {
			t.Fatal(err)
		}
		byClass[[2]string{class, verdict}] = n
	}
	rows.Close()
	byReason := map[string]int64{}
	rows, err = conn.Query(`SELECT reasons FROM verdicts WHERE height > ?`, since)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var js string
		var codes []string
		if err := rows.Scan(&js); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(js), &codes); err != nil {
			t.Fatal(err)
		}
		for _, c := range codes {
			byReason[c]++
		}
	}
	rows.Close()
	return byClass, byReason
}

func checkCounts(t *testing.T, what string, c Counts, byClass map[[2]string]int64, byReason map[string]int64) {
	t.Helper()
	var total, verified, invalid int64
	for k, n := range byClass {
		total += n
		got := c.ByClass[k[0]]
		switch k[1] {
		case "verified":
			verified += n
			if got.Verified != n {
				t.Errorf("%s: %s verified %d, table %d", what, k[0], got.Verified, n)
			}
		case "invalid":
			invalid += n
			if got.Invalid != n {
				t.Errorf("%s: %s invalid %d, table %d", what, k[0], got.Invalid, n)
			}
		}
	}
	if c.Total != total || c.Verified != verified || c.Invalid != invalid {
		t.Errorf("%s: total %d verified %d invalid %d; table %d %d %d", what, c.Total, c.Verified, c.Invalid, total, verified, invalid)
	}
	for code, n := range c.ByReason {
		if byReason[code] != n {
			t.Errorf("%s: reason %s: %d, table %d", what, code, n, byReason[code])
		}
	}
	for code := range maps.Keys(byReason) {
		if _, ok := c.ByReason[code]; !ok {
			t.Errorf("%s: reason %s missing", what, code)
		}
	}
	for _, r := range rules.Reasons() {
		if _, ok := c.ByReason[string(r)]; !ok {
			t.Errorf("%s: reason %s not listed", what, r)
		}
	}
}
