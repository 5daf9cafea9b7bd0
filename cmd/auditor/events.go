package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/publish"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// The adapters between the store's outbox and the publisher, which know
// nothing of each other.

// eventEncoder is the publisher's encoder as the store's EventEncoder.
type eventEncoder struct{ enc *publish.Encoder }

func (e eventEncoder) Verdict(v *rules.Verdict, box *ergo.Box, b db.BlockRef) (db.Message, error) {
	m, err := e.enc.Verdict(v, box, publish.BlockRef(b))
	return db.Message(m), err
}

func (e eventEncoder) Retraction(orig db.Message, b db.BlockRef) (db.Message, error) {
	m, err := e.enc.Retraction(publish.Message(orig), publish.BlockRef(b))
	return db.Message(m), err
}

func (e eventEncoder) Rescinded(orig db.Message, b db.BlockRef, r db.Rescan) (db.Message, error) {
	m, err := e.enc.Rescinded(publish.Message(orig), publish.BlockRef(b), publish.RescanData(r))
	return db.Message(m), err
}

func (e eventEncoder) Rollback(r db.Reorg, b db.BlockRef) (db.Message, error) {
	m, err := e.enc.Rollback(publish.Rollback{
		ForkID: r.ForkID, ForkHeight: r.ForkHeight, Depth: int(r.Depth),
		OldTip: r.OldTip.ID, OldHeight: r.OldTip.Height, NewTip: r.NewTip.ID, NewHeight: r.NewTip.Height,
		Block: publish.BlockRef(b),
	})
	return db.Message(m), err
}

// outboxSource is the store's outbox as the relay's Source.
type outboxSource struct{ store *db.Store }

func (o outboxSource) Pending(ctx context.Context, after int64, limit int) ([]publish.Pending, error) {
	rows, err := o.store.OutboxPending(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]publish.Pending, len(rows))
	for i, r := range rows {
		out[i] = publish.Pending{Seq: r.Seq, Message: publish.Message(r.Message), Written: r.Written}
	}
	return out, nil
}

func (o outboxSource) Published(ctx context.Context, seqs []int64) error {
	return o.store.MarkPublished(ctx, seqs)
}

// gatedStore is the store as the follower sees it, with backpressure: when
// the outbox holds max events not yet acknowledged (NATS down or slow),
// ConnectBlock waits for the relay to catch up instead of indexing on. The
// outbox is counted every gateEvery blocks, or at every block once it is
// half full, so the check costs nothing in the usual case.
type gatedStore struct {
	*db.Store
	max     int64
	blocks  atomic.Int64
	pending atomic.Int64
	waiting atomic.Bool // for the log: whether the scanner is held now
	onWait  func(pending int64)
}

const gateEvery = 64

// ConnectBlock is ConnectBlocks of one block.
func (g *gatedStore) ConnectBlock(ctx context.Context, b *ergo.FullBlock, judge db.Judge) error {
	return g.ConnectBlocks(ctx, []*ergo.FullBlock{b}, judge)
}

// ConnectBlocks waits (gate), then connects.
func (g *gatedStore) ConnectBlocks(ctx context.Context, blocks []*ergo.FullBlock, judge db.Judge) error {
	if err := g.gate(ctx, len(blocks)); err != nil {
		return err
	}
	return g.Store.ConnectBlocks(ctx, blocks, judge)
}

// BackfillBlocks waits, as ConnectBlocks does, then backfills: a backfill
// writes events too.
func (g *gatedStore) BackfillBlocks(ctx context.Context, blocks []*ergo.FullBlock, judge db.Judge) error {
	if err := g.gate(ctx, len(blocks)); err != nil {
		return err
	}
	return g.Store.BackfillBlocks(ctx, blocks, judge)
}

// gate waits, every gateEvery blocks or while the outbox is half full,
// until the outbox holds fewer than max events.
func (g *gatedStore) gate(ctx context.Context, blocks int) error {
	after := g.blocks.Add(int64(blocks))
	crossed := (after-int64(blocks))/gateEvery != after/gateEvery
	if g.max > 0 && (crossed || g.pending.Load() >= g.max/2) {
		return g.wait(ctx)
	}
	return nil
}

// wait returns once the outbox holds fewer than max unacknowledged events.
func (g *gatedStore) wait(ctx context.Context) error {
	delay := 10 * time.Millisecond
	for {
		_, pending, err := g.OutboxCounts(ctx)
		if err != nil {
			return err
		}
		g.pending.Store(pending)
		if pending < g.max {
			g.waiting.Store(false)
			return nil
		}
		if !g.waiting.Swap(true) && g.onWait != nil {
			g.onWait(pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

var (
	_ scan.Store         = (*gatedStore)(nil)
	_ scan.BackfillStore = (*gatedStore)(nil)
)
