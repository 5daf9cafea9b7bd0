package scan

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

// Node is what the follower needs of an Ergo node. *Client implements it
// and verifies everything it returns.
type Node interface {
	Info(ctx context.Context) (*ergo.NodeInfo, error)
	// ChainSlice returns the best chain's headers from fromHeight to
	// toHeight, verified and linked.
	ChainSlice(ctx context.Context, fromHeight, toHeight uint32) ([]*ergo.Header, error)
	// Blocks returns the full blocks with these header ids, in order,
	// each verified.
	Blocks(ctx context.Context, ids []ergo.Digest) ([]*ergo.FullBlock, error)
}

// Store is what the follower needs of the database. *db.Store implements
// it: ConnectBlock and DisconnectBlock each move the tip in the same
// transaction as the block's rows, and refuse a block that is not the
// tip's child (connect) or the tip itself (disconnect).
type Store interface {
	Tip(ctx context.Context) (db.Tip, bool, error)
	MainChainID(ctx context.Context, height uint32) (ergo.Digest, bool, error)
	ConnectBlock(ctx context.Context, b *ergo.FullBlock, judge db.Judge) error
	DisconnectBlock(ctx context.Context, id ergo.Digest, reorg *db.Reorg) error
}

// FollowerConfig tunes a Follower. Zero fields take the defaults noted.
type FollowerConfig struct {
	StartHeight   uint32        // first height connected into an empty store (default 1)
	Confirmations uint32        // connect only blocks at least this deep below the node's tip
	MaxReorgDepth uint32        // deeper forks stop the follower with ErrReorgTooDeep (default 200)
	PollInterval  time.Duration // between checks of the node's tip once caught up (default 2s)
	Batch         int           // blocks per POST /blocks/headerIds (default 16)
	Ahead         int           // batches fetched concurrently ahead of the one being connected (default 2)
	UntilHeight   uint32        // Run returns nil once this height is connected; 0 follows forever
}

func (c *FollowerConfig) setDefaults() {
	if c.StartHeight == 0 {
		c.StartHeight = 1
	}
	if c.MaxReorgDepth == 0 {
		c.MaxReorgDepth = 200
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.Batch <= 0 {
		c.Batch = 16
	}
	if c.Ahead <= 0 {
		c.Ahead = 2
	}
}

// Follower keeps the store on the node's best chain: it catches up with
// bounded concurrent fetching ahead of the block being connected, then
// polls the node's tip; when the node's chain no longer contains the
// store's tip it walks back to the common ancestor, disconnects down to it
// and connects the new branch.
type Follower struct {
	node  Node
	store Store
	judge db.Judge
	cfg   FollowerConfig
	log   zerolog.Logger

	mu    sync.Mutex
	stats FollowerStats

	// The last progress line: when, and the Connected count then. Only
	// Run's goroutine touches them.
	progressAt   time.Time
	progressFrom uint64
}

// progressEvery is how often a follower connecting blocks logs its
// progress at info level (each block is logged at debug).
const progressEvery = 10 * time.Second

// FollowerStats counts what the follower has done since it was created.
type FollowerStats struct {
	NodeHeight      uint32 // the node's full height at the last check
	Connected       uint64 // blocks connected
	Disconnected    uint64 // blocks disconnected by reorgs
	Reorgs          uint64
	DeepestReorg    uint32
	NodeErrors      uint64 // failed syncs blamed on the node (each retried later)
	LastConnectedAt time.Time
}

// NewFollower returns a Follower; judge decides which boxes are stored and
// what is concluded about them.
func NewFollower(node Node, store Store, judge db.Judge, cfg FollowerConfig, log zerolog.Logger) *Follower {
	cfg.setDefaults()
	return &Follower{node: node, store: store, judge: judge, cfg: cfg, log: log}
}

// Stats returns a snapshot of the follower's counters.
func (f *Follower) Stats() FollowerStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

func (f *Follower) count(update func(*FollowerStats)) {
	f.mu.Lock()
	update(&f.stats)
	f.mu.Unlock()
}

// nodeFault marks a failure of the node (unreachable, lying, mid-reorg),
// which the follower outlives by trying again at the next poll.
type nodeFault struct{ err error }

func (e nodeFault) Error() string { return e.err.Error() }
func (e nodeFault) Unwrap() error { return e.err }

// ErrReorgTooDeep stops the follower: the node's best chain leaves the
// stored one further below the tip than scan.max_reorg_depth allows (or
// below the first stored block). The auditor does not guess; an operator
// decides (raise the limit, or resync from a lower height).
const ErrReorgTooDeep = ErrorKind("fork deeper than the allowed reorg depth")

// errForked means the node's chain changed under a catch-up: the next sync
// starts at once and finds the new common ancestor.
var errForked = errors.New("the node's chain changed during the sync")

// maxImmediateResyncs bounds how many forks in a row are resynced without
// waiting for the poll interval.
const maxImmediateResyncs = 3

// Run follows the node until ctx is done (returning ctx.Err()), until
// UntilHeight is connected (returning nil), or until a fault the follower
// cannot outlive: a fork deeper than MaxReorgDepth, or a store error.
// Node failures are logged and retried every PollInterval.
func (f *Follower) Run(ctx context.Context) error {
	forks := 0 // consecutive syncs cut short by a fork
	for {
		done, err := f.sync(ctx)
		var nerr nodeFault
		if !errors.Is(err, errForked) {
			forks = 0
		}
		switch {
		case done:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errForked) && forks < maxImmediateResyncs:
			// The chain moved: resync at once. A node whose answers keep
			// contradicting each other falls through to the poll interval.
			forks++
			f.log.Info().Err(err).Msg("resyncing")
			continue
		case errors.Is(err, errForked), errors.As(err, &nerr):
			f.count(func(s *FollowerStats) { s.NodeErrors++ })
			f.log.Warn().Err(err).Dur("retry_in", f.cfg.PollInterval).Msg("node failed; will retry")
		case err != nil:
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(f.cfg.PollInterval):
		}
	}
}

