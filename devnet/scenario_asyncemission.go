package devnet

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// AsyncEmission is the async-emission Scenario: a protocol built on the
// User Async Emission pattern (PROTOCOL.md), deployed on the generated chain
// and used by its users, with forgeries and mistakes planted among the valid
// actions; and a second one, the action tree, whose users build on each
// other's results (scenario_asyncemission_tree.go). It declares, with
// BlockBuilder.Expect, the verdict an auditor must reach on every box of a
// class it creates (see Devnet.Expectations), and Devnet.Protocols gives the
// [[protocol]] configuration that watches both.
//
// # The deployment
//
// At height 2 (AsyncEmissionHeight) the operator (user 9) mints the state
// NFT into the state box (R4 = the epoch, a Long, from 0) and 1,000,000
// participant tokens into the funnel box; each mint's token id is its
// transaction's first input, one of the operator's wallet boxes. Then, in
// every block, each of these draws:
//
//   - a state update (one block in five): the operator spends the state box
//     and recreates it with R4 = epoch+1, reading as data inputs up to two
//     async-emitted boxes, each with the current emission box of its async
//     token (the box that, by PROTOCOL.md §1, proves it);
//   - a bootstrap (one block in six, while fewer than 8 lineages are open): a
//     user spends the funnel as the first input, recreates it with one
//     participant token fewer at output 0, reads the state box, mints the
//     async token (id: the funnel box's id) with a supply of AsyncSupply and
//     locks all of it with one participant token in an emission box at output
//     1;
//   - for each open lineage (one block in five): an async action — the
//     emission box is spent and recreated at output 0 of the same contract
//     with the same participant token and a smaller balance, the decrease
//     going to one to three async-emitted boxes with R4 = the epoch of the
//     state box the transaction reads — or, one time in 25, a close: the
//     emission box is spent with the funnel, which gets the participant token
//     back, and the async balance is burnt (no token leaves the contract, so
//     nothing escapes).
//
// Users pay the boxes' values and a fee from their wallets and get change,
// as the background traffic does. A user's kept emitted boxes are burnt a
// few blocks after their lineage ends.
//
// # Forgeries and mistakes
//
// Each of these protocol actions is, with probability ForgeryRate, replaced
// by a planted case drawn uniformly from one per reason code of PROTOCOL.md
// §4 (invalid_parent and invalid_emission share one: building on a forged
// lineage; emitted.unverified_reference is planted along the action tree);
// a case that cannot be planted at the time (say, nothing to
// orphan) passes to the next, and the valid action is taken if none can.
// Every planted transaction is a valid Ergo transaction as the devnet makes
// them (ids, value and token conservation, burns of whole tokens only,
// mints with the first input's id): it breaks only the protocol's promises.
//
// The scenario keeps its state in its boxes alone, so it must tell a forged
// box from a valid one by its contents: every box a plant creates outside a
// user's lineage (a forged lineage's emission boxes, a forged emitted box,
// the stash) is at a contract of a rogue key's (derived from the
// operator's), and a user's lineage that a plant breaks is never acted on
// again. The forger keeps the participant tokens it takes in a stash (a P2PK
// box of the rogue key: class participant), keeps up to three forged
// lineages alive to build on (and retires them after a while, as a user
// closes a lineage), and burns its kept emitted boxes after 24 blocks. The
// planted cases, with the codes each of their boxes gets and the reading of
// PROTOCOL.md they rest on, are listed in scenario_asyncemission_forge.go.
type AsyncEmission struct {
	// ForgeryRate is the fraction of protocol actions replaced by a planted
	// forgery or mistake: 0 is a clean run, 1 forges every action.
	ForgeryRate float64
}

// Names and constants of the async-emission scenario.
const (
	AsyncEmissionScenario = "async-emission"       // its name on the command line
	AsyncEmissionProtocol = "demo"                 // the name of its [[protocol]] section
	AsyncSupply           = uint64(1<<63 - 1)      // the supply every bootstrap mints: i64::MAX
	DefaultForgeryRate    = 0.1                    // the command line's default
	AsyncEmissionHeight   = uint32(aeDeployHeight) // the height of the deployment: the protocol's start_height
)

// Parameters of the scenario.
const (
	aeDeployHeight = 2
	aeOperator     = 9        // the user who deploys the protocol and updates its state
	aeForger       = 10       // the user who pays the rogue key's transactions
	aeRogue        = numUsers // the owner index of the rogue key's contracts
	aeOwners       = numUsers + 1

	aeParticipants  = 1_000_000 // plants lose some for good: enough for the longest devnets
	aeStateValue    = 10_000_000
	aeFunnelValue   = 10_000_000
	aeEmissionValue = 5_000_000
	aeEmittedValue  = 2_000_000
	aeStashValue    = 2_000_000
	aeMaxEmit       = 1_000_000_000_000 // the most async tokens an emitted box gets

	aeMaxLineages       = 8  // open user lineages
	aeMaxResults        = 2  // kept emitted boxes of a user lineage
	aeMaxForged         = 3  // open forged lineages
	aeMaxForgedResults  = 6  // kept emitted boxes of the forger's
	aeForgedResultLife  = 24 // blocks a forged emitted box is kept
	aeMaxWalletInputs   = 4
	aeSyncOdds          = 5 // one block in five updates the state
	aeBootstrapOdds     = 6
	aeActOdds           = 5
	aeCloseOdds         = 25
	aeRetireOdds        = 30
	aeBurnOrphansOdds   = 4
	aeMaxSyncReferences = 2
)

