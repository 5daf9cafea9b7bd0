package rules

import (
	"math/bits"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// txState is one transaction being judged: its inputs and data-inputs as
// far as they are known (nil for a box the store does not hold), and its
// outputs, which collect roles as the protocols judge them.
type txState struct {
	bs    *blockState
	tx    *ergo.Transaction
	index int
	id    ergo.Digest
	ins   []*Known
	data  []*Known
	outs  []*Known
}

// txVerdicts is what one protocol concludes from one transaction.
type txVerdicts struct {
	verdicts   []Verdict
	steps      []Step
	classified bool // some output has a class
}

// judgement is one protocol judging one transaction. The rules of
// PROTOCOL.md §4 run in four passes over the outputs, each seeing what the
// passes before it concluded:
//
//  1. emission boxes (emissionChecks), which move the lineages they
//     continue or start;
//  2. participant tokens leaving the funnel (badBootstrap), then the
//     lineages whose current box the transaction spends without continuing
//     them (closeLineages);
//  3. the remaining outputs are classified, and emitted boxes and state
//     boxes checked (emittedChecks, syncChecks);
//  4. the verdicts and lineage steps are written out.
type judgement struct {
	*txState
	p *Protocol

	class   []Class
	reasons [][]Reason
	lineage []*ergo.Digest // each output's lineage, for its verdict

	// spent maps the async token of each lineage whose current box the
	// transaction spends to that box; continued, to the output that
	// continues it.
	spent     map[ergo.Digest]*Known
	continued map[ergo.Digest]int
	// touched are the lineages the transaction changed or moved tokens of.
	touched map[ergo.Digest]*Step
	escaped []Verdict
	// mismatch: the outputs hold more or less of a lineage's tokens than
	// its spent box did (checkAmounts); nil until computed.
	mismatch *bool
}

func (t *txState) judge(p *Protocol) txVerdicts {
	j := &judgement{
		txState: t, p: p,
		class:     make([]Class, len(t.outs)),
		reasons:   make([][]Reason, len(t.outs)),
		lineage:   make([]*ergo.Digest, len(t.outs)),
		spent:     map[ergo.Digest]*Known{},
		continued: map[ergo.Digest]int{},
		touched:   map[ergo.Digest]*Step{},
	}
	for _, in := range t.ins {
		if in == nil {
			continue
		}
		for _, tok := range in.Tokens {
			if l := j.lineageOf(tok.ID); l != nil && l.Current == in.ID {
				j.spent[tok.ID] = in
			}
		}
	}

	anyVerified := false
	for i, o := range t.outs {
		if !j.isEmission(o) || j.isState(o) || j.isFunnel(o) {
			continue
		}
		j.class[i] = ClassEmission
		j.judgeEmission(i)
		anyVerified = anyVerified || len(j.reasons[i]) == 0
	}
	j.badBootstrap(anyVerified)
	j.breakLineages()
	j.closeLineages()

	for i, o := range t.outs {
		if j.class[i] == "" {
			j.class[i] = j.classify(o)
		}
		switch j.class[i] {
		case ClassEmitted:
			for _, check := range emittedChecks {
				j.reasons[i] = append(j.reasons[i], check(j, i)...)
			}
		case ClassState:
			for _, check := range syncChecks {
				j.reasons[i] = append(j.reasons[i], check(j, i)...)
			}
		}
	}
	return j.conclude()
}

// Structural tests on a box, for this protocol.

func (j *judgement) isState(k *Known) bool { return k.Amount(j.p.StateNFTID) > 0 }

func (j *judgement) isEmission(k *Known) bool {
	return j.p.EmissionTemplate.matches(k)
}

func (j *judgement) isFunnel(k *Known) bool {
	return k.Amount(j.p.ParticipantTokenID) > 0 && !j.isEmission(k) && j.hasTemplate(k, j.p.FunnelTemplate, true)
}

// hasTemplate reports whether k has template t; a nil t is any template
// when unset is true, none otherwise.
func (j *judgement) hasTemplate(k *Known, t *Template, unset bool) bool {
	if t == nil {
		return unset
	}
	return t.matches(k)
}

// lineageOf returns the protocol's lineage of token, nil when there is none.
func (j *judgement) lineageOf(token ergo.Digest) *Lineage {
	return j.bs.lineages[LineageKey{j.p.Name, token}]
}

// lineageToken is the first token of k that has a lineage.
func (j *judgement) lineageToken(k *Known) (ergo.Digest, bool) {
	for _, t := range k.Tokens {
		if j.lineageOf(t.ID) != nil {
			return t.ID, true
		}
	}
	return ergo.Digest{}, false
}

// classify gives a box its class: the first row of PROTOCOL.md §3's table
// it matches, or "" for none.
func (j *judgement) classify(k *Known) Class {
	_, inLineage := j.lineageToken(k)
	switch {
	case j.isState(k):
		return ClassState
	case j.isFunnel(k):
		return ClassFunnel
	case j.isEmission(k):
		return ClassEmission
	case inLineage || j.hasEmittedTemplate(k):
		return ClassEmitted
	case k.Amount(j.p.ParticipantTokenID) > 0:
		return ClassParticipant
	}
	return ""
}

// roleOf returns the class this protocol gave a box judged before, or, for
// a box it did not judge (created before its start height), the class its
// contents alone give it.
func (j *judgement) roleOf(k *Known) Role {
	if r, ok := k.Role(j.p.Name); ok {
		return r
	}
	return Role{Protocol: j.p.Name, Class: j.classify(k)}
}

// holds is how much of token the boxes hold in all (saturating: no real
// sum reaches 2^64).
func holds(boxes []*Known, token ergo.Digest) uint64 {
	var n uint64
	for _, b := range boxes {
		if b != nil {
			n = addSat(n, b.Amount(token))
		}
	}
	return n
}

func addSat(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return ^uint64(0)
	}
	return s
}

