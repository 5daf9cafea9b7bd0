package scan

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

// Node is what the follower needs of an Ergo node. *Client implements it
// and verifies everything it returns.
type Node interface {
	Info(ctx context.Context) (*ergo.NodeInfo, error)
	// ChainSlice returns the best chain's headers from fromHeight to
	// toHeight, each with its id, stated values and proof of work
	// verified, linked parent to child.
	ChainSlice(ctx context.Context, fromHeight, toHeight uint32) ([]*ergo.Header, error)
	// BlocksFor returns the full blocks of headers the caller verified,
	// in order, each body verified against its header.
	BlocksFor(ctx context.Context, headers []*ergo.Header) ([]*ergo.FullBlock, error)
}

// BlockStore is what the follower needs of the database to follow the
// chain. *db.Store implements it: ConnectBlock and DisconnectBlock each
// move the tip in the same transaction as the block's rows, and refuse a
// block that is not the tip's child (connect) or the tip itself
// (disconnect).
type BlockStore interface {
	Tip(ctx context.Context) (db.Tip, bool, error)
	MainChainHeader(ctx context.Context, height uint32) (db.HeaderRecord, bool, error)
	FirstBlock(ctx context.Context) (db.HeaderRecord, bool, error)
	// ConnectBlocks connects blocks, each the child of the one before,
	// in one transaction that moves the tip once.
	ConnectBlocks(ctx context.Context, blocks []*ergo.FullBlock, judge db.Judge) error
	DisconnectBlock(ctx context.Context, id ergo.Digest, reorg *db.Reorg) error
}

// HeaderStore is what the follower needs of the database to check headers:
// the trust root, and the headers it holds without their blocks.
type HeaderStore interface {
	TrustRoot(ctx context.Context) (db.TrustRoot, bool, error)
	SetTrustRoot(ctx context.Context, t db.TrustRoot) error
	LowestHeader(ctx context.Context) (db.HeaderRecord, bool, error)
	PutContextHeaders(ctx context.Context, hs []db.HeaderRecord) error
	FillHeaders(ctx context.Context, hs []db.HeaderRecord) error
}

// Store is the database as the follower uses it.
type Store interface {
	BlockStore
	HeaderStore
}

// FollowerConfig tunes a Follower. Zero fields take the defaults noted.
type FollowerConfig struct {
	// Params are the consensus rules of the network followed (default
	// mainnet's); Checkpoint, when set, is a header the followed chain
	// must pass through, and the trust root of an empty store.
	Params     consensus.Params
	Checkpoint consensus.Checkpoint
	// Now is the auditor's clock, for the rule on future timestamps
	// (default time.Now).
	Now func() time.Time

	StartHeight   uint32        // first height connected into an empty store (default 1)
	Confirmations uint32        // connect only blocks at least this deep below the node's tip
	MaxReorgDepth uint32        // deeper forks stop the follower with ErrReorgTooDeep (default 200)
	PollInterval  time.Duration // between checks of the node's tip once caught up (default 2s)
	Batch         int           // blocks per POST /blocks/headerIds (default 16)
	Ahead         int           // batches fetched concurrently ahead of the one being connected (default 2)
	UntilHeight   uint32        // Run returns nil once this height is connected; 0 follows forever
	// NodeInfoEvery is how often the node's height is read again while
	// catching up, so that the lag is current (default 5s).
	NodeInfoEvery time.Duration
	// While more than TipDistance blocks from its target (default 8), a
	// catch-up commits up to CommitBlocks blocks (default 64), or what it
	// connected in CommitEvery (default 250ms), in one transaction; nearer,
	// one block each.
	TipDistance  uint32
	CommitBlocks int
	CommitEvery  time.Duration
	// OnConnect, when set, is called for every block connected, with when
	// it was fetched and verified (for a reorg's branch: when the whole
	// branch was) and when its transaction committed: the daemon's
	// histogram of that delay. It runs on the follower's goroutine and
	// must return at once.
	OnConnect func(fetched, committed time.Time)
}

