package scan

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
)

// CheckConfig says what CheckRange verifies.
type CheckConfig struct {
	Params   consensus.Params // the network's rules (default mainnet's)
	From, To uint32           // heights; From is taken as the trust root unless it is 1
	Batch    int              // blocks per request (default 16)
	Ahead    int              // batches fetched concurrently ahead (default 2)
}

// BadBlock is a block, or header, of the node's chain that does not verify.
type BadBlock struct {
	Height uint32
	ID     ergo.Digest // zero when the node's answer did not say which block
	Err    error
}

// RangeReport is what CheckRange found.
type RangeReport struct {
	Blocks int        // blocks fetched and verified
	Bad    []BadBlock // the blocks the node got wrong, by height
}

// CheckRange fetches the node's best chain from cfg.From to cfg.To and
// verifies it exactly as the follower does — each header's id, stated
// values and proof of work (once), the header rules against the chain
// below it, each block's body against its header — and stores nothing.
// The headers below From that a difficulty computation needs are fetched
// and must link up to it. A block the node got wrong is reported in Bad
// (the check goes on); an error is a failure to check at all (the node
// unreachable, the range not on the node).
func CheckRange(ctx context.Context, node Node, cfg CheckConfig) (*RangeReport, error) {
	if cfg.Params.Network == "" {
		cfg.Params = consensus.Mainnet()
	}
	cfg.Batch, cfg.Ahead = max(cfg.Batch, 1), max(cfg.Ahead, 1)
	if cfg.From < 1 || cfg.To < cfg.From {
		return nil, fmt.Errorf("scan: no range %d to %d", cfg.From, cfg.To)
	}
	r := &rangeCheck{node: node, rules: consensus.NewValidator(cfg.Params, consensus.Checkpoint{}, nil), params: cfg.Params,
		headers: map[uint32]*ergo.Header{}, report: &RangeReport{}}
	err := ahead(ctx, cfg.From, cfg.To, cfg.Batch, cfg.Ahead, r.fetch, func(blocks []*ergo.FullBlock, _ time.Time) error {
		for _, b := range blocks {
			r.checkHeader(ctx, &b.Header)
		}
		return nil
	})
	sort.Slice(r.report.Bad, func(i, j int) bool { return r.report.Bad[i].Height < r.report.Bad[j].Height })
	return r.report, err
}

// rangeCheck is one CheckRange.
type rangeCheck struct {
	node   Node
	rules  *consensus.Validator
	params consensus.Params
	// headers holds the context fetched below the range and the checked
	// headers the rules may still read (those within a difficulty window
	// of the last); lowest is the lowest held, which context links to.
	headers map[uint32]*ergo.Header
	lowest  *ergo.Header
	report  *RangeReport
}

func (r *rangeCheck) bad(height uint32, id ergo.Digest, err error) {
	r.report.Bad = append(r.report.Bad, BadBlock{Height: height, ID: id, Err: err})
}

// fetch returns the verified blocks at lo..hi that the node got right,
// reporting the others: on a refused answer it asks again for each header,
// then each block, alone, to find which.
func (r *rangeCheck) fetch(ctx context.Context, lo, hi uint32) ([]*ergo.FullBlock, error) {
	headers, err := r.node.ChainSlice(ctx, lo, hi)
	switch {
	case errors.Is(err, ErrBadResponse):
		headers = nil
		for h := lo; h <= hi; h++ {
			one, err := r.node.ChainSlice(ctx, h, h)
			switch {
			case errors.Is(err, ErrBadResponse):
				var e *Error
				errors.As(err, &e)
				r.bad(h, e.BlockID, err)
			case err != nil:
				return nil, err
			case len(one) != 1:
				return nil, fmt.Errorf("the node has no header at height %d", h)
			default:
				headers = append(headers, one...)
			}
		}
	case err != nil:
		return nil, err
	case len(headers) != int(hi-lo+1):
		return nil, fmt.Errorf("the node has no header at height %d", lo+uint32(len(headers)))
	}
	if len(headers) == 0 {
		return nil, nil
	}
	blocks, err := r.node.BlocksFor(ctx, headers)
	if !errors.Is(err, ErrBadResponse) {
		return blocks, err
	}
	blocks = blocks[:0]
	for _, h := range headers {
		one, err := r.node.BlocksFor(ctx, []*ergo.Header{h})
		switch {
		case errors.Is(err, ErrBadResponse):
			r.bad(h.Height, h.TrustedID(), err)
		case err != nil:
			return nil, err
		default:
			blocks = append(blocks, one...)
		}
	}
	return blocks, nil
}

// checkHeader checks h against the rules, as the child of the header held
// below it; the first header of the range is the trust root.
func (r *rangeCheck) checkHeader(ctx context.Context, h *ergo.Header) {
	r.report.Blocks++
	id := h.TrustedID()
	defer func() {
		r.headers[h.Height] = h
		if r.lowest == nil {
			r.lowest = h
		}
		// What no rule of a later header reads.
		if depth := r.params.ContextDepth(h.Height + 1); h.Height > depth+1 && h.Height-depth-1 > r.lowest.Height {
			delete(r.headers, h.Height-depth-1)
		}
	}()
	var err error
	switch parent, ok := r.headers[h.Height-1]; {
	case h.Height == 1:
		err = r.rules.CheckGenesis(h, id)
	case !ok && r.lowest == nil:
		return // the trust root
	case !ok:
		err = fmt.Errorf("its parent at %d was not verified", h.Height-1)
	default:
		err = r.rules.CheckChild(ctx, h, id, parent.TrustedID(), summaryOf(parent), r)
	}
	if err != nil {
		r.bad(h.Height, id, err)
	}
}

// HeaderAt reads the checked headers, fetching those below the lowest
// from the node, linked to it.
func (r *rangeCheck) HeaderAt(ctx context.Context, height uint32) (consensus.Summary, error) {
	if h, ok := r.headers[height]; ok {
		return summaryOf(h), nil
	}
	if r.lowest == nil || height >= r.lowest.Height {
		return consensus.Summary{}, fmt.Errorf("no verified header at height %d", height)
	}
	below := r.lowest.Height - 1
	from := height
	if depth := r.params.ContextDepth(r.lowest.Height); below > depth {
		from = min(from, below-depth)
	}
	hs, err := linkedHeaders(ctx, r.node, max(from, 1), below, r.lowest.ParentID)
	if err != nil {
		return consensus.Summary{}, err
	}
	for _, h := range hs {
		r.headers[h.Height] = h
	}
	r.lowest = hs[0]
	return summaryOf(r.headers[height]), nil
}

func summaryOf(h *ergo.Header) consensus.Summary { return pointOf(h).Summary }