// Templates (root expressions) of the protocol's contracts. Nobody runs them:
// each is a parseable expression over its segregated constants, unique to
// its contract, so that the boxes of one contract share a template hash
// whatever their owner.
var (
	// {OUTPUTS(c0).propositionBytes == SELF.propositionBytes} && c1: the
	// state box, which the operator (c1) recreates in output c0.
	aeStateTemplate = []byte{0xea, 0x02, 0xd1, 0x93, 0xc2, 0xb2, 0xa5, 0x73, 0x00, 0x00, 0xc2, 0xa7, 0x73, 0x01}

	// OUTPUTS(c0).propositionBytes == SELF.propositionBytes &&
	// OUTPUTS(c0).value >= SELF.value: the funnel, open to anybody who
	// recreates it in output c0.
	aeFunnelTemplate = []byte{0xd1, 0xed,
		0x93, 0xc2, 0xb2, 0xa5, 0x73, 0x00, 0x00, 0xc2, 0xa7,
		0x92, 0xc1, 0xb2, 0xa5, 0x73, 0x00, 0x00, 0xc1, 0xa7}

	// {the funnel's condition} && c1: a user's (c1) emission box, recreated
	// in output c0. Its trees are the sized ones (header 0x18).
	aeEmissionTemplate = []byte{0xea, 0x02, 0xd1, 0xed,
		0x93, 0xc2, 0xb2, 0xa5, 0x73, 0x00, 0x00, 0xc2, 0xa7,
		0x92, 0xc1, 0xb2, 0xa5, 0x73, 0x00, 0x00, 0xc1, 0xa7,
		0x73, 0x01}

	// c0 || c1: an async-emitted box, for its user (c0) or the operator (c1).
	aeEmittedTemplate = []byte{0xeb, 0x02, 0x73, 0x00, 0x73, 0x01}
)

// ErrScenario reports a Scenario that finds its kept boxes in a state it
// never leaves them in: a bug.
var ErrScenario = errors.New("devnet: inconsistent scenario state")

// Validate checks ForgeryRate; Config.Validate calls it.
func (a *AsyncEmission) Validate() error {
	if a == nil {
		return &ConfigError{Field: "Scenario", Msg: "a nil *AsyncEmission"}
	}
	if !(a.ForgeryRate >= 0 && a.ForgeryRate <= 1) {
		return &ConfigError{Field: "Scenario.ForgeryRate", Msg: fmt.Sprintf("%v is not in 0 … 1", a.ForgeryRate)}
	}
	return nil
}

// Block adds the scenario's transactions to a block.
func (a *AsyncEmission) Block(b *BlockBuilder) error {
	if b.Height() < aeDeployHeight {
		return nil
	}
	x, err := a.begin(b)
	if err != nil {
		return err
	}
	switch h := b.Height(); {
	case h == aeDeployHeight:
		err = x.deploy(AsyncEmissionProtocol, x.c.state, x.c.funnel)
	default:
		err = x.run()
		switch {
		case err != nil:
		case h == treeDeployHeight:
			err = x.deploy(TreeProtocol, x.c.tree.state, x.c.tree.funnel)
		default:
			err = x.runTree()
		}
	}
	return errors.Join(err, x.enc.err)
}

// aeBlock is the scenario at work on one block: what it knows of the
// protocol, all read from its kept boxes.
type aeBlock struct {
	a   *AsyncEmission
	b   *BlockBuilder
	h   uint32
	rng *rand.Rand
	enc encoder
	c   *aeContracts
	v   aeView   // the demo protocol
	t   treeView // the action-tree protocol
	act string   // what the transactions being added do, for Expectation.Case
}

func (a *AsyncEmission) begin(b *BlockBuilder) (*aeBlock, error) {
	c, err := newAEContracts(b)
	if err != nil {
		return nil, err
	}
	x := &aeBlock{a: a, b: b, h: b.Height(), rng: b.Rand(), c: c}
	return x, x.refresh()
}

// aeContracts are the deployment's ErgoTrees. Emission and emitted boxes
// are at contracts owned by a user or by the rogue key: by owner index.
type aeContracts struct {
	state, funnel, stash []byte
	emission, emitted    [aeOwners][]byte
	emissionOwner        map[string]int
	emittedOwner         map[string]int
	tree                 *treeContracts // the action-tree protocol's
}

func newAEContracts(b *BlockBuilder) (*aeContracts, error) {
	var keys [aeOwners]sigma.GroupElement
	for u := range numUsers {
		keys[u], _ = b.User(u)
	}
	keys[aeRogue] = rogueKey(keys[aeOperator])
	operator := propConst(keys[aeOperator])
	var enc encoder
	c := &aeContracts{
		state:         enc.tree(treeSegregated, aeStateTemplate, intConst(0), operator),
		funnel:        enc.tree(treeSegregated, aeFunnelTemplate, intConst(0)),
		stash:         p2pkTree(keys[aeRogue]),
		emissionOwner: make(map[string]int, aeOwners),
		emittedOwner:  make(map[string]int, aeOwners),
	}
	for o, pk := range keys {
		c.emission[o] = enc.tree(treeSegregatedSized, aeEmissionTemplate, intConst(0), propConst(pk))
		c.emitted[o] = enc.tree(treeSegregated, aeEmittedTemplate, propConst(pk), operator)
		c.emissionOwner[string(c.emission[o])] = o
		c.emittedOwner[string(c.emitted[o])] = o
	}
	c.tree = newTreeContracts(&enc, keys, operator)
	if enc.err != nil {
		return nil, fmt.Errorf("async emission: building the contracts: %w", enc.err)
	}
	return c, nil
}

