package scan

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

// The trust root is the header every check derives from: headers are
// checked from it up, and the ones below it that a difficulty computation
// needs are trusted because they are linked to it by parent ids. It is the
// configured checkpoint (scan.checkpoint), or with none the first block
// connected; a store written before the header rules were checked gets one
// where the rules start (see upgrade). A store keeps its trust root for
// life.

// prepare makes sure the store has its trust root, or that the first
// block connected will be it: on an empty store with a checkpoint it
// checks the node's chain against the checkpoint and the headers between
// the checkpoint and the first block; on a store that predates trust
// roots it upgrades. It runs before every sync and does its work once.
func (f *Follower) prepare(ctx context.Context) error {
	if f.rootChecked {
		return nil
	}
	root, ok, err := f.store.TrustRoot(ctx)
	if err != nil {
		return err
	}
	if ok {
		if err := f.checkRoot(ctx, root); err != nil {
			return err
		}
		f.setRoot(root)
		return nil
	}
	tip, hasTip, err := f.store.Tip(ctx)
	if err != nil {
		return err
	}
	if hasTip {
		first, ok, err := f.store.FirstBlock(ctx)
		switch {
		case err != nil:
			return err
		case ok && first.Known:
			// Blocks connected by this version, which stopped before it
			// recorded the first one as the trust root.
			return f.recordRoot(ctx, first.Height, first.ID, db.TrustFirstBlock)
		}
		return f.upgrade(ctx, tip)
	}
	if !f.cfg.Checkpoint.IsZero() {
		return f.bootstrapCheckpoint(ctx)
	}
	return nil // the first block connected becomes the trust root
}

func (f *Follower) setRoot(root db.TrustRoot) {
	f.count(func(s *FollowerStats) { s.TrustRoot, s.HasTrustRoot = root, true })
	f.rootChecked = true
}

// recordRoot makes the header id at height, of kind, the store's trust
// root.
func (f *Follower) recordRoot(ctx context.Context, height uint32, id ergo.Digest, kind db.TrustKind) error {
	root := db.TrustRoot{Height: height, ID: id, Kind: kind, Network: f.cfg.Params.Network}
	if err := f.store.SetTrustRoot(ctx, root); err != nil {
		return err
	}
	f.setRoot(root)
	return nil
}

// checkRoot checks a stored trust root against the configuration: the same
// network, and a checkpoint the stored chain passes through when it holds
// the checkpoint's height (a higher one is checked as the chain reaches it,
// by consensus.RuleCheckpoint).
func (f *Follower) checkRoot(ctx context.Context, root db.TrustRoot) error {
	if root.Network != f.cfg.Params.Network {
		return fmt.Errorf("%w: the store was built on %s, scan.network is %s", ErrNetwork, root.Network, f.cfg.Params.Network)
	}
	cp := f.cfg.Checkpoint
	if cp.IsZero() {
		return nil
	}
	r, ok, err := f.store.MainChainHeader(ctx, cp.Height)
	switch {
	case err != nil:
		return err
	case ok && r.ID != cp.ID:
		return fmt.Errorf("%w: the stored chain has %s at height %d, the checkpoint (scan.checkpoint) is %s", ErrCheckpoint, r.ID, cp.Height, cp.ID)
	case !ok && cp.Height < root.Height:
		f.log.Warn().Stringer("checkpoint", cp).Uint32("trust_root_height", root.Height).
			Msg("the checkpoint is below the store's trust root, which the store keeps: it is not checked")
	}
	return nil
}

