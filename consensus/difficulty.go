package consensus

import (
	"context"
	"fmt"
	"math/big"
	"slices"

	"github.com/async-emission/auditor/ergo/autolykos"
)

// Summary is what the header rules read of an earlier header.
type Summary struct {
	Height    uint32
	Timestamp uint64 // milliseconds since the Unix epoch
	NBits     uint32
	Version   uint8
}

// Difficulty is the difficulty s's nBits encode (the node's
// requiredDifficulty of that header).
func (s Summary) Difficulty() (*big.Int, error) {
	return autolykos.DecodeCompactBits(s.NBits)
}

// Chain is what the difficulty rule reads of the branch a header extends:
// the header at a height on that branch. The implementation decides where
// it comes from (the store, a branch being evaluated, the node below the
// trust root); it must answer for every height between the lowest one
// ContextDepth allows and the parent's, and fail otherwise.
type Chain interface {
	HeaderAt(ctx context.Context, height uint32) (Summary, error)
}

// precision is the node's PrecisionConstant: the fixed-point scale of the
// least-squares fit.
var precision = big.NewInt(1_000_000_000)

// RequiredDifficulty is the difficulty the child of parent must state, as
// the node's requiredDifficultyAfter computes it: the parent's, except at
// the first height of a difficulty epoch (the parent's height a multiple of
// the epoch length), where it is recalculated from the last headers of the
// previous UseLastEpochs epochs of chain; with EIP-37 the recalculation is
// capped. Version2Difficulty is required around Version2Height.
func RequiredDifficulty(ctx context.Context, p *Params, parent Summary, chain Chain) (*big.Int, error) {
	ph := parent.Height
	e, recalculate := p.EpochLength, calculate
	switch {
	case p.eip37(ph + 1):
		e, recalculate = p.EIP37EpochLength, eip37Calculate
	case p.Version2Height > 0 && (ph == p.Version2Height || ph+1 == p.Version2Height):
		return new(big.Int).Set(p.Version2Difficulty), nil
	}
	if ph%e != 0 {
		return parent.Difficulty()
	}
	hs, err := epochEnds(ctx, p, ph, e, parent, chain)
	if err != nil {
		return nil, err
	}
	return recalculate(p, hs, e)
}

// epochEnds returns the headers at ph, ph − e, …, ph − UseLastEpochs·e
// that exist (heights of 1 or more), oldest first: the reference's
// previousHeightsRequiredForRecalculation, read from chain (the parent is
// given).
func epochEnds(ctx context.Context, p *Params, ph, e uint32, parent Summary, chain Chain) ([]Summary, error) {
	hs := make([]Summary, 0, p.UseLastEpochs+1)
	for i := uint32(0); i <= p.UseLastEpochs; i++ {
		back := uint64(i) * uint64(e)
		if back >= uint64(ph) { // height 0 and below: no header (genesis is 1)
			break
		}
		h := ph - uint32(back)
		if i == 0 {
			hs = append(hs, parent)
			continue
		}
		s, err := chain.HeaderAt(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("the header at height %d, for the difficulty of height %d: %w", h, ph+1, err)
		}
		if s.Height != h {
			return nil, fmt.Errorf("asked for the header at height %d, got %d", h, s.Height)
		}
		hs = append(hs, s)
	}
	slices.Reverse(hs)
	return hs, nil
}

// calculate is the reference's DifficultyAdjustment.calculate: a linear
// least-squares fit of the difficulties the last epochs should have had,
// evaluated one epoch ahead, normalized through the compact encoding. hs
// are epoch ends, oldest first.
func calculate(p *Params, hs []Summary, e uint32) (*big.Int, error) {
	if len(hs) == 0 {
		return nil, fmt.Errorf("no header to recalculate the difficulty from")
	}
	first, last := hs[0], hs[len(hs)-1]
	if len(hs) == 1 || first.Timestamp >= last.Timestamp {
		d, err := first.Difficulty()
		if err != nil {
			return nil, err
		}
		return normalize(d)
	}
	xs := make([]int64, 0, len(hs)-1)
	ys := make([]*big.Int, 0, len(hs)-1)
	for i := 1; i < len(hs); i++ {
		start, end := hs[i-1], hs[i]
		if end.Height-start.Height != e {
			return nil, fmt.Errorf("headers at heights %d and %d are not one epoch (%d) apart", start.Height, end.Height, e)
		}
		y, err := epochDifficulty(p, start, end, e)
		if err != nil {
			return nil, err
		}
		xs, ys = append(xs, int64(end.Height)), append(ys, y)
	}
	d := interpolate(xs, ys, int64(e))
	if d.Cmp(big.NewInt(1)) < 0 {
		d = new(big.Int).Set(p.InitialDifficulty)
	}
	return normalize(d)
}

