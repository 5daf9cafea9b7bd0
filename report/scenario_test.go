package report

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/testchain"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// A report of the devnet's async-emission scenario, synced into a real
// store by the real follower and rules over the devnet's HTTP API, checked
// against the store's verdicts table (read with SQL of the test's own) and
// against what the devnet planted: its manifest (the class and codes of
// every box it made) and its chain (where every token is, what was minted
// and burnt), read over the same API.

// The scenario: long enough that the devnet plants every reason code
// before the first report, the conservation-relevant ones (bad_mint,
// participant_amount, supply_leak, escaped, amount_mismatch, orphan_token)
// among them (plantedAt fails the test otherwise); the second report
// covers the blocks above it. About 4 s with -race.
const (
	scenarioSeed      = 12
	scenarioFirst     = 400 // the first report's tip
	scenarioBlocks    = 520 // the second's
	scenarioTxs       = 2
	scenarioForgeries = 0.3
)

// devnetScenario is a devnet serving the scenario on a loopback port, the
// store a follower syncs from it, and the ledger the test keeps of the
// same chain.
type devnetScenario struct {
	chain    *testchain.Chain
	d        *devnet.Devnet
	client   *scan.Client
	protocol rules.Protocol
	store    *db.Store
	path     string
	ledger   *ledger
}

// The store is judged for the demo protocol alone, as by an auditor watching
// it alone (the action tree's report is TestReportCountsByAction's).
func newDevnetScenario(t *testing.T) *devnetScenario {
	t.Helper()
	c := testchain.New(t, devnet.Config{Seed: scenarioSeed, Blocks: scenarioBlocks, TxsPerBlock: scenarioTxs,
		Scenario: &devnet.AsyncEmission{ForgeryRate: scenarioForgeries}})
	c.Protocols = c.Protocols[:1]
	store, path := testchain.OpenStore(t)
	return &devnetScenario{
		chain: c, d: c.Devnet, client: c.Client(t), protocol: c.Protocol,
		store: store, path: path, ledger: newLedger(c.Protocol.ParticipantTokenID),
	}
}

// syncTo has a follower connect the final chain up to height into the
// store, and the ledger read it.
func (s *devnetScenario) syncTo(t *testing.T, height uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s.chain.Sync(t, s.store, height)
	tip, ok, err := s.store.Tip(ctx)
	if err != nil || !ok || tip.Height != height || tip.ID != s.d.FinalID(height) {
		t.Fatalf("store tip %+v (%t, %v), want final block %d %s", tip, ok, err, height, s.d.FinalID(height))
	}
	s.ledger.readTo(t, ctx, s.client, s.d, height)
}

// ledger is the test's own account of the chain's tokens, block by block:
// the live boxes holding tokens, and what each transaction minted and
// burnt. Ergo lets a transaction mint only the token named after its first
// input and otherwise never raise a token's amount; the ledger checks it.
type ledger struct {
	participant ergo.Digest
	height      uint32
	live        map[ergo.Digest]*ledgerBox // unspent boxes holding tokens
	created     map[ergo.Digest]*ledgerBox // every box that held tokens
	minted      map[ergo.Digest]*big.Int
	mintedInto  map[ergo.Digest][]ergo.Digest // the boxes a token's mint put it in
	burnt       map[ergo.Digest]*big.Int
}

type ledgerBox struct {
	id     ergo.Digest
	height uint32
	value  uint64 // nanoERG
	tokens map[ergo.Digest]*big.Int
}

func newLedger(participant ergo.Digest) *ledger {
	return &ledger{participant: participant, live: map[ergo.Digest]*ledgerBox{}, created: map[ergo.Digest]*ledgerBox{},
		minted: map[ergo.Digest]*big.Int{}, mintedInto: map[ergo.Digest][]ergo.Digest{}, burnt: map[ergo.Digest]*big.Int{}}
}

// readTo reads the final blocks above the ledger's height up to height.
func (l *ledger) readTo(t *testing.T, ctx context.Context, c *scan.Client, d *devnet.Devnet, height uint32) {
	t.Helper()
	const batch = 32
	for l.height < height {
		var ids []ergo.Digest
		for h := l.height + 1; h <= min(height, l.height+batch); h++ {
			ids = append(ids, d.FinalID(h))
		}
		blocks, err := c.Blocks(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if b.Header.Height != l.height+1 {
				t.Fatalf("block %s at height %d, want %d", b.Header.ID, b.Header.Height, l.height+1)
			}
			l.height++
			for i := range b.Transactions {
				l.apply(t, &b.Transactions[i], l.height)
			}
		}
	}
}

