package report

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
)

// A synthetic protocol history, connected into a real store through
// ConnectBlock with a scripted judge: the verdicts and lineage steps are
// what the test writes down, so a report's every number can be checked
// against what was planted.

// scripted is a Judge that keeps every output and concludes, for each
// block, what the fixture wrote down for it.
type scripted map[ergo.Digest]*rules.Judgement

func (s scripted) JudgeBlock(_ context.Context, _ rules.State, b *ergo.FullBlock) (*rules.Judgement, error) {
	j := &rules.Judgement{Keep: make([][]bool, len(b.Transactions))}
	for i := range b.Transactions {
		j.Keep[i] = make([]bool, len(b.Transactions[i].Outputs))
		for k := range j.Keep[i] {
			j.Keep[i][k] = true
		}
	}
	if got := s[b.Header.ID]; got != nil {
		j.Verdicts, j.Steps = got.Verdicts, got.Steps
	}
	return j, nil
}

// p2pk is a well-formed ErgoTree: proveDlog of the secp256k1 generator.
var p2pk, _ = hex.DecodeString("0008cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")

func lbl(s string) ergo.Digest { return ergo.Hash([]byte(s)) }

const supply = math.MaxInt64

// chainBuilder builds blocks and the judgement of each.
type chainBuilder struct {
	t      testing.TB
	store  *db.Store
	judge  scripted
	height uint32
	parent ergo.Digest
	block  *ergo.FullBlock
	n      int
}

func newChainBuilder(t testing.TB, store *db.Store) *chainBuilder {
	c := &chainBuilder{t: t, store: store, judge: scripted{}, parent: lbl("parent of 1")}
	c.open()
	return c
}

func (c *chainBuilder) open() {
	c.height++
	id := lbl(fmt.Sprintf("block %d", c.height))
	c.block = &ergo.FullBlock{Header: ergo.Header{ID: id, HasID: true, Version: 3, NBits: 0x01020000, ParentID: c.parent, Height: c.height,
		Timestamp: 1_795_000_000_000 + uint64(c.height)*120_000}}
	c.judge[id] = &rules.Judgement{}
}

// next connects the block being built and opens the next one.
func (c *chainBuilder) next() {
	c.t.Helper()
	if err := c.store.ConnectBlock(context.Background(), c.block, c.judge); err != nil {
		c.t.Fatalf("connect %d: %v", c.height, err)
	}
	c.parent = c.block.Header.ID
	c.open()
}

// skip connects empty blocks up to height h (exclusive).
func (c *chainBuilder) skip(h uint32) {
	for c.height < h {
		c.next()
	}
}

type output struct {
	tokens []sigma.Token
}

func holds(ts ...any) output {
	var o output
	for i := 0; i < len(ts); i += 2 {
		o.tokens = append(o.tokens, sigma.Token{ID: ts[i].(ergo.Digest), Amount: ts[i+1].(uint64)})
	}
	return o
}

// tx adds a transaction spending ins and creating outs; it returns the
// output ids.
func (c *chainBuilder) tx(ins []ergo.Digest, outs ...output) (ergo.Digest, []ergo.Digest) {
	c.n++
	tx := ergo.Transaction{ID: lbl(fmt.Sprintf("tx %d", c.n)), HasID: true}
	for _, in := range ins {
		tx.Inputs = append(tx.Inputs, ergo.Input{BoxID: in})
	}
	var ids []ergo.Digest
	for k, o := range outs {
		var b ergo.Box
		b.Value, b.ErgoTree, b.CreationHeight, b.Tokens = 1_000_000, p2pk, c.height, o.tokens
		b.TxID, b.Index = tx.ID, uint16(k)
		b.BoxID, b.HasBoxID = lbl(fmt.Sprintf("tx %d out %d", c.n, k)), true
		tx.Outputs = append(tx.Outputs, b)
		ids = append(ids, b.BoxID)
	}
	c.block.Transactions = append(c.block.Transactions, tx)
	return tx.ID, ids
}

