package rules

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/ergo/wire"
)

// The checks of PROTOCOL.md §4, one story per reason code, driven through
// Engine.JudgeBlock over blocks built by hand on an in-memory State. Every
// case asserts every verdict of every block it builds (kind, class and
// action, box, lineage, verified or invalid with its reasons), so a
// forgery's cascade is asserted whole. The readings PROTOCOL.md settles,
// and the action tree's planted kinds, have named stories of their own in
// tree_test.go.

// supply is the protocol's async supply, i64::MAX.
const supply uint64 = DefaultAsyncSupply

// reasonCases are the stories, one per reason code, named by it. Boxes are
// named in the verdict lines as the story builds them: the deployment's
// state0 and funnel0, then state1, funnel1, …; user A's emission boxes
// emA0 (the bootstrap), emA1, … and the emitted boxes of its k-th action
// oA<k> (oA<k>a, oA<k>b, … when it emits several); the forger's boxes oF,
// emF and stash0, stash1, …. A lineage is named, in brackets, by its user.
var reasonCases = []struct {
	reason Reason
	story  func(c *chain)
}{
	{ReasonNoParticipantToken, func(c *chain) {
		// B bootstraps but the funnel keeps the participant token: the
		// emission box gets the whole supply and no participant token.
		c.block(c.bootWith("B", mint{participants: 0, supply: supply}))
		c.want("created funnel funnel1: verified",
			"created emission emB0 [B]: invalid emission.no_participant_token")
		c.wantLineage("B", "current=emB0 broken minted=9223372036854775807")
	}},
	{ReasonParticipantAmount, func(c *chain) {
		// B bootstraps with two participant tokens in the emission box:
		// the second left the funnel without a valid emission box.
		c.block(c.bootWith("B", mint{participants: 2, supply: supply}))
		c.want("created funnel funnel1: verified",
			"created emission emB0 [B]: invalid emission.participant_amount participant.bad_bootstrap")
	}},
	{ReasonAsyncTokenCount, func(c *chain) {
		// A recreates its emission box with the same balance and, besides,
		// a token from its wallet; nothing is emitted.
		c.booted("A")
		c.addedToken("A")
		c.wantLineage("A", "current=emA1 broken minted=9223372036854775807")
	}},
	{ReasonBadMint, func(c *chain) {
		// B mints one token fewer than the async supply, all locked; then
		// B takes an async action, valid in itself, on that lineage.
		c.block(c.bootWith("B", mint{participants: 1, supply: supply - 1}))
		c.want("created funnel funnel1: verified",
			"created emission emB0 [B]: invalid emission.bad_mint participant.bad_bootstrap")
		c.block(c.emit("B", 0, reads(c.state), 100))
		c.want("created emission emB1 [B]: invalid emission.invalid_parent",
			"created emitted oB1 [B]: invalid emitted.invalid_emission")
		c.wantLineage("B", "current=emB1 broken minted=9223372036854775806")
	}},
	{ReasonSupplyLeak, func(c *chain) {
		// B mints the whole supply but locks all of it but 100, which goes
		// to an emitted box at the emitted contract (R4 = the epoch).
		c.block(c.bootWith("B", mint{participants: 1, supply: supply, leak: 100}))
		c.want("created funnel funnel1: verified",
			"created emission emB0 [B]: invalid emission.supply_leak participant.bad_bootstrap",
			"created emitted oB0 [B]: invalid emitted.invalid_emission emitted.not_from_emission")
		c.wantLineage("B", "current=emB0 broken minted=9223372036854775807")
	}},
	{ReasonNoBootstrapState, func(c *chain) {
		// B bootstraps without reading the state box.
		c.block(c.bootWith("B", mint{participants: 1, supply: supply, noState: true}))
		c.want("created funnel funnel1: verified",
			"created emission emB0 [B]: invalid emission.no_bootstrap_state participant.bad_bootstrap")
	}},
	{ReasonNotFromFunnel, func(c *chain) {
		// The forger takes three participant tokens out of the funnel, then
		// mints an async token with its stash as the first input and locks
		// the supply with one of them, reading the state box.
		c.stole(3)
		c.block(c.forgerLocks("F", supply))
		c.want("created emission emF [F]: invalid emission.not_from_funnel",
			"created participant stash1: verified")
		c.wantLineage("F", "current=emF broken minted=9223372036854775807")
	}},
	{ReasonOrphanToken, func(c *chain) {
		// The forger locks the tokens of A's emitted box, with a participant
		// token from its stash, in an emission box: the transaction
		// neither mints A's token nor spends A's current emission box. A's
		// lineage is not touched.
		c.bootedActed("A", 100)
		c.stole(1)
		c.block(txb{ins: []string{c.stash, "oA1"}, data: reads(c.state),
			outs: []out{at("emF", emissionTree, c.P(1), c.async("A", 100))}})
		c.want("created emission emF [A]: invalid emission.orphan_token")
		c.wantLineage("A", "current=emA1 minted=9223372036854775807")
	}},
	{ReasonLineageBreak, func(c *chain) {
		// A spends its emission box with its emitted box and recreates the
		// emission box holding both balances.
		c.bootedActed("A", 100)
		c.merged("A", "oA1", 100)
		c.wantLineage("A", "current=emA2 broken minted=9223372036854775807")
	}},
	{ReasonInvalidParent, func(c *chain) {
		// A's emission box gets a wallet token besides (async_token_count);
		// A's next action drops it again and is valid in itself, but it
		// continues an invalid box.
		c.booted("A")
		c.addedToken("A")
		c.block(dropsTokenX(c.emit("A", 0, reads(c.state), 100), "A"))
		c.want("created emission emA2 [A]: invalid emission.invalid_parent",
			"created emitted oA2 [A]: invalid emitted.invalid_emission")
	}},
	{ReasonEscaped, func(c *chain) {
		// The forger spends A's emission box without recreating it: the
		// whole balance goes to an emitted box at the emitted contract (the
		// state box read), the participant token to its stash.
		c.booted("A")
		c.block(txb{ins: []string{"emA0", c.wallet("F")}, data: reads(c.state), outs: []out{
			at("oF", emittedTree, c.async("A", supply)).r4(0),
			at("stash0", rogueTree, c.P(1)),
		}})
		c.want("created emitted oF [A]: invalid emitted.invalid_emission",
			"created participant stash0: verified",
			"spent emission emA0 [A]: invalid emission.escaped")
		c.wantLineage("A", "current=emA0 broken closed minted=9223372036854775807")
	}},
	{ReasonNotFromEmission, func(c *chain) {
		// The forger moves A's emitted box's tokens to an emitted box of
		// its own (R4 = the epoch, the state box read).
		c.bootedActed("A", 100)
		c.block(txb{ins: []string{"oA1"}, data: reads(c.state),
			outs: []out{at("oF", emittedTree, c.async("A", 100)).r4(0)}})
		c.want("created emitted oF [A]: invalid emitted.not_from_emission")
		c.wantLineage("A", "current=emA1 minted=9223372036854775807")
	}},
	{ReasonInvalidEmission, func(c *chain) {
		// A's lineage is broken (lineage_break) after a valid action; its
		// next action emits one box at the emitted contract and one at
		// another. The box emitted before the break stays verified.
		c.bootedActed("A", 100)
		c.merged("A", "oA1", 100)
		x := c.emit("A", 0, reads(c.state), 10, 20)
		x.outs[2].tree = rogueTree
		c.block(x)
		c.want("created emission emA3 [A]: invalid emission.invalid_parent",
			"created emitted oA3a [A]: invalid emitted.invalid_emission",
			"created emitted oA3b [A]: invalid emitted.invalid_emission emitted.wrong_template")
	}},
	{ReasonMissingDataInput, func(c *chain) {
		// A emits 100 at epoch 0 without reading the state box.
		c.booted("A")
		c.block(c.emit("A", 0, nil, 100))
		c.want("created emission emA1 [A]: verified",
			"created emitted oA1 [A]: invalid emitted.missing_data_input")
	}},
	{ReasonStaleState, func(c *chain) {
		// The state moves to epoch 1; A emits at epoch 0 reading it.
		c.booted("A")
		c.block(c.update())
		c.want("created state state1: verified")
		c.block(c.emit("A", 0, reads(c.state), 100))
		c.want("created emission emA1 [A]: verified",
			"created emitted oA1 [A]: invalid emitted.stale_state")
	}},
	{ReasonEmittedUnverifiedReference, func(c *chain) {
		// A observes (a leaf action, on the state); B aggregates on A's
		// observation without reading A's emission box, C with it.
		c.bootedAll("A", "B", "C")
		c.block(c.result("A", "observe", c.state))
		c.want("created emission emA1 [A]: verified", "created emitted/observe oA1 [A]: verified")
		c.block(c.result("B", "aggregate", c.state, "oA1"), c.result("C", "aggregate", c.state, "oA1", "emA1"))
		c.want("created emission emB1 [B]: verified",
			"created emitted/aggregate oB1 [B]: invalid emitted.unverified_reference",
			"created emission emC1 [C]: verified",
			"created emitted/aggregate oC1 [C]: verified")
	}},
	{ReasonWrongTemplate, func(c *chain) {
		// A emits to a box at another contract than the emitted one.
		c.booted("A")
		x := c.emit("A", 0, reads(c.state), 100)
		x.outs[1].tree = rogueTree
		c.block(x)
		c.want("created emission emA1 [A]: verified",
			"created emitted oA1 [A]: invalid emitted.wrong_template")
	}},
	{ReasonUnknownToken, func(c *chain) {
		// The forger creates a box at the emitted contract holding no
		// token, and one holding a token of no lineage (R4 = the epoch,
		// the state box read).
		c.block(txb{ins: []string{c.wallet("F")}, data: reads(c.state), outs: []out{
			at("oFa", emittedTree).r4(0),
			at("oFb", emittedTree, sigma.Token{ID: id("token X"), Amount: 5}).r4(0),
		}})
		c.want("created emitted oFa: invalid emitted.unknown_token",
			"created emitted oFb: invalid emitted.unknown_token")
	}},
	{ReasonAmountMismatch, func(c *chain) {
		// A's balance goes down by 50 but it emits 150, adding the tokens
		// of an emitted box it spends too (conjured); then it goes down by
		// 100 and A emits 60 (40 burnt).
		c.bootedActed("A", 100)
		x := c.emit("A", 0, reads(c.state), 50)
		x.ins = append(x.ins, "oA1")
		x.outs[1].tokens = []sigma.Token{c.async("A", 150)}
		c.block(x)
		c.want("created emission emA2 [A]: verified",
			"created emitted oA2 [A]: invalid emitted.amount_mismatch")
		x = c.emit("A", 0, reads(c.state), 100)
		x.outs[1].tokens = []sigma.Token{c.async("A", 60)}
		c.block(x)
		c.want("created emission emA3 [A]: verified",
			"created emitted oA3 [A]: invalid emitted.amount_mismatch")
		c.wantLineage("A", "current=emA3 minted=9223372036854775807 burnt=40")
	}},
	{ReasonBadBootstrap, func(c *chain) {
		// The funnel is recreated with three participant tokens fewer,
		// which go to the forger's stash.
		c.block(c.steal(3))
		c.want("created funnel funnel1: verified",
			"created participant stash0: invalid participant.bad_bootstrap")
	}},
	{ReasonUnverifiedReference, func(c *chain) {
		// A emits a valid box and a stale one. The operator updates the
		// state reading the valid one without its emission box; then
		// reading the stale one with its emission box; then, rightly, the
		// valid one with its emission box.
		c.booted("A")
		x := c.emit("A", 0, reads(c.state), 100, 10)
		x.outs[2].regs = [][]byte{long(7)}
		c.block(x)
		c.want("created emission emA1 [A]: verified",
			"created emitted oA1a [A]: verified",
			"created emitted oA1b [A]: invalid emitted.stale_state")
		c.block(c.update("oA1a"))
		c.want("created state state1: invalid sync.unverified_reference")
		c.block(c.update("oA1b", "emA1"))
		c.want("created state state2: invalid sync.unverified_reference")
		c.block(c.update("oA1a", "emA1"))
		c.want("created state state3: verified")
	}},
}