// rogueKey derives the forger's key from the operator's (and so from the
// seed): no user holds it, so the traffic never spends its boxes.
func rogueKey(operator sigma.GroupElement) sigma.GroupElement {
	return derivePoint(ergo.Hash(append([]byte("devnet/async-emission/rogue/"), operator[:]...)))
}

// aeDeployment is one protocol's deployment as the kept boxes show it:
// its state box and funnel, and the contracts of its emission boxes.
type aeDeployment struct {
	protocol      string // the name of its [[protocol]] section
	state, funnel *Box
	participant   [32]byte // the participant token's id
	epoch         int64    // the state box's R4
	emission      *[aeOwners][]byte
}

// aeView is the demo protocol as the kept boxes show it.
type aeView struct {
	aeDeployment
	stash    *Box
	lineages aeLineages
	results  []aeResult
}

// aeLineage is an open emission lineage: its current box holds the
// participant token and the async token, in that order.
type aeLineage struct {
	box     *Box
	owner   int // a user, or aeRogue for a forged lineage
	token   [32]byte
	balance uint64
}

func (l aeLineage) forged() bool { return l.owner == aeRogue }

// aeResult is a kept async-emitted box. The user's are valid; the rogue
// key's were forged.
type aeResult struct {
	box    *Box
	owner  int
	token  [32]byte
	amount uint64
}

func (r aeResult) forged() bool { return r.owner == aeRogue }

// refresh reads the view from the kept boxes.
func (x *aeBlock) refresh() error {
	v := aeView{aeDeployment: aeDeployment{protocol: AsyncEmissionProtocol, emission: &x.c.emission}}
	t := treeView{aeDeployment: aeDeployment{protocol: TreeProtocol, emission: &x.c.tree.emission}}
	bad := func(box *Box, what string) error {
		return fmt.Errorf("%w: async emission at height %d: kept box %s %s", ErrScenario, x.h, box.ID, what)
	}
	for _, box := range x.b.Kept() {
		tree := string(box.ErgoTree)
		emission, isEmission := x.c.emissionOwner[tree]
		emitted, isEmitted := x.c.emittedOwner[tree]
		switch {
		case tree == string(x.c.state):
			if err := v.readState(box); err != nil {
				return bad(box, err.Error())
			}
		case tree == string(x.c.funnel):
			if err := v.readFunnel(box); err != nil {
				return bad(box, err.Error())
			}
		case tree == string(x.c.stash):
			if len(box.Tokens) != 1 {
				return bad(box, "is not a stash")
			}
			v.stash = box
		case isEmission:
			if len(box.Tokens) != 2 {
				return bad(box, "is not an emission box")
			}
			v.lineages = append(v.lineages, aeLineage{box: box, owner: emission, token: box.Tokens[1].ID, balance: box.Tokens[1].Amount})
		case isEmitted:
			if len(box.Tokens) != 1 {
				return bad(box, "is not an emitted box")
			}
			v.results = append(v.results, aeResult{box: box, owner: emitted, token: box.Tokens[0].ID, amount: box.Tokens[0].Amount})
		default:
			if err := t.read(x.c.tree, box); err != nil {
				return bad(box, err.Error())
			}
		}
	}
	if v.stash != nil && v.stash.Tokens[0].ID != v.participant {
		return bad(v.stash, "holds another token than the participant token")
	}
	x.v, x.t = v, t
	return nil
}

// readState reads the deployment's state box.
func (d *aeDeployment) readState(box *Box) error {
	if len(box.Tokens) != 1 || len(box.Registers) != 1 {
		return errors.New("is not a state box")
	}
	c, err := sigma.ParseConstant(box.Registers[0])
	epoch, ok := c.Value.(int64)
	if err != nil || !ok {
		return errors.New("has no epoch")
	}
	d.state, d.epoch = box, epoch
	return nil
}

// readFunnel reads the deployment's funnel.
func (d *aeDeployment) readFunnel(box *Box) error {
	if len(box.Tokens) != 1 {
		return errors.New("is not a funnel")
	}
	d.funnel, d.participant = box, box.Tokens[0].ID
	return nil
}

// funnelTokens and stashTokens are the participant tokens the funnel and
// the stash hold.
func (d *aeDeployment) funnelTokens() uint64 { return d.funnel.Tokens[0].Amount }

func (v *aeView) stashTokens() uint64 {
	if v.stash == nil {
		return 0
	}
	return v.stash.Tokens[0].Amount
}

// aeLineages are the open lineages of a deployment.
type aeLineages []aeLineage

// lineage returns the open lineage of an async token.
func (ls aeLineages) lineage(token [32]byte) (aeLineage, bool) {
	for _, l := range ls {
		if l.token == token {
			return l, true
		}
	}
	return aeLineage{}, false
}

// tokens lists the async tokens of the lineages that keep says.
func (ls aeLineages) tokens(keep func(aeLineage) bool) [][32]byte {
	var tokens [][32]byte
	for _, l := range ls {
		if keep(l) {
			tokens = append(tokens, l.token)
		}
	}
	return tokens
}

