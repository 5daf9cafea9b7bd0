package rules

import (
	"bytes"
	"slices"

	"github.com/async-emission/auditor/ergo"
)

// The checks of PROTOCOL.md §4. Each is a small function that returns the
// reason codes it finds (none when the promise holds); judgement runs them
// in the order of the lists below. Where the specification leaves room,
// the reading is documented on the check; the devnet's async-emission
// scenario plants one case per code read the same way.

// emissionOut is an emission box being judged: its position among the
// transaction's outputs, its tokens besides the participant token, and the
// async token it was found to carry, with how it came by it.
type emissionOut struct {
	i      int
	box    *Known
	others []ergo.Digest
	token  ergo.Digest
	found  bool
	how    emissionHow
	parent *Known // the lineage's current box the transaction spends (continues)
}

type emissionHow int

const (
	orphan    emissionHow = iota // neither minted nor continued
	minted                       // the transaction mints its async token: a bootstrap
	continues                    // the transaction spends its lineage's current box
)

// emissionCheck is a rule about one emission box.
type emissionCheck func(j *judgement, e *emissionOut) []Reason

// emissionChecks are the rules about emission boxes, §4 "Emission boxes".
var emissionChecks = []emissionCheck{
	checkParticipantToken,
	checkAsyncTokenCount,
	checkMint,
	checkBootstrapInputs,
	checkContinuation,
	checkOrphan,
}

// outputCheck is a rule about one output of another class.
type outputCheck func(j *judgement, i int) []Reason

// emittedChecks are the rules about async-emitted boxes, §4 "Async-emitted
// boxes".
var emittedChecks = []outputCheck{
	checkFromEmission,
	checkAmounts,
	checkEmittedTemplate,
	checkKnownToken,
	checkRequirements,
}

// syncChecks are the rules about a state box a synchronizing action
// creates, §4 "Participant tokens and synchronizing actions".
var syncChecks = []outputCheck{
	checkSyncReferences,
}

// judgeEmission finds the async token of emission output i, runs the
// emission checks, and moves its lineage: a bootstrap starts one, a
// continuation makes the box its lineage's current one. An orphan moves
// none.
func (j *judgement) judgeEmission(i int) {
	o := j.outs[i]
	e := &emissionOut{i: i, box: o}
	for _, t := range o.Tokens {
		if t.ID != j.p.ParticipantTokenID {
			e.others = append(e.others, t.ID)
		}
	}
	// Its async token: the one whose lineage it continues, else the one
	// the transaction mints, else its only other token.
	for _, t := range e.others {
		if _, ok := j.spent[t]; ok {
			e.token, e.found = t, true
			break
		}
	}
	if !e.found {
		for _, t := range e.others {
			if j.mints(t) {
				e.token, e.found = t, true
			}
		}
	}
	if !e.found && len(e.others) == 1 {
		e.token, e.found = e.others[0], true
	}
	if e.found {
		switch parent, spent := j.spent[e.token]; {
		case j.mints(e.token):
			e.how = minted
		case spent:
			e.how, e.parent = continues, parent
		}
	}

	for _, check := range emissionChecks {
		j.reasons[i] = append(j.reasons[i], check(j, e)...)
	}

	if !e.found {
		return
	}
	token := e.token
	j.lineage[i] = &token
	key := LineageKey{j.p.Name, token}
	switch e.how {
	case minted:
		j.bs.lineages[key] = &Lineage{Current: o.ID}
		j.step(token).Minted = holds(j.outs, token)
	case continues:
		j.bs.lineages[key].Current = o.ID
		j.continued[token] = i
		j.step(token)
	}
}

// mints reports whether the transaction mints token: by Ergo's rules a new
// token's id is the id of the transaction's first input.
func (j *judgement) mints(token ergo.Digest) bool {
	return len(j.tx.Inputs) > 0 && token == j.tx.Inputs[0].BoxID && holds(j.ins, token) == 0
}