func TestReasonCases(t *testing.T) {
	named := map[Reason]int{}
	for _, rc := range reasonCases {
		named[rc.reason]++
	}
	for _, r := range Reasons() {
		if named[r] != 1 {
			t.Errorf("%d cases for %s, want 1", named[r], r)
		}
	}
	if len(reasonCases) != len(Reasons()) {
		t.Errorf("%d cases for %d reason codes", len(reasonCases), len(Reasons()))
	}
	for _, rc := range reasonCases {
		t.Run(string(rc.reason), func(t *testing.T) {
			c := newTestChain(t)
			rc.story(c)
			c.done()
			if !slices.ContainsFunc(c.all, func(v Verdict) bool { return slices.Contains(v.Reasons, rc.reason) }) {
				t.Errorf("no verdict has %s", rc.reason)
			}
		})
	}
}

// TestCleanLife is a valid protocol life: two bootstraps in one block (the
// second spends the funnel the first recreates), async actions at epoch 0,
// a state update that reads their emitted boxes with their emission boxes,
// an action at epoch 1, and a lineage closed by giving the participant
// token back to the funnel and burning the async balance, and an emitted
// box burnt. Nothing is invalid and the lineages add up.
func TestCleanLife(t *testing.T) {
	c := newTestChain(t)
	c.block(c.boot("A"), c.boot("B"))
	c.want("created funnel funnel1: verified",
		"created emission emA0 [A]: verified",
		"created funnel funnel2: verified",
		"created emission emB0 [B]: verified")

	c.block(c.emit("A", 0, reads(c.state), 100), c.emit("B", 0, reads(c.state), 30, 70))
	c.want("created emission emA1 [A]: verified",
		"created emitted oA1 [A]: verified",
		"created emission emB1 [B]: verified",
		"created emitted oB1a [B]: verified",
		"created emitted oB1b [B]: verified")

	c.block(c.update("oA1", "emA1", "oB1a", "emB1"))
	c.want("created state state1: verified")

	c.acted("A", 40)

	c.block(c.burn("oA1"), c.closeLineage("A"))
	c.want("created funnel funnel3: verified")

	c.done()
	for _, v := range c.all {
		if !v.Valid() {
			t.Errorf("invalid: %s", c.line(v))
		}
	}
	// A: 40 live in oA2, the rest burnt (100 in oA1, the balance at the close).
	c.wantLineage("A", "current=emA2 closed minted=9223372036854775807 burnt=9223372036854775767")
	c.wantLineage("B", "current=emB1 minted=9223372036854775807")
	if n := c.amount("funnel3", c.p.ParticipantTokenID); n != 999 {
		t.Errorf("the funnel holds %d participant tokens, want 999", n)
	}
}

