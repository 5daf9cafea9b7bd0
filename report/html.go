package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/readable"
	"github.com/async-emission/auditor/rules"
)

// The HTML report: one self-contained page (inline CSS, inline SVG, no
// script, no URL to fetch), readable on a phone and printable.

//go:embed report.html.tmpl
var pageTemplate string

var pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":      num,
	"amount":   groupAmount,
	"erg":      erg,
	"when":     when,
	"short":    shortID,
	"hex":      func(d ergo.Digest) string { return d.String() },
	"deref":    func(p *float64) float64 { return *p },
	"state":    lineageState,
	"dict":     dict,
	"explorer": explorerURL,
	"sentence": func(code string) string {
		if s := rules.Reason(code).Sentence(); s != "" {
			return s
		}
		return "(a code this build does not know)"
	},
}).Parse(pageTemplate))

// ListRows is how many rows the HTML report shows of each long list (the
// worst first); the JSON file lists them all.
const ListRows = 20

// ChangeRows is how many of the new invalid boxes the changes at the top
// of the HTML report show.
const ChangeRows = 5

// page is what the template renders: the report and what is derived from
// it for people.
type page struct {
	*Report
	Protocols []protocolPage
	// Explorer is the block explorer's URL template ({box} for a box id);
	// "" for no explorer links.
	Explorer string
	// Changed is true when something changed since the last report.
	Changed bool
	// NewInvalid, ByClass: the period's invalid verdicts over every
	// protocol, and by class.
	NewInvalid        int64
	NewInvalidByClass []classCount
	ConservingAgain   int
	NoLongerMisplaced int
}

type classCount struct {
	Class string
	N     int64
}

type protocolPage struct {
	*ProtocolReport
	HeightChart  chart
	ReasonChart  chart
	BalanceChart chart
	// BalanceHidden counts the lineages the chart leaves out.
	BalanceHidden int
	Classes       []classRow
	ActionRows    []classRow // results by action, in the protocol's order
	Reasons       []reasonRow
	// Worst rows of the long lists, worst first: InvalidTop the few the
	// changes show, InvalidRows the protocol's section.
	InvalidTop  []InvalidBox
	InvalidRows []InvalidBox
	// NewReasons are the reason codes of the period's invalid verdicts,
	// the most frequent first.
	NewReasons    []reasonRow
	FailingRows   []LineageFailure
	MisplacedRows []MisplacedBox
	LineageRows   []Lineage
	// The lineages (and boxes) of Changes, as rows.
	StoppedRows        []Lineage
	NewlyMisplacedRows []MisplacedBox
	OpenLineages       int
	ClosedLineages     int
	BrokenLineages     int
	FailingLineages    int
}

type classRow struct {
	Class           string
	Period, AllTime ClassCount
}

type reasonRow struct {
	Code, Sentence  string
	Period, AllTime int64
}

// renderHTML renders the report as its HTML page; explorer is the block
// explorer's URL template ("" for none).
func renderHTML(r *Report, explorer string) ([]byte, error) {
	p := page{Report: r, Explorer: explorer}
	byClass := map[string]int64{}
	for i := range r.Protocols {
		pr := &r.Protocols[i]
		pp := protocolPage{ProtocolReport: pr, HeightChart: heightChart(pr.Heights),
			ReasonChart: reasonChart(pr.Verdicts.AllTime, pr.Verdicts.Period)}
		pp.BalanceChart, pp.BalanceHidden = balanceChart(pr.Lineages)
		for _, cl := range sortedKeys(pr.Verdicts.AllTime.ByClass, classOrder) {
			pp.Classes = append(pp.Classes, classRow{Class: cl, Period: pr.Verdicts.Period.ByClass[cl], AllTime: pr.Verdicts.AllTime.ByClass[cl]})
			byClass[cl] += pr.Verdicts.Period.ByClass[cl].Invalid
		}
		for _, a := range sortedKeys(pr.Verdicts.AllTime.ByAction, func(a string) int { return slices.Index(pr.Actions, a) }) {
			pp.ActionRows = append(pp.ActionRows, classRow{Class: a, Period: pr.Verdicts.Period.ByAction[a], AllTime: pr.Verdicts.AllTime.ByAction[a]})
		}
		for _, code := range sortedKeys(pr.Verdicts.AllTime.ByReason, reasonOrder) {
			if n := pr.Verdicts.AllTime.ByReason[code]; n > 0 {
				pp.Reasons = append(pp.Reasons, reasonRow{Code: code, Sentence: rules.Reason(code).Sentence(),
					Period: pr.Verdicts.Period.ByReason[code], AllTime: n})
			}
		}
		pp.InvalidRows = firstRows(worstInvalid(pr.Invalid))
		pp.InvalidTop = pp.InvalidRows[:min(len(pp.InvalidRows), ChangeRows)]
		for _, r := range pp.Reasons {
			if r.Period > 0 {
				pp.NewReasons = append(pp.NewReasons, r)
			}
		}
		slices.SortStableFunc(pp.NewReasons, func(a, b reasonRow) int { return int(b.Period - a.Period) })
		pp.FailingRows = firstRows(worstFailures(pr.Conservation.FailingLineages))
		pp.MisplacedRows = firstRows(worstMisplaced(pr.Conservation.Participant.MisplacedList))
		pp.LineageRows = firstRows(worstLineages(pr.Lineages))
		for _, l := range worstLineages(pr.Lineages) {
			if slices.Contains(pr.Changes.StoppedConserving, l.TokenID) {
				pp.StoppedRows = append(pp.StoppedRows, l)
			}
		}
		pp.StoppedRows = firstRows(pp.StoppedRows)
		for _, b := range worstMisplaced(pr.Conservation.Participant.MisplacedList) {
			if slices.Contains(pr.Changes.NewlyMisplaced, b.BoxID) {
				pp.NewlyMisplacedRows = append(pp.NewlyMisplacedRows, b)
			}
		}
		pp.NewlyMisplacedRows = firstRows(pp.NewlyMisplacedRows)
		for _, l := range pr.Lineages {
			switch {
			case !l.Conserved:
				pp.FailingLineages++
			case l.Broken:
				pp.BrokenLineages++
			case l.Closed:
				pp.ClosedLineages++
			default:
				pp.OpenLineages++
			}
		}
		p.NewInvalid += pr.Changes.NewInvalid
		p.ConservingAgain += len(pr.Changes.ConservingAgain)
		p.NoLongerMisplaced += len(pr.Changes.NoLongerMisplaced)
		p.Protocols = append(p.Protocols, pp)
	}
	for _, cl := range sortedKeys(byClass, classOrder) {
		if byClass[cl] > 0 {
			p.NewInvalidByClass = append(p.NewInvalidByClass, classCount{cl, byClass[cl]})
		}
	}
	p.Changed = p.NewInvalid > 0 || r.Summary.NewFailingLineages > 0 || r.Summary.NewMisplacedParticipantBoxes > 0 ||
		p.ConservingAgain > 0 || p.NoLongerMisplaced > 0
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// dict makes the map a sub-template takes: keys and values in turn.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict of %d arguments", len(kv))
	}
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