func (c *chainBuilder) verdict(kind rules.Kind, tx, box ergo.Digest, class rules.Class, lineage *ergo.Digest, reasons ...rules.Reason) {
	j := c.judge[c.block.Header.ID]
	j.Verdicts = append(j.Verdicts, rules.Verdict{Protocol: "demo", Kind: kind, Class: class, BoxID: box,
		Reasons: reasons, TxID: tx, TxIndex: len(c.block.Transactions) - 1, Lineage: lineage})
}

func (c *chainBuilder) step(tx, token, current ergo.Digest, minted, burnt uint64, broken, closed bool) {
	j := c.judge[c.block.Header.ID]
	j.Steps = append(j.Steps, rules.Step{LineageKey: rules.LineageKey{Protocol: "demo", Token: token}, TxID: tx,
		Lineage: rules.Lineage{Current: current, Broken: broken, Closed: closed}, Minted: minted, Burnt: burnt})
}

// sample is a store holding a synthetic history of protocol "demo", and
// what it planted.
type sample struct {
	store    *db.Store
	path     string // the store's file
	protocol rules.Protocol
	// failing lineages, with their problems; misplaced participant boxes,
	// with theirs.
	failing   map[ergo.Digest][]string
	misplaced map[ergo.Digest]string
	lineages  int
	// builder connects more blocks (it holds the next one open).
	builder *chainBuilder
}