// TestEngineProtocolsIndependent: two protocols in one engine keep their
// lineages apart. t's lineage A escapes into a box at u's emitted contract:
// t sees its own escape, u sees a box of its emitted contract holding a
// token of no lineage it knows; in the same block u's lineage U acts
// validly, untouched by t's broken one.
func TestEngineProtocolsIndependent(t *testing.T) {
	c, u := newTwoProtocolChain(t, newDeployment(t, "t", "", tContracts))

	escape := txb{ins: []string{"emA0", c.wallet("F")}, data: reads(c.state, u.state), outs: []out{
		at("oF", uEmittedTree, c.async("A", supply)).r4(0),
		at("stash0", rogueTree, c.P(1)),
	}}
	c.block(escape, c.emit("U", 0, reads(u.state), 100))
	c.want("t: created emitted oF [A]: invalid emitted.invalid_emission emitted.wrong_template",
		"t: created participant stash0: verified",
		"t: spent emission emA0 [A]: invalid emission.escaped",
		"u: created emitted oF: invalid emitted.unknown_token",
		"u: created emission emU1 [U]: verified",
		"u: created emitted oU1 [U]: verified")
	c.done()

	c.wantLineage("A", "current=emA0 broken closed minted=9223372036854775807")
	c.wantLineage("U", "current=emU1 minted=9223372036854775807")
	for k := range c.st.lineages {
		if want := map[string]string{"t": "A", "u": "U"}[k.Protocol]; c.tokens[k.Token] != want {
			t.Errorf("protocol %s has a lineage of %s's token", k.Protocol, c.tokens[k.Token])
		}
	}
}