// step returns the lineage step this transaction makes for token, starting
// one from the lineage's state.
func (j *judgement) step(token ergo.Digest) *Step {
	s, ok := j.touched[token]
	if !ok {
		s = &Step{LineageKey: LineageKey{j.p.Name, token}, TxID: j.id, TxIndex: j.index}
		j.touched[token] = s
	}
	return s
}

// conclude writes out the verdicts of the classified outputs, the escaped
// verdicts, and a step for every lineage the transaction touched; it gives
// each classified output its role.
func (j *judgement) conclude() txVerdicts {
	var out txVerdicts
	for i, o := range j.outs {
		if j.class[i] == "" {
			continue
		}
		out.classified = true
		v := Verdict{Protocol: j.p.Name, Kind: KindCreated, Class: j.class[i], BoxID: o.ID,
			Reasons: normalize(j.reasons[i]), TxID: j.id, TxIndex: j.index, Lineage: j.lineage[i]}
		if a := j.actionOf(o); a != nil && v.Class == ClassEmitted {
			v.Action = a.Name
		}
		o.Roles = append(o.Roles, Role{Protocol: j.p.Name, Class: v.Class, Invalid: !v.Valid()})
		out.verdicts = append(out.verdicts, v)
	}
	out.verdicts = append(out.verdicts, j.escaped...)

	// Every lineage the transaction changed, and every one it burnt tokens
	// of.
	moved := map[ergo.Digest]bool{}
	for _, in := range j.ins {
		for _, t := range knownTokens(in) {
			if j.lineageOf(t.ID) != nil {
				moved[t.ID] = true
			}
		}
	}
	for token := range j.touched {
		moved[token] = true
	}
	for _, token := range sortedTokens(moved) {
		in, outs := holds(j.ins, token), holds(j.outs, token)
		s, changed := j.touched[token]
		if !changed {
			if in <= outs {
				continue
			}
			s = j.step(token)
		}
		s.Lineage = *j.lineageOf(token)
		if s.Minted == 0 && in > outs {
			s.Burnt = in - outs
		}
		out.steps = append(out.steps, *s)
	}
	return out
}

// knownTokens returns the tokens of k, none for an unknown box.
func knownTokens(k *Known) []sigma.Token {
	if k == nil {
		return nil
	}
	return k.Tokens
}