// lineage returns the open lineage of an async token.
func (v *aeView) lineage(token [32]byte) (aeLineage, bool) { return v.lineages.lineage(token) }

// lineageTokens lists the async tokens of the open lineages, forged or
// the users'.
func (v *aeView) lineageTokens(forged bool) [][32]byte {
	return v.lineages.tokens(func(l aeLineage) bool { return l.forged() == forged })
}

// userResults lists the users' kept emitted boxes whose lineage is open
// (open) or not (closed, or broken by a plant).
func (v *aeView) userResults(open bool) []aeResult {
	var rs []aeResult
	for _, r := range v.results {
		if _, ok := v.lineage(r.token); !r.forged() && ok == open {
			rs = append(rs, r)
		}
	}
	return rs
}

// endedResults lists the kept emitted boxes, the users' and the forger's,
// whose lineage has no kept emission box: lineages closed, broken, or left
// to themselves, which no later block acts on.
func (v *aeView) endedResults() []aeResult {
	var rs []aeResult
	for _, r := range v.results {
		if _, ok := v.lineage(r.token); !ok {
			rs = append(rs, r)
		}
	}
	return rs
}

func (v *aeView) forgedResults() []aeResult {
	var rs []aeResult
	for _, r := range v.results {
		if r.forged() {
			rs = append(rs, r)
		}
	}
	return rs
}

// resultRoom is how many more emitted boxes at tree holding token may be
// kept.
func (x *aeBlock) resultRoom(tree []byte, token [32]byte) int {
	if r, ok := x.c.tree.resultOwner[string(tree)]; ok {
		return x.treeRoom(r.action, r.owner)
	}
	switch o, ok := x.c.emittedOwner[string(tree)]; {
	case !ok:
		return 0
	case o == aeRogue:
		return aeMaxForgedResults - len(x.v.forgedResults())
	}
	n := 0
	for _, r := range x.v.results {
		if !r.forged() && r.token == token {
			n++
		}
	}
	return aeMaxResults - n
}

// forgedRoom reports whether one more forged lineage may be kept.
func (x *aeBlock) forgedRoom() bool { return len(x.v.lineageTokens(true)) < aeMaxForged }

// Drawing.

func (x *aeBlock) chance(odds int) bool { return x.rng.IntN(odds) == 0 }

// user draws a user other than the operator.
func (x *aeBlock) user() int {
	u := x.rng.IntN(numUsers - 1)
	if u >= aeOperator {
		u++
	}
	return u
}

// amounts draws what one async action of a lineage with balance emits:
// one to three boxes' worth.
func (x *aeBlock) amounts(balance uint64) []uint64 {
	a := make([]uint64, 1+x.rng.IntN(3))
	for i := range a {
		a[i] = x.amount(balance)
	}
	return a
}

// amount draws an amount for an emitted box of a lineage with balance: up
// to an eighth of it (a forged mint may be small), and at most aeMaxEmit.
func (x *aeBlock) amount(balance uint64) uint64 {
	return 1 + x.rng.Uint64N(max(1, min(aeMaxEmit, balance/8)))
}

func pick[T any](x *aeBlock, list []T) T { return list[x.rng.IntN(len(list))] }

// Building transactions.

func (x *aeBlock) candidate(value uint64, tree []byte, tokens []sigma.Token, registers ...[]byte) sigma.BoxCandidate {
	return sigma.BoxCandidate{Value: value, ErgoTree: tree, CreationHeight: x.h, Tokens: tokens, Registers: registers}
}

// emittedBox is an async-emitted box at tree holding amount of token (none
// for a zero amount), with R4 = epoch.
func (x *aeBlock) emittedBox(tree []byte, token [32]byte, amount uint64, epoch int64) sigma.BoxCandidate {
	var tokens []sigma.Token
	if amount > 0 {
		tokens = []sigma.Token{{ID: token, Amount: amount}}
	}
	return x.candidate(aeEmittedValue, tree, tokens, x.enc.long(epoch))
}

func (x *aeBlock) participants(n uint64) sigma.Token { return x.v.participants(n) }

func (d *aeDeployment) participants(n uint64) sigma.Token {
	return sigma.Token{ID: d.participant, Amount: n}
}

func keep(c sigma.BoxCandidate) Output { return Output{BoxCandidate: c, Keep: true} }
func drop(c sigma.BoxCandidate) Output { return Output{BoxCandidate: c} }