// bootstrapCheckpoint makes the checkpoint the trust root of an empty
// store: the node's best chain must hold it; the headers from it up to
// the first block are fetched and checked by the rules, headers first, or,
// when the first block is below it, the headers from the first block's
// parent up to it are fetched and must link to it. They are stored as
// context headers, and the trust root last, so that an interrupted
// bootstrap starts again.
func (f *Follower) bootstrapCheckpoint(ctx context.Context) error {
	cp, start := f.cfg.Checkpoint, f.cfg.StartHeight
	hs, err := f.node.ChainSlice(ctx, cp.Height, cp.Height)
	if err != nil {
		return nodeFault{fmt.Errorf("the checkpoint's header: %w", err)}
	}
	if len(hs) != 1 {
		return nodeFault{fmt.Errorf("the node has no header at the checkpoint's height %d yet", cp.Height)}
	}
	if id := hs[0].TrustedID(); id != cp.ID {
		return fmt.Errorf("%w: the node's best chain has %s at height %d, the checkpoint (scan.checkpoint) is %s", ErrCheckpoint, id, cp.Height, cp.ID)
	}
	// The checkpoint first: the headers the rules read below it link to it.
	if err := f.store.PutContextHeaders(ctx, []db.HeaderRecord{db.RecordOf(hs[0], cp.ID)}); err != nil {
		return err
	}
	var records []db.HeaderRecord
	began := time.Now()
	switch {
	case start > cp.Height+1:
		if records, err = f.headersFirst(ctx, hs[0], start-1); err != nil {
			return err
		}
	case start <= cp.Height && cp.Height > 1:
		if records, err = f.fetchLinked(ctx, max(start, 2)-1, cp.Height-1, hs[0].ParentID); err != nil {
			return err
		}
	}
	if err := f.store.PutContextHeaders(ctx, records); err != nil {
		return err
	}
	if err := f.recordRoot(ctx, cp.Height, cp.ID, db.TrustCheckpoint); err != nil {
		return err
	}
	f.log.Info().Stringer("checkpoint", cp).Int("headers", len(records)+1).Dur("took", time.Since(began)).
		Msg("trust root: the checkpoint, and the headers between it and the first block checked")
	return nil
}

// headersFirst fetches the node's best-chain headers from cp's child up to
// height to, checks each against the rules (cp is the trust root: the
// rules read the headers below it from the node, linked to it), and
// returns them. No block body is fetched.
func (f *Follower) headersFirst(ctx context.Context, cp *ergo.Header, to uint32) ([]db.HeaderRecord, error) {
	var out []db.HeaderRecord
	parent := pointOf(cp)
	view := &branchView{f: f, fork: cp.Height}
	last := time.Now()
	for lo := cp.Height + 1; lo <= to; {
		hi := min(uint64(lo)+MaxChainSlice-1, uint64(to))
		hs, err := f.node.ChainSlice(ctx, lo, uint32(hi))
		if err != nil {
			return nil, nodeFault{fmt.Errorf("headers %d to %d: %w", lo, hi, err)}
		}
		if len(hs) == 0 {
			return nil, nodeFault{fmt.Errorf("the node has no header at height %d yet (headers are checked up to %d, below scan.start_height)", lo, to)}
		}
		for _, h := range hs {
			if h.ParentID != parent.id {
				return nil, nodeFault{fmt.Errorf("%w: header %s at %d builds on %s, not %s", errForked, h.ID, h.Height, h.ParentID, parent.id)}
			}
			if err := f.checkHeader(ctx, h, parent, view); err != nil {
				return nil, err
			}
			view.branch = append(view.branch, h)
			out = append(out, db.RecordOf(h, h.TrustedID()))
			parent = pointOf(h)
		}
		lo = parent.Height + 1
		if time.Since(last) >= progressEvery {
			last = time.Now()
			f.log.Info().Uint32("height", parent.Height).Uint32("to", to).Msg("checking headers from the checkpoint")
		}
	}
	return out, nil
}

// fetchLinked fetches the node's best-chain headers from..to and checks
// that they are linked to each other and that the last is the parent of
// the header whose parent id is top: they are then as trusted as that
// header.
func (f *Follower) fetchLinked(ctx context.Context, from, to uint32, top ergo.Digest) ([]db.HeaderRecord, error) {
	hs, err := linkedHeaders(ctx, f.node, from, to, top)
	if err != nil {
		return nil, err
	}
	out := make([]db.HeaderRecord, len(hs))
	for i, h := range hs {
		out[i] = db.RecordOf(h, h.TrustedID())
	}
	return out, nil
}

