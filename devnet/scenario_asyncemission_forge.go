package devnet

import (
	"slices"

	"github.com/async-emission/auditor/ergo/sigma"
)

// The planted cases of the async-emission scenario: one per reason code of
// PROTOCOL.md §4 (invalid_parent and invalid_emission share one). Each
// declares every box of a class it creates, with all the codes the box gets
// by the letter of PROTOCOL.md, read as follows where it leaves room:
//
//   - A box's class is the first row of §3's table it matches (state,
//     funnel, emission, emitted, participant).
//   - An emission box's async token is the token, other than the
//     participant token, whose lineage it continues or that its transaction
//     mints; other tokens beside it only count for async_token_count.
//   - A bootstrap transaction is one that mints an emission box's async
//     token; only such a box can get bad_mint, supply_leak,
//     no_bootstrap_state or not_from_funnel.
//   - A lineage's current emission box changes only when a transaction
//     spends it and creates the next; an orphan does not become current.
//   - A lineage is closed when its current box is spent and no output
//     continues it; it escapes when an output holds its tokens (tokens
//     burnt do not escape), and its balance then went down by all it held.
//   - A lineage is invalid once any of its emission boxes has an invalid
//     verdict, the escaped verdict of the same transaction included. An
//     emitted box of an invalid lineage gets emitted.invalid_emission, and
//     not emitted.unknown_token: its token is of a known lineage (one fact,
//     one code, as PROTOCOL.md settles). An emitted box with no token of a
//     known lineage gets only unknown_token (and the data-input and template
//     codes, which no such plant breaks).
//   - amount_mismatch compares, in a transaction that spends a lineage's
//     current box and continues it or lets its tokens out, what its outputs
//     but the continuation hold of the token with what the balance went
//     down by; every emitted output of the transaction gets it (PROTOCOL.md
//     settles it so).
//   - participant.bad_bootstrap applies when a transaction moves participant
//     tokens out of the funnel (its funnel outputs hold fewer than its funnel
//     inputs) and creates no verified emission box: every output but the
//     recreated funnel that holds participant tokens gets it, an invalid
//     emission box too.
//   - A state update's reference to an emitted box is verified by a data
//     input of class emission with a verified verdict that holds the emitted
//     box's async token (its lineage's current box: the one it came from is
//     spent).
//
// The action tree's protocol has cases of its own, planted along its tree:
// see scenario_asyncemission_tree.go.
//
// A plant reports false, adding nothing, when it cannot be planted now.
type aePlant struct {
	reason string // the code the case is about
	plant  func(*aeBlock) (bool, error)
}

var aePlants = []aePlant{
	{ReasonNoParticipantToken, (*aeBlock).plantNoParticipantToken},
	{ReasonParticipantAmount, (*aeBlock).plantParticipantAmount},
	{ReasonAsyncTokenCount, (*aeBlock).plantAsyncTokenCount},
	{ReasonBadMint, (*aeBlock).plantBadMint},
	{ReasonSupplyLeak, (*aeBlock).plantSupplyLeak},
	{ReasonNoBootstrapState, (*aeBlock).plantNoBootstrapState},
	{ReasonNotFromFunnel, (*aeBlock).plantNotFromFunnel},
	{ReasonOrphanToken, (*aeBlock).plantOrphanToken},
	{ReasonLineageBreak, (*aeBlock).plantLineageBreak},
	{ReasonInvalidParent, (*aeBlock).plantInvalidParent},
	{ReasonEscaped, (*aeBlock).plantEscaped},
	{ReasonNotFromEmission, (*aeBlock).plantNotFromEmission},
	{ReasonMissingDataInput, (*aeBlock).plantMissingDataInput},
	{ReasonStaleState, (*aeBlock).plantStaleState},
	{ReasonWrongTemplate, (*aeBlock).plantWrongTemplate},
	{ReasonUnknownToken, (*aeBlock).plantUnknownToken},
	{ReasonAmountMismatch, (*aeBlock).plantAmountMismatch},
	{ReasonBadBootstrap, (*aeBlock).plantBadBootstrap},
	{ReasonUnverifiedReference, (*aeBlock).plantUnverifiedReference},
}

