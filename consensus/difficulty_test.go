package consensus

import (
	"context"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo/autolykos"
)

// summaries is a synthetic chain of epoch ends by height.
type summaries map[uint32]Summary

func (s summaries) HeaderAt(_ context.Context, h uint32) (Summary, error) {
	x, ok := s[h]
	if !ok {
		return Summary{}, fmt.Errorf("no header at %d", h)
	}
	return x, nil
}

func TestInterpolate(t *testing.T) {
	num := func(v int64) *big.Int { return new(big.Int).SetInt64(v) }
	for _, c := range []struct {
		name string
		xs   []int64
		ys   []int64
		e    int64
		want int64
	}{
		// One point: itself.
		{"one epoch", []int64{64}, []int64{7}, 32, 7},
		// y = x/16 through (32,2) and (64,4): at 96, 6.
		{"a rising line", []int64{32, 64}, []int64{2, 4}, 32, 6},
		// y = 6 − x/16: at 96, 0 (calculate then falls back to the initial difficulty).
		{"a falling line", []int64{32, 64}, []int64{4, 2}, 32, 0},
		// A constant: the constant.
		{"flat", []int64{16, 32, 48, 64}, []int64{9, 9, 9, 9}, 16, 9},
		// (1,1),(2,2),(3,4): b = 1.5, a = −2/3 → truncated: b·P = 1.5e9,
		// a = (7e9 − 9e9)/3/1e9 = −2e9/3 → −666666666 → /1e9 → 0 (toward
		// zero, not −1); at 4: 0 + 1.5e9·4/1e9 = 6.
		{"truncation toward zero", []int64{1, 2, 3}, []int64{1, 2, 4}, 1, 6},
	} {
		ys := make([]*big.Int, len(c.ys))
		for i, y := range c.ys {
			ys[i] = num(y)
		}
		if got := interpolate(c.xs, ys, c.e); got.Cmp(num(c.want)) != 0 {
			t.Errorf("%s: %s, want %d", c.name, got, c.want)
		}
	}
}

// TestDevnetDifficultyResponds runs the devnet's parameters over synthetic
// chains: epochs that last their length keep the difficulty, faster ones
// raise it, slower ones lower it, and under EIP-37 no epoch moves it more
// than ×1.5 or ÷2.
func TestDevnetDifficultyResponds(t *testing.T) {
	p := Devnet()
	interval := p.BlockInterval.Milliseconds()
	bits := func(d int64) uint32 { return autolykos.EncodeCompactBits(big.NewInt(d)) }
	// A chain whose epochs (of length e, ending at ends) each last speed ×
	// their nominal time, all at difficulty d.
	chain := func(e uint32, ends int, d int64, speed float64) (summaries, Summary) {
		s := summaries{}
		ts := uint64(1_600_000_000_000)
		var last Summary
		for i := 1; i <= ends; i++ {
			h := uint32(i) * e
			ts += uint64(float64(int64(e)*interval) * speed)
			last = Summary{Height: h, Timestamp: ts, NBits: bits(d), Version: 3}
			s[h] = last
		}
		return s, last
	}
	for _, c := range []struct {
		name      string
		e         uint32
		ends      int
		d         int64
		speed     float64
		cmp       int   // the required difficulty compared with d
		atMostPct int64 // with EIP-37, its bound in percent of d
	}{
		{"pre-EIP-37, on time", p.EpochLength, 8, 1000, 1, 0, 0},
		{"pre-EIP-37, twice as fast", p.EpochLength, 8, 1000, 0.5, 1, 0},
		{"pre-EIP-37, twice as slow", p.EpochLength, 8, 1000, 2, -1, 0},
		{"EIP-37, on time", p.EIP37EpochLength, 40, 1000, 1, 0, 0},
		{"EIP-37, ten times as fast", p.EIP37EpochLength, 40, 1000, 0.1, 1, 150},
		{"EIP-37, ten times as slow", p.EIP37EpochLength, 40, 1000, 10, -1, 50},
	} {
		s, parent := chain(c.e, c.ends, c.d, c.speed)
		got, err := RequiredDifficulty(context.Background(), &p, parent, s)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if cmp := got.Cmp(big.NewInt(c.d)); cmp != c.cmp {
			t.Errorf("%s: required %s, compared with %d: %d, want %d", c.name, got, c.d, cmp, c.cmp)
		}
		if c.atMostPct != 0 && got.Cmp(big.NewInt(c.d*c.atMostPct/100)) != 0 {
			t.Errorf("%s: required %s, want the cap %d%% of %d", c.name, got, c.atMostPct, c.d)
		}
	}
}

func TestMaxTimeDrift(t *testing.T) {
	if m := Mainnet(); m.MaxTimeDrift() != 20*time.Minute {
		t.Errorf("mainnet drift %s", m.MaxTimeDrift())
	}
}

func TestRuleErrorMessage(t *testing.T) {
	e := &RuleError{Rule: RuleDifficulty, Height: 7, Detail: "too easy"}
	if got := e.Error(); got != "header 0000000000000000000000000000000000000000000000000000000000000000 at height 7 breaks the difficulty rule: too easy" {
		t.Fatalf("message %q", got)
	}
}