// newTwoProtocolChain is a chain of protocol t, deployed as d, and
// protocol u (of contracts of its own), both deployed at height 1, where
// t's user A and u's user U bootstrap at height 2.
func newTwoProtocolChain(t *testing.T, d *deployment) (*chain, *deployment) {
	u := newDeployment(t, "u", "u.", contracts{state: stateTree, funnel: uFunnelTree, emission: uEmissionTree, emitted: uEmittedTree})
	c := newChain(t, d, u)
	c.block(append(c.deployTxs(), u.deployTxs()...)...)
	c.want("t: created state state0: verified", "t: created funnel funnel0: verified",
		"u: created state u.state0: verified", "u: created funnel u.funnel0: verified")
	c.block(c.boot("A"), u.boot("U"))
	c.want("t: created funnel funnel1: verified", "t: created emission emA0 [A]: verified",
		"u: created funnel u.funnel1: verified", "u: created emission emU0 [U]: verified")
	return c, u
}

// TestEngineStartHeight: a protocol judges nothing below its start height
// (no verdict, no lineage step, no box kept); from it on, what it did not
// see is unknown to it: a lineage bootstrapped before is an orphan, its
// emitted boxes hold a token of no known lineage.
func TestEngineStartHeight(t *testing.T) {
	c := newTestChain(t) // height 1: deployed, judged by t
	late := c.p
	late.Name, late.StartHeight = "late", 3

	judged, err := NewEngine([]Protocol{late}, nil, zerolog.Nop()).JudgeBlock(context.Background(), c.st, c.lastBlock)
	if err != nil {
		t.Fatal(err)
	}
	if len(judged.Verdicts) > 0 || len(judged.Steps) > 0 || slices.ContainsFunc(judged.Keep, func(k []bool) bool { return k != nil }) {
		t.Errorf("below its start height: %+v", judged)
	}

	c.eng = NewEngine([]Protocol{c.p, late}, nil, zerolog.Nop())
	c.multi = true
	c.block(c.boot("A"))
	c.want("t: created funnel funnel1: verified", "t: created emission emA0 [A]: verified")
	for _, s := range c.last.Steps {
		if s.Protocol != "t" {
			t.Errorf("height 2: a step of %s", s.Protocol)
		}
	}

	c.block(c.emit("A", 0, reads(c.state), 100))
	c.want("t: created emission emA1 [A]: verified",
		"t: created emitted oA1 [A]: verified",
		"late: created emission emA1 [A]: invalid emission.orphan_token",
		"late: created emitted oA1: invalid emitted.unknown_token")
	c.done()
	if _, ok := c.st.lineages[LineageKey{"late", c.users["A"].token}]; ok {
		t.Error("late has a lineage it never saw bootstrapped")
	}
}

// TestEngineSameBlockDataInput: a data-input resolves to an output of an
// earlier transaction of the same block, and an input spends one; a
// data-input of an output of a later transaction is an unknown box.
func TestEngineSameBlockDataInput(t *testing.T) {
	c := newTestChain(t)
	c.booted("A")
	toEpoch1 := c.update()
	atEpoch1 := c.emit("A", 1, reads(c.state), 100) // reads state1, created by the transaction before
	toEpoch2 := c.update()
	early := c.emit("A", 2, reads(c.state), 50) // spends emA1, created by the transaction before; reads state2, created by the next one
	c.block(toEpoch1, atEpoch1, early, toEpoch2)
	c.want("created state state1: verified",
		"created emission emA1 [A]: verified",
		"created emitted oA1 [A]: verified",
		"created emission emA2 [A]: verified",
		"created emitted oA2 [A]: invalid emitted.missing_data_input",
		"created state state2: verified")
	c.done()
}

// TestEngineSyncProofIsTheLineageBox: a state update's reference to an
// emitted box is proved by the emitted box's emission box — a verified one
// holding its async token (PROTOCOL.md §1.3 and §4) — not by any box at the
// emission contract that holds the token. Here the forger locks
// some of A's tokens at the emission contract with no participant token
// (an invalid orphan) and the operator reads that box as the proof.
func TestEngineSyncProofIsTheLineageBox(t *testing.T) {
	c := newTestChain(t)
	c.bootedActed("A", 100, 10)
	c.block(txb{ins: []string{"oA1b", c.wallet("F")}, data: reads(c.state),
		outs: []out{at("emF", emissionTree, c.async("A", 10))}})
	c.want("created emission emF [A]: invalid emission.no_participant_token emission.orphan_token")

	c.block(c.update("oA1a", "emF"))
	got, want := c.lines(c.last.Verdicts), []string{"created state state1: invalid sync.unverified_reference"}
	c.pending = false
	if !slices.Equal(got, want) {
		t.Errorf("an invalid box at the emission contract (an orphan, not A's emission box emA1) was taken as "+
			"the proof of a reference: got %q, want %q", got, want)
	}
}

// Contracts. Each tree is sigmaProp(c0 <op> c<k>) over two segregated Int
// constants: a parseable tree whose template is its own for each (op, k).

type contracts struct{ state, funnel, emission, emitted []byte }

var (
	stateTree    = testTree(0x90, 1) // c0 <= c1
	funnelTree   = testTree(0x92, 1) // c0 >= c1
	emissionTree = testTree(0x93, 1) // c0 == c1
	emittedTree  = testTree(0x8f, 1) // c0 < c1
	rogueTree    = testTree(0x94, 1) // c0 != c1: the forger's, and wallets'
	tContracts   = contracts{state: stateTree, funnel: funnelTree, emission: emissionTree, emitted: emittedTree}

	uFunnelTree   = testTree(0x92, 0)
	uEmissionTree = testTree(0x93, 0)
	uEmittedTree  = testTree(0x8f, 0)
)