// Forged bootstraps. Each spends the funnel first, reads the state box
// (unless that is the mistake) and puts its emission box at a rogue
// contract; the recreated funnel is verified.

// plantNoParticipantToken: a bootstrap whose emission box gets the whole
// supply but no participant token (the funnel keeps it). The emission box:
// no_participant_token.
func (x *aeBlock) plantNoParticipantToken() (bool, error) {
	return x.forgedMint(aeMint{supply: AsyncSupply, readState: true}, ReasonNoParticipantToken)
}

// plantParticipantAmount: a bootstrap whose emission box gets two
// participant tokens. The emission box: participant_amount,
// bad_bootstrap.
func (x *aeBlock) plantParticipantAmount() (bool, error) {
	return x.forgedMint(aeMint{participants: 2, supply: AsyncSupply, readState: true},
		ReasonParticipantAmount, ReasonBadBootstrap)
}

// plantBadMint: a bootstrap minting another supply than AsyncSupply, all
// locked. The emission box (kept, to build on): bad_mint, bad_bootstrap.
func (x *aeBlock) plantBadMint() (bool, error) {
	supply := AsyncSupply - 1 - x.rng.Uint64N(1000)
	if x.chance(2) {
		supply = 1_000_000 * (1 + x.rng.Uint64N(1_000_000))
	}
	return x.forgedMint(aeMint{participants: 1, supply: supply, readState: true, keep: x.forgedRoom()},
		ReasonBadMint, ReasonBadBootstrap)
}

// plantSupplyLeak: a bootstrap that locks all the supply but some, which
// goes to an emitted box at the emitted contract (R4 = the epoch). The
// emission box (kept): supply_leak, bad_bootstrap. The leak:
// not_from_emission (it was minted, not emitted) and invalid_emission (its
// lineage is invalid).
func (x *aeBlock) plantSupplyLeak() (bool, error) {
	r, ok, err := x.mint(&x.v.aeDeployment, x.user(), aeMint{owner: aeRogue, participants: 1, supply: AsyncSupply, leak: x.amount(AsyncSupply),
		readState: true, keep: x.forgedRoom()})
	if ok {
		x.expect(r.funnel, ClassFunnel)
		x.expect(r.emission, ClassEmission, ReasonSupplyLeak, ReasonBadBootstrap)
		x.expect(r.leak, ClassEmitted, ReasonNotFromEmission, ReasonInvalidEmission)
	}
	return ok, err
}

// plantNoBootstrapState: a bootstrap that reads no data input. The
// emission box (kept): no_bootstrap_state, bad_bootstrap.
func (x *aeBlock) plantNoBootstrapState() (bool, error) {
	return x.forgedMint(aeMint{participants: 1, supply: AsyncSupply, keep: x.forgedRoom()},
		ReasonNoBootstrapState, ReasonBadBootstrap)
}

// forgedMint plants a forged bootstrap whose emission box gets reasons.
func (x *aeBlock) forgedMint(m aeMint, reasons ...string) (bool, error) {
	m.owner = aeRogue
	r, ok, err := x.mint(&x.v.aeDeployment, x.user(), m)
	if ok {
		x.expect(r.funnel, ClassFunnel)
		x.expect(r.emission, ClassEmission, reasons...)
	}
	return ok, err
}

// plantNotFromFunnel: the forger mints an async token with its stash as the
// first input and locks all of it with a participant token from the stash,
// reading the state box. The emission box (kept): not_from_funnel. The
// stash's rest: verified (nothing left the funnel).
func (x *aeBlock) plantNotFromFunnel() (bool, error) {
	z := x.v.stash
	if z == nil {
		return false, nil
	}
	outs := []Output{{
		BoxCandidate: x.candidate(aeEmissionValue, x.c.emission[aeRogue], []sigma.Token{x.participants(1), {ID: z.ID, Amount: AsyncSupply}}),
		Keep:         x.forgedRoom(),
	}}
	outs = x.restOfStash(outs, 1)
	boxes, ok, err := x.send(aeForger, []Input{{Box: z, Signed: true}}, []*Box{x.v.state}, outs)
	if ok {
		x.expect(boxes[0], ClassEmission, ReasonNotFromFunnel)
		x.expectRestOfStash(boxes)
	}
	return ok, err
}