// epochDifficulty is the difficulty the epoch ending at end should have had
// to last e block intervals: end's difficulty × interval × e / elapsed.
// Like the reference it divides by the elapsed time as it is; a
// non-increasing pair of timestamps cannot come from a chain whose
// timestamps each exceed the parent's, and is refused.
func epochDifficulty(p *Params, start, end Summary, e uint32) (*big.Int, error) {
	if end.Timestamp <= start.Timestamp {
		return nil, fmt.Errorf("headers at heights %d and %d have non-increasing timestamps %d and %d", start.Height, end.Height, start.Timestamp, end.Timestamp)
	}
	d, err := end.Difficulty()
	if err != nil {
		return nil, err
	}
	y := new(big.Int).Mul(d, big.NewInt(p.BlockInterval.Milliseconds()))
	y.Mul(y, big.NewInt(int64(e)))
	return y.Quo(y, new(big.Int).SetUint64(end.Timestamp-start.Timestamp)), nil
}

// interpolate fits y = a + b·x by least squares in the reference's
// fixed-point integer arithmetic (every division truncates toward zero,
// as Java's BigInteger does) and returns the fit at the last x plus e.
func interpolate(xs []int64, ys []*big.Int, e int64) *big.Int {
	if len(xs) == 1 {
		return new(big.Int).Set(ys[0])
	}
	n := big.NewInt(int64(len(xs)))
	var xySum, xSum, x2Sum, ySum big.Int
	maxX := xs[0]
	for i, xv := range xs {
		x := big.NewInt(xv)
		xySum.Add(&xySum, new(big.Int).Mul(x, ys[i]))
		xSum.Add(&xSum, x)
		x2Sum.Add(&x2Sum, new(big.Int).Mul(x, x))
		ySum.Add(&ySum, ys[i])
		maxX = max(maxX, xv)
	}
	// b = (Σxy·n − Σx·Σy)·P / (Σx²·n − (Σx)²)
	num := new(big.Int).Mul(&xySum, n)
	num.Sub(num, new(big.Int).Mul(&xSum, &ySum))
	num.Mul(num, precision)
	den := new(big.Int).Mul(&x2Sum, n)
	den.Sub(den, new(big.Int).Mul(&xSum, &xSum))
	b := num.Quo(num, den) // den > 0: the heights are distinct
	// a = (Σy·P − b·Σx) / n / P
	a := new(big.Int).Mul(&ySum, precision)
	a.Sub(a, new(big.Int).Mul(b, &xSum))
	a.Quo(a, n)
	a.Quo(a, precision)
	// a + b·point / P
	point := big.NewInt(maxX + e)
	bp := new(big.Int).Mul(b, point)
	bp.Quo(bp, precision)
	return a.Add(a, bp)
}

// eip37Calculate is the reference's eip37Calculate: the average of the
// classic (Bitcoin-style, last epoch only) and the predictive (calculate,
// capped to ×1.5 and ÷2 of the last difficulty) recalculations, capped the
// same way and normalized.
func eip37Calculate(p *Params, hs []Summary, e uint32) (*big.Int, error) {
	if len(hs) < 2 {
		return nil, fmt.Errorf("EIP-37 needs the ends of two epochs, %d available", len(hs))
	}
	last, err := hs[len(hs)-1].Difficulty()
	if err != nil {
		return nil, err
	}
	predictive, err := calculate(p, hs, e)
	if err != nil {
		return nil, err
	}
	limited := capChange(predictive, last)
	classic, err := epochDifficulty(p, hs[len(hs)-2], hs[len(hs)-1], e)
	if err != nil {
		return nil, err
	}
	avg := new(big.Int).Add(classic, limited)
	avg.Quo(avg, big.NewInt(2))
	return normalize(capChange(avg, last))
}

// capChange limits d to at most last·3/2 when it is above last and to at
// least last/2 otherwise.
func capChange(d, last *big.Int) *big.Int {
	if d.Cmp(last) > 0 {
		hi := new(big.Int).Mul(last, big.NewInt(3))
		hi.Quo(hi, big.NewInt(2))
		if d.Cmp(hi) > 0 {
			return hi
		}
		return d
	}
	lo := new(big.Int).Quo(last, big.NewInt(2))
	if d.Cmp(lo) < 0 {
		return lo
	}
	return d
}

// normalize runs d through the compact encoding and back, as the reference
// does with every recalculated difficulty: only the three most significant
// bytes survive. A zero difficulty (possible only on a degenerate chain)
// has no target: no header can meet it.
func normalize(d *big.Int) (*big.Int, error) {
	if d.Sign() <= 0 {
		return nil, fmt.Errorf("the recalculated difficulty is %s: no header can meet it", d)
	}
	return autolykos.DecodeCompactBits(autolykos.EncodeCompactBits(d))
}