// send adds a transaction that spends ins (in order: the first one names
// the token a transaction mints) and data, and creates outs. Wallet boxes
// of payer's are added to pay for the outputs and a fee; the change goes
// back to payer with the wallet boxes' tokens the outputs do not take
// (tokens of the other inputs that no output takes are burnt). It returns
// the boxes made of outs, and false, adding nothing, when payer cannot pay.
func (x *aeBlock) send(payer int, ins []Input, data []*Box, outs []Output) ([]*Box, bool, error) {
	if x.enc.err != nil {
		return nil, false, x.enc.err
	}
	wallet := x.b.Wallet(payer)
	ins = slices.Clone(ins)
	var have, pay uint64
	var walletTokens []sigma.Token
	for _, in := range ins {
		have += in.Box.Value
		if slices.Contains(wallet, in.Box) {
			walletTokens, _ = addTokens(walletTokens, in.Box.Tokens) // amounts of live boxes fit
		}
	}
	for _, o := range outs {
		pay += o.Value
	}
	fee := minFee + uint64(x.rng.IntN(11))*100_000
	need := pay + fee + 2*minBoxValue // two change boxes at most
	added := 0
	for _, w := range wallet {
		if have >= need || added == aeMaxWalletInputs {
			break
		}
		if slices.ContainsFunc(ins, func(in Input) bool { return in.Box == w }) {
			continue
		}
		ins = append(ins, Input{Box: w, Signed: true})
		have += w.Value
		walletTokens, _ = addTokens(walletTokens, w.Tokens)
		added++
	}
	if have < need {
		return nil, false, nil
	}
	taken := func(id [32]byte) (n uint64) {
		for _, o := range outs {
			n += tokenAmount(o.Tokens, id)
		}
		return n
	}
	var change []sigma.Token
	for _, t := range walletTokens {
		if left := t.Amount - min(t.Amount, taken(t.ID)); left > 0 {
			change = append(change, sigma.Token{ID: t.ID, Amount: left})
		}
	}
	change = keepWholeBurns(change, func(id [32]byte) bool { return taken(id) > 0 })
	_, payTree := x.b.User(payer)
	all := slices.Clone(outs)
	value := have - pay - fee
	for len(change) > maxTokensPerBox { // the wallets' boxes hold a few tokens each
		all = append(all, drop(x.candidate(minBoxValue, payTree, change[:maxTokensPerBox])))
		change, value = change[maxTokensPerBox:], value-minBoxValue
	}
	all = append(all, drop(x.candidate(value, payTree, change)), drop(x.candidate(fee, feeTree, nil)))
	boxes, err := x.b.Add(Tx{Inputs: ins, DataInputs: data, Outputs: all})
	if err != nil {
		return nil, false, fmt.Errorf("async emission (%s): %w", x.act, err)
	}
	return boxes[:len(outs)], true, x.refresh()
}

// expect declares the demo protocol's verdict on a box created by the
// transaction just added: verified, or invalid for the reasons given.
func (x *aeBlock) expect(box *Box, class string, reasons ...string) {
	x.expectIn(AsyncEmissionProtocol, box, class, reasons...)
}

// expectIn declares protocol's verdict on a box created by the transaction
// just added.
func (x *aeBlock) expectIn(protocol string, box *Box, class string, reasons ...string) {
	x.b.Expect(Expectation{
		Kind: VerdictCreated, BoxID: box.ID, TxID: ergo.Digest(box.TxID),
		Protocol: protocol, Class: class, Reasons: reasons, Case: x.act,
	})
}

// expectSpent declares the second verdict on an emission box spent by
// transaction tx.
func (x *aeBlock) expectSpent(box *Box, tx [32]byte, reasons ...string) {
	x.b.Expect(Expectation{
		Kind: VerdictSpent, BoxID: box.ID, TxID: ergo.Digest(tx),
		Protocol: AsyncEmissionProtocol, Class: ClassEmission, Reasons: reasons, Case: x.act,
	})
}

// The valid actions.

// deploy mints the state NFT into a state box at stateTree and the
// participant tokens into a funnel at funnelTree, each with one of the
// operator's wallet boxes as the first input: protocol's deployment.
func (x *aeBlock) deploy(protocol string, stateTree, funnelTree []byte) error {
	x.act = "deploy"
	for _, mint := range []struct {
		class string
		out   func(id [32]byte) Output
	}{
		{ClassState, func(id [32]byte) Output {
			return keep(x.candidate(aeStateValue, stateTree, []sigma.Token{{ID: id, Amount: 1}}, x.enc.long(0)))
		}},
		{ClassFunnel, func(id [32]byte) Output {
			return keep(x.candidate(aeFunnelValue, funnelTree, []sigma.Token{{ID: id, Amount: aeParticipants}}))
		}},
	} {
		wallet := x.b.Wallet(aeOperator)
		if len(wallet) == 0 {
			return fmt.Errorf("%w: async emission: the operator has no wallet box to deploy with", ErrScenario)
		}
		first := wallet[0]
		boxes, ok, err := x.send(aeOperator, []Input{{Box: first, Signed: true}}, nil, []Output{mint.out(first.ID)})
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: async emission: the operator cannot pay for the deployment", ErrScenario)
		}
		x.expectIn(protocol, boxes[0], mint.class)
	}
	return nil
}