// plantOrphanToken: the forger locks the tokens of an emitted box whose
// lineage the scenario no longer acts on, with a participant token from
// its stash, in an emission box, reading the state box: the transaction
// neither mints the token nor spends its lineage's box. The emission box:
// orphan_token. The stash's rest: verified.
func (x *aeBlock) plantOrphanToken() (bool, error) {
	z, orphans := x.v.stash, x.v.endedResults()
	if z == nil || len(orphans) == 0 {
		return false, nil
	}
	r := pick(x, orphans)
	outs := []Output{drop(x.candidate(aeEmissionValue, x.c.emission[aeRogue],
		[]sigma.Token{x.participants(1), {ID: r.token, Amount: r.amount}}))}
	outs = x.restOfStash(outs, 1)
	boxes, ok, err := x.send(aeForger, []Input{{Box: z, Signed: true}, {Box: r.box, Signed: true}}, []*Box{x.v.state}, outs)
	if ok {
		x.expect(boxes[0], ClassEmission, ReasonOrphanToken)
		x.expectRestOfStash(boxes)
	}
	return ok, err
}

// restOfStash appends to outs the stash with used participant tokens
// fewer, if any are left.
func (x *aeBlock) restOfStash(outs []Output, used uint64) []Output {
	if left := x.v.stashTokens() - used; left > 0 {
		outs = append(outs, keep(x.candidate(aeStashValue, x.c.stash, []sigma.Token{x.participants(left)})))
	}
	return outs
}

func (x *aeBlock) expectRestOfStash(boxes []*Box) {
	if len(boxes) > 1 {
		x.expect(boxes[1], ClassParticipant)
	}
}

// plantBadBootstrap: the funnel is recreated with one to three participant
// tokens fewer, which go to the forger's stash (merged with the stash there
// is). The stash: bad_bootstrap. The funnel: verified.
func (x *aeBlock) plantBadBootstrap() (bool, error) {
	f, n := x.v.funnel, x.v.funnelTokens()
	if n < 2 {
		return false, nil
	}
	taken := 1 + x.rng.Uint64N(min(3, n-1))
	ins := []Input{{Box: f}}
	if x.v.stash != nil {
		ins = append(ins, Input{Box: x.v.stash, Signed: true})
	}
	outs := []Output{
		keep(x.candidate(f.Value, f.ErgoTree, []sigma.Token{x.participants(n - taken)})),
		keep(x.candidate(aeStashValue, x.c.stash, []sigma.Token{x.participants(x.v.stashTokens() + taken)})),
	}
	boxes, ok, err := x.send(x.user(), ins, []*Box{x.v.state}, outs)
	if ok {
		x.expect(boxes[0], ClassFunnel)
		x.expect(boxes[1], ClassParticipant, ReasonBadBootstrap)
	}
	return ok, err
}

// Forged emission boxes that continue (or end) a lineage.

// plantAsyncTokenCount: a user recreates their emission box with the same
// balance and, besides, a token from their wallet; nothing is emitted. The
// emission box: async_token_count.
func (x *aeBlock) plantAsyncTokenCount() (bool, error) {
	lineages := x.v.lineageTokens(false)
	for _, i := range x.rng.Perm(len(lineages)) {
		l, _ := x.v.lineage(lineages[i])
		for _, w := range x.b.Wallet(l.owner) {
			if len(w.Tokens) == 0 {
				continue
			}
			next := drop(x.candidate(l.box.Value, l.box.ErgoTree, append(slices.Clone(l.box.Tokens), w.Tokens[0])))
			boxes, ok, err := x.send(l.owner, []Input{{Box: l.box, Signed: true}, {Box: w, Signed: true}}, []*Box{x.v.state}, []Output{next})
			if ok {
				x.expect(boxes[0], ClassEmission, ReasonAsyncTokenCount)
			}
			return ok, err
		}
	}
	return false, nil
}