func (l *ledger) apply(t *testing.T, tx *ergo.Transaction, height uint32) {
	t.Helper()
	in, out := map[ergo.Digest]*big.Int{}, map[ergo.Digest]*big.Int{}
	for _, i := range tx.Inputs {
		if b := l.live[i.BoxID]; b != nil {
			for id, n := range b.tokens {
				addAmount(in, id, n)
			}
			delete(l.live, i.BoxID)
		}
	}
	var outs []*ledgerBox
	for i := range tx.Outputs {
		o := &tx.Outputs[i]
		if len(o.Tokens) == 0 {
			continue
		}
		b := &ledgerBox{id: o.TrustedID(), height: height, value: o.Value, tokens: map[ergo.Digest]*big.Int{}}
		for _, tok := range o.Tokens {
			n := new(big.Int).SetUint64(tok.Amount)
			addAmount(b.tokens, tok.ID, n)
			addAmount(out, tok.ID, n)
		}
		outs = append(outs, b)
	}
	var mints ergo.Digest
	if len(tx.Inputs) > 0 {
		mints = tx.Inputs[0].BoxID
	}
	for id, n := range out {
		have := in[id]
		switch {
		case id == mints && have == nil:
			addAmount(l.minted, id, n)
			for _, b := range outs {
				if b.tokens[id] != nil {
					l.mintedInto[id] = append(l.mintedInto[id], b.id)
				}
			}
		case have == nil || have.Cmp(n) < 0:
			t.Fatalf("height %d: transaction %s raises token %s from %v to %s without minting it", height, tx.ID, id, have, n)
		}
	}
	for id, n := range in {
		if left := new(big.Int).Sub(n, zeroIfNil(out[id])); left.Sign() > 0 {
			addAmount(l.burnt, id, left)
		}
	}
	for _, b := range outs {
		l.live[b.id], l.created[b.id] = b, b
	}
}

func addAmount(m map[ergo.Digest]*big.Int, id [32]byte, n *big.Int) {
	if m[id] == nil {
		m[id] = new(big.Int)
	}
	m[id].Add(m[id], n)
}

func zeroIfNil(n *big.Int) *big.Int {
	if n == nil {
		return new(big.Int)
	}
	return n
}

// planted is what PROTOCOL.md §5 says a report of the chain up to a
// height must find, derived from the devnet's manifest and chain.
type planted struct {
	codes map[string]int // the reason codes the manifest declares, and how often
	// lineages: every emission lineage, by async token; failing: those
	// that break conservation, with their problems.
	lineages map[ergo.Digest]plantedLineage
	failing  map[ergo.Digest][]string
	// misplaced: the live boxes holding participant tokens where §5 allows
	// none, with the problem; the sweep's sums.
	misplaced                                   map[ergo.Digest]MisplacedBox
	live, funnel, emission, participant, astray *big.Int
	boxes                                       int
	// balanced: the lineages with a good mint whose tokens a planted case
	// moved (an escape, a supply leak, …), by case; they must pass.
	balanced map[string][]ergo.Digest
}

type plantedLineage struct {
	minted, held, burnt *big.Int
}

