package ha

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/publish"
)

// Point is a block: its id and height.
type Point struct {
	ID     ergo.Digest
	Height uint32
}

// Block is a main-chain block with its verdict events, as the leader's
// own store made them.
type Block struct {
	ID, Parent ergo.Digest
	Height     uint32
	Timestamp  uint64 // Unix ms
	Verdicts   []publish.Message
}

// Snapshot is the leader's main chain as it compares it with the stream:
// the blocks with verdict events from From up, read at once with the tip
// and the outbox row they correspond to.
type Snapshot struct {
	// OutboxSeq is the last outbox row the snapshot's chain includes: the
	// rows after it are what changed since.
	OutboxSeq int64
	Tip       Point
	HasTip    bool
	Blocks    []Block // ascending height
	// From and To are the heights read; Complete is true when they reach
	// the tip.
	From, To uint32
	Complete bool
	// Main tells, for each block id the snapshot was asked about, whether
	// it is on the main chain.
	Main map[ergo.Digest]bool
	// Protocols are the histories of the protocols the store judges or
	// judged (not those it pruned), by name, read with the chain.
	Protocols map[string]Protocol
}

// Protocol is a protocol's history in the leader's store, as far as the
// comparison with the stream needs it.
type Protocol struct {
	// Cursor is the height its history is complete to: the store has not
	// judged the blocks above for it yet (its backfill is under way), or
	// no longer does (it was removed from the configuration).
	Cursor uint32
	// Generation counts the times its history was begun again (a rescan):
	// its verdicts judged since have ids ending in -g<Generation>.
	Generation int
	// BackfillFrom is the first height of its last backfill (0: it was
	// judged from the store's first block); Since is when its history was
	// last begun again or changed state: its backfill's events were
	// written after it.
	BackfillFrom uint32
	Since        time.Time
}

// VerdictRef names a verdict of a block: VerdictRef{...} is the verdict
// event of the block's current connection.
type VerdictRef struct {
	Block, Box     ergo.Digest
	Protocol, Kind string
	Generation     int
}

// planned is a message to publish: its stream sequence (the message
// expects the one before it to be the stream's last), its payload as
// stamped, and the outbox row it comes from (0: none) with when that was
// written.
type planned struct {
	seq     uint64
	msg     publish.Message
	row     int64
	written time.Time
}

// planner plans the messages that bring the stream to the leader's chain,
// applying each to the ledger l (the leader's projection of the stream:
// what it holds once the messages planned are stored).
type planner struct {
	enc   *publish.Encoder
	id    string
	epoch uint64
	l     *Ledger
	out   []planned
}

// errDiverged reports an outbox row that does not follow from what the
// stream holds: the leader compares its chain with the stream again.
var errDiverged = fmt.Errorf("the outbox and the stream diverge")

// emit stamps m, applies it to the projection and plans it. A message the
// ledger does not take as the step the planner meant is a bug: it is
// refused rather than published.
func (p *planner) emit(m publish.Message, row publish.Pending) error {
	sm, err := publish.Stamp(m, p.id, p.epoch)
	if err != nil {
		return err
	}
	before := p.l.counts
	seq := p.l.lastSeq + 1
	p.l.Apply(seq, sm)
	if after := p.l.counts; after.Foreign != before.Foreign || after.Anomalies != before.Anomalies {
		return fmt.Errorf("planned message %s does not follow from the stream: %w", sm.ID, errDiverged)
	}
	p.out = append(p.out, planned{seq: seq, msg: sm, row: row.Seq, written: row.Written})
	return nil
}

// localVerdict is a verdict event of the leader's store.
type localVerdict struct {
	key  eventKey
	data []byte
	msg  publish.Message
}

func decodeLocal(m publish.Message) (localVerdict, error) {
	ev, err := publish.DecodeEvent(m.Payload)
	if err != nil {
		return localVerdict{}, err
	}
	d, err := ev.Verdict()
	if err != nil {
		return localVerdict{}, err
	}
	return localVerdict{key: eventKey{d.Box.ID, d.Protocol, d.Kind, publish.IDGeneration(ev.ID)}, data: ev.Data, msg: m}, nil
}

