package rules

import (
	"slices"
	"testing"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo/sigma"
)

// The action tree (PROTOCOL.md §2 "Requirements and the action tree") and
// the readings PROTOCOL.md settles (§4), each a named story over the
// chain of checks_test.go. Protocol t's actions:
//
//	observe, quote  leaves: the state at the result's round (R4 = R4)
//	aggregate       the state, and an observation of the same round
//	settle          an aggregate of the same round, and a quote of any
//	vouch           a valid emission box
//
// Results of no action are at t's protocol-level emitted template and need
// the state at their round, as in checks_test.go.

var actionTrees = map[string][]byte{
	"observe":   testTreeN(0x8f, 2, 3),
	"quote":     testTreeN(0x90, 2, 3),
	"aggregate": testTreeN(0x91, 2, 3),
	"settle":    testTreeN(0x92, 2, 3),
	"vouch":     testTreeN(0x93, 2, 3),
}

func treeActions(t testing.TB) []Action {
	round := Requirement{Class: ClassState, EmittedRegister: 4, DataInputRegister: 4}
	action := func(name string, reqs ...Requirement) Action {
		return Action{Name: name, EmittedTemplate: template(t, actionTrees[name]), Requires: reqs}
	}
	return []Action{
		action("observe", round),
		action("quote", round),
		action("aggregate", round, Requirement{Class: ClassEmitted, Action: "observe", EmittedRegister: 4, DataInputRegister: 4}),
		action("settle", Requirement{Class: ClassEmitted, Action: "aggregate", EmittedRegister: 4, DataInputRegister: 4},
			Requirement{Class: ClassEmitted, Action: "quote"}),
		action("vouch", Requirement{Class: ClassEmission}),
	}
}

// result: user takes an async action of kind action at the live round,
// reading data; its one result, o<user><k>, holds 100 async tokens.
func (c *chain) result(user, action string, data ...string) txb {
	return c.resultAt(user, action, c.epoch, data...)
}

// resultAt is result with R4 = round.
func (c *chain) resultAt(user, action string, round int64, data ...string) txb {
	x := c.emit(user, round, data, 100)
	x.outs[1].tree = actionTrees[action]
	return c.plan(x)
}

// bootedAll: users bootstrap in one block, validly.
func (c *chain) bootedAll(users ...string) {
	c.t.Helper()
	var txs []txb
	var want []string
	for _, u := range users {
		txs = append(txs, c.boot(u))
		want = append(want, "created funnel "+c.funnel+": verified", "created emission em"+u+"0 ["+u+"]: verified")
	}
	c.block(txs...)
	c.want(want...)
}