// plantedAt derives the conservation findings of the chain up to the
// ledger's height from the manifest and the ledger, by PROTOCOL.md §5 as
// conservation.go documents it: a lineage is the tokens its bootstrap (a
// transaction that mints an async token into a box the manifest says is
// an emission box) minted; every unit counts once, where it is — in a live
// box, whatever the box's class, or burnt — so tokens recorded as escaped
// count in the boxes they escaped to. On the chain held + burnt = minted
// for every token (Ergo makes tokens only by minting them), so the
// lineages that fail must be exactly those whose bootstrap the manifest
// declares emission.bad_mint; plantedAt checks that it finds them so.
func (s *devnetScenario) plantedAt(t *testing.T) *planted {
	t.Helper()
	l := s.ledger
	exps, err := s.d.Expectations(l.height)
	if err != nil {
		t.Fatal(err)
	}
	supply := new(big.Int).SetUint64(s.protocol.AsyncSupply)
	pl := &planted{codes: map[string]int{}, lineages: map[ergo.Digest]plantedLineage{},
		failing: map[ergo.Digest][]string{}, misplaced: map[ergo.Digest]MisplacedBox{}, balanced: map[string][]ergo.Digest{},
		live: new(big.Int), funnel: new(big.Int), emission: new(big.Int), participant: new(big.Int), astray: new(big.Int)}
	exps = slices.DeleteFunc(exps, func(e devnet.Expectation) bool { return e.Protocol != s.protocol.Name })
	class := map[ergo.Digest]devnet.Expectation{}
	badMint := map[ergo.Digest]bool{} // emission boxes declared bad_mint
	for _, e := range exps {
		for _, r := range e.Reasons {
			pl.codes[r]++
		}
		if e.Kind != devnet.VerdictCreated {
			continue
		}
		class[e.BoxID] = e
		if slices.Contains(e.Reasons, devnet.ReasonBadMint) {
			badMint[e.BoxID] = true
		}
	}

	// The lineages, and which the manifest says must fail.
	held := map[ergo.Digest]*big.Int{}
	for _, b := range l.live {
		for id, n := range b.tokens {
			addAmount(held, id, n)
		}
	}
	want := map[ergo.Digest][]string{}
	for token, boxes := range l.mintedInto {
		root := -1
		for i, b := range boxes {
			if class[b].Class == devnet.ClassEmission {
				root = i
			}
		}
		if root < 0 {
			continue // not an async token: the state NFT, the participant token, the traffic's tokens
		}
		pl.lineages[token] = plantedLineage{minted: l.minted[token], held: zeroIfNil(held[token]), burnt: zeroIfNil(l.burnt[token])}
		if badMint[boxes[root]] {
			want[token] = []string{ProblemBadMint}
		}
	}
	for token, ln := range pl.lineages {
		var problems []string
		if ln.minted.Cmp(supply) != 0 {
			problems = append(problems, ProblemBadMint)
		}
		if new(big.Int).Add(ln.held, ln.burnt).Cmp(ln.minted) != 0 {
			problems = append(problems, ProblemUnbalanced)
		}
		if problems != nil {
			pl.failing[token] = problems
		}
	}
	if !equalFindings(pl.failing, want) {
		t.Fatalf("at %d the chain breaks conservation in lineages %v; the manifest plants bad mints in %v", l.height, pl.failing, want)
	}
	// The cases that move a lineage's tokens without breaking
	// conservation, by the lineages they hit that must pass.
	for _, e := range exps {
		var what string
		switch {
		case e.Kind == devnet.VerdictSpent && slices.Contains(e.Reasons, devnet.ReasonEscaped):
			what = "escape"
		case slices.Contains(e.Reasons, devnet.ReasonSupplyLeak):
			what = "supply leak"
		case slices.Contains(e.Reasons, devnet.ReasonAmountMismatch):
			what = "amount mismatch"
		case slices.Contains(e.Reasons, devnet.ReasonOrphanToken):
			what = "orphan token"
		default:
			continue
		}
		if b := l.created[e.BoxID]; b != nil {
			for token := range b.tokens {
				if _, ok := pl.lineages[token]; ok && pl.failing[token] == nil {
					pl.balanced[what] = append(pl.balanced[what], token)
				}
			}
		}
	}

	// The participant tokens.
	for _, b := range l.live {
		n := b.tokens[s.protocol.ParticipantTokenID]
		if n == nil {
			continue
		}
		pl.boxes++
		pl.live.Add(pl.live, n)
		c := class[b.id].Class // "" for a box the manifest gives no class
		problem := ""
		switch {
		case c == devnet.ClassFunnel:
			pl.funnel.Add(pl.funnel, n)
		case c == devnet.ClassParticipant:
			pl.participant.Add(pl.participant, n)
		case c == devnet.ClassEmission && n.IsInt64() && n.Int64() == 1:
			pl.emission.Add(pl.emission, n)
		case c == devnet.ClassEmission:
			problem = MisplacedEmissionAmount
		case c == "":
			problem = MisplacedUnclassified
		default:
			problem = MisplacedClass
		}
		if problem == "" {
			continue
		}
		pl.astray.Add(pl.astray, n)
		verdict := class[b.id].Verdict
		pl.misplaced[b.id] = MisplacedBox{BoxID: b.id, Height: b.height, Value: amount(new(big.Int).SetUint64(b.value)), Amount: amount(n), Class: c, Verdict: verdict, Problem: problem}
	}

	// The scenario must have planted what the test is about (the demo
	// protocol has no action to build on another's result:
	// emitted.unverified_reference is the action tree's).
	for _, code := range devnet.Reasons() {
		if pl.codes[code] == 0 && code != devnet.ReasonEmittedUnverifiedReference {
			t.Fatalf("by height %d the devnet planted no %s: make the scenario longer", l.height, code)
		}
	}
	if len(pl.failing) == 0 || len(pl.misplaced) == 0 {
		t.Fatalf("by height %d the devnet planted %d failing lineages and %d misplaced participant boxes: make the scenario longer",
			l.height, len(pl.failing), len(pl.misplaced))
	}
	for _, what := range []string{"escape", "supply leak", "amount mismatch", "orphan token"} {
		if len(pl.balanced[what]) == 0 {
			t.Fatalf("by height %d the devnet planted no %s in a lineage with a good mint: make the scenario longer", l.height, what)
		}
	}
	return pl
}