// sync brings the store to the node's tip (less confirmations) once.
func (f *Follower) sync(ctx context.Context) (done bool, err error) {
	info, err := f.node.Info(ctx)
	if err != nil {
		return false, nodeFault{fmt.Errorf("node info: %w", err)}
	}
	f.count(func(s *FollowerStats) { s.NodeHeight = info.FullHeight })
	var target uint32
	if info.FullHeight > f.cfg.Confirmations {
		target = info.FullHeight - f.cfg.Confirmations
	}
	tip, ok, err := f.store.Tip(ctx)
	if err != nil {
		return false, err
	}
	next := f.cfg.StartHeight
	if ok {
		if tip, err = f.reconcile(ctx, tip, info.FullHeight); err != nil {
			return false, err
		}
		next = tip.Height + 1
		if f.cfg.UntilHeight > 0 && tip.Height >= f.cfg.UntilHeight {
			return true, nil
		}
	}
	if f.cfg.UntilHeight > 0 && target > f.cfg.UntilHeight {
		target = f.cfg.UntilHeight
	}
	if next > target {
		return false, nil
	}
	if err := f.catchUp(ctx, tip, ok, next, target); err != nil {
		return false, err
	}
	return f.cfg.UntilHeight > 0 && target >= f.cfg.UntilHeight, nil
}