// checkParticipantToken: an emission box holds exactly one participant
// token.
func checkParticipantToken(j *judgement, e *emissionOut) []Reason {
	switch n := e.box.Amount(j.p.ParticipantTokenID); {
	case n == 0:
		return []Reason{ReasonNoParticipantToken}
	case n != 1:
		return []Reason{ReasonParticipantAmount}
	}
	return nil
}

// checkAsyncTokenCount: besides the participant token, an emission box
// holds exactly one token, its async token.
func checkAsyncTokenCount(j *judgement, e *emissionOut) []Reason {
	if len(e.others) != 1 {
		return []Reason{ReasonAsyncTokenCount}
	}
	return nil
}

// checkMint: a bootstrap mints async_supply and locks all of it in the
// emission box.
func checkMint(j *judgement, e *emissionOut) []Reason {
	if e.how != minted {
		return nil
	}
	var why []Reason
	if holds(j.outs, e.token) != j.p.AsyncSupply {
		why = append(why, ReasonBadMint)
	}
	for k, o := range j.outs {
		if k != e.i && o.Amount(e.token) > 0 {
			why = append(why, ReasonSupplyLeak)
			break
		}
	}
	return why
}

// checkBootstrapInputs: a bootstrap reads the state box as a data-input and
// spends the funnel.
func checkBootstrapInputs(j *judgement, e *emissionOut) []Reason {
	if e.how != minted {
		return nil
	}
	var why []Reason
	if !slices.ContainsFunc(j.data, func(d *Known) bool { return d != nil && j.isState(d) }) {
		why = append(why, ReasonNoBootstrapState)
	}
	if !slices.ContainsFunc(j.ins, func(in *Known) bool { return in != nil && j.isFunnel(in) }) {
		why = append(why, ReasonNotFromFunnel)
	}
	return why
}

// checkContinuation: a box that continues a lineage keeps its participant
// token, does not raise the async balance, and continues a valid box of a
// valid lineage.
func checkContinuation(j *judgement, e *emissionOut) []Reason {
	if e.how != continues {
		return nil
	}
	var why []Reason
	P := j.p.ParticipantTokenID
	if e.parent.Amount(P) != e.box.Amount(P) || e.box.Amount(e.token) > e.parent.Amount(e.token) {
		why = append(why, ReasonLineageBreak)
	}
	if j.roleOf(e.parent).Invalid || j.lineageOf(e.token).Broken {
		why = append(why, ReasonInvalidParent)
	}
	return why
}

// checkOrphan: an emission box's async token was minted by its transaction
// or comes from its lineage's current box.
func checkOrphan(j *judgement, e *emissionOut) []Reason {
	if e.found && e.how == orphan {
		return []Reason{ReasonOrphanToken}
	}
	return nil
}

// badBootstrap: a transaction that moves participant tokens out of the
// funnel (its funnel outputs hold fewer than its funnel inputs) must create
// a verified emission box; if it creates none, every output but the funnel
// that received participant tokens gets participant.bad_bootstrap.
func (j *judgement) badBootstrap(anyVerifiedEmission bool) {
	P := j.p.ParticipantTokenID
	var in, out uint64
	for _, b := range j.ins {
		if b != nil && j.isFunnel(b) {
			in = addSat(in, b.Amount(P))
		}
	}
	for _, b := range j.outs {
		if j.isFunnel(b) {
			out = addSat(out, b.Amount(P))
		}
	}
	if out >= in || anyVerifiedEmission {
		return
	}
	for i, o := range j.outs {
		if o.Amount(P) > 0 && !j.isFunnel(o) {
			j.reasons[i] = append(j.reasons[i], ReasonBadBootstrap)
		}
	}
}

