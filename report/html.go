package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

// The HTML report: one self-contained page (inline CSS, inline SVG, no
// script, no URL to fetch), readable on a phone and printable.

//go:embed report.html.tmpl
var pageTemplate string

var pageTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":     num,
	"amount":  groupAmount,
	"compact": compact,
	"when":    when,
	"short":   shortID,
	"hex":     func(d ergo.Digest) string { return d.String() },
	"deref":   func(p *float64) float64 { return *p },
	"sentence": func(code string) string {
		if s := rules.Reason(code).Sentence(); s != "" {
			return s
		}
		return "(a code this build does not know)"
	},
}).Parse(pageTemplate))

// page is what the template renders: the report and what is derived from
// it for people.
type page struct {
	*Report
	Protocols []protocolPage
}

type protocolPage struct {
	*ProtocolReport
	HeightChart    chart
	ReasonChart    chart
	BalanceChart   chart
	BalanceHidden  int
	Classes        []classRow
	ActionRows     []classRow // results by action, in the protocol's order
	Reasons        []reasonRow
	InvalidListed  int
	InvalidCut     bool
	LineageRows    []Lineage // latest activity first
	OpenLineages   int
	BrokenLineages int
}

type classRow struct {
	Class           string
	Period, AllTime ClassCount
}

type reasonRow struct {
	Code, Sentence  string
	Period, AllTime int64
}

// renderHTML renders the report as its HTML page.
func renderHTML(r *Report) ([]byte, error) {
	p := page{Report: r}
	for i := range r.Protocols {
		pr := &r.Protocols[i]
		pp := protocolPage{ProtocolReport: pr, HeightChart: heightChart(pr.Heights),
			ReasonChart:   reasonChart(pr.Verdicts.AllTime, pr.Verdicts.Period),
			InvalidListed: len(pr.Invalid), InvalidCut: int64(len(pr.Invalid)) < pr.InvalidTotal}
		pp.BalanceChart, pp.BalanceHidden = balanceChart(pr.Lineages)
		for _, cl := range sortedKeys(pr.Verdicts.AllTime.ByClass, classOrder) {
			pp.Classes = append(pp.Classes, classRow{Class: cl, Period: pr.Verdicts.Period.ByClass[cl], AllTime: pr.Verdicts.AllTime.ByClass[cl]})
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
		pp.LineageRows = slices.Clone(pr.Lineages)
		slices.SortStableFunc(pp.LineageRows, func(a, b Lineage) int { return int(b.LastActivityHeight) - int(a.LastActivityHeight) })
		for _, l := range pr.Lineages {
			if l.Broken {
				pp.BrokenLineages++
			} else if !l.Closed {
				pp.OpenLineages++
			}
		}
		p.Protocols = append(p.Protocols, pp)
	}
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, p); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

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
func groupAmount(a Amount) string {
	s := string(a)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	if len(s) <= 3 {
		return sign + s
	}
	var b strings.Builder
	b.WriteString(sign)
	head := len(s) % 3
	if head > 0 {
		b.WriteString(s[:head])
	}
	for i := head; i < len(s); i += 3 {
		if b.Len() > len(sign) {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// compact writes an amount in three significant digits and an SI prefix:
// 9.22E (10^18), 1.5T.
func compact(a Amount) string {
	v, err := a.Big()
	if err != nil {
		return string(a)
	}
	f, _ := new(big.Float).SetInt(v).Float64()
	neg := f < 0
	if neg {
		f = -f
	}
	out := ""
	switch prefixes := "kMGTPE"; {
	case f < 1000:
		out = v.String()
		if neg {
			return out
		}
	default:
		i := -1
		for f >= 1000 && i < len(prefixes)-1 {
			f /= 1000
			i++
		}
		out = fmt.Sprintf("%.3g%c", f, prefixes[i])
		if neg {
			out = "-" + out
		}
	}
	return out
}

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
