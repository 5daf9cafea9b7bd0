package report

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

// TestReportTellsWhatChanged: the first report finds everything new; a
// report made after more blocks names the lineage that stopped conserving
// in between and nothing else; a report after a record that holds no
// findings (an earlier version's) says the changes are not known; one
// after a record naming failures that are gone names them undone.
func TestReportTellsWhatChanged(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock(reportTime.Add(-24 * time.Hour))
	var (
		r     *Reporter
		first *Report
	)
	s := newSample(t, func(s *sample) {
		var err error
		if r, err = NewReporter(s.store, nil, Config{Dir: dir, Protocols: []rules.Protocol{s.protocol}, Clock: clock}, zerolog.Nop()); err != nil {
			t.Fatal(err)
		}
		res, err := r.Run(context.Background(), Chain{})
		if err != nil {
			t.Fatal(err)
		}
		first = res.Report
	})
	var badMint, unbalanced ergo.Digest
	for token, problems := range s.failing {
		if problems[0] == ProblemBadMint {
			badMint = token
		} else {
			unbalanced = token
		}
	}
	misplaced := slices.Collect(func(yield func(ergo.Digest) bool) {
		for id := range s.misplaced {
			if !yield(id) {
				return
			}
		}
	})

	// The first report: everything it finds is new.
	c := first.Protocols[0].Changes
	if c.Since != nil || !c.Known || !slices.Equal(c.StoppedConserving, []ergo.Digest{badMint}) ||
		!sameIDs(c.NewlyMisplaced, misplaced) || len(c.ConservingAgain)+len(c.NoLongerMisplaced) != 0 ||
		c.NewInvalid != first.Protocols[0].Verdicts.Period.Invalid || c.NewInvalid == 0 {
		t.Fatalf("first report's changes %+v; planted: bad mint %s, misplaced %v", c, badMint, misplaced)
	}
	if sm := first.Summary; sm.NewFailingLineages != 1 || sm.NewMisplacedParticipantBoxes != 3 || !sm.ChangesKnown {
		t.Errorf("first summary %+v", sm)
	}

	// A day later, at the end of the history: only the lineage made
	// unbalanced at 72 is new; the misplaced boxes were there already.
	clock.Advance(24 * time.Hour)
	res, err := r.Run(context.Background(), Chain{})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Report.Protocols[0]
	c = p.Changes
	if c.Since == nil || !c.Since.Equal(reportTime.Add(-24*time.Hour)) || !c.Known ||
		!slices.Equal(c.StoppedConserving, []ergo.Digest{unbalanced}) || len(c.NewlyMisplaced) != 0 ||
		len(c.ConservingAgain)+len(c.NoLongerMisplaced) != 0 || c.NewInvalid != p.Verdicts.Period.Invalid || c.NewInvalid == 0 {
		t.Fatalf("second report's changes %+v; planted: unbalanced %s", c, unbalanced)
	}
	if sm := res.Report.Summary; sm.NewFailingLineages != 1 || sm.NewMisplacedParticipantBoxes != 0 || !sm.ChangesKnown {
		t.Errorf("second summary %+v", sm)
	}
	// The findings are recorded with the report, beside its summary.
	last, _, err := s.store.LastReport(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var rec recorded
	if err := json.Unmarshal(last.Summary, &rec); err != nil || rec.Findings == nil ||
		!sameIDs(rec.Findings.Failing["demo"], []ergo.Digest{badMint, unbalanced}) || !sameIDs(rec.Findings.Misplaced["demo"], misplaced) {
		t.Fatalf("recorded %s (%v)", last.Summary, err)
	}

	// A last report an earlier version recorded: no findings, no changes
	// told but the new invalid boxes.
	record := func(summary any) {
		raw, err := json.Marshal(summary)
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
		_, err = s.store.RecordReport(context.Background(), db.ReportRecord{Time: clock.Now(), FromHeight: 1, ToHeight: 120,
			ToTime: clock.Now(), Status: db.ReportOK, Summary: raw})
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour)
	}
	record(res.Report.Summary)
	res, err = r.Run(context.Background(), Chain{})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Report.Protocols[0].Changes; c.Known || len(c.StoppedConserving)+len(c.NewlyMisplaced) != 0 || res.Report.Summary.ChangesKnown {
		t.Errorf("after a record without findings: changes %+v, summary %+v", c, res.Report.Summary)
	}

	// A last report that found failures now gone: they are undone.
	gone, goneBox := lbl("a lineage a fork took away"), lbl("a box a fork took away")
	record(recorded{Summary: res.Report.Summary, Findings: &findings{
		Failing:   map[string][]ergo.Digest{"demo": {badMint, gone}},
		Misplaced: map[string][]ergo.Digest{"demo": {goneBox}},
	}})
	res, err = r.Run(context.Background(), Chain{})
	if err != nil {
		t.Fatal(err)
	}
	c = res.Report.Protocols[0].Changes
	if !c.Known || !slices.Equal(c.StoppedConserving, []ergo.Digest{unbalanced}) || !slices.Equal(c.ConservingAgain, []ergo.Digest{gone}) ||
		!sameIDs(c.NewlyMisplaced, misplaced) || !slices.Equal(c.NoLongerMisplaced, []ergo.Digest{goneBox}) {
		t.Errorf("after failures a fork took away: %+v", c)
	}
	page, err := renderHTML(res.Report, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "lineages conserving again · boxes no longer misplaced") {
		t.Error("the page does not tell what was undone")
	}
}

