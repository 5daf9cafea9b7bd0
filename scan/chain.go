package scan

import (
	"context"
	"fmt"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

// branchView is the chain a header extends, as the rules read it
// (consensus.Chain): the headers of a branch being evaluated above its fork
// point, the store's chain at and below it (connected blocks, then context
// headers), and below the lowest header the store holds, headers fetched
// from the node that must link up to it (they are stored as context
// headers, as trusted as the header they link to).
type branchView struct {
	f      *Follower
	fork   uint32         // the branch's headers are above this height
	branch []*ergo.Header // branch[i] is at height fork+1+i
}

func (v *branchView) HeaderAt(ctx context.Context, height uint32) (consensus.Summary, error) {
	if height > v.fork && uint64(height-v.fork) <= uint64(len(v.branch)) {
		return pointOf(v.branch[height-v.fork-1]).Summary, nil
	}
	r, ok, err := v.f.store.MainChainHeader(ctx, height)
	switch {
	case err != nil:
		return consensus.Summary{}, err
	case ok && !r.Known:
		return consensus.Summary{}, fmt.Errorf("the stored header %s at height %d has no version and nBits (stored before they were kept)", r.ID, height)
	case ok:
		return r.Summary(), nil
	}
	var lowest *ergo.Header // the branch's, linked to by what is fetched when the store holds nothing
	if len(v.branch) > 0 {
		lowest = v.branch[0]
	}
	return v.f.fetchContext(ctx, height, lowest)
}

// fetchContext fetches from the node the headers below the lowest one the
// store holds (or, when it holds none, below lowest, the lowest of the
// blocks about to be connected) down to height, or down to a whole
// difficulty window below it if that is lower, checks that they link up to
// it, stores them as context headers and returns the one at height.
func (f *Follower) fetchContext(ctx context.Context, height uint32, lowest *ergo.Header) (consensus.Summary, error) {
	low, ok, err := f.store.LowestHeader(ctx)
	switch {
	case err != nil:
		return consensus.Summary{}, err
	case !ok && lowest == nil:
		return consensus.Summary{}, fmt.Errorf("the store holds no header to link the one at height %d to", height)
	case !ok:
		low = db.RecordOf(lowest, lowest.TrustedID())
	}
	if height >= low.Height {
		return consensus.Summary{}, fmt.Errorf("the store holds no header at height %d, above its lowest (%d)", height, low.Height)
	}
	below := low.Height - 1
	from := height
	if depth := f.cfg.Params.ContextDepth(low.Height); below > depth {
		from = min(from, below-depth)
	}
	from = max(from, 1)
	records, err := f.fetchLinked(ctx, from, below, low.ParentID)
	if err != nil {
		return consensus.Summary{}, err
	}
	if err := f.store.PutContextHeaders(ctx, records); err != nil {
		return consensus.Summary{}, err
	}
	f.log.Info().Uint32("from", from).Uint32("to", below).Stringer("linked_to", low.ID).
		Msg("fetched the headers below the stored chain that the difficulty rule reads")
	return records[height-from].Summary(), nil
}

// checkHeader checks h (whose id the node client derived) against the
// rules as the child of parent; parent is nil for the first block of a
// store without a checkpoint, the trust root, whose rules are not checked
// (but for the genesis block's, which need no parent). It also
// requires h to be the header the store holds at its height when that is a
// context header (the chain from the checkpoint). A broken rule is a node
// fault wrapping the *consensus.RuleError.
func (f *Follower) checkHeader(ctx context.Context, h *ergo.Header, parent *point, view *branchView) error {
	id := h.TrustedID()
	if r, ok, err := f.store.MainChainHeader(ctx, h.Height); err != nil {
		return err
	} else if ok && !r.Block && r.ID != id {
		return refuse(consensus.RuleCheckpoint, h.Height, id, "the chain from the trust root has %s at this height", r.ID)
	}
	switch {
	case h.Height == 1:
		return asRefusal(f.rules.CheckGenesis(h, id))
	case parent == nil:
		return nil // the trust root: the first block of a store without a checkpoint
	}
	return asRefusal(f.rules.CheckChild(ctx, h, id, parent.id, parent.Summary, view))
}

// asRefusal makes a rule the header broke a node fault (the node offered
// it), and leaves other errors as they are.
func asRefusal(err error) error {
	if _, ok := consensus.RuleOf(err); ok {
		return nodeFault{err}
	}
	return err
}
