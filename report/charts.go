package report

import (
	"fmt"
	"math/big"
	"slices"
)

// The charts of the HTML report, laid out here in SVG user units and drawn
// by the template: plain rectangles and text, no script. Every chart's
// viewBox is chartWidth wide, so its text keeps one size relative to the
// page whatever the screen; the page scales the SVG to its column.

const (
	chartWidth = 360
	fontSize   = 10
)

// rect is a bar (or a part of one), with the tooltip it shows.
type rect struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

// label is a text in a chart.
type label struct {
	X, Y   float64
	Text   string
	Anchor string // start, middle or end
	Class  string
}

// chart is an SVG chart: its size, bars and labels.
type chart struct {
	Title  string // the accessible name
	Width  float64
	Height float64
	Rects  []rect
	Labels []label
	Lines  []line
	Empty  string // shown instead when there is nothing to draw
}

type line struct{ X1, Y1, X2, Y2 float64 }

// heightChart draws the verdicts per height range: a stacked bar per range,
// verified below, invalid on top.
func heightChart(ranges []HeightRange) chart {
	c := chart{Title: "Verdicts per height range", Width: chartWidth, Height: 170}
	var top int64
	for _, r := range ranges {
		top = max(top, r.Verified+r.Invalid)
	}
	if top == 0 {
		c.Empty, c.Height = "No verdicts yet.", 0
		return c
	}
	const left, right, upper, lower = 40.0, 6.0, 10.0, 32.0
	plotW, plotH := c.Width-left-right, c.Height-upper-lower
	slot := plotW / float64(len(ranges))
	gap := min(2, slot/5)
	scale := plotH / float64(top)
	base := upper + plotH
	c.Lines = append(c.Lines, line{left, base, c.Width - right, base}, line{left, upper, left, base})
	c.Labels = append(c.Labels,
		label{X: left - 4, Y: upper + fontSize/2 - 1, Text: groupDigits(top), Anchor: "end"},
		label{X: left - 4, Y: base, Text: "0", Anchor: "end"},
		label{X: left, Y: base + 13, Text: fmt.Sprint(ranges[0].From), Anchor: "start"},
		label{X: c.Width - right, Y: base + 13, Text: fmt.Sprint(ranges[len(ranges)-1].To), Anchor: "end"},
		label{X: left + plotW/2, Y: base + 26, Text: "height", Anchor: "middle", Class: "axis"},
	)
	for i, r := range ranges {
		x := left + float64(i)*slot + gap/2
		title := fmt.Sprintf("heights %d–%d: %d verified, %d invalid", r.From, r.To, r.Verified, r.Invalid)
		hv, hi := float64(r.Verified)*scale, float64(r.Invalid)*scale
		if r.Verified > 0 {
			c.Rects = append(c.Rects, rect{X: x, Y: base - hv, W: slot - gap, H: hv, Class: "ok", Title: title})
		}
		if r.Invalid > 0 {
			c.Rects = append(c.Rects, rect{X: x, Y: base - hv - hi, W: slot - gap, H: max(hi, 1), Class: "bad", Title: title})
		}
	}
	return c
}

// reasonChart draws the invalid verdicts by reason code, all time, the
// codes found only: a label line and a bar each.
func reasonChart(c Counts, period Counts) chart {
	ch := chart{Title: "Invalid verdicts by reason code", Width: chartWidth}
	type row struct {
		code        string
		all, recent int64
	}
	var rows []row
	var top int64
	for code, n := range c.ByReason {
		if n > 0 {
			rows = append(rows, row{code, n, period.ByReason[code]})
			top = max(top, n)
		}
	}
	if len(rows) == 0 {
		ch.Empty = "No invalid verdicts."
		return ch
	}
	slices.SortFunc(rows, func(a, b row) int {
		if a.all != b.all {
			return int(b.all - a.all)
		}
		if a.code < b.code {
			return -1
		}
		return 1
	})
	const rowH, barH = 26.0, 8.0
	y := 4.0
	for _, r := range rows {
		w := (ch.Width - 2) * float64(r.all) / float64(top)
		ch.Labels = append(ch.Labels,
			label{X: 0, Y: y + fontSize, Text: r.code, Anchor: "start"},
			label{X: ch.Width, Y: y + fontSize, Text: fmt.Sprintf("%s · %s this period", groupDigits(r.all), groupDigits(r.recent)), Anchor: "end", Class: "num"})
		ch.Rects = append(ch.Rects, rect{X: 0, Y: y + fontSize + 4, W: max(w, 2), H: barH, Class: "bad",
			Title: fmt.Sprintf("%s: %d invalid verdicts, %d this period", r.code, r.all, r.recent)})
		y += rowH
	}
	ch.Height = y
	return ch
}

// maxBalanceRows bounds the lineages the balance chart draws: the
// worst (not conserved, broken), then those with the latest activity.
const maxBalanceRows = 20

