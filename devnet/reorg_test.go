package devnet

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo"
)

// TestReorgTimeline steps through a chain with a reorg every 7 blocks, 3
// deep, and checks at each step what a scanner sees: /info, /blocks/at and
// the chain slice agree with Tip; a competing branch appears at each
// multiple of 7, its blocks verify and fork from the final block 3 below;
// the next step is a 3-deep reorg back to the final chain one block
// higher; alternates stay fetchable; and the end is the final chain.
func TestReorgTimeline(t *testing.T) {
	const (
		blocks = 40
		every  = 7
		depth  = 3
	)
	d := newDevnet(t, Config{Seed: 5, Blocks: blocks, BlockTime: time.Hour, ReorgEvery: every, ReorgDepth: depth})
	n := serve(t, d)

	if info := n.info(); info.FullHeight != 0 || !info.BestFullHeaderID.IsZero() {
		t.Fatalf("before the first step /info says %+v", info)
	}
	var (
		alternates []ergo.Digest // every alternate shown
		inReorg    uint32        // the height of the competing branch shown, or 0
		prev       uint32
		events     int
	)
	for d.Step() {
		tipH, tip := d.Tip()
		info := n.info()
		if info.FullHeight != tipH || info.BestFullHeaderID != tip || info.HeadersHeight != tipH || info.BestHeaderID != tip {
			t.Fatalf("tip %d %s, /info says %d %s", tipH, tip, info.FullHeight, info.BestFullHeaderID)
		}
		if ids := n.idsAt(tipH); ids[0] != tip {
			t.Fatalf("tip %d %s, /blocks/at says %v", tipH, tip, ids)
		}
		if slice := n.chainSlice(fmt.Sprintf("?fromHeight=%d&toHeight=%d", max(int(tipH)-8, 0), tipH)); slice[len(slice)-1].ComputeID() != tip {
			t.Fatalf("tip %d: the chain slice ends elsewhere", tipH)
		}
		switch {
		case inReorg != 0:
			// Back to the final chain, one block higher: a reorg of depth+1
			// blocks replacing depth.
			if want := min(inReorg+1, blocks); tipH != want || tip != d.FinalID(want) {
				t.Fatalf("after the branch at %d: tip %d %s, want final block %d", inReorg, tipH, tip, want)
			}
			for h := uint32(1); h <= tipH; h++ {
				ids := n.idsAt(h)
				if ids[0] != d.FinalID(h) {
					t.Fatalf("height %d: best is %s, want the final block", h, ids[0])
				}
				if h > inReorg-depth && h <= inReorg && (len(ids) < 2 || !slices.Contains(alternates, ids[len(ids)-1])) {
					t.Fatalf("height %d: /blocks/at %v does not list the alternate", h, ids)
				}
			}
			inReorg = 0
		case tipH%every == 0 && tipH > depth:
			events++
			if tipH != prev+1 {
				t.Fatalf("the branch at %d came after tip %d", tipH, prev)
			}
			fork := tipH - depth
			if status, _ := n.do(http.MethodGet, "/blocks/"+d.FinalID(tipH).String(), ""); status != http.StatusNotFound {
				t.Fatalf("final block %d, never shown, is served: %d", tipH, status)
			}
			parent := d.FinalID(fork)
			for h := fork + 1; h <= tipH; h++ {
				ids := n.idsAt(h)
				if ids[0] == d.FinalID(h) {
					t.Fatalf("height %d of the branch at %d is the final block", h, tipH)
				}
				b, _ := n.block(ids[0])
				if b.Header.ParentID != parent || b.Header.Height != h {
					t.Fatalf("alternate %d does not follow %s", h, parent)
				}
				wantIDs := 1
				if h < tipH {
					wantIDs = 2 // the final block, shown before, is still held
				}
				if len(ids) != wantIDs {
					t.Fatalf("height %d of the branch: /blocks/at %v", h, ids)
				}
				parent = ids[0]
				alternates = append(alternates, ids[0])
			}
			for h := uint32(1); h <= fork; h++ {
				if ids := n.idsAt(h); ids[0] != d.FinalID(h) {
					t.Fatalf("height %d below the fork at %d: %v", h, fork, ids)
				}
			}
			inReorg = tipH
		default:
			if tipH != prev+1 || tip != d.FinalID(tipH) {
				t.Fatalf("step after %d: tip %d %s, want final block %d", prev, tipH, tip, prev+1)
			}
		}
		prev = tipH
	}
	if !d.Done() || events != 5 {
		t.Fatalf("done %v after %d reorgs, want 5", d.Done(), events)
	}
	for h := uint32(1); h <= blocks; h++ {
		if ids := n.idsAt(h); ids[0] != d.FinalID(h) {
			t.Fatalf("at the end, height %d is %s, not the final block", h, ids[0])
		}
	}
	for _, id := range alternates {
		n.block(id) // still served, and still verifying
	}
	if got := heights(n.chainSlice("?fromHeight=0&toHeight=40")); len(got) != blocks || got[0] != 1 {
		t.Fatalf("final chain slice %v", got)
	}
}

// TestReorgAtTheLastBlock: no branch is shown at the last height, whose
// final block could not be heavier than a branch there.
func TestReorgAtTheLastBlock(t *testing.T) {
	d := newDevnet(t, Config{Seed: 9, Blocks: 6, BlockTime: time.Hour, ReorgEvery: 3, ReorgDepth: 2})
	var tips []uint32
	for d.Step() {
		h, id := d.Tip()
		if id == d.FinalID(h) {
			tips = append(tips, h)
		} else {
			tips = append(tips, 100+h) // a competing branch's tip
		}
	}
	if want := []uint32{1, 2, 103, 4, 5, 6}; !slices.Equal(tips, want) {
		t.Fatalf("tips %v, want %v", tips, want)
	}
	if !d.Done() || d.Step() {
		t.Fatal("stepping on past the end")
	}
}

// TestReorgReinclude: with ReorgReinclude a competing branch holds the
// final chain's transactions, in blocks of other ids.
func TestReorgReinclude(t *testing.T) {
	d := newDevnet(t, Config{Seed: 4, Blocks: 12, TxsPerBlock: 4, BlockTime: time.Hour, ReorgEvery: 5, ReorgDepth: 2, ReorgReinclude: true})
	n := serve(t, d)
	branches := 0
	for d.Step() {
		h, id := d.Tip()
		if id == d.FinalID(h) {
			continue
		}
		branches++
		var alts []*ergo.FullBlock
		for height := h - 1; height <= h; height++ {
			alt, _ := n.block(n.idsAt(height)[0])
			alts = append(alts, alt)
		}
		d.Step() // the final blocks are served once shown
		for i, alt := range alts {
			height := h - 1 + uint32(i)
			final, _ := n.block(d.FinalID(height))
			if alt.Header.ComputeID() == final.Header.ComputeID() {
				t.Fatalf("height %d: the branch's block is the final one", height)
			}
			if len(alt.Transactions) != len(final.Transactions) {
				t.Fatalf("height %d: %d transactions on the branch, %d on the final chain", height, len(alt.Transactions), len(final.Transactions))
			}
			for i := range alt.Transactions {
				if alt.Transactions[i].ComputeID() != final.Transactions[i].ComputeID() {
					t.Fatalf("height %d: transaction %d differs", height, i)
				}
			}
		}
	}
	if branches != 2 {
		t.Fatalf("%d branches shown, want 2", branches)
	}
}