// newSample builds the sample history (about 120 blocks): a funnel and a
// state box, ten user lineages that bootstrap and emit, burns, and one of
// each conservation failure the sweep knows, among invalid verdicts of
// several codes.
//
// midway, when given, is called once the blocks up to height 64 are
// connected (before the failure at 72, after those below it).
func newSample(t testing.TB, midway ...func(*sample)) *sample {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auditor.db")
	store, err := db.Open(context.Background(), path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s := &sample{
		store: store,
		path:  path,
		protocol: rules.Protocol{Name: "demo", ParticipantTokenID: lbl("participant token"), StateNFTID: lbl("state nft"),
			AsyncSupply: supply, StartHeight: 1},
		failing:   map[ergo.Digest][]string{},
		misplaced: map[ergo.Digest]string{},
	}
	P, S := s.protocol.ParticipantTokenID, s.protocol.StateNFTID
	c := newChainBuilder(t, store)

	// Height 1: the deployment.
	funnelTokens := uint64(1000)
	tx, out := c.tx(nil, holds(S, uint64(1)))
	c.verdict(rules.KindCreated, tx, out[0], rules.ClassState, nil)
	tx, out = c.tx(nil, holds(P, funnelTokens))
	c.verdict(rules.KindCreated, tx, out[0], rules.ClassFunnel, nil)
	funnel := out[0]
	c.next()

	type lineage struct {
		token, box ergo.Digest
		balance    uint64
		emitted    []ergo.Digest
		amounts    []uint64
	}
	var open []*lineage
	bootstrap := func(n int, participants uint64, minted uint64, reasons ...rules.Reason) *lineage {
		funnelTokens -= participants
		s.lineages++
		token := lbl(fmt.Sprintf("async %d", n))
		tx, out := c.tx([]ergo.Digest{funnel}, holds(P, funnelTokens), holds(P, participants, token, minted))
		c.verdict(rules.KindCreated, tx, out[0], rules.ClassFunnel, nil)
		c.verdict(rules.KindCreated, tx, out[1], rules.ClassEmission, &token, reasons...)
		c.step(tx, token, out[1], minted, 0, len(reasons) > 0, false)
		funnel = out[0]
		return &lineage{token: token, box: out[1], balance: minted}
	}
	emit := func(l *lineage, amount uint64, reasons ...rules.Reason) {
		l.balance -= amount
		tx, out := c.tx([]ergo.Digest{l.box}, holds(P, uint64(1), l.token, l.balance), holds(l.token, amount))
		c.verdict(rules.KindCreated, tx, out[0], rules.ClassEmission, &l.token)
		c.verdict(rules.KindCreated, tx, out[1], rules.ClassEmitted, &l.token, reasons...)
		c.step(tx, l.token, out[0], 0, 0, false, false)
		l.box = out[0]
		l.emitted, l.amounts = append(l.emitted, out[1]), append(l.amounts, amount)
	}
	for h := uint32(2); h <= 120; h++ {
		c.skip(h)
		if h == 65 {
			for _, f := range midway {
				f(s)
			}
		}
		switch {
		case h == 40: // a bad mint
			l := bootstrap(1000, 1, 5_000_000, rules.ReasonBadMint, rules.ReasonBadBootstrap)
			s.failing[l.token] = []string{ProblemBadMint}
		case h == 47: // an emission box with two participant tokens
			l := bootstrap(1001, 2, supply, rules.ReasonParticipantAmount, rules.ReasonBadBootstrap)
			s.misplaced[l.box] = MisplacedEmissionAmount
		case h == 55: // a participant token moved into an emitted box
			l := open[0]
			tx, out := c.tx([]ergo.Digest{l.emitted[0]}, holds(l.token, l.amounts[0], P, uint64(1)))
			c.verdict(rules.KindCreated, tx, out[0], rules.ClassEmitted, &l.token, rules.ReasonNotFromEmission)
			l.emitted[0] = out[0]
			s.misplaced[out[0]] = MisplacedClass
		case h == 61: // a participant token in a box no verdict classified
			_, out := c.tx(nil, holds(P, uint64(1)))
			s.misplaced[out[0]] = MisplacedUnclassified
		case h == 66: // a participant box (bad_bootstrap: not misplaced)
			funnelTokens -= 3
			tx, out := c.tx([]ergo.Digest{funnel}, holds(P, funnelTokens), holds(P, uint64(3)))
			c.verdict(rules.KindCreated, tx, out[0], rules.ClassFunnel, nil)
			c.verdict(rules.KindCreated, tx, out[1], rules.ClassParticipant, nil, rules.ReasonBadBootstrap)
			funnel = out[0]
		case h == 72: // tokens that vanish without the journal's knowing
			l := open[1]
			c.tx([]ergo.Digest{l.emitted[0]}, holds())
			s.failing[l.token] = []string{ProblemUnbalanced}
		case h == 80: // a burn the journal records
			l := open[2]
			tx, _ := c.tx([]ergo.Digest{l.emitted[0]}, holds())
			c.step(tx, l.token, l.box, 0, l.amounts[0], false, false)
		case h == 90: // an escape: the emission box spent, its balance out
			l := open[3]
			tx, out := c.tx([]ergo.Digest{l.box}, holds(l.token, l.balance), holds(P, uint64(1)))
			c.verdict(rules.KindSpent, tx, l.box, rules.ClassEmission, &l.token, rules.ReasonEscaped)
			c.verdict(rules.KindCreated, tx, out[0], rules.ClassEmitted, &l.token, rules.ReasonInvalidEmission, rules.ReasonUnknownToken)
			c.verdict(rules.KindCreated, tx, out[1], rules.ClassParticipant, nil)
			c.step(tx, l.token, l.box, 0, 0, true, true)
			open = append(open[:3], open[4:]...)
		case h%9 == 2 && len(open) < 10: // a bootstrap
			open = append(open, bootstrap(int(h), 1, supply))
		default: // emissions
			for i, l := range open {
				if (int(h)+i)%4 == 0 {
					var reasons []rules.Reason
					switch (int(h) + i) % 28 {
					case 0:
						reasons = []rules.Reason{rules.ReasonMissingDataInput}
					case 12:
						reasons = []rules.Reason{rules.ReasonStaleState}
					}
					emit(l, uint64(1+i)*1_000_000_000_000+uint64(h)*7_777_777, reasons...)
				}
			}
		}
	}
	c.next()
	s.builder = c
	return s
}
