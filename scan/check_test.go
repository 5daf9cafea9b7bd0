package scan_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/scan"
)

// TestCheckRange verifies ranges of a devnet chain without a store: all
// good, then with a competing branch whose last block breaks the
// difficulty rule and one whose proof of work fails, each reported at its
// height while the rest of the range is checked.
func TestCheckRange(t *testing.T) {
	d, url := newDevnet(t, devnet.Config{Seed: seed, Blocks: 700, TxsPerBlock: 3, BlockTime: time.Hour})
	for h, _ := d.Tip(); h < 600; h, _ = d.Tip() {
		d.Step()
	}
	c := newClient(t, url, zerolog.Nop())
	ctx := context.Background()
	check := func(from, to uint32) *scan.RangeReport {
		t.Helper()
		r, err := scan.CheckRange(ctx, c, scan.CheckConfig{Params: consensus.Devnet(), From: from, To: to, Batch: 7, Ahead: 3})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// From genesis, and from the middle (the difficulty windows below 300,
	// pre-EIP-37, and below 550, EIP-37, are fetched and linked).
	for _, r := range []struct{ from, to uint32 }{{1, 600}, {300, 600}, {550, 600}} {
		if got := check(r.from, r.to); len(got.Bad) != 0 || got.Blocks != int(r.to-r.from+1) {
			t.Fatalf("%d to %d: %d blocks, bad %v", r.from, r.to, got.Blocks, got.Bad)
		}
	}
	for _, rule := range []consensus.Rule{consensus.RuleDifficulty, consensus.RulePoW} {
		tip, err := d.ShowBranch(ctx, devnet.Branch{Fork: 595, Length: 4, Break: rule})
		if err != nil {
			t.Fatal(err)
		}
		got := check(580, 599)
		if len(got.Bad) != 1 || got.Bad[0].Height != 599 || got.Bad[0].ID != tip || !errors.Is(got.Bad[0].Err, rule) {
			t.Fatalf("breaking %s: bad %+v, want block %s at 599", rule, got.Bad, tip)
		}
		d.ShowFinal()
	}
	if _, err := scan.CheckRange(ctx, c, scan.CheckConfig{Params: consensus.Devnet(), From: 590, To: 650}); err == nil {
		t.Fatal("a range above the node's tip checked")
	}
}