func testTree(op, k byte) []byte { return testTreeN(op, k, 2) }

// testTreeN is sigmaProp(c0 <op> c<k>) over n segregated Int constants.
func testTreeN(op, k byte, n int) []byte {
	w := wire.NewWriter(nil)
	w.Byte(0x10) // version 0, constants segregated
	w.U32(uint32(n))
	for v := range int32(n) {
		if err := sigma.WriteConstant(w, sigma.Constant{Type: sigma.TInt, Value: v}); err != nil {
			panic(err)
		}
	}
	w.Write([]byte{0xd1, op, 0x73, 0x00, 0x73, k}) // BoolToSigmaProp(op(ConstantPlaceholder 0, ConstantPlaceholder k))
	return w.Bytes()
}

func template(t testing.TB, tree []byte) Template {
	t.Helper()
	if _, err := sigma.ParseErgoTree(tree); err != nil {
		t.Fatalf("tree %x: %v", tree, err)
	}
	h, err := sigma.TemplateHashOf(tree)
	if err != nil {
		t.Fatalf("tree %x: %v", tree, err)
	}
	return SHA256Template(h)
}

// long is a Long register.
func long(v int64) []byte {
	b, err := sigma.Constant{Type: sigma.TLong, Value: v}.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

// id names a box, a transaction or a token: the box named name has this id.
func id(name string) ergo.Digest { return ergo.Hash([]byte(name)) }

func reads(names ...string) []string { return names }

// memState is State in memory: the boxes the engine said to keep, with the
// roles their verdicts gave them, and the lineages as the steps left them.
type memState struct {
	boxes         map[ergo.Digest]*Known
	lineages      map[LineageKey]Lineage
	minted, burnt map[LineageKey]uint64
}

func (s *memState) Box(id ergo.Digest) (*Known, bool) {
	k, ok := s.boxes[id]
	return k, ok
}

func (s *memState) Lineages(_ context.Context, tokens []ergo.Digest) (map[LineageKey]Lineage, error) {
	out := map[LineageKey]Lineage{}
	for k, l := range s.lineages {
		if slices.Contains(tokens, k.Token) {
			out[k] = l
		}
	}
	return out, nil
}

func (s *memState) apply(b *ergo.FullBlock, j *Judgement) {
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		for k := range tx.Outputs {
			if j.Keep[i] == nil || !j.Keep[i][k] {
				continue
			}
			kb := KnownOutput(&tx.Outputs[k])
			for _, v := range j.Verdicts {
				if v.Kind == KindCreated && v.BoxID == kb.ID {
					kb.Roles = append(kb.Roles, Role{Protocol: v.Protocol, Class: v.Class, Invalid: !v.Valid()})
				}
			}
			s.boxes[kb.ID] = kb
		}
	}
	for _, st := range j.Steps {
		s.lineages[st.LineageKey] = st.Lineage
		s.minted[st.LineageKey] += st.Minted
		s.burnt[st.LineageKey] += st.Burnt
	}
}

// deployment is one protocol deployed on the chain: its contracts and its
// live state and funnel boxes.
type deployment struct {
	c      *chain
	p      Protocol
	trees  contracts
	prefix string // of its state and funnel boxes' names
	state  string // the live state box
	epoch  int64  // its R4
	funnel string // the live funnel
	named  map[string]int
}

func newDeployment(t testing.TB, name, prefix string, trees contracts) *deployment {
	funnel, emitted := template(t, trees.funnel), template(t, trees.emitted)
	template(t, trees.state)
	return &deployment{p: Protocol{
		Name:               name,
		ParticipantTokenID: id(prefix + "wallet-op-p"),
		StateNFTID:         id(prefix + "wallet-op-nft"),
		EmissionTemplate:   template(t, trees.emission),
		FunnelTemplate:     &funnel,
		EmittedTemplate:    &emitted,
		AsyncSupply:        DefaultAsyncSupply,
		EmissionRequires:   []Requirement{{Class: ClassState, EmittedRegister: 4, DataInputRegister: 4}},
		StartHeight:        1,
	}, trees: trees, prefix: prefix, named: map[string]int{}}
}

// next names the next state or funnel box.
func (d *deployment) next(kind string) string {
	d.named[kind]++
	return fmt.Sprintf("%s%s%d", d.prefix, kind, d.named[kind])
}

func (d *deployment) P(n uint64) sigma.Token {
	return sigma.Token{ID: d.p.ParticipantTokenID, Amount: n}
}

// deployTxs: the operator mints the state NFT into the state box (R4 =
// epoch 0) and 1000 participant tokens into the funnel, each token's id the
// id of its transaction's first input.
func (d *deployment) deployTxs() []txb {
	d.state, d.funnel = d.prefix+"state0", d.prefix+"funnel0"
	return []txb{
		{ins: []string{d.prefix + "wallet-op-nft"}, outs: []out{at(d.state, d.trees.state, sigma.Token{ID: d.p.StateNFTID, Amount: 1}).r4(0)}},
		{ins: []string{d.prefix + "wallet-op-p"}, outs: []out{at(d.funnel, d.trees.funnel, d.P(1000))}},
	}
}

// mint is how a bootstrap places the participant tokens it takes and the
// supply it mints.
type mint struct {
	participants uint64 // taken from the funnel into the emission box
	supply       uint64 // minted
	leak         uint64 // of it, to an emitted box o<user>0 instead of the emission box
	noState      bool   // the state box is not read
}

