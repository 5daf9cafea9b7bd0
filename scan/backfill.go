package scan

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

// BackfillStore is what the backfill needs of the database. *db.Store
// implements it.
type BackfillStore interface {
	Tip(ctx context.Context) (db.Tip, bool, error)
	ProtocolHistories(ctx context.Context) ([]db.ProtocolHistory, error)
	// MainChainIDs returns the ids of the store's main-chain blocks at
	// heights from to to.
	MainChainIDs(ctx context.Context, from, to uint32) ([]ergo.Digest, error)
	// BackfillBlocks judges connected blocks for the protocols whose
	// history ends just below each, in one transaction; db.ErrStale when
	// the chain or the histories moved.
	BackfillBlocks(ctx context.Context, blocks []*ergo.FullBlock, judge db.Judge) error
}

// BackfillConfig tunes a Backfill. Zero fields take the defaults noted.
type BackfillConfig struct {
	Batch int // blocks per request to the node (default 16)
	Ahead int // batches fetched concurrently ahead of the one being judged (default 2)
	// A transaction holds up to CommitBlocks blocks (default 64), or what
	// was judged in CommitEvery (default 250ms): the follower, which writes
	// through the same connection, waits at most about that long.
	CommitBlocks int
	CommitEvery  time.Duration
	// RetryInterval is the wait after a node failure (default 2s).
	RetryInterval time.Duration
	// ProgressEvery is how often a progress line is logged (default 10s).
	ProgressEvery time.Duration
}

func (c *BackfillConfig) setDefaults() {
	if c.Batch <= 0 {
		c.Batch = 16
	}
	if c.Ahead <= 0 {
		c.Ahead = 2
	}
	if c.CommitBlocks <= 0 {
		c.CommitBlocks = 64
	}
	if c.CommitEvery <= 0 {
		c.CommitEvery = 250 * time.Millisecond
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = 2 * time.Second
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = progressEvery
	}
}

// Backfill fills the histories of the protocols that lack blocks below the
// tip (a protocol added to a store that has blocks, a lowered start_height,
// a rescan: db.Store.RegisterProtocols and RescanProtocol set their
// cursors). It fetches the blocks from the lowest cursor up, by the ids of
// the store's main-chain headers, so that it follows the chain the store
// follows, verifies each body against its header (whose id the store
// holds: the follower checked it), and judges them for those protocols
// alone (db.Store.BackfillBlocks), in transactions of a few dozen blocks,
// while the follower goes on at the tip. A history that reaches the tip
// is taken along by the follower from its next block. A reorg moves the
// cursors back with the blocks it disconnects: the backfill reads them
// again and goes on from there.
type Backfill struct {
	node      Node
	store     BackfillStore
	judge     db.Judge
	protocols []string // the judge's
	cfg       BackfillConfig
	log       zerolog.Logger

	mu    sync.Mutex
	stats BackfillStats

	lastLog time.Time // of the last progress line; Run's goroutine only
}

// BackfillStats is what a Backfill has done, for the status and metrics.
type BackfillStats struct {
	Blocks uint64 // blocks judged (a block judged for two protocols at once counts once)
	Stale  uint64 // batches given up because the chain or the histories moved under them
	// NodeErrors counts node failures (each retried after RetryInterval).
	NodeErrors uint64
	// Failing, when not nil, is the node failure the backfill has been
	// retrying since its last commit: nothing was backfilled since
	// Failing.Since. A commit clears it.
	Failing *BackfillFailure
	// Protocols holds, for each protocol backfilled since the start, its
	// progress as of the last commit.
	Protocols map[string]BackfillProgress
}

// BackfillFailure is a node failure a backfill keeps retrying.
type BackfillFailure struct {
	Since time.Time // the first failure since the last commit
	Err   string    // the last failure
}

// BackfillProgress is one protocol's backfill.
type BackfillProgress struct {
	From   uint32 // the first height backfilled
	Cursor uint32 // its history is complete to here
	Tip    uint32 // the store's tip as of the last commit
	// BlocksPerSecond is the pace since the backfill began; Remaining is
	// how long the blocks left take at that pace (0 when unknown).
	BlocksPerSecond float64
	Remaining       time.Duration
	Done            bool // the history reached the tip: the follower judges it
	started         time.Time
}