// linkedHeaders fetches the node's best-chain headers from..to, linked to
// each other, the last the parent top names.
func linkedHeaders(ctx context.Context, node Node, from, to uint32, top ergo.Digest) ([]*ergo.Header, error) {
	out := make([]*ergo.Header, 0, to-from+1)
	var prev ergo.Digest
	for lo := from; lo <= to; {
		hi := min(uint64(lo)+MaxChainSlice-1, uint64(to))
		hs, err := node.ChainSlice(ctx, lo, uint32(hi))
		if err != nil {
			return nil, nodeFault{fmt.Errorf("headers %d to %d: %w", lo, hi, err)}
		}
		if len(hs) != int(hi-uint64(lo)+1) {
			return nil, nodeFault{fmt.Errorf("asked for headers %d to %d, got %d", lo, hi, len(hs))}
		}
		if len(out) > 0 && hs[0].ParentID != prev {
			return nil, nodeFault{fmt.Errorf("%w: the header at %d does not link to the one below", errForked, lo)}
		}
		out = append(out, hs...)
		prev = hs[len(hs)-1].TrustedID()
		lo = uint32(hi) + 1
	}
	if prev != top {
		return nil, nodeFault{fmt.Errorf("%w: the node's header at height %d is %s, the header above it builds on %s", errForked, to, prev, top)}
	}
	return out, nil
}

// upgrade gives a store written before the header rules existed its trust
// root: the rules read the version and nBits of the stored headers, which
// such a store lacks, so they are taken from the node for the stored
// headers the rules and the fork choice may read (the last
// MaxReorgDepth + ContextDepth), each checked against the stored id, and
// the lowest of them becomes the trust root.
func (f *Follower) upgrade(ctx context.Context, tip db.Tip) error {
	low, ok, err := f.store.LowestHeader(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the store has a tip at %d but no header", tip.Height)
	}
	span := f.cfg.MaxReorgDepth + f.cfg.Params.ContextDepth(tip.Height+1)
	from := low.Height
	if tip.Height > span && tip.Height-span > from {
		from = tip.Height - span
	}
	var records []db.HeaderRecord
	work := new(big.Int)
	for lo := from; lo <= tip.Height; {
		hi := min(uint64(lo)+MaxChainSlice-1, uint64(tip.Height))
		hs, err := f.node.ChainSlice(ctx, lo, uint32(hi))
		if err != nil {
			return nodeFault{fmt.Errorf("headers %d to %d: %w", lo, hi, err)}
		}
		if len(hs) == 0 {
			break
		}
		for _, h := range hs {
			r, ok, err := f.store.MainChainHeader(ctx, h.Height)
			if err != nil {
				return err
			}
			if !ok || r.ID != h.TrustedID() {
				continue // not the stored header: the fork choice will see to it
			}
			d, err := consensus.Work(h.NBits)
			if err != nil {
				return nodeFault{&consensus.RuleError{Rule: consensus.RuleDifficulty, Height: h.Height, ID: r.ID, Detail: "nBits", Err: err}}
			}
			rec := db.RecordOf(h, r.ID)
			rec.Work = new(big.Int).Set(work.Add(work, d))
			records = append(records, rec)
		}
		lo = hs[len(hs)-1].Height + 1
	}
	if len(records) == 0 {
		return nodeFault{errors.New("upgrading a store written before the header rules: the node's chain holds none of its last headers")}
	}
	if err := f.store.FillHeaders(ctx, records); err != nil {
		return err
	}
	if err := f.recordRoot(ctx, records[0].Height, records[0].ID, db.TrustUpgrade); err != nil {
		return err
	}
	f.log.Warn().Uint32("trust_root_height", records[0].Height).Stringer("trust_root", records[0].ID).Int("headers_filled", len(records)).
		Msg("the store was written before the header rules were checked: they apply from the trust root up")
	return nil
}