// comparison is what the stream holds that the snapshot's chain does not
// hold as it does.
type comparison struct {
	// stale are the blocks the stream holds connected off the main chain,
	// being retracted, or with verdicts other than the leader's, highest
	// first: they are retracted and rolled back.
	stale []*blockState
	// older are the stream's verdicts, of blocks the chain holds, of a
	// generation of their protocol before the leader's: those the leader's
	// rescan retracted are retracted (its store has their retraction),
	// the others (a prune's, which publishes nothing) are left.
	older []liveRef
	// behind is the highest height the stream holds a block connected at
	// above the snapshot's tip (0: none).
	behind uint32
}

// liveRef is a verdict the stream holds live.
type liveRef struct {
	b   *blockState
	key eventKey
}

func (r liveRef) ref() VerdictRef {
	return VerdictRef{Block: r.b.id, Box: r.key.box, Protocol: r.key.protocol, Kind: r.key.kind, Generation: r.key.generation}
}

// compare compares the blocks the stream holds connected from the
// snapshot's From up with its chain. A verdict the stream holds live and
// the chain does not hold with the same data is judged by its protocol's
// history in the leader's store:
//
//   - a protocol the store has no history of (never configured, or
//     pruned): not the leader's to judge; it is left;
//   - a generation before the store's: one of older (a rescan's to
//     retract, or a prune's to leave);
//   - a block above the protocol's cursor: not judged by the leader yet (a
//     backfill less advanced than the one that published it); it is left,
//     and the leader's verdict, once made, is published only if the stream
//     does not hold it;
//   - else the leader judged that block otherwise (another configuration
//     or version): the block is stale.
func compare(l *Ledger, snap *Snapshot) (*comparison, error) {
	byID := make(map[ergo.Digest]*Block, len(snap.Blocks))
	for i := range snap.Blocks {
		byID[snap.Blocks[i].ID] = &snap.Blocks[i]
	}
	c := &comparison{}
	for _, b := range l.openBlocks(snap.From) {
		if !snap.HasTip || b.height > snap.Tip.Height {
			c.behind = max(c.behind, b.height)
			continue
		}
		if !snap.Main[b.id] || b.retracting {
			c.stale = append(c.stale, b)
			continue
		}
		if b.height > snap.To {
			continue
		}
		local, err := localData(byID[b.id])
		if err != nil {
			return nil, err
		}
		var older []liveRef
		stale := false
		for _, e := range b.live {
			if d, ok := local[e.key]; ok && bytes.Equal(d, e.data) {
				continue
			}
			p, known := snap.Protocols[e.key.protocol]
			switch {
			case !known:
			case e.key.generation < p.Generation:
				older = append(older, liveRef{b, e.key})
			case b.height > p.Cursor:
			default:
				stale = true
			}
		}
		if stale {
			c.stale = append(c.stale, b)
		} else {
			c.older = append(c.older, older...)
		}
	}
	return c, nil
}

// localData is the data of each of blk's verdicts (blk nil: none).
func localData(blk *Block) (map[eventKey][]byte, error) {
	local := map[eventKey][]byte{}
	if blk != nil {
		for _, m := range blk.Verdicts {
			v, err := decodeLocal(m)
			if err != nil {
				return nil, fmt.Errorf("block %s: %w", blk.ID, err)
			}
			local[v.key] = v.data
		}
	}
	return local, nil
}

// olderOutside returns the verdicts the stream holds live in blocks
// outside the snapshot's heights (below the window, or above the blocks
// read in this round) of a generation of their protocol before the
// snapshot's, for the protocols of which the stream holds no verdict of
// the snapshot's generation yet: those the leader's rescan may retract.
// Once the stream holds a verdict of the new generation, it holds every
// retraction of the rescan that began it: they precede the generation's
// verdicts in every auditor's outbox, and a leader publishes them all in
// its first round, before any verdict.
func olderOutside(l *Ledger, snap *Snapshot) []liveRef {
	var out []liveRef
	for _, b := range l.blocks {
		if b.height >= snap.From && b.height <= snap.To || !b.open() {
			continue
		}
		for _, e := range b.live {
			if p, ok := snap.Protocols[e.key.protocol]; ok && e.key.generation < p.Generation && l.Reach(e.key.protocol, p.Generation) == 0 {
				out = append(out, liveRef{b, e.key})
			}
		}
	}
	return out
}

