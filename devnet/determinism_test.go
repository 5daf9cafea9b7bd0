package devnet

import (
	"bytes"
	"testing"
	"time"
)

// TestSameSeedSameBlocks: two devnets of one seed serve byte-identical
// blocks, and another seed gives another chain.
func TestSameSeedSameBlocks(t *testing.T) {
	const blocks = 40
	a := serve(t, newDevnet(t, Config{Seed: 7, Blocks: blocks}))
	b := serve(t, newDevnet(t, Config{Seed: 7, Blocks: blocks}))
	c := newDevnet(t, Config{Seed: 8, Blocks: blocks})
	for h := uint32(1); h <= blocks; h++ {
		id := a.d.FinalID(h)
		if other := b.d.FinalID(h); other != id {
			t.Fatalf("height %d: ids %s and %s from one seed", h, id, other)
		}
		if c.FinalID(h) == id {
			t.Fatalf("height %d: seeds 7 and 8 give the same block %s", h, id)
		}
		_, ja := a.block(id)
		_, jb := b.block(id)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("height %d: the same block renders differently", h)
		}
	}
}

// TestFinalChainIgnoresScheduling: the final chain depends on the seed
// only, not on the reorgs, the block time or the tuning.
func TestFinalChainIgnoresScheduling(t *testing.T) {
	const blocks = 60
	base := newDevnet(t, Config{Seed: 11, Blocks: blocks})
	for _, cfg := range []Config{
		{Seed: 11, Blocks: blocks, BlockTime: time.Hour},
		{Seed: 11, Blocks: blocks, BlockTime: time.Hour, ReorgEvery: 7, ReorgDepth: 3},
		{Seed: 11, Blocks: blocks, BlockTime: time.Hour, ReorgEvery: 2, ReorgDepth: 5},
		{Seed: 11, Blocks: blocks, CheckpointEvery: 3, CacheBytes: 1},
	} {
		d := newDevnet(t, cfg)
		for d.Step() { // show every reorg: building alternates must not disturb the final chain
		}
		for h := uint32(1); h <= blocks; h++ {
			if got, want := d.FinalID(h), base.FinalID(h); got != want {
				t.Fatalf("%+v: final block %d is %s, want %s", cfg, h, got, want)
			}
		}
		if tipH, tip := d.Tip(); tipH != blocks || tip != base.FinalID(blocks) {
			t.Fatalf("%+v: tip %d %s", cfg, tipH, tip)
		}
	}
}
