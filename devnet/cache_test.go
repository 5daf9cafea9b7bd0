package devnet

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo"
)

// TestRebuiltBlocksAreByteIdentical: blocks rendered as they were generated
// (a devnet with a block time caches each as it is made) equal, byte for
// byte, the same blocks rebuilt from checkpoints after eviction, in any
// order, with any checkpoint spacing.
func TestRebuiltBlocksAreByteIdentical(t *testing.T) {
	const blocks = 60
	d := newDevnet(t, Config{Seed: 21, Blocks: blocks, BlockTime: time.Hour, CheckpointEvery: 16})
	for d.Step() {
	}
	n := serve(t, d)
	first := make([][]byte, blocks+1)
	for h := uint32(1); h <= blocks; h++ {
		if _, ok := d.cache.get(d.FinalID(h)); !ok {
			t.Fatalf("block %d was not cached as it was generated", h)
		}
		_, first[h] = n.block(d.FinalID(h))
	}

	d.cache = newBlockCache(1) // evict everything; nothing fits any more
	rng := rand.New(rand.NewPCG(1, 2))
	for _, h := range rng.Perm(blocks) {
		if _, again := n.block(d.FinalID(uint32(h + 1))); !bytes.Equal(again, first[h+1]) {
			t.Fatalf("block %d rebuilt after eviction differs", h+1)
		}
	}

	other := serve(t, newDevnet(t, Config{Seed: 21, Blocks: blocks, CheckpointEvery: 7, CacheBytes: 1}))
	for h := uint32(blocks); h >= 1; h-- {
		if _, rebuilt := other.block(d.FinalID(h)); !bytes.Equal(rebuilt, first[h]) {
			t.Fatalf("block %d rebuilt by another devnet differs", h)
		}
	}
}

// TestTinyCacheLongChain serves a 2000-block chain through a cache that
// holds a handful of blocks: every block is rebuilt, in batches and one by
// one, and each verifies, follows its parent and is the same every time.
// (TestChainVerifies checks a chain as a ledger; a rebuilt block is the
// block first generated, root for root, or the request fails.)
func TestTinyCacheLongChain(t *testing.T) {
	const blocks = 2000
	d := newDevnet(t, Config{Seed: 33, Blocks: blocks, TxsPerBlock: 3, CacheBytes: 64 << 10, CheckpointEvery: 64})
	n := serve(t, d)
	headers := n.chainSlice("?fromHeight=0&toHeight=2000")
	if len(headers) != blocks {
		t.Fatalf("chain slice of %d headers", len(headers))
	}
	raws := make(map[ergo.Digest][]byte, blocks)
	var parent ergo.Digest
	const batch = 100
	for lo := 0; lo < blocks; lo += batch {
		ids := make([]string, 0, batch)
		for _, h := range headers[lo : lo+batch] {
			ids = append(ids, h.ComputeID().String())
		}
		ask, _ := json.Marshal(ids)
		status, body := n.do(http.MethodPost, "/blocks/headerIds", string(ask))
		var answer []json.RawMessage
		if err := json.Unmarshal(body, &answer); status != 200 || err != nil || len(answer) != batch {
			t.Fatalf("POST /blocks/headerIds: %d, %d blocks, %v", status, len(answer), err)
		}
		for i, raw := range answer {
			b := verifyBlock(t, raw)
			id := b.Header.ComputeID()
			if want := headers[lo+i].ComputeID(); id != want || b.Header.ParentID != parent {
				t.Fatalf("answer %d of batch %d is not block %s, or does not follow %s", i, lo/batch, want, parent)
			}
			raws[id], parent = raw, id
		}
	}
	if blocksHeld, size := d.cache.stats(); size > 64<<10 {
		t.Fatalf("the cache holds %d blocks, %d bytes, over its budget", blocksHeld, size)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 40 {
		id := headers[rng.IntN(blocks)].ComputeID()
		if _, raw := n.block(id); !bytes.Equal(raw, raws[id]) {
			t.Fatalf("block %s differs when fetched again", id)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	d := newDevnet(t, Config{Seed: 8, Blocks: 50})
	st := d.frontier
	back, err := restore(st.snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.snapshot(), st.snapshot()) || back.height != 50 || back.size() != st.size() {
		t.Fatalf("restored state differs: %d boxes at %d, want %d at 50", back.size(), back.height, st.size())
	}
	for i, b := range st.wallets {
		if back.wallets[i].ID != b.ID || back.wallets[i].owner != b.owner {
			t.Fatalf("wallet box %d differs", i)
		}
	}
	if _, err := restore(st.snapshot()[:100]); err == nil {
		t.Fatal("a truncated checkpoint restores")
	}
}

func TestBlockCache(t *testing.T) {
	c := newBlockCache(10)
	id := func(b byte) ergo.Digest { return ergo.Digest{b} }
	c.put(id(1), []byte("aaaa"))
	c.put(id(2), []byte("bbbb"))
	c.get(id(1))                          // 1 is now the most recent
	c.put(id(3), []byte("cccc"))          // over budget: 2 goes
	c.put(id(4), []byte("far too large")) // larger than the budget: not kept
	var held []byte
	for _, b := range []byte{1, 2, 3, 4} {
		if _, ok := c.get(id(b)); ok {
			held = append(held, b)
		}
	}
	if n, size := c.stats(); !slices.Equal(held, []byte{1, 3}) || n != 2 || size != 8 {
		t.Fatalf("held %v (%d blocks, %d bytes), want [1 3]", held, n, size)
	}
	if b, _ := c.get(id(3)); !strings.EqualFold(string(b), "cccc") {
		t.Fatalf("got %q", b)
	}
}
