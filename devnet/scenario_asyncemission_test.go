package devnet

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	auditrules "github.com/async-emission/auditor/rules"
)

// aeWalk reads every final block of d, checks it as a ledger, derives its
// verdicts with the rules and hands it to visit with every box created so
// far (spent or not). With served it fetches each block over HTTP and
// verifies it as a scanner would; otherwise it replays the final chain
// inside the devnet, each block checked against its header's roots, which
// is much faster.
func aeWalk(t *testing.T, d *Devnet, served bool, visit func(b *ergo.FullBlock, boxes map[ergo.Digest]ergo.Box)) ruleSet {
	t.Helper()
	cfgs, err := d.Protocols()
	if err != nil {
		t.Fatal(err)
	}
	genesis := d.gen.genesisBoxes()
	l, r := newLedger(t, genesis), newRuleSet(cfgs, genesis)
	boxes := map[ergo.Digest]ergo.Box{}
	for _, g := range genesis {
		boxes[g.ID] = g.Box
	}
	n := serve(t, d)
	st, err := d.checkpointBelow(0)
	if err != nil {
		t.Fatal(err)
	}
	for h := uint32(1); h <= uint32(d.cfg.Blocks); h++ {
		var b *ergo.FullBlock
		if served {
			b, _ = n.block(d.FinalID(h))
		} else {
			bd, err := d.gen.build(st, h, finalBranch, d.finalID, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := d.final[h-1]
			if err := sameBlock(&rec, bd); err != nil {
				t.Fatal(err)
			}
			b = &ergo.FullBlock{Header: rec.header(), Transactions: bd.txs}
		}
		l.apply(b)
		if err := r.apply(b); err != nil {
			t.Fatal(err)
		}
		for _, tx := range b.Transactions {
			for _, o := range tx.Outputs {
				boxes[o.ComputeID()] = o
			}
		}
		if visit != nil {
			visit(b, boxes)
		}
	}
	return r
}

func aeExpectations(t *testing.T, d *Devnet) []Expectation {
	t.Helper()
	m, err := d.Expectations(uint32(d.cfg.Blocks))
	if err != nil {
		t.Fatalf("Expectations: %v", err)
	}
	return m
}

// TestAsyncEmissionCleanRun: with no forgeries, a 1,000-block chain with
// the scenario verifies block by block as a scanner reads it and is a
// valid ledger; the protocol's boxes keep every promise of PROTOCOL.md
// (checked here directly, on the chain); and the manifest declares every
// box of a class verified, as the rules derive them.
func TestAsyncEmissionCleanRun(t *testing.T) {
	t.Parallel()
	const blocks = 1000
	d := newDevnet(t, Config{Seed: 21, Blocks: blocks, TxsPerBlock: 2, Scenario: &AsyncEmission{}})
	cfg, err := d.Protocol()
	if err != nil {
		t.Fatal(err)
	}
	templateOf := func(b *ergo.Box) [32]byte {
		tree, err := sigma.ParseErgoTree(b.ErgoTree)
		if err != nil {
			t.Fatalf("box %s: %v", b.ComputeID(), err)
		}
		th, err := tree.TemplateHash()
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	epoch := func(b *ergo.Box) int64 {
		if len(b.Registers) == 0 {
			t.Fatalf("box %s has no R4", b.ComputeID())
		}
		c, err := sigma.ParseConstant(b.Registers[0])
		if err != nil || c.Type != sigma.TLong {
			t.Fatalf("box %s: R4 %v %v, want a Long", b.ComputeID(), c, err)
		}
		return c.Value.(int64)
	}
	P, stateTemplate := [32]byte(cfg.ParticipantTokenID), sha256.Sum256(aeStateTemplate)
	var bootstraps, actions, emitted, syncs int
	r := aeWalk(t, d, true, func(b *ergo.FullBlock, boxes map[ergo.Digest]ergo.Box) {
		for _, tx := range b.Transactions {
			var ins []ergo.Box
			for _, in := range tx.Inputs {
				ins = append(ins, boxes[in.BoxID])
			}
			var state *ergo.Box
			for _, id := range tx.DataInputs {
				if box := boxes[id]; tokenAmount(box.Tokens, cfg.StateNFTID) == 1 {
					state = &box
				}
			}
			for i := range ins {
				if templateOf(&ins[i]) == stateTemplate {
					syncs++
				}
			}
			var emission *ergo.Box // the emission box the transaction creates
			for i := range tx.Outputs {
				o := &tx.Outputs[i]
				if templateOf(o) != cfg.EmissionTemplate {
					continue
				}
				if emission != nil || len(o.Tokens) != 2 || tokenAmount(o.Tokens, P) != 1 {
					t.Fatalf("height %d: an emission box holds %v, want one participant token and one async token", b.Header.Height, o.Tokens)
				}
				emission = o
			}
			if emission == nil {
				continue
			}
			async := emission.Tokens[1].ID
			if async == [32]byte(tx.Inputs[0].BoxID) { // a bootstrap
				bootstraps++
				if emission.Tokens[1].Amount != AsyncSupply || state == nil || tokenAmount(ins[0].Tokens, P) == 0 {
					t.Fatalf("height %d: bootstrap minted %d into its emission box from %v, reading %v", b.Header.Height, emission.Tokens[1].Amount, ins[0].Tokens, state)
				}
				for _, o := range tx.Outputs {
					if o.ComputeID() != emission.ComputeID() && tokenAmount(o.Tokens, async) > 0 {
						t.Fatalf("height %d: bootstrap did not lock all of its supply", b.Header.Height)
					}
				}
				continue
			}
			actions++
			var before uint64
			for _, in := range ins {
				before += tokenAmount(in.Tokens, async)
			}
			var out uint64
			for i := range tx.Outputs {
				o := &tx.Outputs[i]
				if amount := tokenAmount(o.Tokens, async); amount > 0 && o != emission {
					emitted++
					out += amount
					if templateOf(o) != cfg.EmittedTemplate || state == nil || epoch(o) != epoch(state) {
						t.Fatalf("height %d: an emitted box with R4 %d, the state box read %v", b.Header.Height, epoch(o), state)
					}
				}
			}
			if down := before - emission.Tokens[1].Amount; out != down || down == 0 {
				t.Fatalf("height %d: the emission balance went down by %d, the emitted boxes hold %d", b.Header.Height, down, out)
			}
		}
	})
	t.Logf("%d bootstraps, %d async actions emitting %d boxes, %d state updates", bootstraps, actions, emitted, syncs)
	if bootstraps < 10 || actions < 100 || emitted < actions || syncs < 100 {
		t.Fatal("the scenario is too quiet")
	}

	m := aeExpectations(t, d)
	classes := map[string]int{}
	for _, e := range m {
		if e.Verdict != VerdictVerified || e.Reasons != nil || e.Kind != VerdictCreated {
			t.Fatalf("a clean run expects %+v", e)
		}
		if e.Protocol == AsyncEmissionProtocol {
			classes[e.Class]++
		}
	}
	if classes[ClassState] != syncs+1 || classes[ClassEmission] != bootstraps+actions || classes[ClassEmitted] != emitted || classes[ClassFunnel] < bootstraps+1 {
		t.Fatalf("manifest classes %v for %d bootstraps, %d actions, %d emitted boxes, %d syncs", classes, bootstraps, actions, emitted, syncs)
	}
	if diff := r.diff(m, 10); len(diff) > 0 {
		t.Fatalf("the manifest and the rules disagree:\n%v", diff)
	}
}

// TestAsyncEmissionForgeries: at the default rate, 1,500 blocks plant every
// reason code; every declared verdict's box is on the final chain at the
// declared height (created there, or spent there for a second verdict),
// and for each code a block planting it verifies as served; and the rules,
// derived from the chain alone, reach exactly the declared verdicts.
func TestAsyncEmissionForgeries(t *testing.T) {
	t.Parallel()
	d := newDevnet(t, Config{Seed: 7, Blocks: 1500, TxsPerBlock: 2, Scenario: &AsyncEmission{ForgeryRate: DefaultForgeryRate}})
	m := aeExpectations(t, d)
	byHeight := map[uint32][]Expectation{}
	first := map[string]Expectation{} // the first box expected to get each code
	for _, e := range m {
		byHeight[e.Height] = append(byHeight[e.Height], e)
		for _, reason := range e.Reasons {
			if _, ok := first[reason]; !ok {
				first[reason] = e
			}
		}
		if !slices.IsSorted(e.Reasons) || (e.Verdict == VerdictInvalid) != (len(e.Reasons) > 0) {
			t.Fatalf("malformed expectation %+v", e)
		}
		if e.Kind == VerdictSpent && (e.Class != ClassEmission || !slices.Equal(e.Reasons, []string{ReasonEscaped})) {
			t.Fatalf("a second verdict other than escaped: %+v", e)
		}
	}
	for _, reason := range Reasons() {
		if _, ok := first[reason]; !ok {
			t.Errorf("no box expected to be %s", reason)
		}
	}

	// Where each declared box is.
	onChain := func(b *ergo.FullBlock, e Expectation) {
		t.Helper()
		i := slices.IndexFunc(b.Transactions, func(tx ergo.Transaction) bool { return tx.ComputeID() == e.TxID })
		if i < 0 {
			t.Fatalf("%+v: no such transaction at height %d", e, b.Header.Height)
		}
		tx := &b.Transactions[i]
		switch e.Kind {
		case VerdictCreated:
			if !slices.ContainsFunc(tx.Outputs, func(o ergo.Box) bool { return o.ComputeID() == e.BoxID }) {
				t.Fatalf("%+v: the transaction does not create the box", e)
			}
		case VerdictSpent:
			if !slices.ContainsFunc(tx.Inputs, func(in ergo.Input) bool { return in.BoxID == e.BoxID }) {
				t.Fatalf("%+v: the transaction does not spend the box", e)
			}
		}
	}
	found := 0
	r := aeWalk(t, d, false, func(b *ergo.FullBlock, _ map[ergo.Digest]ergo.Box) {
		for _, e := range byHeight[b.Header.Height] {
			onChain(b, e)
			found++
		}
	})
	if found != len(m) {
		t.Fatalf("found %d of %d declared boxes", found, len(m))
	}
	if diff := r.diff(m, 10); len(diff) > 0 {
		t.Fatalf("the manifest and the rules disagree:\n%v", diff)
	}

	n := serve(t, d)
	firsts := slices.SortedFunc(maps.Values(first), func(a, b Expectation) int { return cmp.Compare(a.Height, b.Height) })
	for _, e := range firsts { // in order: the devnet rebuilds from the block served last
		b, _ := n.block(d.FinalID(e.Height))
		onChain(b, e)
	}
	invalid := slices.DeleteFunc(slices.Clone(m), func(e Expectation) bool { return e.Verdict == VerdictVerified })
	t.Logf("%d expectations, %d invalid; every code planted by height %d", len(m), len(invalid), firsts[len(firsts)-1].Height)
}

// TestAsyncEmissionDeterminism: one seed gives one chain and one manifest,
// whatever the reorgs, block time, checkpoints and cache; another seed
// another; and a shorter manifest is a prefix of the longer one.
func TestAsyncEmissionDeterminism(t *testing.T) {
	t.Parallel()
	const blocks = 240
	cfg := Config{Seed: 33, Blocks: blocks, TxsPerBlock: 4, Scenario: &AsyncEmission{ForgeryRate: 0.3}}
	base := newDevnet(t, cfg)
	want := aeExpectations(t, base)
	invalid := slices.ContainsFunc(want, func(e Expectation) bool { return e.Verdict == VerdictInvalid })
	if len(want) < 100 || !invalid {
		t.Fatalf("%d expectations, invalid ones: %v: too few to compare", len(want), invalid)
	}
	reorg := cfg
	reorg.BlockTime, reorg.ReorgEvery, reorg.ReorgDepth, reorg.CheckpointEvery, reorg.CacheBytes = time.Hour, 7, 3, 16, 1
	d := newDevnet(t, reorg)
	n := serve(t, d)
	alternates := 0
	for d.Step() {
		if h, tip := d.Tip(); tip != d.FinalID(h) {
			b, _ := n.block(tip) // a competing branch, built with the scenario on it, verifies
			alternates++
			if b.Header.Height != h {
				t.Fatalf("alternate tip at %d", b.Header.Height)
			}
		}
	}
	if alternates == 0 {
		t.Fatal("no competing branch was shown")
	}
	for h := uint32(1); h <= blocks; h++ {
		if d.FinalID(h) != base.FinalID(h) {
			t.Fatalf("with reorgs, final block %d differs", h)
		}
	}
	if got := aeExpectations(t, d); !reflect.DeepEqual(got, want) {
		t.Fatal("another devnet of the seed, with reorgs, declares another manifest")
	}

	prefix, err := base.Expectations(blocks / 2)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(want, func(e Expectation) bool { return e.Height > blocks/2 })
	if !reflect.DeepEqual(prefix, want[:i]) {
		t.Fatal("the manifest up to a height is not the start of the whole one")
	}
	other := cfg
	other.Seed++
	if got := aeExpectations(t, newDevnet(t, other)); reflect.DeepEqual(got, want) {
		t.Fatal("another seed declares the same manifest")
	}
}

// TestAsyncEmissionEveryActionForged: at a forgery rate of 1 every protocol
// action is a planted case (a valid one is taken only when no case can be
// planted, which never happens once deployed; the action tree's plants need
// a lineage, so its bootstraps stay valid), every result of the action tree
// is planted, the chain is still valid, and the rules agree with the
// manifest.
func TestAsyncEmissionEveryActionForged(t *testing.T) {
	d := newDevnet(t, Config{Seed: 4, Blocks: 200, TxsPerBlock: 2, Scenario: &AsyncEmission{ForgeryRate: 1}})
	r := aeWalk(t, d, true, nil)
	m := aeExpectations(t, d)
	results := 0
	for _, e := range m {
		switch {
		case e.Case == "deploy", e.Case == "retire": // the deployments, and forged lineages ended
		case e.Protocol == TreeProtocol && slices.Contains([]string{"tree:bootstrap", "tree:round", "tree:close"}, e.Case):
		case !strings.HasPrefix(e.Case, "plant:"):
			t.Fatalf("a valid action at rate 1: %+v", e)
		case e.Protocol == TreeProtocol && e.Class == ClassEmitted:
			results++
			if e.Verdict != VerdictInvalid {
				t.Fatalf("a planted result of the action tree is verified: %+v", e)
			}
		}
	}
	if results == 0 {
		t.Fatal("no result of the action tree was planted")
	}
	if diff := r.diff(m, 10); len(diff) > 0 {
		t.Fatalf("the manifest and the rules disagree:\n%v", diff)
	}
}

// TestAsyncEmissionProtocolConfig: the [[protocol]] section names the
// deployment's tokens and contracts, parses as TOML, and is computed
// without generating the chain past the deployment.
func TestAsyncEmissionProtocolConfig(t *testing.T) {
	cfg := Config{Seed: 5, Blocks: 20, Scenario: &AsyncEmission{ForgeryRate: 0.5}}
	d := newDevnet(t, cfg)
	p, err := d.Protocol()
	if err != nil {
		t.Fatal(err)
	}
	deployment, _ := serve(t, d).block(d.FinalID(AsyncEmissionHeight))
	var nft, participant bool
	for _, tx := range deployment.Transactions {
		for _, o := range tx.Outputs {
			th, _ := sigma.TemplateHashOf(o.ErgoTree)
			nft = nft || th == sha256.Sum256(aeStateTemplate) && slices.Equal(o.Tokens, []sigma.Token{{ID: p.StateNFTID, Amount: 1}}) && p.StateNFTID == tx.Inputs[0].BoxID
			participant = participant || th == p.FunnelTemplate && slices.Equal(o.Tokens, []sigma.Token{{ID: p.ParticipantTokenID, Amount: aeParticipants}}) && p.ParticipantTokenID == tx.Inputs[0].BoxID
		}
	}
	if !nft || !participant {
		t.Fatalf("block %d does not mint the state NFT %s and the participant tokens %s", AsyncEmissionHeight, p.StateNFTID, p.ParticipantTokenID)
	}

	all, err := d.Protocols()
	if err != nil || len(all) != 2 || !reflect.DeepEqual(all[0], p) || all[1].Name != TreeProtocol {
		t.Fatalf("Protocols: %+v %v, want the demo's section, then the tree's", all, err)
	}
	lazy, err := ProtocolConfigsOf(t.Context(), Config{Seed: 5, Blocks: 1_000_000, Scenario: &AsyncEmission{}})
	if err != nil || !reflect.DeepEqual(lazy, all) {
		t.Fatalf("ProtocolConfigsOf on a million-block config: %+v %v, want %+v (the forgery rate changes nothing before the deployments)", lazy, err, all)
	}

	var file struct {
		Protocol []auditrules.ProtocolSpec `toml:"protocol"`
	}
	dec := toml.NewDecoder(strings.NewReader(p.TOML()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%v in\n%s", err, p.TOML())
	}
	if len(file.Protocol) != 1 {
		t.Fatalf("%d [[protocol]] sections", len(file.Protocol))
	}
	got := file.Protocol[0]
	hex := func(b [32]byte) string { return ergo.Digest(b).String() }
	if got.Name != "demo" || got.ParticipantTokenID != p.ParticipantTokenID.String() || got.StateNFTID != p.StateNFTID.String() ||
		got.EmissionTemplate != hex(sha256.Sum256(aeEmissionTemplate)) || got.FunnelTemplate != hex(sha256.Sum256(aeFunnelTemplate)) ||
		got.EmittedTemplate != hex(sha256.Sum256(aeEmittedTemplate)) || got.AsyncSupply == nil || *got.AsyncSupply != math.MaxInt64 ||
		got.StartHeight == nil || *got.StartHeight != AsyncEmissionHeight || len(got.EmissionRequires) != 1 ||
		got.EmissionRequires[0].Class != "state" || got.EmissionRequires[0].EmittedRegister != "R4" || got.EmissionRequires[0].DataInputRegister != "R4" {
		t.Fatalf("parsed %+v from\n%s", got, p.TOML())
	}

	// Both sections, as --print-config prints them, are a valid
	// configuration: no template shared, no cycle without a leaf.
	text := ProtocolsTOML(all)
	file.Protocol = nil
	dec = toml.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
	parsed, errs := auditrules.ParseProtocols(file.Protocol)
	if errs != nil || len(parsed) != 2 {
		t.Fatalf("%v in\n%s", errs, text)
	}
	tree := parsed[1]
	if tree.Name != TreeProtocol || tree.StartHeight != TreeHeight || tree.EmittedTemplate != nil || len(tree.EmissionRequires) != 0 ||
		tree.ParticipantTokenID == p.ParticipantTokenID || len(tree.Actions) != len(treeActions) {
		t.Fatalf("tree section %+v", tree)
	}
	for k, a := range tree.Actions {
		if a.Name != treeActions[k].name || a.EmittedTemplate != auditrules.SHA256Template(sha256.Sum256(treeResultTemplate(k))) {
			t.Errorf("action %d: %+v", k, a)
		}
	}
	settle := []auditrules.Requirement{
		{Class: auditrules.ClassEmitted, Action: ActionAggregate, EmittedRegister: 4, DataInputRegister: 4},
		{Class: auditrules.ClassEmitted, Action: ActionQuote},
	}
	if !slices.Equal(tree.Actions[tSettle].Requires, settle) || len(tree.Actions[tObserve].Requires) != 1 {
		t.Errorf("requirements %+v", tree.Actions)
	}
}

// TestAsyncEmissionContracts: each contract's trees parse, share their
// template whatever the owner, and no two contracts of the chain (the
// traffic's included) share a template.
func TestAsyncEmissionContracts(t *testing.T) {
	d := newDevnet(t, Config{Seed: 2, Blocks: 2, Scenario: &AsyncEmission{}})
	b := &BlockBuilder{b: &builder{g: d.gen}}
	c, err := newAEContracts(b)
	if err != nil {
		t.Fatal(err)
	}
	templates := map[[32]byte]string{}
	add := func(name string, template []byte, trees ...[]byte) {
		h := sha256.Sum256(template)
		if other, ok := templates[h]; ok {
			t.Fatalf("%s and %s share a template", name, other)
		}
		templates[h] = name
		for _, tree := range trees {
			parsed, err := sigma.ParseErgoTree(tree)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if th, err := parsed.TemplateHash(); err != nil || th != h || !parsed.ConstantSegregation {
				t.Fatalf("%s: template hash %x %v, want %x", name, th, err, h)
			}
		}
	}
	add("state", aeStateTemplate, c.state)
	add("funnel", aeFunnelTemplate, c.funnel)
	add("emission", aeEmissionTemplate, c.emission[:]...)
	add("emitted", aeEmittedTemplate, c.emitted[:]...)
	add("tree state", treeStateTemplate, c.tree.state)
	add("tree funnel", treeFunnelTemplate, c.tree.funnel)
	add("tree emission", treeEmissionTemplate, c.tree.emission[:]...)
	for k, a := range treeActions {
		add("tree result of "+a.name, treeResultTemplate(k), c.tree.results[k][:]...)
	}
	add("miner reward", minerRewardTemplate)
	add("vault", vaultTemplate)
	add("order", orderTemplate)
	add("oracle", oracleTemplate)
	if tree, _ := sigma.ParseErgoTree(c.emission[0]); tree.Header != treeSegregatedSized {
		t.Fatalf("emission tree header %#x, want the sized one", tree.Header)
	}
	if _, ok := d.gen.userOf[string(c.stash)]; ok {
		t.Fatal("the rogue key is a user's")
	}
}

func TestAsyncEmissionErrors(t *testing.T) {
	for _, rate := range []float64{-0.1, 1.5, math.NaN(), math.Inf(1)} {
		cfg := Config{Seed: 1, Blocks: 10, Scenario: &AsyncEmission{ForgeryRate: rate}}
		var ce *ConfigError
		if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != "Scenario.ForgeryRate" {
			t.Errorf("rate %v: %v", rate, err)
		}
	}
	d := newDevnet(t, Config{Seed: 1, Blocks: 10, Scenario: &AsyncEmission{ForgeryRate: 1}})
	if _, err := d.Expectations(11); !errors.Is(err, ErrHeight) {
		t.Errorf("Expectations past the end: %v", err)
	}
	if m, err := d.Expectations(1); m != nil || err != nil {
		t.Errorf("Expectations before the deployment: %v %v", m, err)
	}
	if _, err := newDevnet(t, Config{Seed: 1, Blocks: 10}).Protocol(); !errors.Is(err, ErrNoDeployment) {
		t.Errorf("Protocol without the scenario: %v", err)
	}
	if _, err := newDevnet(t, Config{Seed: 1, Blocks: 1, Scenario: &AsyncEmission{}}).Protocol(); !errors.Is(err, ErrNoDeployment) {
		t.Errorf("Protocol of a chain that ends before the deployment: %v", err)
	}
	if _, err := newDevnet(t, Config{Seed: 1, Blocks: 2, Scenario: &AsyncEmission{}}).Protocols(); !errors.Is(err, ErrNoDeployment) {
		t.Errorf("Protocols of a chain that ends before the action tree's deployment: %v", err)
	}
	if m, err := newDevnet(t, Config{Seed: 1, Blocks: 10, Scenario: &relay{}}).Expectations(10); m != nil || err != nil {
		t.Errorf("Expectations of a scenario that declares none: %v %v", m, err)
	}
}

// BenchmarkGenerateAsyncEmission measures generating the final chain with
// the scenario (compare BenchmarkGenerate), and the manifest's replay.
func BenchmarkGenerateAsyncEmission(b *testing.B) {
	const blocks = 1000
	for _, rate := range []float64{0, DefaultForgeryRate} {
		cfg := Config{Seed: 1, Blocks: blocks, Scenario: &AsyncEmission{ForgeryRate: rate}}
		b.Run(fmt.Sprintf("rate=%v", rate), func(b *testing.B) {
			for b.Loop() {
				if _, err := New(cfg, zerolog.Nop()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(blocks*b.N)/b.Elapsed().Seconds(), "blocks/s")
		})
		b.Run(fmt.Sprintf("rate=%v/manifest", rate), func(b *testing.B) {
			d, err := New(cfg, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := d.Expectations(blocks); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(blocks*b.N)/b.Elapsed().Seconds(), "blocks/s")
		})
	}
}

// TestAsyncEmissionTree: the action-tree protocol's results build on each
// other as its section says, read from the chain: a settlement built on an
// aggregate built on an observation, all verified; several users building
// on one observation in one block; every kind of forgery planted along the
// tree, each result getting the code of its kind; a verified result never
// reads an invalid one in place of what it needs; and the rules agree with
// the manifest.
func TestAsyncEmissionTree(t *testing.T) {
	t.Parallel()
	d := newDevnet(t, Config{Seed: 11, Blocks: 600, TxsPerBlock: 2, Scenario: &AsyncEmission{ForgeryRate: 0.3}})
	m := aeExpectations(t, d)
	verdict := map[ergo.Digest]Expectation{}
	for _, e := range m {
		if e.Protocol == TreeProtocol && e.Kind == VerdictCreated {
			verdict[e.BoxID] = e
		}
	}
	ps, err := d.Protocols()
	if err != nil {
		t.Fatal(err)
	}
	tree := ps[1]
	kind := map[[32]byte]string{}
	for _, a := range tree.Actions {
		kind[a.EmittedTemplate] = a.Name
	}
	actionOf := func(b *ergo.Box) string {
		th, _ := sigma.TemplateHashOf(b.ErgoTree)
		return kind[th]
	}
	// reads: each tree result's data-inputs that are tree results.
	reads := map[ergo.Digest][]ergo.Digest{}
	readers := map[string]int{} // "height observation" → verified aggregates reading it
	crowds := 0
	r := aeWalk(t, d, false, func(b *ergo.FullBlock, boxes map[ergo.Digest]ergo.Box) {
		clear(readers)
		for _, tx := range b.Transactions {
			for i := range tx.Outputs {
				o := &tx.Outputs[i]
				if actionOf(o) == "" {
					continue
				}
				id := o.ComputeID()
				for _, di := range tx.DataInputs {
					if in := boxes[di]; actionOf(&in) != "" {
						reads[id] = append(reads[id], di)
						if actionOf(o) == ActionAggregate && actionOf(&in) == ActionObserve && verdict[id].Verdict == VerdictVerified {
							if readers[di.String()]++; readers[di.String()] == 2 {
								crowds++
							}
						}
					}
				}
			}
		}
	})
	if diff := r.diff(m, 10); len(diff) > 0 {
		t.Fatalf("the manifest and the rules disagree:\n%v", diff)
	}

	// depth is the longest chain of verified results down from a result.
	var depth func(id ergo.Digest) int
	depth = func(id ergo.Digest) int {
		best := 0
		for _, below := range reads[id] {
			if verdict[below].Verdict == VerdictVerified {
				best = max(best, depth(below))
			}
		}
		return best + 1
	}
	deepest, planted := 0, map[string]map[string]int{}
	for id, e := range verdict {
		if e.Class != ClassEmitted {
			continue
		}
		if e.Verdict == VerdictVerified {
			deepest = max(deepest, depth(id))
			for _, below := range reads[id] {
				if verdict[below].Verdict != VerdictVerified {
					t.Errorf("verified result %s (%s) reads invalid %s", id, e.Case, below)
				}
			}
		}
		if strings.HasPrefix(e.Case, "plant:tree-") {
			if planted[e.Case] == nil {
				planted[e.Case] = map[string]int{}
			}
			planted[e.Case][strings.Join(e.Reasons, " ")]++
		}
	}
	want := map[string]string{
		"plant:tree-invalid-result":           ReasonEmittedUnverifiedReference,
		"plant:tree-unproved-result":          ReasonEmittedUnverifiedReference,
		"plant:tree-closed-lineage-result":    ReasonEmittedUnverifiedReference,
		"plant:tree-another-protocols-result": ReasonMissingDataInput,
		"plant:tree-wrong-action-kind":        ReasonMissingDataInput,
		"plant:tree-wrong-round":              ReasonStaleState,
	}
	for _, p := range treePlants {
		c := "plant:" + p.name
		if got := planted[c]; len(got) != 1 || got[want[c]] == 0 {
			t.Errorf("%s: results planted with codes %v, want some, all with %s", c, got, want[c])
		}
	}
	if deepest < 3 || crowds == 0 {
		t.Errorf("the deepest chain of verified results is %d long (want 3: settle, aggregate, observe); %d blocks with several users on one observation", deepest, crowds)
	}
	t.Logf("%d tree verdicts; deepest chain %d; %d crowds; planted %v", len(verdict), deepest, crowds, planted)
}
