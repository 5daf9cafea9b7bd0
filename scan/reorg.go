package scan

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

func isTooLarge(err error) bool { return errors.Is(err, ErrTooLarge) }

// reorganize handles a node whose best chain leaves the stored one at
// height ancestor, below the tip. It fetches the node's branch headers
// first and checks each against the rules, until the branch carries
// strictly more work above ancestor than the stored branch; then it fetches
// and verifies every block of that branch; only then does it disconnect the
// stored blocks down to ancestor and connect the branch's, up to target
// (the node's height less confirmations). It returns the height of the new
// tip.
//
// A branch that breaks a rule before it carries more work, or that carries
// no more, is refused (a node fault wrapping a *consensus.RuleError:
// consensus.RuleWork for the latter); one whose blocks the node does not
// serve is put off. Either way nothing is disconnected.
func (f *Follower) reorganize(ctx context.Context, tip db.Tip, ancestor, nodeHeight, target uint32) (uint32, error) {
	depth := tip.Height - ancestor
	if depth > f.cfg.MaxReorgDepth {
		return 0, fmt.Errorf("%w: the node's chain leaves the stored one at height %d, %d blocks below the tip %s at %d (scan.max_reorg_depth is %d)",
			ErrReorgTooDeep, ancestor, depth, tip.ID, tip.Height, f.cfg.MaxReorgDepth)
	}
	base, err := f.storedPoint(ctx, ancestor)
	if err != nil {
		return 0, err
	}
	stored, err := f.storedWork(ctx, ancestor, tip.Height)
	if err != nil {
		return 0, err
	}
	branch, work, err := f.heavierBranch(ctx, base, stored, nodeHeight)
	if err != nil {
		return 0, err
	}
	blocks, err := f.branchBlocks(ctx, branch)
	if err != nil {
		return 0, err
	}
	fetchedAt := time.Now()

	// Every block of the branch is in hand: switch.
	to := min(branch[len(branch)-1].Height, max(target, ancestor))
	newTip := db.Tip{Height: ancestor, ID: base.id}
	if to > ancestor {
		newTip = db.Tip{Height: to, ID: branch[to-ancestor-1].TrustedID()}
	}
	reorg := &db.Reorg{ForkID: base.id, ForkHeight: ancestor, Depth: depth, OldTip: tip, NewTip: newTip}
	for h := tip.Height; h > ancestor; h-- {
		r, ok, err := f.store.MainChainHeader(ctx, h)
		if err != nil {
			return 0, err
		}
		if !ok || !r.Block {
			return 0, fmt.Errorf("store has no main-chain block at height %d below its tip %d", h, tip.Height)
		}
		if err := f.store.DisconnectBlock(ctx, r.ID, reorg); err != nil {
			return 0, fmt.Errorf("disconnect %s at %d: %w", r.ID, h, err)
		}
		f.count(func(s *FollowerStats) { s.Disconnected++ })
	}
	f.count(func(s *FollowerStats) {
		s.Reorgs++
		s.DeepestReorg = max(s.DeepestReorg, depth)
	})
	if to > ancestor {
		if err := f.connect(ctx, blocks[:to-ancestor], slices.Repeat([]time.Time{fetchedAt}, int(to-ancestor))); err != nil {
			return 0, err
		}
	}
	f.log.Info().Uint32("fork_height", ancestor).Uint32("depth", depth).
		Str("old_tip", tip.ID.String()).Uint32("old_height", tip.Height).
		Str("new_tip", newTip.ID.String()).Uint32("new_height", newTip.Height).
		Str("stored_work", stored.String()).Str("branch_work", work.String()).
		Msg("chain reorganized to the branch with more work")
	return to, nil
}