func equalFindings(a, b map[ergo.Digest][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// TestReportOfTheDevnetScenario syncs the devnet's async-emission scenario,
// with forgeries planted, into a store, reports, syncs further and reports
// again. Each report's JSON file lists exactly the conservation failures
// and misplaced participant tokens the devnet planted, with the chain's
// amounts, and counts what the verdicts table holds; the second report's
// period is the verdicts made above the first report's tip.
func TestReportOfTheDevnetScenario(t *testing.T) {
	t.Parallel()
	s := newDevnetScenario(t)
	s.syncTo(t, scenarioFirst)
	dir := t.TempDir()
	clock := newFakeClock(reportTime)
	r := newReporter(t, s.store, dir, clock, s.protocol)

	res, err := r.Run(context.Background(), Chain{})
	if err != nil {
		t.Fatal(err)
	}
	first := readReport(t, res.Files[0])
	if first.Schema != Schema || !first.Period.First || first.Period.FromHeight != 1 || first.Period.ToHeight != scenarioFirst ||
		first.Period.FromTime != nil || first.Chain.TipHeight != scenarioFirst || first.Chain.TipID == nil ||
		*first.Chain.TipID != s.d.FinalID(scenarioFirst) {
		t.Fatalf("first report: period %+v, chain %+v", first.Period, first.Chain)
	}
	pl := s.plantedAt(t)
	checkPlanted(t, "first report", first, pl)
	all, reasons := countVerdicts(t, s.path, 0)
	p := onlyProtocol(t, first, s.protocol.Name)
	checkCounts(t, "first report, all time", p.Verdicts.AllTime, all, reasons)
	checkCounts(t, "first report, period", p.Verdicts.Period, all, reasons) // the first period is everything
	checkInvalidList(t, "first report", p, s.path, 0)
	checkSummary(t, "first report", first)
	t.Logf("first report at %d: %d verdicts (%d invalid), %d lineages (%d failing), %d participant boxes (%d misplaced)",
		scenarioFirst, p.Verdicts.AllTime.Total, p.Verdicts.AllTime.Invalid, len(p.Lineages),
		len(p.Conservation.FailingLineages), p.Conservation.Participant.Boxes, len(p.Conservation.Participant.MisplacedList))

	// More blocks, and a second report: its period is the heights above
	// the first report's tip.
	s.syncTo(t, scenarioBlocks)
	clock.Advance(6 * time.Hour)
	res2, err := r.Run(context.Background(), Chain{})
	if err != nil {
		t.Fatal(err)
	}
	second := readReport(t, res2.Files[0])
	if second.Period.First || second.Period.FromHeight != scenarioFirst+1 || second.Period.ToHeight != scenarioBlocks ||
		second.Period.FromTime == nil || !second.Period.FromTime.Equal(reportTime) || second.Chain.TipHeight != scenarioBlocks {
		t.Fatalf("second report: period %+v, chain %+v", second.Period, second.Chain)
	}
	pl2 := s.plantedAt(t)
	checkPlanted(t, "second report", second, pl2)
	all2, reasons2 := countVerdicts(t, s.path, 0)
	period2, periodReasons2 := countVerdicts(t, s.path, scenarioFirst)
	p2 := onlyProtocol(t, second, s.protocol.Name)
	checkCounts(t, "second report, all time", p2.Verdicts.AllTime, all2, reasons2)
	checkCounts(t, "second report, period", p2.Verdicts.Period, period2, periodReasons2)
	checkInvalidList(t, "second report", p2, s.path, scenarioFirst)
	checkSummary(t, "second report", second)

	// The period is what the store gained between the two reports.
	a, b := p.Verdicts.AllTime, p2.Verdicts.AllTime
	if d := p2.Verdicts.Period; d.Total == 0 || d.Total >= b.Total || d.Total != b.Total-a.Total ||
		d.Invalid != b.Invalid-a.Invalid || d.Verified != b.Verified-a.Verified || d.Spent != b.Spent-a.Spent {
		t.Errorf("second period %d verdicts (%d invalid, %d spent); all time %d then %d", d.Total, d.Invalid, d.Spent, a.Total, b.Total)
	}
	for class, c := range p2.Verdicts.Period.ByClass {
		if c.Verified != b.ByClass[class].Verified-a.ByClass[class].Verified || c.Invalid != b.ByClass[class].Invalid-a.ByClass[class].Invalid {
			t.Errorf("second period, class %s: %+v; all time %+v then %+v", class, c, a.ByClass[class], b.ByClass[class])
		}
	}
	for code, n := range p2.Verdicts.Period.ByReason {
		if n != b.ByReason[code]-a.ByReason[code] {
			t.Errorf("second period, %s: %d; all time %d then %d", code, n, a.ByReason[code], b.ByReason[code])
		}
	}
}

func onlyProtocol(t *testing.T, r *Report, name string) *ProtocolReport {
	t.Helper()
	if len(r.Protocols) != 1 || r.Protocols[0].Name != name {
		t.Fatalf("%d protocols, want %s alone", len(r.Protocols), name)
	}
	return &r.Protocols[0]
}

// checkPlanted compares a report's conservation sweep and lineages with
// what was planted.
func checkPlanted(t *testing.T, what string, r *Report, pl *planted) {
	t.Helper()
	p := &r.Protocols[0]
	c := p.Conservation
	got := map[ergo.Digest][]string{}
	for _, f := range c.FailingLineages {
		if _, dup := got[f.TokenID]; dup {
			t.Errorf("%s: lineage %s listed twice", what, f.TokenID)
		}
		got[f.TokenID] = f.Problems
		ln, ok := pl.lineages[f.TokenID]
		if !ok {
			continue // reported below
		}
		diff := new(big.Int).Add(ln.held, ln.burnt)
		diff.Sub(diff, sum(p.AsyncSupply))
		if f.Minted != amount(ln.minted) || f.Held != amount(ln.held) || f.Burnt != amount(ln.burnt) || f.Difference != amount(diff) {
			t.Errorf("%s: failing lineage %s minted %s held %s burnt %s difference %s; the chain: %s, %s, %s, %s",
				what, f.TokenID, f.Minted, f.Held, f.Burnt, f.Difference, ln.minted, ln.held, ln.burnt, diff)
		}
	}
	for token, problems := range pl.failing {
		if g, ok := got[token]; !ok {
			t.Errorf("%s: planted failure of lineage %s (%v) not listed", what, token, problems)
		} else if !slices.Equal(g, problems) {
			t.Errorf("%s: lineage %s fails for %v, planted %v", what, token, g, problems)
		}
	}
	for token, problems := range got {
		if _, ok := pl.failing[token]; !ok {
			t.Errorf("%s: lineage %s listed failing (%v), not planted", what, token, problems)
		}
	}
	if c.LineagesChecked != len(pl.lineages) || len(p.Lineages) != len(pl.lineages) {
		t.Errorf("%s: %d lineages checked, %d listed; the chain has %d", what, c.LineagesChecked, len(p.Lineages), len(pl.lineages))
	}
	for _, l := range p.Lineages {
		ln, ok := pl.lineages[l.TokenID]
		switch {
		case !ok:
			t.Errorf("%s: lineage %s is not one the chain has", what, l.TokenID)
		case l.Minted != amount(ln.minted) || l.Held != amount(ln.held) || l.Burnt != amount(ln.burnt):
			t.Errorf("%s: lineage %s minted %s held %s burnt %s; the chain: %s, %s, %s", what, l.TokenID, l.Minted, l.Held, l.Burnt, ln.minted, ln.held, ln.burnt)
		case l.Conserved != (pl.failing[l.TokenID] == nil):
			t.Errorf("%s: lineage %s conserved %t", what, l.TokenID, l.Conserved)
		}
	}
	// Tokens that escaped, leaked or moved count where they went (see
	// conservation.go): those lineages pass.
	listed := map[ergo.Digest]Lineage{}
	for _, l := range p.Lineages {
		listed[l.TokenID] = l
	}
	for plant, tokens := range pl.balanced {
		for _, token := range tokens {
			l, ok := listed[token]
			if !ok || !l.Conserved || plant == "escape" && !(l.Closed && l.Broken) {
				t.Errorf("%s: lineage %s, hit by a planted %s: listed %t, conserved %t, closed %t, broken %t",
					what, token, plant, ok, l.Conserved, l.Closed, l.Broken)
			}
		}
	}

	m := c.Participant
	gotBoxes := map[ergo.Digest]MisplacedBox{}
	for _, b := range m.MisplacedList {
		gotBoxes[b.BoxID] = b
		if w, ok := pl.misplaced[b.BoxID]; !ok {
			t.Errorf("%s: participant box %s listed misplaced (%+v), not planted", what, b.BoxID, b)
		} else if b != w {
			t.Errorf("%s: misplaced participant box %+v, planted %+v", what, b, w)
		}
	}
	for id, w := range pl.misplaced {
		if _, ok := gotBoxes[id]; !ok {
			t.Errorf("%s: planted misplaced participant box %+v not listed", what, w)
		}
	}
	if m.Boxes != pl.boxes || m.Live != amount(pl.live) || m.InFunnel != amount(pl.funnel) || m.InEmission != amount(pl.emission) ||
		m.InParticipant != amount(pl.participant) || m.Misplaced != amount(pl.astray) {
		t.Errorf("%s: participant sweep %+v; the chain: %d boxes, %s live, %s in the funnel, %s in emission boxes, %s in participant boxes, %s misplaced",
			what, m, pl.boxes, pl.live, pl.funnel, pl.emission, pl.participant, pl.astray)
	}
	if c.OK || r.Summary.Conserved || r.Summary.FailingLineages != len(pl.failing) ||
		r.Summary.MisplacedParticipantBoxes != len(pl.misplaced) || r.Summary.Lineages != len(pl.lineages) {
		t.Errorf("%s: conservation ok %t, summary %+v; planted %d failing lineages of %d, %d misplaced boxes",
			what, c.OK, r.Summary, len(pl.failing), len(pl.lineages), len(pl.misplaced))
	}
}

// checkInvalidList compares the period's invalid verdicts the report lists
// with the verdicts table's above since.
func checkInvalidList(t *testing.T, what string, p *ProtocolReport, path string, since uint32) {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT hex(box_id), kind, class, height, reasons FROM verdicts
		WHERE verdict = 'invalid' AND height > ?`, since)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var want []string
	for rows.Next() {
		var box, kind, class, reasons string
		var height uint32
		if err := rows.Scan(&box, &kind, &class, &height, &reasons); err != nil {
			t.Fatal(err)
		}
		var codes []string
		if err := json.Unmarshal([]byte(reasons), &codes); err != nil {
			t.Fatal(err)
		}
		want = append(want, invalidLine(strings.ToLower(box), kind, class, height, codes))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range p.Invalid {
		codes := make([]string, len(b.Reasons))
		for i, r := range b.Reasons {
			codes[i] = r.Code
			if r.Sentence == "" || r.Sentence != rules.Reason(r.Code).Sentence() {
				t.Errorf("%s: box %s, code %s: sentence %q", what, b.BoxID, r.Code, r.Sentence)
			}
		}
		got = append(got, invalidLine(b.BoxID.String(), b.Kind, b.Class, b.Height, codes))
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(got, want) || p.InvalidTotal != int64(len(want)) {
		t.Errorf("%s: %d invalid verdicts listed (total %d), the table has %d above %d", what, len(got), p.InvalidTotal, len(want), since)
	}
}

func invalidLine(box, kind, class string, height uint32, codes []string) string {
	slices.Sort(codes)
	return fmt.Sprintf("%s %s %s at %d: %v", kind, class, box, height, codes)
}

// checkSummary checks a report's summary against its protocols.
func checkSummary(t *testing.T, what string, r *Report) {
	t.Helper()
	p := &r.Protocols[0]
	s := r.Summary
	if s.Verdicts != p.Verdicts.Period.Total || s.Invalid != p.Verdicts.Period.Invalid ||
		s.VerdictsAllTime != p.Verdicts.AllTime.Total || s.InvalidAllTime != p.Verdicts.AllTime.Invalid ||
		s.TipHeight != r.Chain.TipHeight || !samePeriod(s.Period, r.Period) || len(s.Files) != 2 {
		t.Errorf("%s: summary %+v; period %+v, verdicts %+v", what, s, r.Period, p.Verdicts)
	}
}

func samePeriod(a, b Period) bool {
	sameTime := (a.FromTime == nil) == (b.FromTime == nil) && (a.FromTime == nil || a.FromTime.Equal(*b.FromTime))
	return a.FromHeight == b.FromHeight && a.ToHeight == b.ToHeight && a.First == b.First && a.ToTime.Equal(b.ToTime) && sameTime
}

// TestReportCountsByAction: a report of both of the devnet's protocols
// counts the action tree's results by action, as the verdicts table holds
// them (read with SQL of the test's own), each action of the tree's
// section listed in its order, its results all counted under one; the
// demo protocol has no action. The HTML page shows the counts.
func TestReportCountsByAction(t *testing.T) {
	t.Parallel()
	const blocks = 160
	c := testchain.New(t, devnet.Config{Seed: 3, Blocks: blocks, TxsPerBlock: 2, Scenario: &devnet.AsyncEmission{ForgeryRate: 0.3}})
	store, path := testchain.OpenStore(t)
	c.Sync(t, store, blocks)
	r := newReporter(t, store, t.TempDir(), newFakeClock(reportTime), c.Protocols...)
	res, err := r.Run(context.Background(), Chain{})
	if err != nil {
		t.Fatal(err)
	}
	rep := readReport(t, res.Files[0])
	if len(rep.Protocols) != 2 || rep.Protocols[0].Name != devnet.AsyncEmissionProtocol || rep.Protocols[1].Name != devnet.TreeProtocol {
		t.Fatalf("protocols %+v", rep.Protocols)
	}
	if demo := rep.Protocols[0]; len(demo.Actions) != 0 || len(demo.Verdicts.AllTime.ByAction) != 0 {
		t.Errorf("the demo protocol has actions %v, counts %v", demo.Actions, demo.Verdicts.AllTime.ByAction)
	}
	tree := rep.Protocols[1]
	want := []string{devnet.ActionObserve, devnet.ActionQuote, devnet.ActionAggregate, devnet.ActionSettle}
	if !slices.Equal(tree.Actions, want) {
		t.Errorf("actions %v, want %v", tree.Actions, want)
	}
	// Each template key with its hash, saying its convention.
	if got, want := tree.Templates["action[2].emitted_template"], c.Protocols[1].Actions[2].EmittedTemplate.String(); got != want ||
		!strings.HasPrefix(got, "sha256:") || len(tree.Templates) != 2+len(tree.Actions) {
		t.Errorf("the tree's templates %v: action[2]'s %q, want %q", tree.Templates, got, want)
	}

	conn, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT action, verdict, count(*) FROM verdicts WHERE protocol = ? AND action IS NOT NULL GROUP BY 1, 2`, devnet.TreeProtocol)
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]ClassCount{}
	for _, a := range want {
		table[a] = ClassCount{}
	}
	var results int64
	for rows.Next() {
		var action, verdict string
		var n int64
		if err := rows.Scan(&action, &verdict, &n); err != nil {
			t.Fatal(err)
		}
		cc := table[action]
		if verdict == rules.StatusVerified {
			cc.Verified += n
		} else {
			cc.Invalid += n
		}
		table[action] = cc
		results += n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	got := tree.Verdicts.AllTime
	emitted := got.ByClass[string(rules.ClassEmitted)]
	if !maps.Equal(got.ByAction, table) || !maps.Equal(tree.Verdicts.Period.ByAction, table) ||
		results != emitted.Verified+emitted.Invalid || table[devnet.ActionSettle].Verified == 0 {
		t.Errorf("by action %v (period %v), the table %v; %d results, %+v emitted", got.ByAction, tree.Verdicts.Period.ByAction, table, results, emitted)
	}
	page, err := os.ReadFile(res.Files[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), "Results by action") || !strings.Contains(string(page), "<td>settle</td>") {
		t.Error("the HTML page shows no counts by action")
	}
}