// breakLineages marks broken every lineage whose current box is an
// emission box of this transaction with an invalid verdict.
func (j *judgement) breakLineages() {
	for i, o := range j.outs {
		if j.class[i] != ClassEmission || len(j.reasons[i]) == 0 {
			continue
		}
		if t, ok := j.lineageToken(o); ok {
			if l := j.lineageOf(t); l.Current == o.ID && !l.Broken {
				l.Broken = true
				j.step(t)
			}
		}
	}
}

// closeLineages closes every lineage whose current box the transaction
// spends without continuing it. If async tokens of it leave in an output,
// they escaped: the spent box gets a second verdict, emission.escaped, and
// the lineage is broken. Tokens burnt do not escape.
func (j *judgement) closeLineages() {
	for _, token := range sortedTokens(j.spent) {
		if _, ok := j.continued[token]; ok {
			continue
		}
		l := j.lineageOf(token)
		l.Closed = true
		j.step(token)
		if holds(j.outs, token) == 0 {
			continue
		}
		l.Broken = true
		lineage := token
		j.escaped = append(j.escaped, Verdict{Protocol: j.p.Name, Kind: KindSpent, Class: ClassEmission,
			BoxID: j.spent[token].ID, Reasons: []Reason{ReasonEscaped}, TxID: j.id, TxIndex: j.index, Lineage: &lineage})
	}
}

// checkFromEmission: an emitted box's tokens come from its lineage's
// current emission box, spent by its transaction, and the lineage and that
// box are valid. A box that received tokens escaping a lineage is of an
// invalid lineage (PROTOCOL.md §4, settled readings).
func checkFromEmission(j *judgement, i int) []Reason {
	token, ok := j.lineageToken(j.outs[i])
	if !ok {
		return nil
	}
	j.lineage[i] = &token
	var why []Reason
	parent, spent := j.spent[token]
	if !spent {
		why = append(why, ReasonNotFromEmission)
	}
	if j.lineageOf(token).Broken || spent && j.roleOf(parent).Invalid {
		why = append(why, ReasonInvalidEmission)
	}
	return why
}

// checkAmounts: in a transaction that spends a lineage's current box and
// continues it or lets its tokens out, the outputs hold exactly what the
// box held (what the balance went down by, besides the continuation's).
// A mismatch of any lineage is recorded against every emitted output of the
// transaction (PROTOCOL.md §4). A close that burns the whole balance lets
// nothing out and is no emission.
func checkAmounts(j *judgement, _ int) []Reason {
	if j.mismatch == nil {
		mismatch := false
		for token, parent := range j.spent {
			_, cont := j.continued[token]
			out := holds(j.outs, token)
			mismatch = mismatch || (cont || out > 0) && out != parent.Amount(token)
		}
		j.mismatch = &mismatch
	}
	if *j.mismatch {
		return []Reason{ReasonAmountMismatch}
	}
	return nil
}

// checkEmittedTemplate: when the protocol names emitted templates (its own
// or its actions'), an emitted box has one of them.
func checkEmittedTemplate(j *judgement, i int) []Reason {
	if j.p.NamesEmittedTemplates() && !j.hasEmittedTemplate(j.outs[i]) {
		return []Reason{ReasonWrongTemplate}
	}
	return nil
}

// checkKnownToken: a box at one of the emitted templates holds an async
// token of a known lineage. A known lineage that is invalid is
// invalid_emission's fact alone (one fact, one code).
func checkKnownToken(j *judgement, i int) []Reason {
	o := j.outs[i]
	if !j.hasEmittedTemplate(o) {
		return nil
	}
	if _, known := j.lineageToken(o); known {
		return nil
	}
	return []Reason{ReasonUnknownToken}
}

// hasEmittedTemplate reports whether k has one of the protocol's emitted
// templates.
func (j *judgement) hasEmittedTemplate(k *Known) bool {
	return j.p.HasEmittedTemplate(k)
}

// actionOf returns the action an emitted box is a result of: the one whose
// template it has; nil for none.
func (j *judgement) actionOf(k *Known) *Action {
	return j.p.ActionOf(k)
}

