package devnet

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	"github.com/async-emission/auditor/ergo/sigma"
)

// The action-tree protocol of the async-emission scenario (PROTOCOL.md §1.4
// and §2, "Requirements and the action tree"): a second deployment, whose
// users build on each other's results. It has its own contracts, state box
// (R4 = the round, a Long from 0) and funnel, deployed by the operator at
// height 3 (TreeHeight), and four kinds of action, each with its results'
// own contract:
//
//	observe    a leaf: reads the state box; its result's R4 is the round
//	quote      a leaf, likewise
//	aggregate  reads the state box and an observation of the round
//	settle     reads an aggregate of the round and a quote of any round
//
// Every result read is proved: its lineage's current emission box is read
// with it. So a settlement is a result built on a result (an aggregate)
// built on a result (an observation).
//
// In every block, after the demo protocol's actions: a round update (one
// block in treeRoundOdds: the operator recreates the state box at the next
// round, reading up to two results with their emission boxes); a bootstrap
// (one block in treeBootstrapOdds while fewer than treeMaxLineages
// lineages are open); a crowd (one block in treeCrowdOdds: up to three
// users aggregate on one observation in the block); then each open lineage
// acts with odds 1 in treeActOdds, taking the highest kind of action it can
// build (a settlement, an aggregate, or a leaf), or closes its lineage one
// time in treeCloseOdds. A lineage never reads its own results.
//
// Each action (and bootstrap and crowd member) is, at the scenario's
// ForgeryRate, replaced by a planted case drawn from treePlants: an action
// that builds on an invalid result, on a valid one without its emission
// box, on another protocol's result, on a result of the wrong kind or of the
// wrong round, or on a result of a closed lineage. The emission box a
// planted action recreates is valid (the lineage goes on); its result is
// invalid, and is put at the rogue key's contract of its kind so that the
// scenario knows it from its contents, and builds the next plants on it
// ("an invalid result read").
//
// Results of rounds older than the last one are burnt, as are planted ones
// after treeForgedLife blocks and results of closed lineages after
// treeEndedLife blocks.

// Names of the action-tree protocol.
const (
	TreeProtocol    = "tree"                   // the name of its [[protocol]] section
	TreeHeight      = uint32(treeDeployHeight) // its deployment: its start_height
	ActionObserve   = "observe"
	ActionQuote     = "quote"
	ActionAggregate = "aggregate"
	ActionSettle    = "settle"
)

// Parameters of the action tree.
const (
	treeDeployHeight  = 3
	treeMaxLineages   = 3
	treeBootstrapOdds = 5
	treeActOdds       = 5
	treeRoundOdds     = 12
	treeCloseOdds     = 20
	treeCrowdOdds     = 10
	treeCrowd         = 3  // users in a crowd, at most
	treeMaxResults    = 3  // kept valid results of an action and round
	treeMaxForged     = 8  // kept planted results
	treeForgedLife    = 24 // blocks a planted result is kept
	treeEndedLife     = 30 // blocks a result of a closed lineage is kept
	treeMaxSync       = 2  // results a round update reads
)

// treeAction is a kind of action: its name and what it builds on.
type treeAction struct {
	name  string
	state bool // reads the state box at its result's round
	same  int  // builds on a result of this kind of its round; -1 for none
	any   int  // builds on a result of this kind of any round; -1 for none
}

// The kinds, by index: leaves first.
const (
	tObserve = iota
	tQuote
	tAggregate
	tSettle
	tKinds // how many
)

var treeActions = []treeAction{
	tObserve:   {name: ActionObserve, state: true, same: -1, any: -1},
	tQuote:     {name: ActionQuote, state: true, same: -1, any: -1},
	tAggregate: {name: ActionAggregate, state: true, same: tObserve, any: -1},
	tSettle:    {name: ActionSettle, same: tAggregate, any: tQuote},
}

// Templates of the action tree's contracts, each unique (no other contract
// of the chain has it).
var (
	// {c1} && {OUTPUTS(c0).propositionBytes == SELF.propositionBytes}: the
	// state box, recreated by the operator (c1).
	treeStateTemplate = []byte{0xea, 0x02, 0x73, 0x01, 0xd1, 0x93, 0xc2, 0xb2, 0xa5, 0x73, 0x00, 0x00, 0xc2, 0xa7}

	// OUTPUTS(c0).propositionBytes == SELF.propositionBytes &&
	// OUTPUTS(c1).value >= SELF.value (c0 == c1 == 0): the funnel.
	treeFunnelTemplate = []byte{0xd1, 0xed,
		0x93, 0xc2, 0xb2, 0xa5, 0x73, 0x00, 0x00, 0xc2, 0xa7,
		0x92, 0xc1, 0xb2, 0xa5, 0x73, 0x01, 0x00, 0xc1, 0xa7}

	// {the funnel's condition} && c1 && c2: a user's (c1) emission box,
	// co-signed by the operator (c2).
	treeEmissionTemplate = []byte{0xea, 0x03, 0xd1, 0xed,
		0x93, 0xc2, 0xb2, 0xa5, 0x73, 0x00, 0x00, 0xc2, 0xa7,
		0x92, 0xc1, 0xb2, 0xa5, 0x73, 0x00, 0x00, 0xc1, 0xa7,
		0x73, 0x01, 0x73, 0x02}
)