// run takes the block's protocol actions, each of which may be replaced by
// a planted case.
func (x *aeBlock) run() error {
	if x.v.state == nil || x.v.funnel == nil {
		return fmt.Errorf("%w: async emission: no deployment at height %d", ErrScenario, x.h)
	}
	if err := x.housekeep(); err != nil {
		return err
	}
	if x.chance(aeSyncOdds) {
		if err := x.protocolAction(x.sync); err != nil {
			return err
		}
	}
	if len(x.v.lineageTokens(false)) < aeMaxLineages && x.chance(aeBootstrapOdds) {
		if err := x.protocolAction(x.bootstrap); err != nil {
			return err
		}
	}
	for _, token := range x.v.lineageTokens(false) {
		if !x.chance(aeActOdds) {
			continue
		}
		act := x.emit
		if x.chance(aeCloseOdds) {
			act = x.close
		}
		err := x.protocolAction(func() error {
			l, ok := x.v.lineage(token) // a plant may have ended it
			if !ok {
				return nil
			}
			return act(l)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// protocolAction takes a valid action or, at the forgery rate, plants a
// case in its place.
func (x *aeBlock) protocolAction(valid func() error) error {
	if x.rng.Float64() < x.a.ForgeryRate {
		start := x.rng.IntN(len(aePlants))
		for i := range aePlants {
			p := aePlants[(start+i)%len(aePlants)]
			x.act = "plant:" + p.reason
			if planted, err := p.plant(x); planted || err != nil {
				return err
			}
		}
	}
	return valid()
}

// sync updates the state, reading up to two emitted boxes of open lineages,
// each with its lineage's current emission box.
func (x *aeBlock) sync() error {
	x.act = "sync"
	var data []*Box
	results := x.v.userResults(true)
	for _, i := range x.rng.Perm(len(results)) {
		r := results[i]
		l, _ := x.v.lineage(r.token)
		if len(data) == 2*aeMaxSyncReferences {
			break
		}
		if slices.Contains(data, l.box) {
			continue
		}
		data = append(data, r.box, l.box)
	}
	_, err := x.updateState(data)
	return err
}

// updateState spends the demo's state box and recreates it with the next
// epoch, reading data; the new state box gets reasons.
func (x *aeBlock) updateState(data []*Box, reasons ...string) (bool, error) {
	return x.updateStateOf(&x.v.aeDeployment, data, reasons...)
}

// updateStateOf spends d's state box and recreates it with the next epoch,
// reading data; the new state box gets reasons.
func (x *aeBlock) updateStateOf(d *aeDeployment, data []*Box, reasons ...string) (bool, error) {
	s := d.state
	next := keep(x.candidate(s.Value, s.ErgoTree, s.Tokens, x.enc.long(d.epoch+1)))
	boxes, ok, err := x.send(aeOperator, []Input{{Box: s, Signed: true}}, data, []Output{next})
	if ok {
		x.expectIn(d.protocol, boxes[0], ClassState, reasons...)
	}
	return ok, err
}

// bootstrap: a user joins.
func (x *aeBlock) bootstrap() error {
	x.act = "bootstrap"
	u := x.user()
	r, ok, err := x.mint(&x.v.aeDeployment, u, aeMint{owner: u, participants: 1, supply: AsyncSupply, readState: true, keep: true})
	if ok {
		x.expect(r.funnel, ClassFunnel)
		x.expect(r.emission, ClassEmission)
	}
	return err
}

// aeMint is a bootstrap: the funnel, spent first (so that the async token's
// id is its id), is recreated at output 0 with participants tokens fewer;
// an emission box of owner's at output 1 receives them and supply minus
// leak async tokens, and leak tokens go to a rogue emitted box at output 2.
type aeMint struct {
	owner        int
	participants uint64
	supply, leak uint64
	readState    bool // read the state box
	keep         bool // keep the emission box
}

type aeMinted struct{ funnel, emission, leak *Box }

func (x *aeBlock) mint(d *aeDeployment, payer int, m aeMint) (aeMinted, bool, error) {
	f := d.funnel
	n := d.funnelTokens()
	if n <= m.participants {
		return aeMinted{}, false, nil
	}
	var tokens []sigma.Token
	if m.participants > 0 {
		tokens = append(tokens, d.participants(m.participants))
	}
	tokens = append(tokens, sigma.Token{ID: f.ID, Amount: m.supply - m.leak})
	outs := []Output{
		keep(x.candidate(f.Value, f.ErgoTree, []sigma.Token{d.participants(n - m.participants)})),
		{BoxCandidate: x.candidate(aeEmissionValue, d.emission[m.owner], tokens), Keep: m.keep},
	}
	if m.leak > 0 {
		outs = append(outs, drop(x.emittedBox(x.c.emitted[aeRogue], f.ID, m.leak, x.v.epoch)))
	}
	var data []*Box
	if m.readState {
		data = []*Box{d.state}
	}
	boxes, ok, err := x.send(payer, []Input{{Box: f}}, data, outs)
	if !ok {
		return aeMinted{}, false, err
	}
	r := aeMinted{funnel: boxes[0], emission: boxes[1]}
	if m.leak > 0 {
		r.leak = boxes[2]
	}
	return r, true, err
}

// emit is a user's async action.
func (x *aeBlock) emit(l aeLineage) error {
	x.act = "emit"
	r, ok, err := x.emission(l, aeEmit{
		payer: l.owner, amounts: x.amounts(l.balance), tree: x.c.emitted[l.owner],
		epoch: x.v.epoch, readState: true, keep: true,
	})
	if ok {
		x.expect(r.next, ClassEmission)
		for _, e := range r.emitted {
			x.expect(e, ClassEmitted)
		}
	}
	return err
}

// aeEmit is an async action of a lineage: its box is spent and recreated
// at output 0 (the same contract and participant token) with the balance
// down by the amounts, less what conjured holds; each amount goes to an
// emitted box at tree with R4 = epoch.
type aeEmit struct {
	payer     int
	amounts   []uint64
	conjured  *Box // an emitted box of the lineage's, spent too: its tokens add to the amounts
	tree      []byte
	epoch     int64
	readState bool   // read the demo's state box
	data      []*Box // the data-inputs besides
	keep      bool   // keep the emitted boxes, as far as resultRoom allows
}

type aeEmitted struct {
	next    *Box
	emitted []*Box
}

func (x *aeBlock) emission(l aeLineage, e aeEmit) (aeEmitted, bool, error) {
	var down uint64
	for _, a := range e.amounts {
		down += a
	}
	ins := []Input{{Box: l.box, Signed: true}}
	if e.conjured != nil {
		ins = append(ins, Input{Box: e.conjured, Signed: true})
		down -= min(down, tokenAmount(e.conjured.Tokens, l.token))
	}
	if down == 0 || down >= l.balance {
		return aeEmitted{}, false, nil
	}
	outs := []Output{keep(x.candidate(l.box.Value, l.box.ErgoTree,
		[]sigma.Token{l.box.Tokens[0], {ID: l.token, Amount: l.balance - down}}))}
	room := x.resultRoom(e.tree, l.token)
	for i, a := range e.amounts {
		outs = append(outs, Output{BoxCandidate: x.emittedBox(e.tree, l.token, a, e.epoch), Keep: e.keep && i < room})
	}
	var data []*Box
	if e.readState {
		data = []*Box{x.v.state}
	}
	data = append(data, e.data...)
	boxes, ok, err := x.send(e.payer, ins, data, outs)
	if !ok {
		return aeEmitted{}, false, err
	}
	return aeEmitted{next: boxes[0], emitted: boxes[1:]}, true, err
}

// close ends a user's lineage.
func (x *aeBlock) close(l aeLineage) error {
	x.act = "close"
	return x.end(&x.v.aeDeployment, l, l.owner)
}

// retire ends a forged lineage.
func (x *aeBlock) retire(l aeLineage) error {
	x.act = "retire"
	return x.end(&x.v.aeDeployment, l, aeForger)
}

// end spends a lineage of d's emission box with the funnel, which gets the
// participant token back; the async balance is burnt, so nothing escapes.
func (x *aeBlock) end(d *aeDeployment, l aeLineage, payer int) error {
	f := d.funnel
	funnel := keep(x.candidate(f.Value, f.ErgoTree, []sigma.Token{d.participants(d.funnelTokens() + 1)}))
	boxes, ok, err := x.send(payer, []Input{{Box: l.box, Signed: true}, {Box: f}}, nil, []Output{funnel})
	if ok {
		x.expectIn(d.protocol, boxes[0], ClassFunnel)
	}
	return err
}

// housekeep retires forged lineages after a while, and burns the emitted
// boxes nobody will read any more: a user's a few blocks after their
// lineage ends, the forger's after aeForgedResultLife blocks.
func (x *aeBlock) housekeep() error {
	for _, token := range x.v.lineageTokens(true) {
		if l, ok := x.v.lineage(token); ok && x.chance(aeRetireOdds) {
			if err := x.retire(l); err != nil {
				return err
			}
		}
	}
	x.act = "cleanup"
	var stale []aeResult
	if x.chance(aeBurnOrphansOdds) {
		stale = x.v.userResults(false)
	}
	for _, r := range x.v.forgedResults() {
		if r.box.CreationHeight+aeForgedResultLife <= x.h {
			stale = append(stale, r)
		}
	}
	return x.burn(stale)
}

// burn spends the emitted boxes, burning their tokens, a few at a time:
// the rogue key's paid by the forger, the others by their owners.
func (x *aeBlock) burn(stale []aeResult) error {
	for len(stale) > 0 {
		owner := stale[0].owner
		var ins []Input
		stale = slices.DeleteFunc(stale, func(r aeResult) bool {
			if r.owner != owner || len(ins) == aeMaxWalletInputs {
				return false
			}
			ins = append(ins, Input{Box: r.box, Signed: true})
			return true
		})
		payer := owner
		if owner == aeRogue {
			payer = aeForger
		}
		if _, _, err := x.send(payer, ins, nil, nil); err != nil {
			return err
		}
	}
	return nil
}

// ProtocolConfig is the [[protocol]] section of the auditor's configuration
// that watches an async-emission deployment (PROTOCOL.md §2).
type ProtocolConfig struct {
	Name               string
	ParticipantTokenID ergo.Digest
	StateNFTID         ergo.Digest
	EmissionTemplate   [32]byte // sha256 of the contract's template
	FunnelTemplate     [32]byte
	EmittedTemplate    [32]byte // zero for none (the action tree's results are its actions')
	AsyncSupply        uint64
	StartHeight        uint32
	EmissionRequires   []EmissionRequirement
	Actions            []ActionConfig
}

// EmissionRequirement is a data input an emission transaction must have.
type EmissionRequirement struct {
	Class             string
	EmittedRegister   string
	DataInputRegister string
	Action            string // for an emitted one: the kind of result; "" for any
}

// ActionConfig is a [[protocol.action]] section: a kind of async action,
// its results' template and what it requires.
type ActionConfig struct {
	Name            string
	EmittedTemplate [32]byte
	Requires        []EmissionRequirement
}

// TOML renders the section as the configuration file writes it.
func (p *ProtocolConfig) TOML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[[protocol]]\nname = %q\n", p.Name)
	fmt.Fprintf(&b, "participant_token_id = \"%s\"\nstate_nft_id = \"%s\"\n", p.ParticipantTokenID, p.StateNFTID)
	fmt.Fprintf(&b, "emission_template = \"%x\"\nfunnel_template = \"%x\"\n", p.EmissionTemplate, p.FunnelTemplate)
	if p.EmittedTemplate != ([32]byte{}) {
		fmt.Fprintf(&b, "emitted_template = \"%x\"\n", p.EmittedTemplate)
	}
	fmt.Fprintf(&b, "async_supply = %d\nstart_height = %d\n", p.AsyncSupply, p.StartHeight)
	requirements(&b, "protocol.emission_requires", p.EmissionRequires)
	for _, a := range p.Actions {
		fmt.Fprintf(&b, "[[protocol.action]]\nname = %q\nemitted_template = \"%x\"\n", a.Name, a.EmittedTemplate)
		requirements(&b, "protocol.action.requires", a.Requires)
	}
	return b.String()
}

// requirements renders the entries of table.
func requirements(b *strings.Builder, table string, rs []EmissionRequirement) {
	for _, r := range rs {
		fmt.Fprintf(b, "[[%s]]\nclass = %q\n", table, r.Class)
		if r.Action != "" {
			fmt.Fprintf(b, "action = %q\n", r.Action)
		}
		if r.EmittedRegister != "" {
			fmt.Fprintf(b, "emitted_register = %q\ndata_input_register = %q\n", r.EmittedRegister, r.DataInputRegister)
		}
	}
}

// ProtocolsTOML renders the sections of ps, one after the other.
func ProtocolsTOML(ps []ProtocolConfig) string {
	var b strings.Builder
	for i := range ps {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(ps[i].TOML())
	}
	return b.String()
}

// ErrNoDeployment reports a devnet without an async-emission deployment:
// another Scenario, or a chain that ends before it.
var ErrNoDeployment = errors.New("devnet: no async-emission deployment")

// Protocol returns the [[protocol]] configuration that watches the
// devnet's demo protocol alone (Protocols has the action tree's too). It
// generates the final chain up to the deployment if needed, no further.
func (d *Devnet) Protocol() (ProtocolConfig, error) {
	ps, err := d.protocols(context.Background(), aeDeployHeight)
	if err != nil {
		return ProtocolConfig{}, err
	}
	return ps[0], nil
}

// Protocols returns the [[protocol]] configurations that watch the
// devnet's async-emission deployments: the demo protocol, then the action
// tree. It generates the final chain up to the deployments if needed, no
// further.
func (d *Devnet) Protocols() ([]ProtocolConfig, error) {
	return d.protocols(context.Background(), treeDeployHeight)
}

// protocols returns the configurations of the deployments made by height.
func (d *Devnet) protocols(ctx context.Context, height uint32) ([]ProtocolConfig, error) {
	if _, ok := d.cfg.Scenario.(*AsyncEmission); !ok {
		return nil, fmt.Errorf("%w: the scenario is not %s", ErrNoDeployment, AsyncEmissionScenario)
	}
	if d.cfg.Blocks < int(height) {
		return nil, fmt.Errorf("%w: the chain ends at %d, before the deployment at %d", ErrNoDeployment, d.cfg.Blocks, height)
	}
	st, err := d.stateAfter(ctx, height)
	if err != nil {
		return nil, err
	}
	p := ProtocolConfig{
		Name:             AsyncEmissionProtocol,
		EmissionTemplate: sha256.Sum256(aeEmissionTemplate),
		FunnelTemplate:   sha256.Sum256(aeFunnelTemplate),
		EmittedTemplate:  sha256.Sum256(aeEmittedTemplate),
		AsyncSupply:      AsyncSupply,
		StartHeight:      aeDeployHeight,
		EmissionRequires: []EmissionRequirement{{Class: ClassState, EmittedRegister: "R4", DataInputRegister: "R4"}},
	}
	if err := p.find(st, sha256.Sum256(aeStateTemplate)); err != nil {
		return nil, err
	}
	ps := []ProtocolConfig{p}
	if height >= treeDeployHeight {
		tree, err := treeProtocol(st)
		if err != nil {
			return nil, err
		}
		ps = append(ps, tree)
	}
	return ps, nil
}

// find sets the state NFT and the participant token: the tokens of the
// kept boxes at the state template and at the funnel's.
func (p *ProtocolConfig) find(st *state, stateTemplate [32]byte) error {
	for _, box := range st.kept {
		th, err := sigma.TemplateHashOf(box.ErgoTree)
		switch {
		case err != nil || len(box.Tokens) != 1:
		case th == stateTemplate:
			p.StateNFTID = box.Tokens[0].ID
		case th == p.FunnelTemplate:
			p.ParticipantTokenID = box.Tokens[0].ID
		}
	}
	if p.StateNFTID.IsZero() || p.ParticipantTokenID.IsZero() {
		return fmt.Errorf("%w: protocol %s: the deployment's boxes are not in the state after its height", ErrScenario, p.Name)
	}
	return nil
}

// ProtocolConfigsOf returns the [[protocol]] configurations of the
// async-emission deployments on the devnet cfg describes, generating only
// the blocks up to the deployments.
func ProtocolConfigsOf(ctx context.Context, cfg Config) ([]ProtocolConfig, error) {
	// A devnet with a block time generates nothing until asked; the final
	// chain does not depend on it.
	cfg.BlockTime, cfg.ReorgEvery, cfg.ReorgDepth = time.Hour, 0, 0
	d, err := NewContext(ctx, cfg, zerolog.Nop())
	if err != nil {
		return nil, err
	}
	return d.protocols(ctx, treeDeployHeight)
}