// boot: user spends the funnel as the first input (so its async token's id
// is the funnel box's) and a wallet box, reads the state box, recreates the
// funnel with one participant token fewer and locks it, with the whole
// supply, in its emission box em<user>0.
func (d *deployment) boot(user string) txb {
	return d.bootWith(user, mint{participants: 1, supply: d.p.AsyncSupply})
}

func (d *deployment) bootWith(name string, m mint) txb {
	c := d.c
	u := &user{d: d, token: id(d.funnel), em: "em" + name + "0"}
	c.users[name], c.tokens[u.token] = u, name
	old := d.funnel
	d.funnel = d.next("funnel")
	x := txb{ins: []string{old, c.wallet(name)}, data: reads(d.state), outs: []out{
		at(d.funnel, d.trees.funnel, d.P(c.amount(old, d.p.ParticipantTokenID)-m.participants)),
		at(u.em, d.trees.emission, d.P(m.participants), sigma.Token{ID: u.token, Amount: m.supply - m.leak}),
	}}
	if m.noState {
		x.data = nil
	}
	if m.leak > 0 {
		x.outs = append(x.outs, at("o"+name+"0", d.trees.emitted, sigma.Token{ID: u.token, Amount: m.leak}).r4(d.epoch))
	}
	return c.plan(x)
}

// update: the operator spends the state box and recreates it at the next
// epoch, reading data.
func (d *deployment) update(data ...string) txb {
	old := d.state
	d.state, d.epoch = d.next("state"), d.epoch+1
	return txb{ins: []string{old, d.c.wallet("op")}, data: data,
		outs: []out{at(d.state, d.trees.state, sigma.Token{ID: d.p.StateNFTID, Amount: 1}).r4(d.epoch)}}
}

// steal: the forger spends the funnel (reading the state box) and recreates
// it with n participant tokens fewer, which go to its stash.
func (d *deployment) steal(n uint64) txb {
	c, old := d.c, d.funnel
	d.funnel = d.next("funnel")
	c.stash = c.nextStash()
	return c.plan(txb{ins: []string{old}, data: reads(d.state), outs: []out{
		at(d.funnel, d.trees.funnel, d.P(c.amount(old, d.p.ParticipantTokenID)-n)),
		at(c.stash, rogueTree, d.P(n)),
	}})
}

// user is a lineage's owner: its async token and live emission box.
type user struct {
	d     *deployment
	token ergo.Digest
	em    string
	k     int // actions taken
}

// chain builds blocks on a memState, judges them and checks that every
// block's verdicts are asserted. Its deployment is the first protocol's.
type chain struct {
	*deployment
	t         *testing.T
	eng       *Engine
	st        *memState
	height    uint32
	outs      map[string]out         // every output built or planned, by name
	names     map[ergo.Digest]string // box names, for the verdict lines
	tokens    map[ergo.Digest]string // lineage names
	users     map[string]*user
	multi     bool          // verdict lines name their protocol
	others    []*deployment // the other protocols' deployments
	stash     string
	stashes   int
	wallets   int
	pending   bool // the last block's verdicts are not asserted yet
	last      *Judgement
	lastBlock *ergo.FullBlock
	all       []Verdict
}

func newChain(t *testing.T, ds ...*deployment) *chain {
	c := &chain{deployment: ds[0], t: t, multi: len(ds) > 1,
		st: &memState{boxes: map[ergo.Digest]*Known{}, lineages: map[LineageKey]Lineage{},
			minted: map[LineageKey]uint64{}, burnt: map[LineageKey]uint64{}},
		outs: map[string]out{}, names: map[ergo.Digest]string{}, tokens: map[ergo.Digest]string{},
		users: map[string]*user{}}
	var ps []Protocol
	for _, d := range ds {
		d.c = c
		ps = append(ps, d.p)
	}
	c.eng = NewEngine(ps, nil, zerolog.Nop())
	return c
}

// newTestChain is a chain of protocol t, deployed at height 1.
// Its protocol has the tree's actions (tree_test.go) besides its
// protocol-level emitted template.
func newTestChain(t *testing.T) *chain {
	d := newDeployment(t, "t", "", tContracts)
	d.p.Actions = treeActions(t)
	c := newChain(t, d)
	c.block(c.deployTxs()...)
	c.want("created state state0: verified", "created funnel funnel0: verified")
	return c
}

func (c *chain) wallet(owner string) string {
	c.wallets++
	return fmt.Sprintf("wallet-%s-%d", owner, c.wallets)
}

func (c *chain) nextStash() string {
	defer func() { c.stashes++ }()
	return fmt.Sprintf("stash%d", c.stashes)
}

func (c *chain) async(user string, n uint64) sigma.Token {
	return sigma.Token{ID: c.users[user].token, Amount: n}
}

// plan records the outputs of x, so that the next transactions of the
// same block can be built on them.
func (c *chain) plan(x txb) txb {
	for _, o := range x.outs {
		c.outs[o.name] = o
	}
	return x
}

// amount is how much of token the box built or planned as name holds.
func (c *chain) amount(name string, token ergo.Digest) uint64 {
	b, ok := c.outs[name]
	if !ok {
		c.t.Fatalf("no box %s", name)
	}
	var n uint64
	for _, t := range b.tokens {
		if t.ID == token {
			n += t.Amount
		}
	}
	return n
}

// txb is a transaction to build: the names of the boxes it spends and
// reads, and its outputs.
type txb struct {
	ins, data []string
	outs      []out
}

type out struct {
	name   string
	tree   []byte
	tokens []sigma.Token
	regs   [][]byte
}