// treeResultTemplate is the template of the results of action k: c0 || c1
// || … || c(k+2), for their user (c0) or the operator (the others).
func treeResultTemplate(k int) []byte {
	t := []byte{0xeb, byte(k + 3)}
	for i := range k + 3 {
		t = append(t, 0x73, byte(i))
	}
	return t
}

// treeContracts are the action tree's ErgoTrees, by owner index where
// users own them.
type treeContracts struct {
	state, funnel []byte
	emission      [aeOwners][]byte
	results       [tKinds][aeOwners][]byte
	emissionOwner map[string]int
	resultOwner   map[string]treeOwner
}

// treeOwner is whose result contract of which kind a tree is.
type treeOwner struct{ action, owner int }

func newTreeContracts(enc *encoder, keys [aeOwners]sigma.GroupElement, operator sigma.Constant) *treeContracts {
	c := &treeContracts{
		state:         enc.tree(treeSegregated, treeStateTemplate, intConst(0), operator),
		funnel:        enc.tree(treeSegregated, treeFunnelTemplate, intConst(0), intConst(0)),
		emissionOwner: make(map[string]int, aeOwners),
		resultOwner:   make(map[string]treeOwner, aeOwners*len(treeActions)),
	}
	for o, pk := range keys {
		c.emission[o] = enc.tree(treeSegregatedSized, treeEmissionTemplate, intConst(0), propConst(pk), operator)
		c.emissionOwner[string(c.emission[o])] = o
		for k := range treeActions {
			consts := []sigma.Constant{propConst(pk)}
			for range k + 2 {
				consts = append(consts, operator)
			}
			c.results[k][o] = enc.tree(treeSegregated, treeResultTemplate(k), consts...)
			c.resultOwner[string(c.results[k][o])] = treeOwner{k, o}
		}
	}
	return c
}

// treeView is the action tree as the kept boxes show it. Its lineages are
// all users'.
type treeView struct {
	aeDeployment
	lineages aeLineages
	results  []treeResult
}

// treeResult is a kept result: a user's is valid (and proved while its
// lineage is open), the rogue key's was planted.
type treeResult struct {
	aeResult
	action int
	round  int64 // its R4
}

// read files a kept box of the action tree's.
func (t *treeView) read(c *treeContracts, box *Box) error {
	tree := string(box.ErgoTree)
	emission, isEmission := c.emissionOwner[tree]
	result, isResult := c.resultOwner[tree]
	switch {
	case tree == string(c.state):
		return t.readState(box)
	case tree == string(c.funnel):
		return t.readFunnel(box)
	case isEmission:
		if len(box.Tokens) != 2 {
			return errors.New("is not an emission box")
		}
		t.lineages = append(t.lineages, aeLineage{box: box, owner: emission, token: box.Tokens[1].ID, balance: box.Tokens[1].Amount})
	case isResult:
		if len(box.Tokens) != 1 || len(box.Registers) != 1 {
			return errors.New("is not a result")
		}
		c, err := sigma.ParseConstant(box.Registers[0])
		round, ok := c.Value.(int64)
		if err != nil || !ok {
			return errors.New("has no round")
		}
		t.results = append(t.results, treeResult{
			aeResult: aeResult{box: box, owner: result.owner, token: box.Tokens[0].ID, amount: box.Tokens[0].Amount},
			action:   result.action, round: round,
		})
	default:
		return errors.New("is not the protocols'")
	}
	return nil
}

// filter lists the results of action k (any kind for -1) that keep says.
func (t *treeView) filter(k int, keep func(treeResult) bool) []treeResult {
	var rs []treeResult
	for _, r := range t.results {
		if (k < 0 || r.action == k) && keep(r) {
			rs = append(rs, r)
		}
	}
	return rs
}

// open reports whether the result's lineage is open: its emission box,
// which proves it, can be read.
func (t *treeView) open(r treeResult) bool {
	_, ok := t.lineages.lineage(r.token)
	return ok
}