// NewBackfill returns a Backfill that judges with judge, the follower's
// rules engine, whose protocols are the configured ones.
func NewBackfill(node Node, store BackfillStore, judge db.Judge, cfg BackfillConfig, log zerolog.Logger) *Backfill {
	cfg.setDefaults()
	return &Backfill{node: node, store: store, judge: judge, protocols: db.ProtocolsOf(judge), cfg: cfg, log: log}
}

// Stats returns a snapshot of the backfill's counters.
func (b *Backfill) Stats() BackfillStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.stats
	st.Protocols = maps.Clone(b.stats.Protocols)
	if f := b.stats.Failing; f != nil {
		st.Failing = &BackfillFailure{Since: f.Since, Err: f.Err}
	}
	return st
}

func (b *Backfill) count(update func(*BackfillStats)) {
	b.mu.Lock()
	update(&b.stats)
	b.mu.Unlock()
}

// staleWait is the pause after a batch found stale, before the cursors are
// read again: a reorg under way disconnects and connects block by block.
const staleWait = 20 * time.Millisecond

// Run backfills until every configured protocol's history reaches the tip
// (returning nil), until ctx is done (ctx.Err()), or until a store error.
// Node failures are retried every RetryInterval.
func (b *Backfill) Run(ctx context.Context) error {
	for {
		behind, tip, err := b.behind(ctx)
		if err != nil {
			return err
		}
		if len(behind) == 0 {
			b.count(func(s *BackfillStats) { s.Failing = nil })
			return nil
		}
		lo := tip.Height
		for _, h := range behind {
			lo = min(lo, h.Cursor+1)
		}
		err = b.pass(ctx, lo, tip.Height)
		var nerr nodeFault
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, db.ErrStale):
			b.count(func(s *BackfillStats) { s.Stale++ })
			b.log.Info().Err(err).Msg("the chain or the histories moved under the backfill: resuming from the cursors")
			select { // a reorg under way settles
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(staleWait):
			}
		case errors.As(err, &nerr):
			b.count(func(s *BackfillStats) {
				s.NodeErrors++
				if s.Failing == nil {
					s.Failing = &BackfillFailure{Since: time.Now()}
				}
				s.Failing.Err = err.Error()
			})
			b.log.Warn().Err(err).Dur("retry_in", b.cfg.RetryInterval).Msg("node failed during the backfill; will retry")
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(b.cfg.RetryInterval):
			}
		default:
			return fmt.Errorf("backfill: %w", err)
		}
	}
}

// behind returns the configured protocols whose history lacks blocks below
// the tip, and the tip.
func (b *Backfill) behind(ctx context.Context) ([]db.ProtocolHistory, db.Tip, error) {
	tip, ok, err := b.store.Tip(ctx)
	if err != nil || !ok {
		return nil, tip, err
	}
	hs, err := b.store.ProtocolHistories(ctx)
	if err != nil {
		return nil, tip, err
	}
	var out []db.ProtocolHistory
	for _, h := range hs {
		if h.Backfilling(tip.Height) && slices.Contains(b.protocols, h.Name) {
			out = append(out, h)
		}
	}
	now := time.Now()
	b.count(func(s *BackfillStats) {
		if s.Protocols == nil {
			s.Protocols = map[string]BackfillProgress{}
		}
		for _, h := range hs {
			p, seen := s.Protocols[h.Name]
			switch {
			case h.Backfilling(tip.Height) && slices.Contains(b.protocols, h.Name):
				if !seen || p.Done || h.Cursor+1 < p.From {
					p = BackfillProgress{From: h.Cursor + 1, started: now}
					b.log.Info().Str("protocol", h.Name).Uint32("from", p.From).Uint32("tip", tip.Height).
						Msg("backfilling the protocol's history while the follower goes on at the tip")
				}
				p.Cursor, p.Tip, p.Done = h.Cursor, tip.Height, false
			case seen && !p.Done:
				p.Cursor, p.Tip, p.Done, p.Remaining = h.Cursor, tip.Height, true, 0
				b.log.Info().Str("protocol", h.Name).Uint32("from", p.From).Uint32("height", h.Cursor).
					Msg("backfill done: the protocol's history reaches the tip, the follower judges it from the next block")
			default:
				continue
			}
			s.Protocols[h.Name] = p
		}
	})
	return out, tip, nil
}