// storedWork is the work of the stored main chain above height ancestor up
// to height top: the difference of their cumulative works, or, where the
// store lacks them, the sum of the difficulties between.
func (f *Follower) storedWork(ctx context.Context, ancestor, top uint32) (*big.Int, error) {
	a, okA, err := f.store.MainChainHeader(ctx, ancestor)
	if err != nil {
		return nil, err
	}
	t, okT, err := f.store.MainChainHeader(ctx, top)
	if err != nil {
		return nil, err
	}
	if okA && okT && a.Work != nil && t.Work != nil {
		return new(big.Int).Sub(t.Work, a.Work), nil
	}
	sum := new(big.Int)
	for h := ancestor + 1; h <= top; h++ {
		r, ok, err := f.store.MainChainHeader(ctx, h)
		if err != nil {
			return nil, err
		}
		if !ok || !r.Known {
			continue // stored before nBits were kept: counts no work
		}
		d, err := consensus.Work(r.NBits)
		if err != nil {
			return nil, fmt.Errorf("stored header %s: %w", r.ID, err)
		}
		sum.Add(sum, d)
	}
	return sum, nil
}

// branchWindow is how many branch headers one request fetches.
const branchWindow = 128

// heavierBranch walks the node's best chain up from base, checking each
// header against the rules, and returns the shortest prefix whose work is
// above stored, with that work. A header that breaks a rule before, or a
// branch that never carries more work, is refused.
func (f *Follower) heavierBranch(ctx context.Context, base *point, stored *big.Int, nodeHeight uint32) ([]*ergo.Header, *big.Int, error) {
	view := &branchView{f: f, fork: base.Height}
	parent := base
	work := new(big.Int)
	for lo := base.Height + 1; lo <= nodeHeight; {
		hi := min(uint64(lo)+branchWindow-1, uint64(nodeHeight))
		hs, err := f.node.ChainSlice(ctx, lo, uint32(hi))
		if err != nil {
			return nil, nil, nodeFault{fmt.Errorf("branch headers %d to %d: %w", lo, hi, err)}
		}
		if len(hs) == 0 {
			break // the node's chain is shorter than it said
		}
		for _, h := range hs {
			if h.ParentID != parent.id {
				return nil, nil, fmt.Errorf("%w: header %s at %d builds on %s, not %s", errForked, h.ID, h.Height, h.ParentID, parent.id)
			}
			if err := f.checkHeader(ctx, h, parent, view); err != nil {
				return nil, nil, err
			}
			d, err := consensus.Work(h.NBits) // checked by the rules
			if err != nil {
				return nil, nil, err
			}
			view.branch = append(view.branch, h)
			work.Add(work, d)
			parent = pointOf(h)
			if work.Cmp(stored) > 0 {
				return view.branch, work, nil
			}
		}
		lo = parent.Height + 1
	}
	if len(view.branch) == 0 {
		return nil, nil, nodeFault{fmt.Errorf("the node names a branch from height %d but serves none of its headers", base.Height+1)}
	}
	last := view.branch[len(view.branch)-1]
	return nil, nil, refuse(consensus.RuleWork, last.Height, last.TrustedID(),
		"the node's branch from height %d carries work %s, the stored one %s: not more", base.Height+1, work, stored)
}

// branchBlocks fetches and verifies every block of branch. If the node
// does not serve them all, it reports the branch withheld and changes
// nothing.
func (f *Follower) branchBlocks(ctx context.Context, branch []*ergo.Header) ([]*ergo.FullBlock, error) {
	blocks := make([]*ergo.FullBlock, 0, len(branch))
	for lo := 0; lo < len(branch); lo += f.cfg.Batch {
		bs, err := f.blocksFor(ctx, branch[lo:min(lo+f.cfg.Batch, len(branch))])
		if err != nil {
			f.count(func(s *FollowerStats) { s.Withheld++ })
			return nil, nodeFault{withheld{fmt.Errorf("the node names a branch with more work from height %d to %d but does not serve its blocks; keeping the current chain: %w",
				branch[0].Height, branch[len(branch)-1].Height, err)}}
		}
		blocks = append(blocks, bs...)
	}
	return blocks, nil
}