// provable lists the users' results of action k (any for -1) whose lineage
// is open, but those of the lineages of not: of the round, or of any round.
func (t *treeView) provable(k int, ofRound bool, not ...[32]byte) []treeResult {
	return t.filter(k, func(r treeResult) bool {
		return !r.forged() && !slices.Contains(not, r.token) && t.open(r) && (!ofRound || r.round == t.epoch)
	})
}

// proof is what proves result r: r and its lineage's current box.
func (t *treeView) proof(r treeResult) []*Box {
	l, _ := t.lineages.lineage(r.token)
	return []*Box{r.box, l.box}
}

// treeRoom is how many more results of action k at owner's contract may be
// kept: planted ones in all, a user's of the round.
func (x *aeBlock) treeRoom(k, owner int) int {
	if owner == aeRogue {
		return treeMaxForged - len(x.t.filter(-1, treeResult.forged))
	}
	return treeMaxResults - len(x.t.filter(k, func(r treeResult) bool { return !r.forged() && r.round == x.t.epoch }))
}

// runTree takes the action tree's actions of the block.
func (x *aeBlock) runTree() error {
	t := &x.t
	if t.state == nil || t.funnel == nil {
		return fmt.Errorf("%w: async emission: no action-tree deployment at height %d", ErrScenario, x.h)
	}
	if err := x.treeHousekeep(); err != nil {
		return err
	}
	if x.chance(treeRoundOdds) {
		x.act = "tree:round"
		var data []*Box
		results := t.provable(-1, false)
		for _, i := range x.rng.Perm(len(results))[:min(len(results), treeMaxSync)] {
			data = appendNew(data, t.proof(results[i])...)
		}
		if _, err := x.updateStateOf(&t.aeDeployment, data); err != nil {
			return err
		}
	}
	if len(t.lineages) < treeMaxLineages && x.chance(treeBootstrapOdds) {
		if err := x.treeAction(nil, x.treeBootstrap); err != nil {
			return err
		}
	}
	if x.chance(treeCrowdOdds) {
		if err := x.treeCrowd(); err != nil {
			return err
		}
	}
	for _, token := range t.lineages.tokens(all) {
		if !x.chance(treeActOdds) {
			continue
		}
		l, ok := t.lineages.lineage(token) // a plant or a crowd may have moved it
		if !ok {
			continue
		}
		if x.chance(treeCloseOdds) {
			x.act = "tree:close"
			if err := x.end(&t.aeDeployment, l, l.owner); err != nil {
				return err
			}
			continue
		}
		err := x.treeAction(&l, func() error {
			_, err := x.treeBuild(l, x.highest(l), nil)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// treeAction takes a valid action or, at the forgery rate, plants a case of
// lineage l (or of a lineage drawn, for nil) in its place.
func (x *aeBlock) treeAction(l *aeLineage, valid func() error) error {
	if x.rng.Float64() < x.a.ForgeryRate {
		if l == nil && len(x.t.lineages) > 0 {
			drawn := pick(x, x.t.lineages)
			l = &drawn
		}
		if l != nil {
			if planted, err := x.plantTree(*l); planted || err != nil {
				return err
			}
		}
	}
	return valid()
}

// treeBootstrap: a user joins the action tree.
func (x *aeBlock) treeBootstrap() error {
	x.act = "tree:bootstrap"
	u := x.user()
	r, ok, err := x.mint(&x.t.aeDeployment, u, aeMint{owner: u, participants: 1, supply: AsyncSupply, readState: true, keep: true})
	if ok {
		x.expectIn(TreeProtocol, r.funnel, ClassFunnel)
		x.expectIn(TreeProtocol, r.emission, ClassEmission)
	}
	return err
}

// treeCrowd: up to treeCrowd lineages aggregate on one observation of the
// round, in this block.
func (x *aeBlock) treeCrowd() error {
	t := &x.t
	obs := t.provable(tObserve, true)
	if len(obs) == 0 {
		return nil
	}
	focus := pick(x, obs)
	n := 0
	for _, token := range t.lineages.tokens(all) {
		l, ok := t.lineages.lineage(token)
		if !ok || token == focus.token || n == treeCrowd {
			continue
		}
		n++
		err := x.treeAction(&l, func() error {
			_, err := x.treeBuild(l, tAggregate, &focus)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// highest is the highest kind of action lineage l can build now, drawn
// among the leaves when none builds on results.
func (x *aeBlock) highest(l aeLineage) int {
	for _, k := range []int{tSettle, tAggregate} {
		if _, ok := x.treeReads(k, nil, nil, l.token); ok {
			return k
		}
	}
	return x.rng.IntN(2) // observe or quote
}

// treeSlot is one of the things an action reads: the state box, the
// result of its round it builds on, or the result of any round.
type treeSlot int

const (
	slotState treeSlot = iota
	slotSame
	slotAny
)

// treeReads is what a valid action of kind k reads: the state box if it
// needs it, and each result it builds on (focus, if given, for the one of
// its round) with its emission box, of other lineages than those of not
// (the acting one's first); but for the slots instead names, what it names.
// ok is false when a result it needs is not there.
func (x *aeBlock) treeReads(k int, focus *treeResult, instead map[treeSlot][]*Box, not ...[32]byte) (data []*Box, ok bool) {
	t, a := &x.t, treeActions[k]
	needs := []struct {
		slot    treeSlot
		k       int
		ofRound bool
	}{{slotState, -1, false}, {slotSame, a.same, true}, {slotAny, a.any, false}}
	for _, need := range needs {
		boxes, replaced := instead[need.slot]
		switch {
		case replaced:
		case need.slot == slotState && a.state:
			boxes = []*Box{t.state}
		case need.k < 0:
		case need.ofRound && focus != nil:
			boxes = t.proof(*focus)
		default:
			rs := t.provable(need.k, need.ofRound, not...)
			if len(rs) == 0 {
				return nil, false
			}
			boxes = t.proof(pick(x, rs))
		}
		data = appendNew(data, boxes...)
	}
	return data, true
}

// treeBuild: lineage l takes a valid action of kind k, building on focus
// if given.
func (x *aeBlock) treeBuild(l aeLineage, k int, focus *treeResult) (bool, error) {
	x.act = "tree:" + treeActions[k].name
	data, ok := x.treeReads(k, focus, nil, l.token)
	if !ok {
		return false, nil
	}
	return x.treeAct(l, k, x.t.epoch, l.owner, data)
}

// treeAct: lineage l takes an action of kind k, reading data: its emission
// box is recreated (verified) and its one result, with R4 = round, is at
// owner's contract of the kind; the result gets reasons.
func (x *aeBlock) treeAct(l aeLineage, k int, round int64, owner int, data []*Box, reasons ...string) (bool, error) {
	r, ok, err := x.emission(l, aeEmit{payer: l.owner, amounts: []uint64{x.amount(l.balance)},
		tree: x.c.tree.results[k][owner], epoch: round, data: data, keep: true})
	if ok {
		x.expectIn(TreeProtocol, r.next, ClassEmission)
		x.expectIn(TreeProtocol, r.emitted[0], ClassEmitted, reasons...)
	}
	return ok, err
}

// treeHousekeep burns the results nobody builds on any more: of rounds
// before the last one, planted ones after treeForgedLife blocks, those of
// closed lineages after treeEndedLife blocks.
func (x *aeBlock) treeHousekeep() error {
	x.act = "tree:cleanup"
	t := &x.t
	var stale []aeResult
	for _, r := range t.results {
		switch {
		case r.forged() && r.box.CreationHeight+treeForgedLife <= x.h,
			!r.forged() && r.round < t.epoch-1,
			!r.forged() && !t.open(r) && r.box.CreationHeight+treeEndedLife <= x.h:
			stale = append(stale, r.aeResult)
		}
	}
	return x.burn(stale)
}

func all(aeLineage) bool { return true }

// appendNew appends the boxes data does not hold yet.
func appendNew(data []*Box, boxes ...*Box) []*Box {
	for _, b := range boxes {
		if !slices.Contains(data, b) {
			data = append(data, b)
		}
	}
	return data
}

// treeProtocol is the [[protocol]] section of the action tree, found in the
// state after its deployment.
func treeProtocol(st *state) (ProtocolConfig, error) {
	round := EmissionRequirement{Class: ClassState, EmittedRegister: "R4", DataInputRegister: "R4"}
	p := ProtocolConfig{
		Name:             TreeProtocol,
		EmissionTemplate: sha256.Sum256(treeEmissionTemplate),
		FunnelTemplate:   sha256.Sum256(treeFunnelTemplate),
		AsyncSupply:      AsyncSupply,
		StartHeight:      treeDeployHeight,
	}
	for k, a := range treeActions {
		ac := ActionConfig{Name: a.name, EmittedTemplate: sha256.Sum256(treeResultTemplate(k))}
		if a.state {
			ac.Requires = append(ac.Requires, round)
		}
		if a.same >= 0 {
			ac.Requires = append(ac.Requires, EmissionRequirement{Class: ClassEmitted, Action: treeActions[a.same].name,
				EmittedRegister: "R4", DataInputRegister: "R4"})
		}
		if a.any >= 0 {
			ac.Requires = append(ac.Requires, EmissionRequirement{Class: ClassEmitted, Action: treeActions[a.any].name})
		}
		p.Actions = append(p.Actions, ac)
	}
	return p, p.find(st, sha256.Sum256(treeStateTemplate))
}