// balanceChart draws what each lineage has let out of its emission box:
// emitted (in circulation) and burnt, to the scale of the open, sound
// lineage (conserved, not broken, not closed) that let out most, with both
// amounts written under the bar. A linear scale of the whole supply would
// draw nothing (an emission of a trillion tokens is 10^-7 of i64::MAX), and
// one of the largest lineage of all would be set by a closed one — which
// burns what is left of its supply — or an escape, and flatten every other
// bar: those are drawn full and marked beyond the scale.
func balanceChart(ls []Lineage) (chart, int) {
	ch := chart{Title: "What each lineage let out: emitted and burnt", Width: chartWidth}
	if len(ls) == 0 {
		ch.Empty = "No lineages yet."
		return ch, 0
	}
	rows := worstLineages(ls)
	hidden := 0
	if len(rows) > maxBalanceRows {
		hidden = len(rows) - maxBalanceRows
		rows = rows[:maxBalanceRows]
	}
	top := balanceScale(rows)
	const rowH, barH = 36.0, 8.0
	full := ch.Width - 2
	y := 4.0
	for _, l := range rows {
		id := shortID(l.TokenID.String())
		out := sum(l.Emitted, l.Burnt)
		ch.Labels = append(ch.Labels,
			label{X: 0, Y: y + fontSize, Text: id + " · " + lineageState(l), Anchor: "start", Class: stateClass(l)},
			label{X: 0, Y: y + fontSize + 4 + barH + fontSize + 1, Text: "emitted " + groupAmount(l.Emitted) + " · burnt " + groupAmount(l.Burnt),
				Anchor: "start", Class: "num"})
		barY := y + fontSize + 4
		switch {
		case top.Sign() > 0 && out.Cmp(top) > 0:
			ch.Rects = append(ch.Rects, rect{X: 0, Y: barY, W: full, H: barH, Class: "over",
				Title: fmt.Sprintf("%s emitted %s and burnt %s: beyond the scale", id, groupAmount(l.Emitted), groupAmount(l.Burnt))})
		default:
			x := 0.0
			for _, part := range []struct {
				v           Amount
				class, what string
			}{{l.Emitted, "emitted", "emitted"}, {l.Burnt, "burnt", "burnt"}} {
				w := fraction(part.v, top) * full
				if w <= 0 {
					continue
				}
				w = max(w, 2) // a sliver stays visible
				ch.Rects = append(ch.Rects, rect{X: x, Y: barY, W: w, H: barH, Class: part.class,
					Title: fmt.Sprintf("%s %s: %s", id, part.what, groupAmount(part.v))})
				x += w
			}
			if x < full {
				ch.Rects = append(ch.Rects, rect{X: x, Y: barY, W: full - x, H: barH, Class: "rest",
					Title: fmt.Sprintf("%s: the scale, %s let out by the open sound lineage that let out most", id, groupAmount(Amount(top.String())))})
			}
		}
		y += rowH
	}
	ch.Height = y
	return ch, hidden
}

// balanceScale is what the open, sound lineage of ls that let out most
// let out (emitted + burnt); if none is open and sound, the largest of any.
func balanceScale(ls []Lineage) *big.Int {
	top, topAll := new(big.Int), new(big.Int)
	for _, l := range ls {
		out := sum(l.Emitted, l.Burnt)
		if out.Cmp(topAll) > 0 {
			topAll = out
		}
		if l.Conserved && !l.Broken && !l.Closed && out.Cmp(top) > 0 {
			top = out
		}
	}
	if top.Sign() == 0 {
		return topAll
	}
	return top
}

// worstLineages orders lineages worst first: not conserved, then broken,
// then by latest activity.
func worstLineages(ls []Lineage) []Lineage {
	rows := slices.Clone(ls)
	rank := func(l Lineage) int {
		switch {
		case !l.Conserved:
			return 0
		case l.Broken:
			return 1
		}
		return 2
	}
	slices.SortStableFunc(rows, func(a, b Lineage) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return int(b.LastActivityHeight) - int(a.LastActivityHeight)
	})
	return rows
}

// lineageState is a lineage's state word: not conserved, broken, closed or
// open (the legend explains each).
func lineageState(l Lineage) string {
	switch {
	case !l.Conserved:
		return "not conserved"
	case l.Broken:
		return "broken"
	case l.Closed:
		return "closed"
	}
	return "open"
}

func stateClass(l Lineage) string {
	if !l.Conserved || l.Broken {
		return "badtext"
	}
	return ""
}

// sum adds amounts, reading a malformed one as 0.
func sum(as ...Amount) *big.Int {
	t := new(big.Int)
	for _, a := range as {
		if v, err := a.Big(); err == nil {
			t.Add(t, v)
		}
	}
	return t
}

// fraction is a/of in [0, 1] (0 when of is not positive).
func fraction(a Amount, of *big.Int) float64 {
	v, err := a.Big()
	if err != nil || of.Sign() <= 0 || v.Sign() <= 0 {
		return 0
	}
	f, _ := new(big.Rat).SetFrac(v, of).Float64()
	return min(f, 1)
}