// plantLineageBreak: a user spends their emission box with one of its
// emitted boxes and recreates the emission box holding both balances. The
// emission box: lineage_break.
func (x *aeBlock) plantLineageBreak() (bool, error) {
	results := x.v.userResults(true)
	if len(results) == 0 {
		return false, nil
	}
	r := pick(x, results)
	l, _ := x.v.lineage(r.token)
	next := drop(x.candidate(l.box.Value, l.box.ErgoTree,
		[]sigma.Token{l.box.Tokens[0], {ID: l.token, Amount: l.balance + r.amount}}))
	boxes, ok, err := x.send(l.owner, []Input{{Box: l.box, Signed: true}, {Box: r.box, Signed: true}}, []*Box{x.v.state}, []Output{next})
	if ok {
		x.expect(boxes[0], ClassEmission, ReasonLineageBreak)
	}
	return ok, err
}

// plantInvalidParent: the forger takes an async action on a forged lineage,
// validly in itself. The next emission box (kept): invalid_parent. Each
// emitted box: invalid_emission.
func (x *aeBlock) plantInvalidParent() (bool, error) {
	forged := x.v.lineageTokens(true)
	if len(forged) == 0 {
		return false, nil
	}
	l, _ := x.v.lineage(pick(x, forged))
	r, ok, err := x.emission(l, aeEmit{
		payer: aeForger, amounts: x.amounts(l.balance), tree: x.c.emitted[aeRogue],
		epoch: x.v.epoch, readState: true, keep: true,
	})
	if ok {
		x.expect(r.next, ClassEmission, ReasonInvalidParent)
		for _, e := range r.emitted {
			x.expect(e, ClassEmitted, ReasonInvalidEmission)
		}
	}
	return ok, err
}

// plantEscaped: the forger spends a user's emission box without recreating
// it: the whole balance goes to an emitted box at the emitted contract (R4 =
// the epoch, the state box read; kept) and the participant token to the
// stash. The spent emission box: escaped (its second verdict). The emitted
// box, a receiver of escaped tokens: invalid_emission. The stash: verified
// (nothing left the funnel).
func (x *aeBlock) plantEscaped() (bool, error) {
	lineages := x.v.lineageTokens(false)
	if len(lineages) == 0 {
		return false, nil
	}
	l, _ := x.v.lineage(pick(x, lineages))
	ins := []Input{{Box: l.box, Signed: true}}
	if x.v.stash != nil {
		ins = append(ins, Input{Box: x.v.stash, Signed: true})
	}
	tree := x.c.emitted[aeRogue]
	outs := []Output{
		{BoxCandidate: x.emittedBox(tree, l.token, l.balance, x.v.epoch), Keep: x.resultRoom(tree, l.token) > 0},
		keep(x.candidate(aeStashValue, x.c.stash, []sigma.Token{x.participants(x.v.stashTokens() + 1)})),
	}
	boxes, ok, err := x.send(aeForger, ins, []*Box{x.v.state}, outs)
	if ok {
		x.expectSpent(l.box, boxes[0].TxID, ReasonEscaped)
		x.expect(boxes[0], ClassEmitted, ReasonInvalidEmission)
		x.expect(boxes[1], ClassParticipant)
	}
	return ok, err
}

// Forged emitted boxes.

// plantNotFromEmission: the forger moves a user's emitted box's tokens to
// an emitted box of its own (R4 = the epoch, the state box read). The new
// box (kept): not_from_emission.
func (x *aeBlock) plantNotFromEmission() (bool, error) {
	results := x.v.userResults(true)
	if len(results) == 0 {
		return false, nil
	}
	r := pick(x, results)
	tree := x.c.emitted[aeRogue]
	moved := Output{BoxCandidate: x.emittedBox(tree, r.token, r.amount, x.v.epoch), Keep: x.resultRoom(tree, r.token) > 0}
	boxes, ok, err := x.send(aeForger, []Input{{Box: r.box, Signed: true}}, []*Box{x.v.state}, []Output{moved})
	if ok {
		x.expect(boxes[0], ClassEmitted, ReasonNotFromEmission)
	}
	return ok, err
}

// plantMissingDataInput: an async action that reads no data input. Its
// emitted box (kept): missing_data_input. The next emission box: verified.
func (x *aeBlock) plantMissingDataInput() (bool, error) {
	return x.forgedEmission(aeLineage{}, aeEmit{tree: x.c.emitted[aeRogue], epoch: x.v.epoch, keep: true}, ReasonMissingDataInput)
}

