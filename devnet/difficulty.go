package devnet

import (
	"context"
	"fmt"
	"math"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo/autolykos"
)

// params are the consensus rules the devnet's chain obeys: its difficulty
// is the one consensus.RequiredDifficulty computes, on every branch.
var params = consensus.Devnet()

// recordChain is one branch of the devnet as the difficulty rule reads it:
// the record of its block at a height, nil where it has none.
type recordChain func(height uint32) *headerRecord

func (c recordChain) HeaderAt(_ context.Context, height uint32) (consensus.Summary, error) {
	r := c(height)
	if r == nil {
		return consensus.Summary{}, fmt.Errorf("devnet: no block at height %d on the branch", height)
	}
	return r.summary(), nil
}

func (r *headerRecord) summary() consensus.Summary {
	return consensus.Summary{Height: r.height, Timestamp: r.timestamp, NBits: r.nBits, Version: r.version}
}

// required returns the nBits of the child of parent (nil: block 1) on the
// branch chain answers for, and the child's cumulative work.
func required(ctx context.Context, parent *headerRecord, chain recordChain) (nBits uint32, work uint64, err error) {
	d := params.InitialDifficulty
	if parent != nil {
		if d, err = consensus.RequiredDifficulty(ctx, &params, parent.summary(), chain); err != nil {
			return 0, 0, fmt.Errorf("devnet: the difficulty of block %d: %w", parent.height+1, err)
		}
	}
	if !d.IsUint64() || d.Uint64() > math.MaxUint32 {
		return 0, 0, fmt.Errorf("devnet: difficulty %s is beyond a simulated chain", d)
	}
	work = d.Uint64()
	if parent != nil {
		work += parent.work
	}
	return autolykos.EncodeCompactBits(d), work, nil
}

// timestampEvery is the height step at which block timestamps fall exactly
// on the block interval; it divides both of the devnet's epoch lengths.
const timestampEvery = 16

// timestamp is the time of the block at height on every branch: block 1
// one interval after the chain's start, each next one an interval later,
// jittered by up to half an interval except at every timestampEvery-th
// height. Blocks are 0.5 to 1.5 intervals apart, every difficulty epoch
// lasts exactly its length in intervals (so the difficulty stays the
// initial one), and competing branches require the same difficulty at each
// height: the longer one carries more work.
func (g *generator) timestamp(height uint32) uint64 {
	interval := uint64(params.BlockInterval.Milliseconds())
	t := g.start + uint64(height)*interval
	if height%timestampEvery != 0 {
		t += g.rand(streamTime, finalBranch, height).Uint64N(interval / 2)
	}
	return t
}