func (c *FollowerConfig) setDefaults() {
	if c.Params.Network == "" {
		c.Params = consensus.Mainnet()
	}
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
	if c.NodeInfoEvery <= 0 {
		c.NodeInfoEvery = 5 * time.Second
	}
	if c.TipDistance == 0 {
		c.TipDistance = 8
	}
	if c.CommitBlocks <= 0 {
		c.CommitBlocks = 64
	}
	if c.CommitEvery <= 0 {
		c.CommitEvery = 250 * time.Millisecond
	}
}

// Follower keeps the store on the chain Ergo's consensus would choose among
// what the node serves. Every header is checked against the network's rules
// (consensus.Validator) before its block is connected. It catches up with
// bounded concurrent fetching ahead of the block being connected, then
// polls the node's tip. When the node's best chain leaves the stored one,
// it evaluates the node's branch headers-first: the branch is adopted only
// when every header obeys the rules, it carries strictly more work than
// the stored branch, and every one of its blocks has been fetched and
// verified; only then are the stored blocks disconnected and the new ones
// connected. A branch refused, or one whose blocks the node withholds,
// leaves the store where it is.
type Follower struct {
	node  Node
	store Store
	judge db.Judge
	cfg   FollowerConfig
	rules *consensus.Validator
	log   zerolog.Logger

	mu    sync.Mutex
	stats FollowerStats

	// Only Run's goroutine touches these. rootChecked: the trust root is
	// set and checked against the configuration. The last progress line:
	// when, and the Connected count then.
	rootChecked  bool
	progressAt   time.Time
	progressFrom uint64
}

// progressEvery is how often a follower connecting blocks logs its
// progress at info level (each block is logged at debug).
const progressEvery = 10 * time.Second

// FollowerStats counts what the follower has done since it was created.
type FollowerStats struct {
	NodeHeight      uint32 // the node's full height at the last check
	NodeHeightAt    time.Time
	Connected       uint64 // blocks connected
	Disconnected    uint64 // blocks disconnected by reorgs
	Reorgs          uint64
	DeepestReorg    uint32
	NodeErrors      uint64 // failed syncs blamed on the node (each retried later)
	LastConnectedAt time.Time

	// Refused counts the headers and branches the node offered that the
	// auditor refused, by the rule they broke (consensus.RuleWork for a
	// branch without more work). LastRefusal is the latest; Refusing is
	// true while the node's best chain is one the auditor refuses (its
	// last sync ended in a refusal).
	Refused     map[consensus.Rule]uint64
	LastRefusal *Refusal
	Refusing    bool
	// Withheld counts the times the node named a branch to adopt but did
	// not serve its blocks; Withholding is true while it does not (the
	// last sync ended so).
	Withheld    uint64
	Withholding bool

	// TrustRoot is the header the checks derive from, once known.
	TrustRoot    db.TrustRoot
	HasTrustRoot bool
}

// Refusal is a header or branch the auditor refused.
type Refusal struct {
	Rule   consensus.Rule
	Height uint32
	ID     ergo.Digest
	Detail string
	At     time.Time
}

// NewFollower returns a Follower; judge decides which boxes are stored and
// what is concluded about them.
func NewFollower(node Node, store Store, judge db.Judge, cfg FollowerConfig, log zerolog.Logger) *Follower {
	cfg.setDefaults()
	return &Follower{node: node, store: store, judge: judge, cfg: cfg, log: log,
		rules: consensus.NewValidator(cfg.Params, cfg.Checkpoint, cfg.Now)}
}

// Stats returns a snapshot of the follower's counters.
func (f *Follower) Stats() FollowerStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.Refused = maps.Clone(f.stats.Refused)
	if f.stats.LastRefusal != nil {
		r := *f.stats.LastRefusal
		st.LastRefusal = &r
	}
	return st
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

// ErrCheckpoint stops the follower: the node's chain, or the stored one,
// does not pass through the configured checkpoint (scan.checkpoint), or
// the configuration contradicts the store's trust root.
const ErrCheckpoint = ErrorKind("the chain does not pass through the checkpoint")

// ErrNetwork stops the follower: the node serves another network than the
// one configured (scan.network).
const ErrNetwork = ErrorKind("the node is on another network")

