package devnet

import (
	"fmt"
	"slices"
	"testing"

	"github.com/async-emission/auditor/ergo"
)

// TestChainVerifies fetches every block of a 300-block chain over HTTP, as
// a scanner would, and checks that each verifies (ids, roots, PoW), links to
// its parent, and that the chain is a valid ledger showing the features it
// is made to show.
func TestChainVerifies(t *testing.T) {
	const blocks = 300
	d := newDevnet(t, Config{Seed: 42, Blocks: blocks, TxsPerBlock: 10})
	n := serve(t, d)

	info := n.info()
	if info.FullHeight != blocks || info.HeadersHeight != blocks || info.Network != "devnet" {
		t.Fatalf("/info: %+v", info)
	}
	l := newLedger(t, d.gen.genesisBoxes())
	var parent ergo.Digest
	for h := uint32(1); h <= blocks; h++ {
		ids := n.idsAt(h)
		if len(ids) != 1 {
			t.Fatalf("/blocks/at/%d: %v", h, ids)
		}
		b, _ := n.block(ids[0])
		if b.Header.Height != h || b.Header.ParentID != parent {
			t.Fatalf("block %d: height %d, parent %s, want parent %s", h, b.Header.Height, b.Header.ParentID, parent)
		}
		if b.Header.Version != blockVersion || b.Header.Timestamp <= 0 {
			t.Fatalf("block %d: header %+v", h, b.Header)
		}
		if h == 1 && len(b.Extension.Fields) != 0 || h > 1 && len(b.Extension.Fields) == 0 {
			t.Fatalf("block %d: %d extension fields", h, len(b.Extension.Fields))
		}
		var hdr ergo.Header
		if err := hdr.UnmarshalJSON(n.get(fmt.Sprintf("/blocks/%s/header", ids[0]))); err != nil || hdr.ComputeID() != ids[0] {
			t.Fatalf("/blocks/%s/header: %v", ids[0], err)
		}
		l.apply(b)
		parent = ids[0]
	}
	if info.BestFullHeaderID != parent || info.GenesisBlockID != d.FinalID(1) {
		t.Fatalf("/info names tip %s and genesis %s; the chain's are %s and %s", info.BestFullHeaderID, info.GenesisBlockID, parent, d.FinalID(1))
	}
	perBlock := float64(l.txs) / blocks
	t.Logf("%d transactions (%.1f a block), %d mints, %d burns, %d data inputs, %d context variables, registers %v, tree headers %v, %d templates",
		l.txs, perBlock, l.mints, l.burns, l.data, l.vars, l.regs, l.trees, len(l.templat))
	if perBlock < 8 || perBlock > 12 {
		t.Errorf("%.1f transactions a block, want about 10", perBlock)
	}
	if l.mints == 0 || l.data == 0 || l.vars == 0 {
		t.Errorf("mints %d, data inputs %d, context variables %d: want some of each", l.mints, l.data, l.vars)
	}
	for _, typ := range []string{"Long", "Int", "Coll[Byte]", "Coll[Long]", "GroupElement", "SigmaProp", "(Coll[Byte], Long)"} {
		if l.regs[typ] == 0 {
			t.Errorf("no register of type %s", typ)
		}
	}
	if l.trees[treeP2PK] == 0 || l.trees[treeSegregated] == 0 || l.trees[treeSegregatedSized] == 0 {
		t.Errorf("tree headers %v: want P2PK, segregated and sized segregated trees", l.trees)
	}
}

// TestGenesis checks the genesis boxes: the emission box is mainnet's, byte
// for byte, and block 1 spends both genesis boxes.
func TestGenesis(t *testing.T) {
	d := newDevnet(t, Config{Seed: 3, Blocks: 2})
	genesis := d.gen.genesisBoxes()
	if got := genesis[0].ID.String(); got != "b69575e11c5c43400bfead5976ee0d6245a1168396b2e2a4f384691f275d501c" {
		t.Fatalf("genesis emission box %s, want mainnet's", got)
	}
	b, _ := serve(t, d).block(d.FinalID(1))
	var spent []ergo.Digest
	for _, tx := range b.Transactions {
		for _, in := range tx.Inputs {
			spent = append(spent, in.BoxID)
		}
	}
	for _, g := range genesis {
		if !slices.Contains(spent, g.ID) {
			t.Errorf("block 1 does not spend genesis box %s", g.ID)
		}
	}
	if first := b.Transactions[0]; first.Inputs[0].BoxID != genesis[0].ID || len(first.Outputs) != 2 ||
		string(first.Outputs[0].ErgoTree) != string(emissionTree) || first.Outputs[1].Value != emissionAt(1) {
		t.Fatalf("block 1's first transaction is not the emission: %+v", first)
	}
}

func TestEmissionSchedule(t *testing.T) {
	for _, c := range []struct {
		height uint32
		want   uint64
	}{{1, 75e9}, {525_599, 75e9}, {525_600, 72e9}, {590_400, 69e9}, {2_080_800, 0}} {
		if got := emissionAt(c.height); got != c.want {
			t.Errorf("emissionAt(%d) = %d, want %d", c.height, got, c.want)
		}
	}
}
