package report

import (
	"encoding/json"
	"slices"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

// findings is what a report found failing conservation, by protocol. It
// is recorded with the report (in the store's reports table, beside its
// summary) so that the next report can tell what changed.
type findings struct {
	Failing   map[string][]ergo.Digest `json:"failing_lineages"`
	Misplaced map[string][]ergo.Digest `json:"misplaced_boxes"`
}

// recorded is the summary column of a report's row: its Summary, and its
// findings (absent from rows an earlier version wrote).
type recorded struct {
	Summary
	Findings *findings `json:"findings,omitempty"`
}

// findingsOf returns what r found failing.
func findingsOf(r *Report) *findings {
	f := &findings{Failing: map[string][]ergo.Digest{}, Misplaced: map[string][]ergo.Digest{}}
	for i := range r.Protocols {
		p := &r.Protocols[i]
		f.Failing[p.Name] = []ergo.Digest{}
		for _, l := range p.Conservation.FailingLineages {
			f.Failing[p.Name] = append(f.Failing[p.Name], l.TokenID)
		}
		f.Misplaced[p.Name] = []ergo.Digest{}
		for _, b := range p.Conservation.Participant.MisplacedList {
			f.Misplaced[p.Name] = append(f.Misplaced[p.Name], b.BoxID)
		}
	}
	return f
}

// recordedFindings returns the findings recorded with rec, nil when it has
// none (or they do not decode: the changes are then not told).
func recordedFindings(rec *db.ReportRecord) *findings {
	var r recorded
	if json.Unmarshal(rec.Summary, &r) != nil {
		return nil
	}
	return r.Findings
}

// changesOf returns what changed in p since the last report, whose
// findings were prev (nil: not recorded); first is true when there is no
// last report.
func changesOf(p *ProtocolReport, first bool, prev *findings) Changes {
	c := Changes{Known: first || prev != nil, NewInvalid: p.Verdicts.Period.Invalid,
		StoppedConserving: []ergo.Digest{}, ConservingAgain: []ergo.Digest{},
		NewlyMisplaced: []ergo.Digest{}, NoLongerMisplaced: []ergo.Digest{}}
	if !c.Known {
		return c
	}
	now := findingsOf(&Report{Protocols: []ProtocolReport{*p}})
	var before findings
	if prev != nil {
		before = *prev
	}
	c.StoppedConserving, c.ConservingAgain = diff(now.Failing[p.Name], before.Failing[p.Name])
	c.NewlyMisplaced, c.NoLongerMisplaced = diff(now.Misplaced[p.Name], before.Misplaced[p.Name])
	return c
}

// diff returns the ids in now and not in before, and those in before and
// not in now, each in its list's order.
func diff(now, before []ergo.Digest) (added, gone []ergo.Digest) {
	added, gone = []ergo.Digest{}, []ergo.Digest{}
	for _, id := range now {
		if !slices.Contains(before, id) {
			added = append(added, id)
		}
	}
	for _, id := range before {
		if !slices.Contains(now, id) {
			gone = append(gone, id)
		}
	}
	return added, gone
}