// errForked means the node's chain changed under a catch-up: the next sync
// starts at once and finds the new common ancestor.
var errForked = errors.New("the node's chain changed during the sync")

// maxImmediateResyncs bounds how many forks in a row are resynced without
// waiting for the poll interval.
const maxImmediateResyncs = 3

// Run follows the node until ctx is done (returning ctx.Err()), until
// UntilHeight is connected (returning nil), or until a fault the follower
// cannot outlive: a fork deeper than MaxReorgDepth, a chain that misses the
// checkpoint, a node of another network, or a store error. Node failures,
// refused chains and withheld blocks are logged and retried every
// PollInterval.
func (f *Follower) Run(ctx context.Context) error {
	forks := 0 // consecutive syncs cut short by a fork
	for {
		done, err := f.sync(ctx)
		var nerr nodeFault
		if !errors.Is(err, errForked) {
			forks = 0
		}
		// The node's chain is refused, or withheld, as long as the last
		// sync said so; an error of another kind says nothing of it.
		if err == nil || ctx.Err() != nil || isRefusal(err) || isWithheld(err) {
			refusing, withholding := isRefusal(err), isWithheld(err)
			f.count(func(s *FollowerStats) { s.Refusing, s.Withholding = refusing, withholding })
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
			f.refused(err)
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

// refused records a header or branch refusal that err reports, if it does.
func (f *Follower) refused(err error) {
	var re *consensus.RuleError
	if !errors.As(err, &re) {
		return
	}
	r := &Refusal{Rule: re.Rule, Height: re.Height, ID: re.ID, Detail: re.Detail, At: time.Now()}
	f.count(func(s *FollowerStats) {
		if s.Refused == nil {
			s.Refused = map[consensus.Rule]uint64{}
		}
		s.Refused[r.Rule]++
		s.LastRefusal = r
	})
}

// isRefusal reports whether err is the refusal of a header or branch.
func isRefusal(err error) bool {
	_, ok := consensus.RuleOf(err)
	return ok
}

// withheld is the error of a branch whose blocks the node did not serve.
type withheld struct{ err error }

func (e withheld) Error() string { return e.err.Error() }
func (e withheld) Unwrap() error { return e.err }

func isWithheld(err error) bool {
	var w withheld
	return errors.As(err, &w)
}

// refuse is the node fault for a header or branch that breaks rule.
func refuse(rule consensus.Rule, height uint32, id ergo.Digest, format string, args ...any) error {
	return nodeFault{&consensus.RuleError{Rule: rule, Height: height, ID: id, Detail: fmt.Sprintf(format, args...)}}
}

func (f *Follower) setNodeHeight(h uint32) {
	f.count(func(s *FollowerStats) { s.NodeHeight, s.NodeHeightAt = h, time.Now() })
}

// sync brings the store to the node's tip (less confirmations) once.
func (f *Follower) sync(ctx context.Context) (done bool, err error) {
	info, err := f.node.Info(ctx)
	if err != nil {
		return false, nodeFault{fmt.Errorf("node info: %w", err)}
	}
	if info.Network != f.cfg.Params.Network {
		return false, fmt.Errorf("%w: it says %q, scan.network is %q", ErrNetwork, info.Network, f.cfg.Params.Network)
	}
	f.setNodeHeight(info.FullHeight)
	var target uint32
	if info.FullHeight > f.cfg.Confirmations {
		target = info.FullHeight - f.cfg.Confirmations
	}
	if f.cfg.UntilHeight > 0 && target > f.cfg.UntilHeight {
		target = f.cfg.UntilHeight
	}
	if err := f.prepare(ctx); err != nil {
		return false, err
	}
	tip, ok, err := f.store.Tip(ctx)
	if err != nil {
		return false, err
	}
	if !ok {
		if f.cfg.StartHeight > target {
			return false, nil
		}
		// The first block's parent: a context header (from the checkpoint),
		// or none (the first block is the trust root).
		var parent *point
		if r, ok, err := f.store.MainChainHeader(ctx, f.cfg.StartHeight-1); err != nil {
			return false, err
		} else if ok {
			parent = &point{id: r.ID, Summary: r.Summary()}
		}
		return f.finish(target, f.catchUp(ctx, parent, f.cfg.StartHeight, target))
	}
	if f.cfg.UntilHeight > 0 && tip.Height >= f.cfg.UntilHeight {
		return true, nil
	}
	top := min(tip.Height, info.FullHeight)
	ancestor, err := f.commonAncestor(ctx, tip, top)
	if err != nil {
		return false, err
	}
	switch {
	case ancestor == tip.Height: // the node's chain holds the tip: extend it
		if tip.Height >= target {
			return false, nil
		}
		parent, err := f.storedPoint(ctx, tip.Height)
		if err != nil {
			return false, err
		}
		return f.finish(target, f.catchUp(ctx, parent, tip.Height+1, target))
	case ancestor == top: // the node is merely behind: wait for it
		return false, nil
	}
	to, err := f.reorganize(ctx, tip, ancestor, info.FullHeight, target)
	if err != nil || to >= target {
		return f.finish(target, err)
	}
	parent, err := f.storedPoint(ctx, to)
	if err != nil {
		return false, err
	}
	return f.finish(target, f.catchUp(ctx, parent, to+1, target))
}

// finish is sync's result once it connected up to target (or failed).
func (f *Follower) finish(target uint32, err error) (bool, error) {
	return err == nil && f.cfg.UntilHeight > 0 && target >= f.cfg.UntilHeight, err
}

// point is a header the follower builds on: its id and what the rules read
// of it.
type point struct {
	id ergo.Digest
	consensus.Summary
}

func pointOf(h *ergo.Header) *point {
	return &point{id: h.TrustedID(), Summary: consensus.Summary{Height: h.Height, Timestamp: h.Timestamp, NBits: h.NBits, Version: h.Version}}
}

// storedPoint is the stored main-chain header at height, which must have
// its consensus data (prepare fills what an older store lacks).
func (f *Follower) storedPoint(ctx context.Context, height uint32) (*point, error) {
	r, ok, err := f.store.MainChainHeader(ctx, height)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, fmt.Errorf("the store holds no header at height %d", height)
	case !r.Known:
		return nil, fmt.Errorf("the stored header %s at height %d has no version and nBits: it was stored before they were kept and the node did not serve it again", r.ID, height)
	}
	return &point{id: r.ID, Summary: r.Summary()}, nil
}

// commonAncestor returns the highest height at or below top where the
// store's main chain and the node's best chain hold the same block.
func (f *Follower) commonAncestor(ctx context.Context, tip db.Tip, top uint32) (uint32, error) {
	// storedID is the connected block at h; ok is false below the first.
	storedID := func(h uint32) (ergo.Digest, bool, error) {
		if h == tip.Height {
			return tip.ID, true, nil
		}
		r, ok, err := f.store.MainChainHeader(ctx, h)
		return r.ID, ok && r.Block, err
	}
	// The usual case first: the node's block at top is the stored one (a
	// header id commits to its parent's, so the chains agree below it).
	// One header, instead of a window of them.
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
	// Below the first block there is nothing to compare.
	first, ok, err := f.store.FirstBlock(ctx)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return 0, fmt.Errorf("the store has a tip at %d but no block", tip.Height)
	}
	hi := top
	for {
		lo := max(first.Height, 1)
		if hi >= lo+ancestorWindow {
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
				return 0, fmt.Errorf("%w: no common block with the node at or above height %d, below which no block is stored", ErrReorgTooDeep, h+1)
			}
			if nid, ok := nodeIDs[h]; ok && nid == sid {
				return h, nil
			}
			if tip.Height-h >= f.cfg.MaxReorgDepth {
				return 0, fmt.Errorf("%w: the node's chain leaves the stored one more than %d blocks below the tip %s at %d (scan.max_reorg_depth)",
					ErrReorgTooDeep, f.cfg.MaxReorgDepth, tip.ID, tip.Height)
			}
		}
		if lo == first.Height {
			return 0, fmt.Errorf("%w: the node shares no block with the store (the first is at %d)", ErrReorgTooDeep, first.Height)
		}
		hi = lo - 1
	}
}

// ancestorWindow is how many headers one chainSlice request compares.
const ancestorWindow = 64

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
