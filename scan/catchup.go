package scan

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

// fetched is one batch of blocks, or the error that stopped it.
type fetched struct {
	blocks []*ergo.FullBlock
	err    error
}

// catchUp connects heights from..to on top of parent (nil: the store is
// empty and from is the first block). Up to Ahead batches are fetched and
// verified (each header's proof of work once, by the node client)
// concurrently ahead of the batch being connected, so memory is bounded by
// (Ahead+1)*Batch blocks; each header is checked against the rules, in
// order, before its block is connected. While it runs, the node's height
// is read again every NodeInfoEvery.
func (f *Follower) catchUp(ctx context.Context, parent *point, from, to uint32) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // every goroutine ends before catchUp returns
	defer cancel()

	wg.Go(func() { f.watchNodeHeight(ctx) })
	batches := make(chan chan fetched, f.cfg.Ahead)
	wg.Go(func() {
		defer close(batches)
		for lo := from; lo <= to; {
			hi := min(uint64(lo)+uint64(f.cfg.Batch)-1, uint64(to))
			res := make(chan fetched, 1)
			select {
			case batches <- res:
			case <-ctx.Done():
				return
			}
			batchLo, batchHi := lo, uint32(hi)
			wg.Go(func() {
				blocks, err := f.fetch(ctx, batchLo, batchHi)
				res <- fetched{blocks, err}
			})
			lo = batchHi + 1
		}
	})

	for res := range batches {
		var r fetched
		select {
		case r = <-res:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		for _, b := range r.blocks {
			h := &b.Header
			if parent != nil && h.ParentID != parent.id {
				return fmt.Errorf("%w: block %s at %d builds on %s, the stored tip is %s", errForked, h.ID, h.Height, h.ParentID, parent.id)
			}
			if err := f.checkHeader(ctx, h, parent, &branchView{f: f}); err != nil {
				return err
			}
			if err := f.connect(ctx, b); err != nil {
				return err
			}
			parent = pointOf(h)
			f.progress(h.Height)
		}
	}
	return nil
}

// connect connects b, whose header has been checked, on the tip; the first
// block of a store without a trust root becomes its trust root.
func (f *Follower) connect(ctx context.Context, b *ergo.FullBlock) error {
	h := &b.Header
	if err := f.store.ConnectBlock(ctx, b, f.judge); err != nil {
		return fmt.Errorf("connect %s at %d: %w", h.ID, h.Height, err)
	}
	f.count(func(s *FollowerStats) { s.Connected++; s.LastConnectedAt = time.Now() })
	f.log.Debug().Uint32("height", h.Height).Str("id", h.ID.String()).Int("txs", len(b.Transactions)).Msg("connected")
	if f.rootChecked {
		return nil
	}
	if err := f.recordRoot(ctx, h.Height, h.ID, db.TrustFirstBlock); err != nil {
		return err
	}
	f.log.Info().Uint32("height", h.Height).Stringer("id", h.ID).
		Msg("trust root: the first block connected (no scan.checkpoint); the chain is checked from it")
	return nil
}

// watchNodeHeight reads the node's height every NodeInfoEvery until ctx is
// done, so that the lag the stats show is current during a long catch-up.
// A failure is left to the next read (and to the sync, which meets it too).
func (f *Follower) watchNodeHeight(ctx context.Context) {
	t := time.NewTicker(f.cfg.NodeInfoEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if info, err := f.node.Info(ctx); err == nil && info.Network == f.cfg.Params.Network {
			f.setNodeHeight(info.FullHeight)
		}
	}
}

// fetch returns the best chain's blocks at heights lo..hi, in order: their
// headers (each proof of work checked by the node client), then the blocks
// of exactly those headers.
func (f *Follower) fetch(ctx context.Context, lo, hi uint32) ([]*ergo.FullBlock, error) {
	headers, err := f.node.ChainSlice(ctx, lo, hi)
	if err != nil {
		return nil, nodeFault{fmt.Errorf("headers %d to %d: %w", lo, hi, err)}
	}
	if len(headers) != int(hi-lo+1) {
		// The node's best chain moved (or shrank) since it said its height.
		return nil, nodeFault{fmt.Errorf("asked for headers %d to %d, got %d of them", lo, hi, len(headers))}
	}
	return f.blocksFor(ctx, headers)
}

// blocksFor fetches the blocks of headers in one request, or, when the
// answer is larger than the client accepts, in halves.
func (f *Follower) blocksFor(ctx context.Context, headers []*ergo.Header) ([]*ergo.FullBlock, error) {
	blocks, err := f.node.BlocksFor(ctx, headers)
	if err == nil {
		return blocks, nil
	}
	if len(headers) > 1 && isTooLarge(err) {
		half := len(headers) / 2
		a, err := f.blocksFor(ctx, headers[:half])
		if err != nil {
			return nil, err
		}
		b, err := f.blocksFor(ctx, headers[half:])
		if err != nil {
			return nil, err
		}
		return append(a, b...), nil
	}
	return nil, nodeFault{fmt.Errorf("blocks %d to %d: %w", headers[0].Height, headers[len(headers)-1].Height, err)}
}
