package devnet

import (
	"bytes"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// relay is a small Scenario: at height 3 user 5 mints a token into a kept
// box, which every fourth block moves on, reading one of user 7's boxes as a
// data input and passing the height as a context variable. At height 2 it
// checks that invalid transactions are refused.
type relay struct {
	refused atomic.Bool // observed by the test, never read by Block
}

var relayTag = []byte("relay")

func (r *relay) Block(b *BlockBuilder) error {
	h := b.Height()
	_, tree5 := b.User(5)
	constant := func(t sigma.Type, v sigma.Value) []byte {
		c, err := sigma.Constant{Type: t, Value: v}.Bytes()
		if err != nil {
			panic(err)
		}
		return c
	}
	tag := constant(sigma.CollOf(sigma.TByte), relayTag)
	fee := sigma.BoxCandidate{Value: minFee, ErgoTree: FeeTree(), CreationHeight: h}
	kept := b.Kept()
	switch {
	case h == 2:
		src := b.Wallet(5)[0]
		pay := func(c sigma.BoxCandidate) []Output { return []Output{{BoxCandidate: c}} }
		in := []Input{{Box: src, Signed: true}}
		refused := true
		for _, bad := range []Tx{
			{Inputs: in, Outputs: pay(sigma.BoxCandidate{Value: src.Value + 1, ErgoTree: tree5, CreationHeight: h})},                          // unbalanced
			{Inputs: in, Outputs: pay(sigma.BoxCandidate{Value: src.Value, ErgoTree: tree5, CreationHeight: h + 1})},                          // from the future
			{Inputs: in, Outputs: pay(sigma.BoxCandidate{Value: src.Value, ErgoTree: []byte{0x10, 0x01}, CreationHeight: h})},                 // not a tree
			{Inputs: in, Outputs: pay(sigma.BoxCandidate{Value: src.Value, ErgoTree: tree5, CreationHeight: h, Registers: [][]byte{{0xff}}})}, // not a register
			{Inputs: in, Outputs: pay(sigma.BoxCandidate{Value: src.Value, ErgoTree: tree5, CreationHeight: h,
				Tokens: []sigma.Token{{ID: [32]byte{1}, Amount: 5}}})}, // tokens from nowhere
			{Inputs: []Input{{Box: src, Extension: []ergo.ContextVar{{Key: 1, Value: tag}, {Key: 1, Value: tag}}}},
				Outputs: pay(sigma.BoxCandidate{Value: src.Value, ErgoTree: tree5, CreationHeight: h})}, // a variable twice
			{Inputs: append(in, in...), Outputs: pay(sigma.BoxCandidate{Value: 2 * src.Value, ErgoTree: tree5, CreationHeight: h})}, // a box spent twice
		} {
			if _, err := b.Add(bad); !errors.Is(err, ErrInvalidTx) {
				refused = false
			}
		}
		r.refused.Store(refused)
	case h == 3:
		src := b.Wallet(5)[0]
		const value = 1_000_000_000
		_, err := b.Add(Tx{
			Inputs: []Input{{Box: src, Signed: true}},
			Outputs: []Output{
				{BoxCandidate: sigma.BoxCandidate{Value: value, ErgoTree: tree5, CreationHeight: h,
					Tokens: []sigma.Token{{ID: src.ID, Amount: 1000}}, Registers: [][]byte{tag}}, Keep: true},
				{BoxCandidate: sigma.BoxCandidate{Value: src.Value - value - minFee, ErgoTree: tree5, CreationHeight: h}},
				{BoxCandidate: fee},
			},
		})
		return err
	case len(kept) == 1 && h%4 == 0:
		k := kept[0]
		var data []*Box
		if w := b.Wallet(7); len(w) > 0 {
			data = w[:1]
		}
		_, err := b.Add(Tx{
			Inputs:     []Input{{Box: k, Extension: []ergo.ContextVar{{Key: 0, Value: constant(sigma.TInt, int32(h))}}}},
			DataInputs: data,
			Outputs: []Output{
				{BoxCandidate: sigma.BoxCandidate{Value: k.Value - minFee, ErgoTree: k.ErgoTree, CreationHeight: h,
					Tokens: k.Tokens, Registers: k.Registers}, Keep: true},
				{BoxCandidate: fee},
			},
		})
		return err
	}
	return nil
}

func TestScenario(t *testing.T) {
	const blocks = 40
	r := &relay{}
	d := newDevnet(t, Config{Seed: 12, Blocks: blocks, Scenario: r})
	n := serve(t, d)
	if !r.refused.Load() {
		t.Fatal("an invalid transaction was not refused with ErrInvalidTx")
	}
	l := newLedger(t, d.gen.genesisBoxes())
	var relays []uint32 // heights of the blocks with a relay output
	raws := make([][]byte, blocks+1)
	for h := uint32(1); h <= blocks; h++ {
		b, raw := n.block(d.FinalID(h))
		l.apply(b)
		raws[h] = raw
		for _, tx := range b.Transactions {
			for _, o := range tx.Outputs {
				if len(o.Registers) == 1 && bytes.Contains(o.Registers[0], relayTag) {
					relays = append(relays, h)
				}
			}
		}
	}
	if len(relays) != 11 || relays[0] != 3 || relays[1] != 4 || relays[10] != 40 {
		t.Fatalf("relay outputs at heights %v, want 3 and every fourth block", relays)
	}
	if len(d.frontier.kept) != 1 {
		t.Fatalf("%d kept boxes at the end, want 1", len(d.frontier.kept))
	}
	other := serve(t, newDevnet(t, Config{Seed: 12, Blocks: blocks, Scenario: &relay{}, CacheBytes: 1, CheckpointEvery: 6}))
	for h := uint32(blocks); h >= 1; h-- {
		if _, raw := other.block(d.FinalID(h)); !bytes.Equal(raw, raws[h]) {
			t.Fatalf("block %d with the scenario rebuilds differently", h)
		}
	}
	if without := newDevnet(t, Config{Seed: 12, Blocks: 3}); without.FinalID(3) == d.FinalID(3) {
		t.Fatal("the scenario's transactions are not in the chain")
	}
}