// rescanOf is the rescan of m, a rescan's retraction; nil for another
// message (a disconnect's retraction).
func rescanOf(m publish.Message) *publish.RescanData {
	ev, err := publish.DecodeEvent(m.Payload)
	if err != nil {
		return nil
	}
	if d, err := ev.Retraction(); err == nil {
		return d.Rescan
	}
	return nil
}

// disconnected returns the blocks at heights from to to with a verdict of
// older that the leader's store retracted by a disconnect (found): the
// store saw the block leave its chain, and has it back, judged (or to be
// judged) in a later generation of the protocol, the stream never having
// seen the disconnect. Its rescan could not retract that verdict (the
// block was not on its chain then), and its next generation's verdict
// would not replace it: the block is stale, as one the chain left.
func disconnected(older []liveRef, found map[VerdictRef]publish.Message, from, to uint32) []*blockState {
	var out []*blockState
	for _, r := range older {
		if m, ok := found[r.ref()]; ok && rescanOf(m) == nil && r.b.height >= from && r.b.height <= to && !slices.Contains(out, r.b) {
			out = append(out, r.b)
		}
	}
	return out
}

// withStale returns the stale blocks and more, each once, highest first.
func withStale(stale, more []*blockState) []*blockState {
	for _, b := range more {
		if !slices.Contains(stale, b) {
			stale = append(stale, b)
		}
	}
	slices.SortFunc(stale, func(a, b *blockState) int {
		return cmp.Or(cmp.Compare(b.height, a.height), compareDigest(a.id, b.id))
	})
	return stale
}

