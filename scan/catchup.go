package scan

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

// fetched is one batch of blocks and when it arrived, or the error that
// stopped it.
type fetched struct {
	blocks []*ergo.FullBlock
	at     time.Time
	err    error
}

// ahead fetches the blocks at heights from..to in batches of batch blocks,
// up to ahead batches concurrently ahead of the one being consumed, and
// hands each to consume in order, with when it was fetched (memory is
// bounded by (ahead+1)*batch blocks). It stops at the first error of fetch or consume, and returns
// once every goroutine it started has ended.
func ahead(ctx context.Context, from, to uint32, batch, ahead int,
	fetch func(ctx context.Context, lo, hi uint32) ([]*ergo.FullBlock, error),
	consume func(blocks []*ergo.FullBlock, fetchedAt time.Time) error) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	batches := make(chan chan fetched, ahead)
	wg.Go(func() {
		defer close(batches)
		for lo := from; lo <= to; {
			hi := uint32(min(uint64(lo)+uint64(batch)-1, uint64(to)))
			res := make(chan fetched, 1)
			select {
			case batches <- res:
			case <-ctx.Done():
				return
			}
			batchLo := lo
			wg.Go(func() {
				blocks, err := fetch(ctx, batchLo, hi)
				res <- fetched{blocks, time.Now(), err}
			})
			lo = hi + 1
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
		if err := consume(r.blocks, r.at); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// catchUp connects heights from..to on top of parent (nil: the store is
// empty and from is the first block). Blocks are fetched and verified
// (each header's proof of work once, by the node client) Ahead batches
// ahead of the one being connected; each header is checked against the
// rules, in order, before its block is connected. While it runs, the
// node's height is read again every NodeInfoEvery.
func (f *Follower) catchUp(ctx context.Context, parent *point, from, to uint32) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { f.watchNodeHeight(ctx) })

	c := newCommitter(f, parent, to)
	err := ahead(ctx, from, to, f.cfg.Batch, f.cfg.Ahead, f.fetch, func(blocks []*ergo.FullBlock, fetchedAt time.Time) error {
		for _, b := range blocks {
			h := &b.Header
			if parent != nil && h.ParentID != parent.id {
				return fmt.Errorf("%w: block %s at %d builds on %s, the stored tip is %s", errForked, h.ID, h.Height, h.ParentID, parent.id)
			}
			if err := f.checkHeader(ctx, h, parent, c.view()); err != nil {
				return err
			}
			if err := c.add(ctx, b, fetchedAt); err != nil {
				return err
			}
			parent = pointOf(h)
		}
		return nil
	})
	// The blocks checked before an error are valid: commit them.
	return errors.Join(err, c.flush(ctx))
}

// committer connects the blocks of a catch-up in batches: while the
// follower is more than TipDistance blocks from the catch-up's target, up
// to CommitBlocks blocks or CommitEvery's worth of them go in one database
// transaction (the rows, verdicts, events and tip of every block in it
// commit or roll back together); near the target, one block each, so that
// each is published as soon as it is connected.
type committer struct {
	f       *Follower
	base    *point // the last block committed (nil: none yet, the store is empty or holds context only)
	to      uint32 // the catch-up's target
	pending []*ergo.FullBlock
	fetched []time.Time // when each pending block was fetched
	since   time.Time   // when the first pending block was added
}

func newCommitter(f *Follower, base *point, to uint32) *committer {
	return &committer{f: f, base: base, to: to}
}

// view is the chain the next block extends: the pending blocks above the
// last committed one.
func (c *committer) view() *branchView {
	v := &branchView{f: c.f}
	switch {
	case len(c.pending) > 0:
		v.fork = c.pending[0].Header.Height - 1
		v.branch = make([]*ergo.Header, len(c.pending))
		for i, b := range c.pending {
			v.branch[i] = &b.Header
		}
	case c.base != nil:
		v.fork = c.base.Height
	}
	return v
}

// add queues b, whose header is checked, and commits the queue when it is
// due.
func (c *committer) add(ctx context.Context, b *ergo.FullBlock, fetchedAt time.Time) error {
	if len(c.pending) == 0 {
		c.since = time.Now()
	}
	c.pending = append(c.pending, b)
	c.fetched = append(c.fetched, fetchedAt)
	cfg := &c.f.cfg
	if c.to-b.Header.Height <= cfg.TipDistance || len(c.pending) >= cfg.CommitBlocks || time.Since(c.since) >= cfg.CommitEvery {
		return c.flush(ctx)
	}
	return nil
}

// flush commits the pending blocks in one transaction. They are dropped
// if it fails (the next sync fetches them again).
func (c *committer) flush(ctx context.Context) error {
	if len(c.pending) == 0 {
		return nil
	}
	err := c.f.connect(ctx, c.pending, c.fetched)
	last := &c.pending[len(c.pending)-1].Header
	c.pending, c.fetched = c.pending[:0], c.fetched[:0]
	if err != nil {
		return err
	}
	c.base = pointOf(last)
	c.f.progress(last.Height)
	return nil
}

// connect connects blocks, whose headers have been checked, on the tip in
// one transaction, and tells OnConnect when each was fetched; the first
// block of a store without a trust root becomes its trust root.
func (f *Follower) connect(ctx context.Context, blocks []*ergo.FullBlock, fetched []time.Time) error {
	first, last := &blocks[0].Header, &blocks[len(blocks)-1].Header
	if err := f.store.ConnectBlocks(ctx, blocks, f.judge); err != nil {
		return fmt.Errorf("connect blocks %d to %d: %w", first.Height, last.Height, err)
	}
	now := time.Now()
	if f.cfg.OnConnect != nil {
		for _, at := range fetched {
			f.cfg.OnConnect(at, now)
		}
	}
	f.count(func(s *FollowerStats) { s.Connected += uint64(len(blocks)); s.LastConnectedAt = now })
	f.log.Debug().Uint32("height", last.Height).Str("id", last.ID.String()).Int("blocks", len(blocks)).Msg("connected")
	if f.rootChecked {
		return nil
	}
	if err := f.recordRoot(ctx, first.Height, first.ID, db.TrustFirstBlock); err != nil {
		return err
	}
	f.log.Info().Uint32("height", first.Height).Stringer("id", first.ID).
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
	return blocksFor(ctx, f.node, headers)
}

// blocksFor fetches the blocks of headers from node in one request, or,
// when the answer is larger than the client accepts, in halves.
func blocksFor(ctx context.Context, node Node, headers []*ergo.Header) ([]*ergo.FullBlock, error) {
	blocks, err := node.BlocksFor(ctx, headers)
	if err == nil {
		return blocks, nil
	}
	if len(headers) > 1 && isTooLarge(err) {
		half := len(headers) / 2
		a, err := blocksFor(ctx, node, headers[:half])
		if err != nil {
			return nil, err
		}
		b, err := blocksFor(ctx, node, headers[half:])
		if err != nil {
			return nil, err
		}
		return append(a, b...), nil
	}
	return nil, nodeFault{fmt.Errorf("blocks %d to %d: %w", headers[0].Height, headers[len(headers)-1].Height, err)}
}