func sameIDs(a, b []ergo.Digest) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(id ergo.Digest) bool { return !slices.Contains(b, id) })
}

// TestHTMLLeadsWithTheChanges reads the sample's second report as an
// operator would: what changed first, then the state; long lists cut to
// the worst with their counts; every box and lineage linked to its
// explanation and the explorer; amounts readable; every state word in the
// legend.
func TestHTMLLeadsWithTheChanges(t *testing.T) {
	res := sampleReports(t, t.TempDir())
	page := string(mustRead(t, res.Files[1]))
	p := res.Report.Protocols[0]
	order := []string{`id="changes"`, "Since the last report", `id="words"`, `id="state"`, `id="protocol-demo"`}
	at := -1
	for _, s := range order {
		i := strings.Index(page, s)
		if i <= at {
			t.Fatalf("%q at %d, after what should follow it (order %q)", s, i, order)
		}
		at = i
	}
	changes := page[strings.Index(page, `id="changes"`):strings.Index(page, `id="words"`)]
	stopped := p.Changes.StoppedConserving[0].String()
	if !strings.Contains(changes, `href="../boxes/`) || !strings.Contains(changes, shortID(stopped)) ||
		!strings.Contains(changes, "34 new invalid box(es)") || !strings.Contains(changes, "The worst 5 of 34") {
		t.Errorf("the changes do not name the lineage that stopped conserving (%s) or the new invalid boxes:\n%s", stopped, changes)
	}
	// Long lists: the worst rows, with the count.
	if p.InvalidTotal <= ListRows || !strings.Contains(page, "The worst 20 of 34") {
		t.Errorf("%d invalid boxes; the page does not say it shows the worst 20", p.InvalidTotal)
	}
	invalid := page[strings.Index(page, `id="invalid-demo"`):strings.Index(page, `id="lineages-demo"`)]
	if n := strings.Count(invalid, "<tr>") - 1; n != ListRows { // less the header row
		t.Errorf("the invalid boxes' table has %d rows, want %d", n, ListRows)
	}
	// Every box and lineage listed links to its explanation and the
	// explorer: as many explorer links as explanation links.
	explained := strings.Count(page, `href="../boxes/`)
	explored := strings.Count(page, `href="https://explorer.example/en/boxes/`)
	if explained < ListRows+5 || explained != explored {
		t.Errorf("%d links to explanations, %d to the explorer", explained, explored)
	}
	for _, b := range worstInvalid(p.Invalid)[:ListRows] {
		if !strings.Contains(invalid, `href="../boxes/`+b.BoxID.String()+`"`) {
			t.Errorf("invalid box %s is not linked", b.BoxID)
		}
	}
	// Amounts: ERG with decimals, tokens grouped, no E notation.
	if regexp.MustCompile(`\d(\.\d+)?[kMGTPE]\b`).MatchString(page) {
		t.Errorf("an amount in E notation: %s", regexp.MustCompile(`.{30}\d(\.\d+)?[kMGTPE]\b.{10}`).FindString(page))
	}
	for _, want := range []string{"0.001 ERG", "9,223,372,036,854,775,807", "48,012,631,109,848"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	// Every state word the page uses is in the legend.
	legend := page[strings.Index(page, `id="words"`):strings.Index(page, `id="state"`)]
	for _, w := range []string{"verified", "invalid", "open", "closed", "broken", "not conserved", "misplaced",
		ProblemBadMint, ProblemUnbalanced, MisplacedUnclassified, MisplacedClass, MisplacedEmissionAmount, "emitted", "burnt"} {
		if !strings.Contains(page[strings.Index(page, `id="state"`):], w) && !strings.Contains(changes, w) {
			continue // not used
		}
		if !strings.Contains(legend, w) {
			t.Errorf("the page says %q, the legend does not explain it", w)
		}
	}
}

// TestBalanceChartShowsWhatItClaims: each open sound lineage's emitted and
// burnt are drawn to one scale, the largest of them full; a closed
// lineage that burnt its rest and an escape are drawn beyond the scale,
// not setting it.
func TestBalanceChartShowsWhatItClaims(t *testing.T) {
	l := func(id string, emitted, burnt string, closed, broken bool) Lineage {
		return Lineage{TokenID: lbl(id), Emitted: Amount(emitted), Burnt: Amount(burnt), Closed: closed, Broken: broken,
			Conserved: true, LastActivityHeight: 10}
	}
	ls := []Lineage{
		l("big", "3000000000000", "1000000000000", false, false),
		l("small", "1000000000000", "0", false, false),
		l("closed", "2000000000000", "9223370036854775807", true, false),
		l("escaped", "9223372036854775807", "0", true, true),
	}
	ch, hidden := balanceChart(ls)
	if hidden != 0 {
		t.Fatalf("%d hidden", hidden)
	}
	full := ch.Width - 2
	widths := map[string]float64{}
	for _, r := range ch.Rects {
		widths[r.Class+" "+strings.Fields(r.Title)[0]] += r.W
	}
	short := func(id string) string { return shortID(lbl(id).String()) }
	for _, c := range []struct {
		key  string
		want float64
	}{
		{"emitted " + short("big"), full * 3 / 4},
		{"burnt " + short("big"), full * 1 / 4},
		{"emitted " + short("small"), full * 1 / 4},
		{"over " + short("closed"), full},
		{"over " + short("escaped"), full},
	} {
		if got := widths[c.key]; got < c.want-0.5 || got > c.want+0.5 {
			t.Errorf("%s drawn %.1f wide, want %.1f (of %.0f): %v", c.key, got, c.want, full, widths)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