// pass judges heights lo to hi for the histories that lack them: fetched
// ahead, committed in transactions of up to CommitBlocks blocks.
func (b *Backfill) pass(ctx context.Context, lo, hi uint32) error {
	var pending []*ergo.FullBlock
	var since time.Time
	if b.lastLog.IsZero() {
		b.lastLog = time.Now()
	}
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		blocks := pending
		pending = nil
		if err := b.store.BackfillBlocks(ctx, blocks, b.judge); err != nil {
			return err
		}
		last := blocks[len(blocks)-1].Header.Height
		b.progressed(uint32(len(blocks)), last)
		if time.Since(b.lastLog) >= b.cfg.ProgressEvery {
			b.lastLog = time.Now()
			b.logProgress()
		}
		return nil
	}
	err := ahead(ctx, lo, hi, b.cfg.Batch, b.cfg.Ahead, b.fetch, func(blocks []*ergo.FullBlock, _ time.Time) error {
		for _, blk := range blocks {
			if len(pending) == 0 {
				since = time.Now()
			}
			pending = append(pending, blk)
			if len(pending) >= b.cfg.CommitBlocks || time.Since(since) >= b.cfg.CommitEvery {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err // what is pending is fetched again
	}
	return flush()
}

// progressed records a commit that brought the backfilled histories to
// height.
func (b *Backfill) progressed(blocks, height uint32) {
	now := time.Now()
	b.count(func(s *BackfillStats) {
		s.Blocks += uint64(blocks)
		s.Failing = nil
		for name, p := range s.Protocols {
			if p.Done || p.Cursor >= height {
				continue
			}
			p.Cursor = height
			p.Tip = max(p.Tip, height)
			if secs := now.Sub(p.started).Seconds(); secs > 0 && height >= p.From {
				p.BlocksPerSecond = float64(height-p.From+1) / secs
			}
			if p.BlocksPerSecond > 0 {
				p.Remaining = time.Duration(float64(p.Tip-p.Cursor) / p.BlocksPerSecond * float64(time.Second))
			}
			s.Protocols[name] = p
		}
	})
}

// logProgress logs each backfill under way: height, tip, pace and the time
// left at that pace.
func (b *Backfill) logProgress() {
	st := b.Stats()
	for _, name := range slices.Sorted(maps.Keys(st.Protocols)) {
		p := st.Protocols[name]
		if p.Done {
			continue
		}
		b.log.Info().Str("protocol", name).Uint32("height", p.Cursor).Uint32("tip", p.Tip).
			Uint32("remaining_blocks", p.Tip-min(p.Cursor, p.Tip)).Float64("blocks_per_second", p.BlocksPerSecond).
			Dur("time_left", p.Remaining.Round(time.Second)).Msg("backfilling")
	}
}

// fetch returns the store's main-chain blocks at heights lo..hi, fetched
// from the node by their ids, each body verified against its header (whose
// id is the stored one, so the header is the one the follower checked).
func (b *Backfill) fetch(ctx context.Context, lo, hi uint32) ([]*ergo.FullBlock, error) {
	ids, err := b.store.MainChainIDs(ctx, lo, hi)
	if err != nil {
		return nil, err
	}
	if len(ids) != int(hi-lo+1) {
		return nil, &db.Error{Op: "backfill", Kind: db.ErrStale,
			Detail: fmt.Sprintf("the store's main chain holds %d of the blocks at heights %d to %d", len(ids), lo, hi)}
	}
	headers := make([]*ergo.Header, len(ids))
	for i, id := range ids {
		// BlocksFor needs the ids alone: the answer's headers must hash to
		// them.
		headers[i] = &ergo.Header{ID: id, HasID: true, Height: lo + uint32(i)}
	}
	blocks, err := blocksFor(ctx, b.node, headers)
	if err != nil {
		return nil, err
	}
	for i, blk := range blocks {
		if blk.Header.Height != lo+uint32(i) {
			return nil, nodeFault{fmt.Errorf("block %s is at height %d, the store holds it at %d", ids[i], blk.Header.Height, lo+uint32(i))}
		}
	}
	return blocks, nil
}