// readingCases are the settled readings of PROTOCOL.md §4 and the kinds of
// forgery the devnet plants along the action tree, each named. A story runs
// on a chain of protocol t (newTestChain), or of the chain its setup makes.
var readingCases = []struct {
	name  string
	setup func(t *testing.T) *chain
	story func(c *chain)
}{
	{"the tree: results built on results built on results", nil, func(c *chain) {
		// A observes and B quotes (leaves, on the state); C, D and E
		// aggregate on A's observation in one block; A settles on C's
		// aggregate and B's quote: a result built on a result built on a
		// result, every one verified.
		c.bootedAll("A", "B", "C", "D", "E")
		c.block(c.result("A", "observe", c.state), c.result("B", "quote", c.state))
		c.want("created emission emA1 [A]: verified", "created emitted/observe oA1 [A]: verified",
			"created emission emB1 [B]: verified", "created emitted/quote oB1 [B]: verified")
		c.block(c.result("C", "aggregate", c.state, "oA1", "emA1"), c.result("D", "aggregate", "emA1", "oA1", c.state),
			c.result("E", "aggregate", c.state, "oA1", "emA1"))
		c.want("created emission emC1 [C]: verified", "created emitted/aggregate oC1 [C]: verified",
			"created emission emD1 [D]: verified", "created emitted/aggregate oD1 [D]: verified",
			"created emission emE1 [E]: verified", "created emitted/aggregate oE1 [E]: verified")
		c.block(c.result("A", "settle", "oC1", "emC1", "oB1", "emB1"))
		c.want("created emission emA2 [A]: verified", "created emitted/settle oA2 [A]: verified")
		// A result of no action needs the state, as emission_requires says.
		c.block(c.emit("B", 0, reads(c.state), 5))
		c.want("created emission emB2 [B]: verified", "created emitted oB2 [B]: verified")
	}},
	{"planted: an invalid result read", nil, func(c *chain) {
		// A observes without reading the state (missing_data_input); B
		// aggregates on it, with its emission box: the result read is
		// invalid. C settles on B's aggregate and D's valid quote: the
		// invalidity goes up the tree.
		c.bootedAll("A", "B", "C", "D")
		c.block(c.result("A", "observe"), c.result("D", "quote", c.state))
		c.want("created emission emA1 [A]: verified", "created emitted/observe oA1 [A]: invalid emitted.missing_data_input",
			"created emission emD1 [D]: verified", "created emitted/quote oD1 [D]: verified")
		c.block(c.result("B", "aggregate", c.state, "oA1", "emA1"))
		c.want("created emission emB1 [B]: verified", "created emitted/aggregate oB1 [B]: invalid emitted.unverified_reference")
		c.block(c.result("C", "settle", "oB1", "emB1", "oD1", "emD1"))
		c.want("created emission emC1 [C]: verified", "created emitted/settle oC1 [C]: invalid emitted.unverified_reference")
	}},
	{"planted: a valid result read without its emission box", nil, func(c *chain) {
		// A observes validly; B aggregates on it without A's emission box,
		// C with D's emission box instead (valid, but holding another
		// token): neither proves A's result.
		c.bootedAll("A", "B", "C", "D")
		c.block(c.result("A", "observe", c.state))
		c.want("created emission emA1 [A]: verified", "created emitted/observe oA1 [A]: verified")
		c.block(c.result("B", "aggregate", c.state, "oA1"), c.result("C", "aggregate", c.state, "oA1", "emD0"))
		c.want("created emission emB1 [B]: verified", "created emitted/aggregate oB1 [B]: invalid emitted.unverified_reference",
			"created emission emC1 [C]: verified", "created emitted/aggregate oC1 [C]: invalid emitted.unverified_reference")
	}},
	{"planted: another protocol's result, or state", treeAndU, func(c *chain) {
		// U (of protocol u) emits a result of u's; A aggregates on it,
		// proved by U's emission box, where an observation of t's is
		// required; B observes reading u's state box instead of t's.
		u := c.others[0]
		c.block(c.emit("U", 0, reads(u.state), 100))
		c.want("u: created emission emU1 [U]: verified", "u: created emitted oU1 [U]: verified")
		c.block(c.boot("B"))
		c.want("t: created funnel funnel2: verified", "t: created emission emB0 [B]: verified")
		c.block(c.result("A", "aggregate", c.state, "oU1", "emU1"), c.result("B", "observe", u.state))
		c.want("t: created emission emA1 [A]: verified", "t: created emitted/aggregate oA1 [A]: invalid emitted.missing_data_input",
			"t: created emission emB1 [B]: verified", "t: created emitted/observe oB1 [B]: invalid emitted.missing_data_input")
	}},
	{"planted: the wrong action kind", nil, func(c *chain) {
		// B aggregates on A's quote, proved, where an observation is
		// required: no data-input of the action.
		c.bootedAll("A", "B")
		c.block(c.result("A", "quote", c.state))
		c.want("created emission emA1 [A]: verified", "created emitted/quote oA1 [A]: verified")
		c.block(c.result("B", "aggregate", c.state, "oA1", "emA1"))
		c.want("created emission emB1 [B]: verified", "created emitted/aggregate oB1 [B]: invalid emitted.missing_data_input")
	}},
	{"planted: the wrong round", nil, func(c *chain) {
		// A observes at round 0; the state moves to round 1; B aggregates
		// at round 1 on A's observation, proved: stale.
		c.bootedAll("A", "B")
		c.block(c.result("A", "observe", c.state))
		c.want("created emission emA1 [A]: verified", "created emitted/observe oA1 [A]: verified")
		c.block(c.update())
		c.want("created state state1: verified")
		c.block(c.result("B", "aggregate", c.state, "oA1", "emA1"))
		c.want("created emission emB1 [B]: verified", "created emitted/aggregate oB1 [B]: invalid emitted.stale_state")
	}},
	{"unknown_token: one fact, one code", nil, func(c *chain) {
		// A's lineage breaks (async_token_count) and A acts on it: its
		// result holds a token of a known, invalid lineage. The forger
		// moves it to a box at the emitted template, and makes one holding
		// a token of no lineage.
		c.booted("A")
		c.addedToken("A")
		c.block(dropsTokenX(c.emit("A", 0, reads(c.state), 100), "A"))
		c.want("created emission emA2 [A]: invalid emission.invalid_parent",
			"created emitted oA2 [A]: invalid emitted.invalid_emission")
		c.block(txb{ins: []string{"oA2", "changeA"}, data: reads(c.state), outs: []out{
			at("oF", emittedTree, c.async("A", 100)).r4(0),
			at("oFx", emittedTree, sigma.Token{ID: id("token X"), Amount: 5}).r4(0),
		}})
		c.want("created emitted oF [A]: invalid emitted.invalid_emission emitted.not_from_emission",
			"created emitted oFx: invalid emitted.unknown_token")
	}},
	{"amount_mismatch on every emitted output of the transaction", nil, func(c *chain) {
		// One transaction acts for A and B: A emits what its balance went
		// down by, B burns 50 of the 100 it takes out; a box at the emitted
		// template holding nothing comes along. Every emitted output gets
		// amount_mismatch; the emission boxes do not.
		c.bootedAll("A", "B")
		a, b := c.emit("A", 0, reads(c.state), 100), c.emit("B", 0, reads(c.state), 100)
		b.outs[1].tokens = []sigma.Token{c.async("B", 50)}
		c.block(txb{ins: append(a.ins, b.ins...), data: reads(c.state),
			outs: []out{a.outs[0], b.outs[0], a.outs[1], b.outs[1], at("oZ", emittedTree).r4(0)}})
		c.want("created emission emA1 [A]: verified", "created emission emB1 [B]: verified",
			"created emitted oA1 [A]: invalid emitted.amount_mismatch",
			"created emitted oB1 [B]: invalid emitted.amount_mismatch",
			"created emitted oZ: invalid emitted.amount_mismatch emitted.unknown_token")
		c.wantLineage("A", "current=emA1 minted=9223372036854775807")
		c.wantLineage("B", "current=emB1 minted=9223372036854775807 burnt=50")
	}},
	{"escaped receivers", nil, func(c *chain) {
		// The forger spends A's emission box without recreating it: half
		// of the balance goes to a box at the emitted template, half to one
		// of its own, the participant token to its stash. Both receivers
		// are emitted boxes of an invalid lineage (the second at no emitted
		// template, a fact of its own); one moved on later is still.
		c.booted("A")
		half := supply / 2
		c.block(txb{ins: []string{"emA0", c.wallet("F")}, data: reads(c.state), outs: []out{
			at("oF", emittedTree, c.async("A", half)).r4(0),
			at("oFp", rogueTree, c.async("A", supply-half)).r4(0),
			at("stash0", rogueTree, c.P(1)),
		}})
		c.want("created emitted oF [A]: invalid emitted.invalid_emission",
			"created emitted oFp [A]: invalid emitted.invalid_emission emitted.wrong_template",
			"created participant stash0: verified",
			"spent emission emA0 [A]: invalid emission.escaped")
		c.block(txb{ins: []string{"oF"}, data: reads(c.state), outs: []out{at("oG", emittedTree, c.async("A", half)).r4(0)}})
		c.want("created emitted oG [A]: invalid emitted.invalid_emission emitted.not_from_emission")
		c.wantLineage("A", "current=emA0 broken closed minted=9223372036854775807")
	}},
	{"a dropped participant token", nil, func(c *chain) {
		// A's action recreates the emission box without the participant
		// token, which goes to A's wallet.
		c.booted("A")
		x := c.emit("A", 0, reads(c.state), 100)
		x.outs[0].tokens = x.outs[0].tokens[1:]
		x.outs = append(x.outs, at("walletA", rogueTree, c.P(1)))
		c.block(x)
		c.want("created emission emA1 [A]: invalid emission.lineage_break emission.no_participant_token",
			"created emitted oA1 [A]: invalid emitted.invalid_emission",
			"created participant walletA: verified")
		c.wantLineage("A", "current=emA1 broken minted=9223372036854775807")
	}},
	{"a state update reading a result of a closed lineage", nil, func(c *chain) {
		// The operator reads A's result with its emission box; A closes
		// the lineage; the operator reads the result again, and cannot
		// read its emission box any more.
		c.bootedActed("A", 100)
		c.block(c.update("oA1", "emA1"))
		c.want("created state state1: verified")
		c.block(c.closeLineage("A"))
		c.want("created funnel funnel2: verified")
		c.block(c.update("oA1"))
		c.want("created state state2: invalid sync.unverified_reference")
	}},
	{"an action built on a result of a closed lineage", nil, func(c *chain) {
		// B aggregates on A's observation, proved; A closes; C aggregates
		// on it, whose emission box is spent.
		c.bootedAll("A", "B", "C")
		c.block(c.result("A", "observe", c.state))
		c.want("created emission emA1 [A]: verified", "created emitted/observe oA1 [A]: verified")
		c.block(c.result("B", "aggregate", c.state, "oA1", "emA1"))
		c.want("created emission emB1 [B]: verified", "created emitted/aggregate oB1 [B]: verified")
		c.block(c.closeLineage("A"))
		c.want("created funnel funnel4: verified")
		c.block(c.result("C", "aggregate", c.state, "oA1"))
		c.want("created emission emC1 [C]: verified", "created emitted/aggregate oC1 [C]: invalid emitted.unverified_reference")
	}},
	{"distinct facts, distinct codes", nil, func(c *chain) {
		// B's lineage breaks (async_token_count); B's next action, valid
		// in itself, aggregates on A's observation without its emission
		// box: its result is of an invalid lineage and built on an
		// unproved one.
		c.bootedAll("A", "B")
		c.block(c.result("A", "observe", c.state))
		c.want("created emission emA1 [A]: verified", "created emitted/observe oA1 [A]: verified")
		c.addedToken("B")
		c.block(dropsTokenX(c.result("B", "aggregate", c.state, "oA1"), "B"))
		c.want("created emission emB2 [B]: invalid emission.invalid_parent",
			"created emitted/aggregate oB2 [B]: invalid emitted.invalid_emission emitted.unverified_reference")
	}},
	{"requirements of class emission, and of a result of any kind", nil, func(c *chain) {
		// vouch needs a valid emission box: C reads none, then B's
		// invalid one, then A's. Here settle needs a result of any kind,
		// proved: A's observation and A's result of no action both meet
		// it; B's result, whose lineage broke, cannot be proved.
		p := c.p
		p.Actions = slices.Clone(p.Actions)
		p.Actions[3].Requires = []Requirement{{Class: ClassEmitted}}
		c.eng = NewEngine([]Protocol{p}, nil, zerolog.Nop())
		c.bootedAll("A", "B", "C")
		c.block(c.result("A", "observe", c.state), c.result("B", "quote", c.state))
		c.want("created emission emA1 [A]: verified", "created emitted/observe oA1 [A]: verified",
			"created emission emB1 [B]: verified", "created emitted/quote oB1 [B]: verified")
		c.addedToken("B")
		c.block(c.result("C", "vouch"))
		c.want("created emission emC1 [C]: verified", "created emitted/vouch oC1 [C]: invalid emitted.missing_data_input")
		c.block(c.result("C", "vouch", "emB2"))
		c.want("created emission emC2 [C]: verified", "created emitted/vouch oC2 [C]: invalid emitted.unverified_reference")
		c.block(c.result("C", "vouch", "emB2", "emA1"))
		c.want("created emission emC3 [C]: verified", "created emitted/vouch oC3 [C]: verified")
		c.block(c.emit("A", 0, reads(c.state), 7))
		c.want("created emission emA2 [A]: verified", "created emitted oA2 [A]: verified")
		c.block(c.result("C", "settle", "oA2", "emA2"), c.result("C", "settle", "oB1", "emB2"))
		c.want("created emission emC4 [C]: verified", "created emitted/settle oC4 [C]: verified",
			"created emission emC5 [C]: verified", "created emitted/settle oC5 [C]: invalid emitted.unverified_reference")
	}},
}

func TestReadingCases(t *testing.T) {
	for _, rc := range readingCases {
		t.Run(rc.name, func(t *testing.T) {
			setup := rc.setup
			if setup == nil {
				setup = newTestChain
			}
			c := setup(t)
			rc.story(c)
			c.done()
		})
	}
}

// treeAndU is a chain of protocol t, with the tree's actions, and protocol
// u, where t's user A and u's user U have bootstrapped.
func treeAndU(t *testing.T) *chain {
	d := newDeployment(t, "t", "", tContracts)
	d.p.Actions = treeActions(t)
	c, u := newTwoProtocolChain(t, d)
	c.others = []*deployment{u}
	return c
}
