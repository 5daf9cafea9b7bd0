package devnet

import (
	"bytes"
	"fmt"
	"maps"
	"slices"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// rules re-derives, from the chain alone, the verdicts PROTOCOL.md §3 and
// §4 give the boxes of one protocol, read as AsyncEmission documents (see
// scenario_asyncemission_forge.go and scenario_asyncemission_treeforge.go).
// It shares no code with the scenario, so that a manifest the scenario
// declares wrongly — a code missed, a cascade forgotten, a box of a class
// not declared — disagrees with it.
type rules struct {
	cfg      ProtocolConfig
	utxo     map[ergo.Digest]ergo.Box
	class    map[ergo.Digest]string
	invalid  map[ergo.Digest]bool       // created verdicts
	current  map[[32]byte]ergo.Digest   // async token → its lineage's current emission box
	currents map[ergo.Digest][32]byte   // the other way round
	broken   map[[32]byte]bool          // lineages with an invalid emission box
	verdicts map[verdictKey]Expectation // all made so far

	templates map[string][32]byte // ErgoTree → template hash
}

type verdictKey struct {
	protocol string
	kind     VerdictKind
	box      ergo.Digest
}

// ruleSet is the rules of several protocols, judging the same chain.
type ruleSet []*rules

func newRuleSet(cfgs []ProtocolConfig, genesis []*Box) ruleSet {
	var rs ruleSet
	for _, cfg := range cfgs {
		rs = append(rs, newRules(cfg, genesis))
	}
	return rs
}

func (rs ruleSet) apply(b *ergo.FullBlock) error {
	for _, r := range rs {
		if err := r.apply(b); err != nil {
			return fmt.Errorf("protocol %s: %w", r.cfg.Name, err)
		}
	}
	return nil
}

// diff lists how the manifest and the rules' verdicts differ, at most max
// lines of it.
func (rs ruleSet) diff(manifest []Expectation, max int) []string {
	all := &rules{verdicts: map[verdictKey]Expectation{}}
	for _, r := range rs {
		maps.Copy(all.verdicts, r.verdicts)
	}
	return all.diff(manifest, max)
}

func newRules(cfg ProtocolConfig, genesis []*Box) *rules {
	r := &rules{
		cfg: cfg, utxo: map[ergo.Digest]ergo.Box{}, class: map[ergo.Digest]string{}, invalid: map[ergo.Digest]bool{},
		current: map[[32]byte]ergo.Digest{}, currents: map[ergo.Digest][32]byte{}, broken: map[[32]byte]bool{}, verdicts: map[verdictKey]Expectation{},
		templates: map[string][32]byte{},
	}
	for _, b := range genesis {
		r.utxo[b.ID] = b.Box
	}
	return r
}

func (r *rules) template(b *ergo.Box) [32]byte {
	h, ok := r.templates[string(b.ErgoTree)]
	if !ok {
		h, _ = sigma.TemplateHashOf(b.ErgoTree)
		r.templates[string(b.ErgoTree)] = h
	}
	return h
}

func (r *rules) isEmission(b *ergo.Box) bool { return r.template(b) == r.cfg.EmissionTemplate }

// emittedTemplates are the protocol's emitted templates: its own, if any,
// and its actions'.
func (r *rules) emittedTemplates() [][32]byte {
	var ts [][32]byte
	if r.cfg.EmittedTemplate != ([32]byte{}) {
		ts = append(ts, r.cfg.EmittedTemplate)
	}
	for _, a := range r.cfg.Actions {
		ts = append(ts, a.EmittedTemplate)
	}
	return ts
}

func (r *rules) hasEmittedTemplate(b *ergo.Box) bool {
	return slices.Contains(r.emittedTemplates(), r.template(b))
}

// action is the name of the action whose results' template b has, "" for
// none.
func (r *rules) action(b *ergo.Box) string {
	for _, a := range r.cfg.Actions {
		if a.EmittedTemplate == r.template(b) {
			return a.Name
		}
	}
	return ""
}

// requires are the requirements an emitted box must meet: its action's, or
// the protocol's.
func (r *rules) requires(b *ergo.Box) []EmissionRequirement {
	for _, a := range r.cfg.Actions {
		if a.EmittedTemplate == r.template(b) {
			return a.Requires
		}
	}
	return r.cfg.EmissionRequires
}
func (r *rules) isState(b *ergo.Box) bool { return tokenAmount(b.Tokens, r.cfg.StateNFTID) > 0 }
func (r *rules) isFunnel(b *ergo.Box) bool {
	return tokenAmount(b.Tokens, r.cfg.ParticipantTokenID) > 0 && !r.isEmission(b) && r.template(b) == r.cfg.FunnelTemplate
}

// lineageToken is the first token of b whose lineage is known.
func (r *rules) lineageToken(b *ergo.Box) ([32]byte, bool) {
	for _, t := range b.Tokens {
		if _, ok := r.current[t.ID]; ok {
			return t.ID, true
		}
	}
	return [32]byte{}, false
}

// classify gives a box its class (§3), or "".
func (r *rules) classify(b *ergo.Box) string {
	_, known := r.lineageToken(b)
	switch {
	case r.isState(b):
		return ClassState
	case r.isFunnel(b):
		return ClassFunnel
	case r.isEmission(b):
		return ClassEmission
	case known || r.hasEmittedTemplate(b):
		return ClassEmitted
	case tokenAmount(b.Tokens, r.cfg.ParticipantTokenID) > 0:
		return ClassParticipant
	}
	return ""
}

func (r *rules) apply(b *ergo.FullBlock) error {
	if b.Header.Height < r.cfg.StartHeight {
		for i := range b.Transactions {
			r.spend(&b.Transactions[i])
		}
		return nil
	}
	for i := range b.Transactions {
		if err := r.applyTx(b.Header.Height, &b.Transactions[i]); err != nil {
			return fmt.Errorf("block %d tx %d: %w", b.Header.Height, i, err)
		}
	}
	return nil
}

func (r *rules) applyTx(height uint32, tx *ergo.Transaction) error {
	ins := make([]ergo.Box, len(tx.Inputs))
	for i, in := range tx.Inputs {
		box, ok := r.utxo[in.BoxID]
		if !ok {
			return fmt.Errorf("input %s unknown", in.BoxID)
		}
		ins[i] = box
		delete(r.utxo, in.BoxID)
	}
	data := make([]ergo.Box, len(tx.DataInputs))
	for i, id := range tx.DataInputs {
		data[i] = r.utxo[id]
	}
	outs := tx.Outputs
	ids := make([]ergo.Digest, len(outs))
	for i := range outs {
		ids[i] = outs[i].ComputeID()
	}
	holds := func(boxes []ergo.Box, token [32]byte) (n uint64) {
		for i := range boxes {
			n += tokenAmount(boxes[i].Tokens, token)
		}
		return n
	}
	P := r.cfg.ParticipantTokenID

	// The lineages whose current box this transaction spends.
	spentCurrent := map[[32]byte]ergo.Box{}
	for i := range ins {
		if token, ok := r.currents[tx.Inputs[i].BoxID]; ok {
			spentCurrent[token] = ins[i]
		}
	}
	reasons := make([][]string, len(outs))
	classes := make([]string, len(outs))
	continued := map[[32]byte]int{} // lineage → the output continuing it

	// Emission boxes.
	anyVerified := false
	for i := range outs {
		o := &outs[i]
		if !r.isEmission(o) || r.isState(o) || r.isFunnel(o) {
			continue
		}
		classes[i] = ClassEmission
		var why []string
		p := tokenAmount(o.Tokens, P)
		var others [][32]byte
		for _, t := range o.Tokens {
			if t.ID != P {
				others = append(others, t.ID)
			}
		}
		switch {
		case p == 0:
			why = append(why, ReasonNoParticipantToken)
		case p != 1:
			why = append(why, ReasonParticipantAmount)
		}
		if len(others) != 1 {
			why = append(why, ReasonAsyncTokenCount)
		}
		// Its async token: the one whose lineage it continues, or minted.
		var token [32]byte
		found := false
		for _, t := range others {
			if _, ok := spentCurrent[t]; ok {
				token, found = t, true
				break
			}
		}
		minted := func(t [32]byte) bool { return t == [32]byte(tx.Inputs[0].BoxID) && holds(ins, t) == 0 }
		if !found {
			for _, t := range others {
				if minted(t) {
					token, found = t, true
				}
			}
		}
		if !found && len(others) == 1 {
			token, found = others[0], true
		}
		if found {
			switch parent, spent := spentCurrent[token]; {
			case minted(token):
				if holds(outs, token) != r.cfg.AsyncSupply {
					why = append(why, ReasonBadMint)
				}
				for j := range outs {
					if j != i && tokenAmount(outs[j].Tokens, token) > 0 {
						why = append(why, ReasonSupplyLeak)
						break
					}
				}
				if !slices.ContainsFunc(data, func(d ergo.Box) bool { return r.isState(&d) }) {
					why = append(why, ReasonNoBootstrapState)
				}
				if !slices.ContainsFunc(ins, func(b ergo.Box) bool { return r.isFunnel(&b) }) {
					why = append(why, ReasonNotFromFunnel)
				}
				r.setCurrent(token, ids[i])
			case spent:
				if tokenAmount(parent.Tokens, P) != p || tokenAmount(o.Tokens, token) > tokenAmount(parent.Tokens, token) {
					why = append(why, ReasonLineageBreak)
				}
				if r.invalid[parent.ComputeID()] || r.broken[token] {
					why = append(why, ReasonInvalidParent)
				}
				r.setCurrent(token, ids[i])
				continued[token] = i
			default:
				why = append(why, ReasonOrphanToken)
			}
		}
		reasons[i] = why
		anyVerified = anyVerified || len(why) == 0
	}

	// Participant tokens moved out of the funnel without a valid emission box.
	funnelIn, funnelOut := uint64(0), uint64(0)
	for i := range ins {
		if r.isFunnel(&ins[i]) {
			funnelIn += tokenAmount(ins[i].Tokens, P)
		}
	}
	for i := range outs {
		if r.isFunnel(&outs[i]) {
			funnelOut += tokenAmount(outs[i].Tokens, P)
		}
	}
	if funnelOut < funnelIn && !anyVerified {
		for i := range outs {
			if tokenAmount(outs[i].Tokens, P) > 0 && !r.isFunnel(&outs[i]) {
				reasons[i] = append(reasons[i], ReasonBadBootstrap)
			}
		}
	}
	for i := range outs {
		if classes[i] == ClassEmission && len(reasons[i]) > 0 {
			if t, ok := r.lineageToken(&outs[i]); ok && (r.current[t] == ids[i]) {
				r.broken[t] = true
			}
		}
	}

	// Lineages closed by this spend; escaped if their tokens left.
	for token, m := range spentCurrent {
		if _, ok := continued[token]; ok {
			continue
		}
		if holds(outs, token) > 0 {
			r.broken[token] = true
			r.record(Expectation{Kind: VerdictSpent, BoxID: m.ComputeID(), TxID: tx.ComputeID(), Height: height,
				Class: ClassEmission, Reasons: []string{ReasonEscaped}})
		}
	}

	// amount_mismatch: a lineage whose current box the transaction spends,
	// continuing it or letting tokens out, and whose tokens the outputs
	// hold more or less of than that box did; every emitted output gets it.
	mismatch := false
	for token, m := range spentCurrent {
		_, cont := continued[token]
		if out := holds(outs, token); (cont || out > 0) && out != tokenAmount(m.Tokens, token) {
			mismatch = true
		}
	}

	// Emitted and the other classes.
	spendsState := slices.ContainsFunc(ins, func(b ergo.Box) bool { return r.isState(&b) })
	for i := range outs {
		o := &outs[i]
		if classes[i] == "" {
			classes[i] = r.classify(o)
		}
		switch classes[i] {
		case ClassEmitted:
			token, known := r.lineageToken(o)
			if known {
				parent, spent := spentCurrent[token]
				if !spent {
					reasons[i] = append(reasons[i], ReasonNotFromEmission)
				}
				if r.broken[token] || spent && r.invalid[parent.ComputeID()] {
					reasons[i] = append(reasons[i], ReasonInvalidEmission)
				}
			}
			if mismatch {
				reasons[i] = append(reasons[i], ReasonAmountMismatch)
			}
			if r.hasEmittedTemplate(o) && !known {
				reasons[i] = append(reasons[i], ReasonUnknownToken)
			}
			if len(r.emittedTemplates()) > 0 && !r.hasEmittedTemplate(o) {
				reasons[i] = append(reasons[i], ReasonWrongTemplate)
			}
			for _, req := range r.requires(o) {
				if why := r.unmet(req, o, data); why != "" {
					reasons[i] = append(reasons[i], why)
				}
			}
		case ClassState:
			if !spendsState {
				break
			}
			for _, d := range data {
				id := d.ComputeID()
				if r.class[id] != ClassEmitted {
					continue
				}
				if r.invalid[id] || !r.proved(&d, data) {
					reasons[i] = append(reasons[i], ReasonUnverifiedReference)
					break
				}
			}
		}
	}
	for i := range outs {
		if classes[i] == "" {
			continue
		}
		r.class[ids[i]] = classes[i]
		r.invalid[ids[i]] = len(reasons[i]) > 0
		r.record(Expectation{Kind: VerdictCreated, BoxID: ids[i], TxID: tx.ComputeID(), Height: height, Class: classes[i], Reasons: reasons[i]})
	}
	for i := range outs {
		r.utxo[ids[i]] = outs[i]
	}
	return nil
}

// spend applies a transaction the protocol does not judge to the UTXO set.
func (r *rules) spend(tx *ergo.Transaction) {
	for _, in := range tx.Inputs {
		delete(r.utxo, in.BoxID)
	}
	for _, o := range tx.Outputs {
		r.utxo[o.ComputeID()] = o
	}
}

// unmet is the code requirement req of emitted box o gives, "" when the
// transaction's data-inputs meet it: one of the class (and action), with
// matching registers, valid and, for an emitted one, proved.
func (r *rules) unmet(req EmissionRequirement, o *ergo.Box, data []ergo.Box) string {
	found, matched := false, false
	for i := range data {
		d := &data[i]
		id := d.ComputeID()
		switch {
		case req.Class == ClassState && !r.isState(d),
			req.Class != ClassState && r.class[id] != req.Class,
			req.Action != "" && r.action(d) != req.Action:
			continue
		}
		found = true
		if req.EmittedRegister != "" && !sameRegister(o, req.EmittedRegister, d, req.DataInputRegister) {
			continue
		}
		matched = true
		if req.Class == ClassState || !r.invalid[id] && (req.Class != ClassEmitted || r.proved(d, data)) {
			return ""
		}
	}
	switch {
	case !found:
		return ReasonMissingDataInput
	case !matched:
		return ReasonStaleState
	}
	return ReasonEmittedUnverifiedReference
}

// proved: the data-inputs hold the emitted box d's emission box, a verified
// box of class emission holding its async token.
func (r *rules) proved(d *ergo.Box, data []ergo.Box) bool {
	token, ok := r.lineageToken(d)
	return ok && slices.ContainsFunc(data, func(e ergo.Box) bool {
		id := e.ComputeID()
		return r.class[id] == ClassEmission && !r.invalid[id] && tokenAmount(e.Tokens, token) > 0
	})
}

// sameRegister: register ra ("R4"…) of a and rb of b are both there and
// equal.
func sameRegister(a *ergo.Box, ra string, b *ergo.Box, rb string) bool {
	ia, ib := int(ra[1]-'4'), int(rb[1]-'4')
	return ia < len(a.Registers) && ib < len(b.Registers) && bytes.Equal(a.Registers[ia], b.Registers[ib])
}

func (r *rules) setCurrent(token [32]byte, box ergo.Digest) {
	delete(r.currents, r.current[token])
	r.current[token], r.currents[box] = box, token
}

func (r *rules) record(e Expectation) {
	e.Protocol, e.Verdict = r.cfg.Name, VerdictVerified
	if len(e.Reasons) > 0 {
		e.Reasons = slices.Compact(slices.Sorted(slices.Values(e.Reasons)))
		e.Verdict = VerdictInvalid
	} else {
		e.Reasons = nil
	}
	r.verdicts[verdictKey{e.Protocol, e.Kind, e.BoxID}] = e
}

// diff lists how the manifest and the rules' verdicts differ, at most max
// lines of it.
func (r *rules) diff(manifest []Expectation, max int) []string {
	var out []string
	seen := map[verdictKey]bool{}
	for _, m := range manifest {
		k := verdictKey{m.Protocol, m.Kind, m.BoxID}
		seen[k] = true
		got, ok := r.verdicts[k]
		m.Case = ""
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("declared, not derived: %+v", m))
		case got.Height != m.Height || got.TxID != m.TxID || got.Class != m.Class || got.Verdict != m.Verdict ||
			!slices.Equal(got.Reasons, m.Reasons) || got.Protocol != m.Protocol:
			out = append(out, fmt.Sprintf("box %s (%s): declared %s %s %v at %d, derived %s %s %v at %d",
				m.BoxID, m.Kind, m.Class, m.Verdict, m.Reasons, m.Height, got.Class, got.Verdict, got.Reasons, got.Height))
		}
	}
	for k, got := range r.verdicts {
		if !seen[k] {
			out = append(out, fmt.Sprintf("derived, not declared: %+v", got))
		}
	}
	slices.Sort(out)
	return out[:min(len(out), max)]
}