// rescind plans the retraction, by the rescan that began its protocol's
// generation in the leader's store (protocols), of each of older that
// rescan retracts, lowest block first: each whose retraction the store
// holds (found, by verdict), in the stream's connection of the block; and
// each of a block at or above the height the rescan judges again from
// that the store has no retraction of — a block it had not judged when it
// was rescanned, which another member had, and published (below the
// window, where the ledger keeps no payload, such a verdict is left). The
// rescan's height is that of the store's retractions of the generation,
// else of the stream's. The verdicts of blocks the stream no longer holds
// connected are left: retracted with them.
func (p *planner) rescind(older []liveRef, found map[VerdictRef]publish.Message, protocols map[string]Protocol) (int, error) {
	slices.SortStableFunc(older, func(a, b liveRef) int {
		return cmp.Or(cmp.Compare(a.b.height, b.b.height), compareDigest(a.b.id, b.b.id))
	})
	from := maps.Clone(p.l.rescans)
	for _, m := range found {
		if r := rescanOf(m); r != nil {
			from[protocolGeneration{r.Protocol, r.Generation}] = r.FromHeight
		}
	}
	n := 0
	for _, r := range older {
		if !r.b.open() {
			continue
		}
		gen := protocols[r.key.protocol].Generation
		var rm publish.Message
		var err error
		m, ok := found[r.ref()]
		h, known := from[protocolGeneration{r.key.protocol, gen}]
		switch {
		case ok && rescanOf(m) != nil:
			rm, err = publish.WithConnects(m, r.b.conn)
		case !ok && known && r.b.height >= h:
			i := slices.IndexFunc(r.b.live, func(e liveEvent) bool { return e.key == r.key })
			if i < 0 || r.b.live[i].compact() {
				continue
			}
			e := r.b.live[i]
			rm, err = p.enc.Rescinded(e.msg, publish.BlockRef{ID: r.b.id, Height: r.b.height, Timestamp: r.b.at, Connects: r.b.conn},
				publish.RescanData{Protocol: r.key.protocol, FromHeight: h, Generation: gen})
		default:
			continue
		}
		if err != nil {
			return n, err
		}
		if err := p.emit(rm, publish.Pending{}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// retract plans the retraction of every verdict of the stale blocks
// (highest first, each block's newest verdict first) and a rollback of
// each: the stream leaves their branch for the one from fork to newTip.
func (p *planner) retract(stale []*blockState, fork, newTip Point) error {
	if len(stale) == 0 {
		return nil
	}
	oldTip := Point{stale[0].id, stale[0].height}
	for _, b := range stale {
		ref := publish.BlockRef{ID: b.id, Height: b.height, Timestamp: b.at, Connects: b.conn}
		for i := len(b.live) - 1; i >= 0; i-- {
			m, err := p.enc.Retraction(b.live[i].msg, ref)
			if err != nil {
				return err
			}
			if err := p.emit(m, publish.Pending{}); err != nil {
				return err
			}
		}
		m, err := p.enc.Rollback(publish.Rollback{
			ForkID: fork.ID, ForkHeight: fork.Height, Depth: int(oldTip.Height) - int(fork.Height),
			OldTip: oldTip.ID, OldHeight: oldTip.Height, NewTip: newTip.ID, NewHeight: newTip.Height,
			Block: ref,
		})
		if err != nil {
			return err
		}
		if err := p.emit(m, publish.Pending{}); err != nil {
			return err
		}
	}
	return nil
}

// publishChain plans every verdict of the blocks (the leader's, ascending)
// the stream does not hold live: all of a block the stream does not hold
// connected (in its next connection), the missing ones of a block it
// holds connected.
func (p *planner) publishChain(blocks []Block) error {
	for i := range blocks {
		blk := &blocks[i]
		for _, m := range blk.Verdicts {
			v, err := decodeLocal(m)
			if err != nil {
				return fmt.Errorf("block %s: %w", blk.ID, err)
			}
			conn := 1
			if b := p.l.blocks[blk.ID]; b != nil && b.open() {
				if slices.ContainsFunc(b.live, func(e liveEvent) bool { return e.key == v.key }) {
					continue
				}
				conn = b.conn
			} else if b != nil {
				conn = b.next()
			}
			gm, err := publish.WithConnects(m, conn)
			if err != nil {
				return err
			}
			if err := p.emit(gm, publish.Pending{}); err != nil {
				return err
			}
		}
	}
	return nil
}

// translate plans the event of an outbox row written after the snapshot
// the stream was brought to: the same event, in the connection the stream
// counts. It plans nothing (the row is superseded) for a verdict the
// stream holds already and for a retraction of a verdict it does not hold;
// a row that cannot follow from the stream is errDiverged.
func (p *planner) translate(row publish.Pending) (bool, error) {
	ev, err := publish.DecodeEvent(row.Payload)
	if err != nil {
		return false, nil // not an event this leader publishes
	}
	switch ev.Type {
	case publish.TypeVerdict:
		d, err := ev.Verdict()
		if err != nil {
			return false, nil
		}
		key := eventKey{d.Box.ID, d.Protocol, d.Kind, publish.IDGeneration(ev.ID)}
		conn := 1
		switch b := p.l.blocks[d.BlockID]; {
		case b == nil:
		case !b.open():
			conn = b.next()
		case b.retracting:
			return false, fmt.Errorf("row %d: a verdict of block %s, which the stream is retracting: %w", row.Seq, d.BlockID, errDiverged)
		case slices.ContainsFunc(b.live, func(e liveEvent) bool { return e.key == key }):
			return false, nil
		default:
			conn = b.conn
		}
		m, err := publish.WithConnects(row.Message, conn)
		if err != nil {
			return false, err
		}
		return true, p.emit(m, row)
	case publish.TypeRetracted:
		// A disconnect's retraction or a rescan's, of the verdict the
		// stream holds live, in the connection the stream counts.
		d, err := ev.Retraction()
		if err != nil {
			return false, nil
		}
		b := p.l.blocks[d.BlockID]
		if b == nil || !b.open() {
			return false, nil
		}
		key := eventKey{d.Box.ID, d.Protocol, d.Kind, publish.IDGeneration(d.Retracts)}
		if !slices.ContainsFunc(b.live, func(e liveEvent) bool { return e.key == key }) {
			return false, nil
		}
		m, err := publish.WithConnects(row.Message, b.conn)
		if err != nil {
			return false, err
		}
		return true, p.emit(m, row)
	case publish.TypeRollback:
		d, err := ev.Rollback()
		if err != nil {
			return false, nil
		}
		conn := 1
		if b := p.l.blocks[d.Block.ID]; b != nil && b.open() {
			if len(b.live) > 0 {
				return false, fmt.Errorf("row %d: a rollback of block %s, whose verdicts the stream holds: %w", row.Seq, d.Block.ID, errDiverged)
			}
			conn = b.conn
		} else if b != nil {
			conn = b.next()
		}
		m, err := publish.WithConnects(row.Message, conn)
		if err != nil {
			return false, err
		}
		return true, p.emit(m, row)
	case publish.TypeReportReady:
		return true, p.emit(row.Message, row)
	}
	return false, nil
}