// BoxPlaceholder is where a box id goes in Config.ExplorerURL.
const BoxPlaceholder = "{box}"

// explorerURL is the explorer's page of box: template with {box} replaced.
func explorerURL(template string, box ergo.Digest) string {
	return strings.ReplaceAll(template, BoxPlaceholder, box.String())
}

// firstRows is the first ListRows of rows.
func firstRows[T any](rows []T) []T {
	return rows[:min(len(rows), ListRows)]
}

// classRank orders the classes by what an invalid box of the class puts at
// stake: the supply (emission, participant) before the shared state, the
// funnel and results.
func classRank(class string) int {
	switch rules.Class(class) {
	case rules.ClassEmission:
		return 0
	case rules.ClassParticipant:
		return 1
	case rules.ClassState:
		return 2
	case rules.ClassFunnel:
		return 3
	}
	return 4
}

// worstInvalid orders invalid boxes worst first: by classRank, then more
// reason codes before fewer, then the newest first.
func worstInvalid(bs []InvalidBox) []InvalidBox {
	rows := slices.Clone(bs)
	slices.SortStableFunc(rows, func(a, b InvalidBox) int {
		if ra, rb := classRank(a.Class), classRank(b.Class); ra != rb {
			return ra - rb
		}
		if len(a.Reasons) != len(b.Reasons) {
			return len(b.Reasons) - len(a.Reasons)
		}
		return int(b.Height) - int(a.Height)
	})
	return rows
}

// worstFailures orders failing lineages by how far they are off the
// supply, the farthest first.
func worstFailures(fs []LineageFailure) []LineageFailure {
	rows := slices.Clone(fs)
	slices.SortStableFunc(rows, func(a, b LineageFailure) int {
		return sum(b.Difference).CmpAbs(sum(a.Difference))
	})
	return rows
}

// worstMisplaced orders misplaced boxes by the tokens they hold, most
// first.
func worstMisplaced(ms []MisplacedBox) []MisplacedBox {
	rows := slices.Clone(ms)
	slices.SortStableFunc(rows, func(a, b MisplacedBox) int { return sum(b.Amount).Cmp(sum(a.Amount)) })
	return rows
}

// erg writes an amount of nanoERG in ERG: "0.002 ERG".
func erg(a Amount) string { return readable.ERG(string(a)) }

// classOrder and reasonOrder put PROTOCOL.md's names in its order, any
// other after them by name.
func classOrder(s string) int {
	return slices.Index(rules.Classes(), rules.Class(s))
}

func reasonOrder(s string) int {
	return slices.Index(rules.Reasons(), rules.Reason(s))
}

func sortedKeys[V any](m map[string]V, order func(string) int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := order(k); i >= 0 {
			return i
		}
		return 1 << 30
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	return keys
}

// num writes an integer, or what a pointer points to, with thousands
// separators; a nil pointer is "—".
func num(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "—"
		}
		rv = rv.Elem()
	}
	return groupAmount(Amount(fmt.Sprint(rv.Interface())))
}

// groupDigits writes n with thousands separators: 1,234,567.
func groupDigits(n int64) string { return groupAmount(Amount(fmt.Sprint(n))) }

// groupAmount writes an amount with thousands separators.
func groupAmount(a Amount) string { return readable.Group(string(a)) }

// when writes a time for people, in its own zone.
func when(t any) string {
	switch t := t.(type) {
	case time.Time:
		return t.Format("2006-01-02 15:04:05 MST")
	case *time.Time:
		if t == nil {
			return "—"
		}
		return t.Format("2006-01-02 15:04:05 MST")
	}
	return fmt.Sprint(t)
}

// shortID abbreviates a hex id: its first 8 and last 6 digits.
func shortID(s string) string {
	if len(s) <= 16 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}
