package devnet

import (
	"context"
	"testing"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
)

// headerChain is a chain of headers served by the devnet, as the rules
// read it.
type headerChain map[uint32]*ergo.Header

func (c headerChain) HeaderAt(_ context.Context, h uint32) (consensus.Summary, error) {
	x := c[h]
	return consensus.Summary{Height: x.Height, Timestamp: x.Timestamp, NBits: x.NBits, Version: x.Version}, nil
}

// TestChainObeysTheDevnetRules checks every header of a chain served over
// HTTP, the final chain and the competing branches its reorgs showed,
// against consensus.Devnet's rules: across the pre-EIP-37 epochs and the
// EIP-37 ones from height 513, with the difficulty each height requires.
func TestChainObeysTheDevnetRules(t *testing.T) {
	const blocks = 600
	d := newDevnet(t, Config{Seed: 11, Blocks: blocks, TxsPerBlock: 2, BlockTime: time.Hour, ReorgEvery: 97, ReorgDepth: 3})
	n := serve(t, d)
	v := consensus.NewValidator(consensus.Devnet(), consensus.Checkpoint{}, nil)
	ctx := context.Background()

	check := func(chain headerChain, h *ergo.Header) {
		t.Helper()
		id := h.ComputeID()
		var err error
		if h.Height == 1 {
			err = v.CheckGenesis(h, id)
		} else {
			p := chain[h.Height-1]
			err = v.CheckChild(ctx, h, id, p.ComputeID(), consensus.Summary{Height: p.Height, Timestamp: p.Timestamp, NBits: p.NBits, Version: p.Version}, chain)
		}
		if err != nil {
			t.Fatalf("height %d: %v", h.Height, err)
		}
	}
	final := headerChain{}
	branches := 0
	for d.Step() {
		tip, id := d.Tip()
		b, _ := n.block(id)
		if d.FinalID(tip) != id { // a competing branch is shown: check its blocks on their own chain
			branches++
			alt := headerChain{}
			for h := uint32(1); h <= tip; h++ {
				x, _ := n.block(n.idsAt(h)[0])
				alt[h] = &x.Header
			}
			for h := tip - 2; h <= tip; h++ {
				check(alt, alt[h])
			}
			continue
		}
		for h := uint32(len(final) + 1); h <= tip; h++ {
			x := &b.Header
			if h != tip {
				bx, _ := n.block(d.FinalID(h))
				x = &bx.Header
			}
			final[h] = x
			check(final, x)
		}
	}
	if len(final) != blocks || branches < 5 {
		t.Fatalf("%d final headers and %d branches checked", len(final), branches)
	}
}