// reconcile makes sure the store's tip is on the node's best chain,
// disconnecting back to the common ancestor if it is not, and returns the
// (new) tip. A node that is merely behind the store (its chain agrees at
// its own height) is waited for, not followed backwards.
func (f *Follower) reconcile(ctx context.Context, tip db.Tip, nodeHeight uint32) (db.Tip, error) {
	top := min(tip.Height, nodeHeight)
	ancestor, err := f.commonAncestor(ctx, tip, top)
	if err != nil || ancestor == top {
		return tip, err
	}
	depth := tip.Height - ancestor
	if depth > f.cfg.MaxReorgDepth {
		return tip, fmt.Errorf("%w: the node's chain leaves the stored one at height %d, %d blocks below the tip %s at %d (scan.max_reorg_depth is %d)",
			ErrReorgTooDeep, ancestor, depth, tip.ID, tip.Height, f.cfg.MaxReorgDepth)
	}
	old := tip
	forkID, ok, err := f.store.MainChainID(ctx, ancestor)
	if err != nil {
		return tip, err
	}
	if !ok { // the fork point is below the store's first block: take it from the node
		if forkID, err = f.headerIDAt(ctx, ancestor); err != nil {
			return tip, err
		}
	}
	newTip := db.Tip{Height: nodeHeight}
	if newTip.ID, err = f.headerIDAt(ctx, nodeHeight); err != nil {
		return tip, err
	}
	reorg := &db.Reorg{ForkID: forkID, ForkHeight: ancestor, Depth: depth, OldTip: old, NewTip: newTip}
	for h := tip.Height; h > ancestor; h-- {
		id, ok, err := f.store.MainChainID(ctx, h)
		if err != nil {
			return tip, err
		}
		if !ok {
			return tip, fmt.Errorf("store has no main-chain block at height %d below its tip %d", h, tip.Height)
		}
		if err := f.store.DisconnectBlock(ctx, id, reorg); err != nil {
			return tip, fmt.Errorf("disconnect %s at %d: %w", id, h, err)
		}
		f.count(func(s *FollowerStats) { s.Disconnected++ })
	}
	tip, _, err = f.store.Tip(ctx)
	if err != nil {
		return tip, err
	}
	f.count(func(s *FollowerStats) {
		s.Reorgs++
		s.DeepestReorg = max(s.DeepestReorg, depth)
	})
	f.log.Info().Uint32("fork_height", ancestor).Uint32("depth", depth).
		Str("old_tip", old.ID.String()).Uint32("old_height", old.Height).Msg("chain reorganized: disconnected to the common ancestor")
	return tip, nil
}

// headerIDAt returns the id of the node's best-chain header at height.
func (f *Follower) headerIDAt(ctx context.Context, height uint32) (ergo.Digest, error) {
	hs, err := f.node.ChainSlice(ctx, height, height)
	if err != nil {
		return ergo.Digest{}, err
	}
	if len(hs) != 1 {
		return ergo.Digest{}, fmt.Errorf("the node gave %d headers at height %d", len(hs), height)
	}
	return hs[0].TrustedID(), nil
}

// ancestorWindow is how many headers one chainSlice request compares.
const ancestorWindow = 64

// commonAncestor returns the highest height at or below top where the
// store's main chain and the node's best chain hold the same block.
func (f *Follower) commonAncestor(ctx context.Context, tip db.Tip, top uint32) (uint32, error) {
	storedID := func(h uint32) (ergo.Digest, bool, error) {
		if h == tip.Height {
			return tip.ID, true, nil
		}
		return f.store.MainChainID(ctx, h)
	}
	// The usual case first: the node's block at top is the stored one (a
	// header id commits to its parent's, so the chains agree below it).
	// One header, instead of a window of them, each with its proof of work.
	if sid, ok, err := storedID(top); err != nil {
		return 0, err
	} else if ok {
		hs, err := f.node.ChainSlice(ctx, top, top)
		if err != nil {
			return 0, nodeFault{fmt.Errorf("header %d: %w", top, err)}
		}
		if len(hs) == 1 && hs[0].Height == top && hs[0].TrustedID() == sid {
			return top, nil
		}
	}
	hi := top
	for {
		lo := uint32(1)
		if hi > ancestorWindow {
			lo = hi - ancestorWindow + 1
		}
		headers, err := f.node.ChainSlice(ctx, lo, hi)
		if err != nil {
			return 0, nodeFault{fmt.Errorf("headers %d to %d: %w", lo, hi, err)}
		}
		nodeIDs := make(map[uint32]ergo.Digest, len(headers))
		for _, h := range headers {
			nodeIDs[h.Height] = h.ID // verified by the node client
		}
		for h := hi; h >= lo; h-- {
			sid, ok, err := storedID(h)
			if err != nil {
				return 0, err
			}
			if !ok {
				return 0, fmt.Errorf("%w: no common block with the node at or above height %d, below which nothing is stored", ErrReorgTooDeep, h+1)
			}
			if nid, ok := nodeIDs[h]; ok && nid == sid {
				return h, nil
			}
			if tip.Height-h >= f.cfg.MaxReorgDepth {
				return h - 1, nil // deeper than allowed: reconcile reports it
			}
		}
		if lo == 1 {
			return 0, fmt.Errorf("%w: the node shares no block with the store", ErrReorgTooDeep)
		}
		hi = lo - 1
	}
}

