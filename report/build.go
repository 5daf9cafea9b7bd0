package report

import (
	"math/big"
	"time"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

// input is what build needs besides the store's data.
type input struct {
	now       time.Time // the report's time, in its time zone
	last      *db.ReportRecord
	since     uint32 // the period is the heights above it
	chain     Chain
	protocols []rules.Protocol
	// previous are the findings the last report recorded; nil when it
	// recorded none (or there is none).
	previous *findings
}

// build makes the report from one snapshot of the store. It is a pure
// function of its arguments.
func build(d *db.ReportData, in input) *Report {
	loc := in.now.Location()
	r := &Report{
		Schema:      Schema,
		GeneratedAt: in.now,
		TimeZone:    loc.String(),
		Period: Period{
			FromHeight: in.since + 1,
			ToHeight:   d.Tip.Height,
			ToTime:     in.now,
			First:      in.last == nil,
		},
		Chain: chainStatus(d, in.chain, loc),
	}
	if in.last != nil {
		t := in.last.Time.In(loc)
		r.Period.FromTime = &t
	}
	for i := range in.protocols {
		pr := protocolReport(d, &in.protocols[i], in.since)
		pr.Changes = changesOf(&pr, in.last == nil, in.previous)
		pr.Changes.Since = r.Period.FromTime
		r.Protocols = append(r.Protocols, pr)
	}
	r.Summary = summarize(r)
	return r
}

func chainStatus(d *db.ReportData, c Chain, loc *time.Location) ChainStatus {
	s := ChainStatus{Empty: d.Empty, TipHeight: d.Tip.Height, Following: c.Following}
	if !d.Empty {
		id := d.Tip.ID
		s.TipID = &id
	}
	if !d.TipTime.IsZero() {
		t := d.TipTime.In(loc)
		s.TipTime = &t
	}
	if c.Following {
		node, reorgs, deepest, bps := c.NodeHeight, c.Reorgs, c.DeepestReorg, c.BlocksPerSecond
		s.NodeHeight, s.Reorgs, s.DeepestReorg, s.BlocksPerSecond = &node, &reorgs, &deepest, &bps
		lag := uint32(0)
		if node > d.Tip.Height {
			lag = node - d.Tip.Height
		}
		s.Lag = &lag
	}
	return s
}

func summarize(r *Report) Summary {
	s := Summary{Time: r.GeneratedAt, Period: r.Period, TipHeight: r.Chain.TipHeight, Conserved: true, Files: []string{},
		ChangesKnown: true}
	for i := range r.Protocols {
		p := &r.Protocols[i]
		s.ChangesKnown = s.ChangesKnown && p.Changes.Known
		s.NewFailingLineages += len(p.Changes.StoppedConserving)
		s.NewMisplacedParticipantBoxes += len(p.Changes.NewlyMisplaced)
		s.Conserved = s.Conserved && p.Conservation.OK
		s.FailingLineages += len(p.Conservation.FailingLineages)
		s.MisplacedParticipantBoxes += len(p.Conservation.Participant.MisplacedList)
		s.Lineages += len(p.Lineages)
		s.Verdicts += p.Verdicts.Period.Total
		s.Invalid += p.Verdicts.Period.Invalid
		s.VerdictsAllTime += p.Verdicts.AllTime.Total
		s.InvalidAllTime += p.Verdicts.AllTime.Invalid
	}
	return s
}

func protocolReport(d *db.ReportData, p *rules.Protocol, since uint32) ProtocolReport {
	supply := new(big.Int).SetUint64(p.AsyncSupply)
	pr := ProtocolReport{
		Name:               p.Name,
		ParticipantTokenID: p.ParticipantTokenID,
		AsyncSupply:        amount(supply),
		Actions:            []string{},
		Verdicts:           VerdictStats{Period: newCounts(p), AllTime: newCounts(p)},
		Invalid:            []InvalidBox{},
		Lineages:           []Lineage{},
		Heights:            []HeightRange{},
		Templates:          map[string]string{},
	}
	for _, t := range p.Templates() {
		pr.Templates[t.Key] = t.Template.String()
	}
	for _, c := range d.Counts {
		if c.Protocol != p.Name {
			continue
		}
		pr.Verdicts.AllTime.add(c.Class, c.Kind, c.Verdict, c.All)
		pr.Verdicts.Period.add(c.Class, c.Kind, c.Verdict, c.Period)
	}
	for _, c := range d.Reasons {
		if c.Protocol == p.Name {
			pr.Verdicts.AllTime.ByReason[c.Reason] += c.All
			pr.Verdicts.Period.ByReason[c.Reason] += c.Period
		}
	}
	for _, a := range p.Actions {
		pr.Actions = append(pr.Actions, a.Name)
	}
	for _, c := range d.Actions {
		if c.Protocol == p.Name {
			pr.Verdicts.AllTime.addAction(c.Action, c.Verdict, c.All)
			pr.Verdicts.Period.addAction(c.Action, c.Verdict, c.Period)
		}
	}
	pr.InvalidTotal = pr.Verdicts.Period.Invalid
	for _, v := range d.Invalid {
		if v.Protocol == p.Name {
			b := invalidBox(v)
			if value, ok := d.Values[v.BoxID]; ok {
				b.Value = amount(new(big.Int).SetUint64(value))
			}
			pr.Invalid = append(pr.Invalid, b)
		}
	}
	for _, h := range d.Histogram {
		if h.Protocol == p.Name {
			pr.Heights = append(pr.Heights, HeightRange{From: h.From, To: h.To, Verified: h.Verified, Invalid: h.Invalid})
		}
	}
	pr.Conservation = conservation(d, p, supply)
	failing := map[ergo.Digest]bool{}
	for _, f := range pr.Conservation.FailingLineages {
		failing[f.TokenID] = true
	}
	for _, l := range d.Lineages {
		if l.Protocol != p.Name {
			continue
		}
		emitted := new(big.Int).Sub(l.Minted, l.Balance)
		emitted.Sub(emitted, l.Burnt)
		pr.Lineages = append(pr.Lineages, Lineage{
			TokenID: l.Token, HolderBox: l.Current,
			Balance: amount(l.Balance), Emitted: amount(emitted), Burnt: amount(l.Burnt),
			Minted: amount(l.Minted), Held: amount(l.Held),
			FirstHeight: l.FirstHeight, LastActivityHeight: l.LastHeight, Steps: l.Steps,
			Broken: l.Broken, Closed: l.Closed, Conserved: !failing[l.Token],
		})
	}
	return pr
}

func newCounts(p *rules.Protocol) Counts {
	c := Counts{ByClass: map[string]ClassCount{}, ByReason: map[string]int64{}, ByAction: map[string]ClassCount{}}
	for _, cl := range rules.Classes() {
		c.ByClass[string(cl)] = ClassCount{}
	}
	for _, r := range rules.Reasons() {
		c.ByReason[string(r)] = 0
	}
	for _, a := range p.Actions {
		c.ByAction[a.Name] = ClassCount{}
	}
	return c
}

// addAction counts n verdicts on results of action.
func (c *Counts) addAction(action, verdict string, n int64) {
	cc := c.ByAction[action]
	if verdict == rules.StatusInvalid {
		cc.Invalid += n
	} else {
		cc.Verified += n
	}
	c.ByAction[action] = cc
}

func (c *Counts) add(class, kind, verdict string, n int64) {
	cc := c.ByClass[class]
	if verdict == rules.StatusInvalid {
		cc.Invalid += n
		c.Invalid += n
	} else {
		cc.Verified += n
		c.Verified += n
	}
	c.ByClass[class] = cc
	c.Total += n
	if kind == string(rules.KindSpent) {
		c.Spent += n
	}
}

func invalidBox(v db.StoredVerdict) InvalidBox {
	b := InvalidBox{
		BoxID: v.BoxID, Kind: string(v.Kind), Class: string(v.Class), Height: v.Height,
		TxID: v.TxID, TxIndex: v.TxIndex, BlockID: v.BlockID, Lineage: v.Lineage, Action: v.Action,
		Reasons: make([]Reason, 0, len(v.Reasons)),
	}
	for _, r := range v.Reasons {
		b.Reasons = append(b.Reasons, Reason{Code: string(r), Sentence: r.Sentence()})
	}
	return b
}