// plantStaleState: an async action whose emitted box's R4 is another epoch
// than the state box's it reads. Its emitted box (kept): stale_state. The
// next emission box: verified.
func (x *aeBlock) plantStaleState() (bool, error) {
	epoch := x.v.epoch - 1 - x.rng.Int64N(3)
	if epoch < 0 {
		epoch = x.v.epoch + 1
	}
	return x.forgedEmission(aeLineage{}, aeEmit{tree: x.c.emitted[aeRogue], epoch: epoch, readState: true, keep: true}, ReasonStaleState)
}

// plantWrongTemplate: an async action whose emitted box is at a P2PK tree
// (the rogue key's) instead of the emitted contract. Its emitted box:
// wrong_template. The next emission box: verified.
func (x *aeBlock) plantWrongTemplate() (bool, error) {
	return x.forgedEmission(aeLineage{}, aeEmit{tree: x.c.stash, epoch: x.v.epoch, readState: true}, ReasonWrongTemplate)
}

// plantAmountMismatch: an async action that also spends one of the
// lineage's emitted boxes and adds its tokens to what it emits (the
// devnet's wallets burn only whole tokens, so the mismatch is conjured
// rather than burnt). Its emitted box (kept): amount_mismatch — it has its
// lineage's current emission box spent, so not not_from_emission. The next
// emission box: verified.
func (x *aeBlock) plantAmountMismatch() (bool, error) {
	results := x.v.userResults(true)
	if len(results) == 0 {
		return false, nil
	}
	r := pick(x, results)
	l, _ := x.v.lineage(r.token)
	return x.forgedEmission(l, aeEmit{amounts: []uint64{x.amount(l.balance) + r.amount}, conjured: r.box,
		tree: x.c.emitted[aeRogue], epoch: x.v.epoch, readState: true, keep: true}, ReasonAmountMismatch)
}

// forgedEmission plants an async action of lineage l, or of a user's
// lineage drawn if l has no box, with one emitted box, which gets reasons;
// the next emission box is verified.
func (x *aeBlock) forgedEmission(l aeLineage, e aeEmit, reasons ...string) (bool, error) {
	if l.box == nil {
		lineages := x.v.lineageTokens(false)
		if len(lineages) == 0 {
			return false, nil
		}
		l, _ = x.v.lineage(pick(x, lineages))
	}
	e.payer = l.owner
	if e.amounts == nil {
		e.amounts = []uint64{x.amount(l.balance)}
	}
	r, ok, err := x.emission(l, e)
	if ok {
		x.expect(r.next, ClassEmission)
		x.expect(r.emitted[0], ClassEmitted, reasons...)
	}
	return ok, err
}

// plantUnknownToken: the forger creates a box at the emitted contract
// holding no token (R4 = the epoch, the state box read). The box:
// unknown_token.
func (x *aeBlock) plantUnknownToken() (bool, error) {
	fake := drop(x.emittedBox(x.c.emitted[aeRogue], [32]byte{}, 0, x.v.epoch))
	boxes, ok, err := x.send(aeForger, nil, []*Box{x.v.state}, []Output{fake})
	if ok {
		x.expect(boxes[0], ClassEmitted, ReasonUnknownToken)
	}
	return ok, err
}

// Forged state updates.

// plantUnverifiedReference: the operator updates the state reading a
// user's emitted box without its emission box, or a forged (invalid)
// emitted box, with its lineage's emission box if there is one. The new
// state box: unverified_reference.
func (x *aeBlock) plantUnverifiedReference() (bool, error) {
	valid, forged := append(x.v.userResults(true), x.v.userResults(false)...), x.v.forgedResults()
	var data []*Box
	switch {
	case len(forged) > 0 && (len(valid) == 0 || x.chance(2)):
		r := pick(x, forged)
		data = append(data, r.box)
		if l, ok := x.v.lineage(r.token); ok {
			data = append(data, l.box)
		}
	case len(valid) > 0:
		data = append(data, pick(x, valid).box)
	default:
		return false, nil
	}
	return x.updateState(data, ReasonUnverifiedReference)
}