// at is an output named name at tree, with the tokens of non-zero amount.
func at(name string, tree []byte, tokens ...sigma.Token) out {
	return out{name: name, tree: tree, tokens: slices.DeleteFunc(slices.Clone(tokens), func(t sigma.Token) bool { return t.Amount == 0 })}
}

func (o out) r4(epoch int64) out {
	o.regs = [][]byte{long(epoch)}
	return o
}

// emit: user spends its emission box (first input) and a wallet box,
// reading data, and recreates the emission box as it is but for the
// amounts taken out of its balance, which go to emitted boxes with R4 =
// epoch.
func (c *chain) emit(name string, epoch int64, data []string, amounts ...uint64) txb {
	u := c.users[name]
	old := c.outs[u.em]
	x := txb{ins: []string{u.em, c.wallet(name)}, data: data}
	u.k++
	u.em = fmt.Sprintf("em%s%d", name, u.k)
	next := at(u.em, old.tree, old.tokens...)
	for i, a := range amounts {
		k := slices.IndexFunc(next.tokens, func(t sigma.Token) bool { return t.ID == u.token })
		next.tokens[k].Amount -= a
		x.outs = append(x.outs, at(emittedName(name, u.k, i, len(amounts)), u.d.trees.emitted, sigma.Token{ID: u.token, Amount: a}).r4(epoch))
	}
	x.outs = slices.Insert(x.outs, 0, next)
	return c.plan(x)
}

// emittedName names the i-th of the n boxes user's k-th action emits.
func emittedName(user string, k, i, n int) string {
	if n == 1 {
		return fmt.Sprintf("o%s%d", user, k)
	}
	return fmt.Sprintf("o%s%d%c", user, k, 'a'+i)
}

// merged: user spends its emission box with its emitted box, whose amount
// it adds to the recreated emission box's balance: lineage_break.
func (c *chain) merged(user, emitted string, amount uint64) {
	c.t.Helper()
	u := c.users[user]
	x := c.emit(user, c.epoch, reads(c.state))
	x.ins = append(x.ins, emitted)
	k := slices.IndexFunc(x.outs[0].tokens, func(t sigma.Token) bool { return t.ID == u.token })
	x.outs[0].tokens[k].Amount += amount
	c.block(x)
	c.want(fmt.Sprintf("created emission %s [%s]: invalid emission.lineage_break", u.em, user))
}

// dropsTokenX: user's action x leaves out of its emission box the token X
// addedToken put there (the box's third token), which goes to change<user>.
func dropsTokenX(x txb, user string) txb {
	x.outs[0].tokens = x.outs[0].tokens[:2]
	x.outs = append(x.outs, at("change"+user, rogueTree, sigma.Token{ID: id("token X"), Amount: 5}))
	return x
}

// addedToken: user recreates its emission box with the same balance and,
// besides, 5 of token X from its wallet: async_token_count.
func (c *chain) addedToken(user string) {
	c.t.Helper()
	x := c.emit(user, c.epoch, reads(c.state))
	x.outs[0].tokens = append(x.outs[0].tokens, sigma.Token{ID: id("token X"), Amount: 5})
	c.block(x)
	c.want(fmt.Sprintf("created emission %s [%s]: invalid emission.async_token_count", c.users[user].em, user))
}

// closeLineage: user spends its emission box with the funnel, which gets
// the participant token back; the async balance is burnt.
func (c *chain) closeLineage(name string) txb {
	u := c.users[name]
	d, old := u.d, u.d.funnel
	d.funnel = d.next("funnel")
	return c.plan(txb{ins: []string{u.em, old}, outs: []out{at(d.funnel, d.trees.funnel, d.P(c.amount(old, d.p.ParticipantTokenID)+1))}})
}

// burn: the owner spends a box and keeps none of its tokens.
func (c *chain) burn(name string) txb {
	return txb{ins: []string{name, c.wallet("burner")}, outs: []out{at(c.wallet("change"), rogueTree)}}
}

// forgerLocks: the forger mints a token with its stash as the first input
// and locks the supply with one of the stash's participant tokens in an
// emission box emF, reading the state box; the stash keeps the rest.
func (c *chain) forgerLocks(name string, minted uint64) txb {
	old := c.stash
	c.users[name] = &user{d: c.deployment, token: id(old), em: "emF"}
	c.tokens[id(old)] = name
	c.stash = c.nextStash()
	return c.plan(txb{ins: []string{old}, data: reads(c.state), outs: []out{
		at("emF", emissionTree, c.P(1), sigma.Token{ID: id(old), Amount: minted}),
		at(c.stash, rogueTree, c.P(c.amount(old, c.p.ParticipantTokenID)-1)),
	}})
}

// booted: user bootstraps, validly.
func (c *chain) booted(user string) {
	c.t.Helper()
	c.block(c.boot(user))
	c.want("created funnel "+c.funnel+": verified", "created emission em"+user+"0 ["+user+"]: verified")
}

// acted: user takes a valid async action at the live epoch, reading the
// state box, emitting amounts.
func (c *chain) acted(user string, amounts ...uint64) {
	c.t.Helper()
	c.block(c.emit(user, c.epoch, reads(c.state), amounts...))
	u := c.users[user]
	want := []string{fmt.Sprintf("created emission %s [%s]: verified", u.em, user)}
	for i := range amounts {
		want = append(want, fmt.Sprintf("created emitted %s [%s]: verified", emittedName(user, u.k, i, len(amounts)), user))
	}
	c.want(want...)
}