// fetched is one batch of blocks, or the error that stopped it.
type fetched struct {
	blocks []*ergo.FullBlock
	err    error
}

// catchUp connects heights from..to. Up to Ahead batches are fetched (and
// verified, by the node client) concurrently ahead of the batch being
// connected, so memory is bounded by (Ahead+1)*Batch blocks.
func (f *Follower) catchUp(ctx context.Context, tip db.Tip, haveTip bool, from, to uint32) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // every fetch goroutine ends before catchUp returns
	defer cancel()

	batches := make(chan chan fetched, f.cfg.Ahead)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(batches)
		for lo := from; lo <= to; {
			hi := min(uint64(lo)+uint64(f.cfg.Batch)-1, uint64(to))
			res := make(chan fetched, 1)
			select {
			case batches <- res:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func(lo, hi uint32) {
				defer wg.Done()
				blocks, err := f.fetch(ctx, lo, hi)
				res <- fetched{blocks, err}
			}(lo, uint32(hi))
			lo = uint32(hi) + 1
		}
	}()

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
			if haveTip && h.ParentID != tip.ID {
				return fmt.Errorf("%w: block %s at %d builds on %s, the stored tip is %s", errForked, h.ID, h.Height, h.ParentID, tip.ID)
			}
			if err := f.store.ConnectBlock(ctx, b, f.judge); err != nil {
				return fmt.Errorf("connect %s at %d: %w", h.ID, h.Height, err)
			}
			tip, haveTip = db.Tip{Height: h.Height, ID: h.ID}, true
			f.count(func(s *FollowerStats) { s.Connected++; s.LastConnectedAt = time.Now() })
			f.log.Debug().Uint32("height", h.Height).Str("id", h.ID.String()).Int("txs", len(b.Transactions)).Msg("connected")
			f.progress(h.Height)
		}
	}
	return nil
}

// progress logs, every progressEvery, the height reached, the node's, and
// the pace since the last line.
func (f *Follower) progress(height uint32) {
	now := time.Now()
	if !f.progressAt.IsZero() && now.Sub(f.progressAt) < progressEvery {
		return // the usual case, on the per-block path: no lock taken
	}
	st := f.Stats()
	if f.progressAt.IsZero() {
		f.progressAt, f.progressFrom = now, st.Connected
		return
	}
	ev := f.log.Info().Uint32("height", height).Uint32("node_height", st.NodeHeight).
		Float64("blocks_per_second", float64(st.Connected-f.progressFrom)/now.Sub(f.progressAt).Seconds())
	if st.NodeHeight > height {
		ev = ev.Uint32("lag", st.NodeHeight-height)
	}
	ev.Msg("following the chain")
	f.progressAt, f.progressFrom = now, st.Connected
}

// fetch returns the best chain's blocks at heights lo..hi, in order.
func (f *Follower) fetch(ctx context.Context, lo, hi uint32) ([]*ergo.FullBlock, error) {
	headers, err := f.node.ChainSlice(ctx, lo, hi)
	if err != nil {
		return nil, nodeFault{fmt.Errorf("headers %d to %d: %w", lo, hi, err)}
	}
	ids := make([]ergo.Digest, 0, hi-lo+1)
	for _, h := range headers {
		if h.Height >= lo && h.Height <= hi {
			ids = append(ids, h.ID)
		}
	}
	if len(ids) != int(hi-lo+1) {
		// The node's best chain moved (or shrank) since it said its height.
		return nil, nodeFault{fmt.Errorf("asked for headers %d to %d, got %d of them", lo, hi, len(ids))}
	}
	// The client returns exactly these blocks, verified, in this order.
	blocks, err := f.node.Blocks(ctx, ids)
	if err != nil {
		return nil, nodeFault{fmt.Errorf("blocks %d to %d: %w", lo, hi, err)}
	}
	return blocks, nil
}