// checkRequirements: the transaction meets every requirement of the
// emitted box's action, or of emission_requires for a box of no action.
// A requirement is met by a data-input of this protocol of its class (and
// action) whose registers match; an emitted or emission one must also be
// valid, and an emitted one proved by its emission box read in the same
// transaction. Each requirement not met gives one code: missing_data_input
// when no data-input has the class (and action), stale_state when none of
// those has matching registers, unverified_reference when none of the
// matching ones is valid (and proved).
func checkRequirements(j *judgement, i int) []Reason {
	reqs := j.p.EmissionRequires
	if a := j.actionOf(j.outs[i]); a != nil {
		reqs = a.Requires
	}
	var why []Reason
	for _, req := range reqs {
		if r, met := j.requirement(i, req); !met {
			why = append(why, r)
		}
	}
	return why
}

// requirement judges one requirement of output i: met, or the code it
// gives.
func (j *judgement) requirement(i int, req Requirement) (Reason, bool) {
	var found, matched bool
	for _, d := range j.data {
		if d == nil || !j.isClass(d, req.Class) {
			continue
		}
		if req.Action != "" {
			if a := j.actionOf(d); a == nil || a.Name != req.Action {
				continue
			}
		}
		found = true
		if req.EmittedRegister != 0 && !sameRegister(j.outs[i], req.EmittedRegister, d, req.DataInputRegister) {
			continue
		}
		matched = true
		switch req.Class {
		case ClassState:
			return "", true
		case ClassEmission:
			if !j.roleOf(d).Invalid {
				return "", true
			}
		case ClassEmitted:
			if !j.roleOf(d).Invalid && j.proved(d) {
				return "", true
			}
		}
	}
	switch {
	case !found:
		return ReasonMissingDataInput, false
	case !matched:
		return ReasonStaleState, false
	}
	return ReasonEmittedUnverifiedReference, false
}

// proved reports whether the transaction reads, besides the emitted box d,
// its emission box: a verified emission box of this protocol holding d's
// async token (PROTOCOL.md §1.3). It is its lineage's current box: a
// lineage's earlier boxes are spent, and so is the last one of a lineage
// closed.
func (j *judgement) proved(d *Known) bool {
	token, ok := j.lineageToken(d)
	if !ok {
		return false
	}
	return slices.ContainsFunc(j.data, func(e *Known) bool {
		if e == nil || e.Amount(token) == 0 {
			return false
		}
		r := j.roleOf(e)
		return r.Class == ClassEmission && !r.Invalid
	})
}

// isClass reports whether a data-input is of class c: a state box by its
// NFT, others by the class the protocol gave them.
func (j *judgement) isClass(d *Known, c Class) bool {
	if c == ClassState {
		return j.isState(d)
	}
	return j.roleOf(d).Class == c
}

// sameRegister reports whether register ra (4…9) of a equals register rb of
// b, both present.
func sameRegister(a *Known, ra int, b *Known, rb int) bool {
	ia, ib := ra-4, rb-4
	return ia < len(a.Registers) && ib < len(b.Registers) && bytes.Equal(a.Registers[ia], b.Registers[ib])
}

// checkSyncReferences: a transaction that spends the state box and reads an
// async-emitted box reads that box's emission box too (a box of class
// emission with a verified verdict, holding its async token), and the
// emitted box is valid.
func checkSyncReferences(j *judgement, i int) []Reason {
	if !slices.ContainsFunc(j.ins, func(in *Known) bool { return in != nil && j.isState(in) }) {
		return nil
	}
	for _, d := range j.data {
		if d == nil {
			continue
		}
		role := j.roleOf(d)
		if role.Class != ClassEmitted {
			continue
		}
		if role.Invalid || !j.proved(d) {
			return []Reason{ReasonUnverifiedReference}
		}
	}
	return nil
}