// bootedActed: user bootstraps and takes a valid async action.
func (c *chain) bootedActed(user string, amounts ...uint64) {
	c.t.Helper()
	c.booted(user)
	c.acted(user, amounts...)
}

// stole: the forger takes n participant tokens out of the funnel.
func (c *chain) stole(n uint64) {
	c.t.Helper()
	c.block(c.steal(n))
	c.want("created funnel "+c.funnel+": verified", "created participant "+c.stash+": invalid participant.bad_bootstrap")
}

// block builds the next block of txs, judges it, checks what every verdict
// says of its transaction and that the box is kept, and applies it.
func (c *chain) block(txs ...txb) {
	c.t.Helper()
	if c.pending {
		c.t.Fatalf("the verdicts of block %d were not asserted", c.height)
	}
	c.height++
	b := &ergo.FullBlock{Header: ergo.Header{Height: c.height}}
	for i, x := range txs {
		tx := ergo.Transaction{ID: id(fmt.Sprintf("tx %d.%d", c.height, i)), HasID: true}
		for _, in := range x.ins {
			tx.Inputs = append(tx.Inputs, ergo.Input{BoxID: id(in)})
		}
		for _, d := range x.data {
			tx.DataInputs = append(tx.DataInputs, id(d))
		}
		for k, o := range x.outs {
			if _, dup := c.names[id(o.name)]; dup {
				c.t.Fatalf("box %s built twice", o.name)
			}
			c.outs[o.name] = o
			tx.Outputs = append(tx.Outputs, ergo.Box{
				Box: sigma.Box{BoxCandidate: sigma.BoxCandidate{Value: 1_000_000, ErgoTree: o.tree, CreationHeight: c.height,
					Tokens: o.tokens, Registers: o.regs}, TxID: tx.ID, Index: uint16(k)},
				BoxID: id(o.name), HasBoxID: true,
			})
			c.names[id(o.name)] = o.name
		}
		b.Transactions = append(b.Transactions, tx)
	}
	j, err := c.eng.JudgeBlock(context.Background(), c.st, b)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, v := range j.Verdicts {
		if !c.fromItsTx(b, j, v) {
			c.t.Errorf("block %d: %s: tx %d does not create (keep) or spend the box", c.height, c.line(v), v.TxIndex)
		}
	}
	c.st.apply(b, j)
	c.last, c.lastBlock, c.pending = j, b, true
	c.all = append(c.all, j.Verdicts...)
}

// fromItsTx: a created verdict names the transaction that creates the box,
// which is kept; a spent one, the transaction that spends it.
func (c *chain) fromItsTx(b *ergo.FullBlock, j *Judgement, v Verdict) bool {
	if v.TxIndex < 0 || v.TxIndex >= len(b.Transactions) || b.Transactions[v.TxIndex].ID != v.TxID {
		return false
	}
	tx := &b.Transactions[v.TxIndex]
	if v.Kind == KindSpent {
		return slices.ContainsFunc(tx.Inputs, func(in ergo.Input) bool { return in.BoxID == v.BoxID })
	}
	k := slices.IndexFunc(tx.Outputs, func(o ergo.Box) bool { return o.BoxID == v.BoxID })
	return k >= 0 && j.Keep[v.TxIndex] != nil && j.Keep[v.TxIndex][k]
}

// line is a verdict as the cases write it: "[protocol: ]kind class box
// [lineage]: verified" or "…: invalid reason …".
func (c *chain) line(v Verdict) string {
	var s strings.Builder
	if c.multi {
		s.WriteString(v.Protocol + ": ")
	}
	fmt.Fprintf(&s, "%s %s", v.Kind, v.Class)
	if v.Action != "" {
		s.WriteString("/" + v.Action)
	}
	fmt.Fprintf(&s, " %s", c.names[v.BoxID])
	if v.Lineage != nil {
		fmt.Fprintf(&s, " [%s]", c.tokens[*v.Lineage])
	}
	s.WriteString(": " + v.Status())
	for _, r := range v.Reasons {
		s.WriteString(" " + string(r))
	}
	return s.String()
}

func (c *chain) lines(vs []Verdict) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = c.line(v)
	}
	return out
}

// want asserts the last block's verdicts, all of them, in order.
func (c *chain) want(lines ...string) {
	c.t.Helper()
	c.pending = false
	if got := c.lines(c.last.Verdicts); !slices.Equal(got, lines) {
		c.t.Fatalf("block %d verdicts:\n got  %s\n want %s", c.height, strings.Join(got, "\n      "), strings.Join(lines, "\n      "))
	}
}

// wantLineage asserts a user's lineage: "current=box [broken] [closed]
// minted=n [burnt=n]".
func (c *chain) wantLineage(user, want string) {
	c.t.Helper()
	u := c.users[user]
	key := LineageKey{u.d.p.Name, u.token}
	l, ok := c.st.lineages[key]
	if !ok {
		c.t.Fatalf("no lineage of %s", user)
	}
	got := "current=" + c.names[l.Current]
	if l.Broken {
		got += " broken"
	}
	if l.Closed {
		got += " closed"
	}
	got += fmt.Sprintf(" minted=%d", c.st.minted[key])
	if n := c.st.burnt[key]; n > 0 {
		got += fmt.Sprintf(" burnt=%d", n)
	}
	if got != want {
		c.t.Errorf("lineage %s: got %q, want %q", user, got, want)
	}
}

// done checks that the last block's verdicts were asserted.
func (c *chain) done() {
	c.t.Helper()
	if c.pending {
		c.t.Errorf("the verdicts of block %d were not asserted", c.height)
	}
}
