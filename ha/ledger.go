package ha

import (
	"maps"
	"slices"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/publish"
)

// Ledger is what the stream holds, as far as a leader needs to know it to
// publish exactly what subscribers have not seen: for each block of the
// last Window heights the stream has events of, its connection (how many
// times the stream connected it) and its verdict events not retracted,
// each with its payload (a retraction is built from it); below those
// heights, for each block with verdicts not retracted (or rolled back
// once), the same without the payloads (a verdict's box, protocol, kind
// and generation: about a hundred bytes each), since a protocol's
// backfill or rescan publishes events of old blocks; and for each
// protocol and generation, the highest block height of a verdict of it
// the stream holds (Reach). Every auditor
// keeps one by reading the stream in order (Apply), so that a standby
// taking the lease knows, once it has read up to the stream's last
// message, exactly what the stream holds; the leader plans on a copy
// (Clone) to which it applies each message as it plans it.
//
// Messages that are not the auditor's events are skipped (counted as
// foreign); events that contradict what came before (a retraction of an
// event not live, say) are skipped too, and counted as anomalies.
type Ledger struct {
	window    uint32
	firstSeq  uint64 // the first message applied; 0: none
	lastSeq   uint64 // the last message applied (or skipped)
	seen      bool   // a chain event was applied
	maxHeight uint32 // the highest block height of a chain event
	// firstHeight is the block height of the first chain event applied:
	// where the stream begins when its first messages are gone.
	firstHeight uint32
	maxEpoch    uint64 // the highest lease epoch of an event
	pruneAt     uint32
	blocks      map[ergo.Digest]*blockState
	reach       map[protocolGeneration]uint32
	// rescans are the heights the rescans the stream has retractions of
	// judge their protocols again from, by the generation they begin.
	rescans map[protocolGeneration]uint32
	counts  LedgerCounts
}

// protocolGeneration is a generation of a protocol's history.
type protocolGeneration struct {
	protocol   string
	generation int
}

// LedgerCounts counts the messages a Ledger was given, by what they were.
type LedgerCounts struct {
	Verdicts, Retractions, Rollbacks, Reports uint64
	Foreign                                   uint64 // not an event of this schema, or an id that does not match it
	Anomalies                                 uint64 // an event that contradicts those before it
}

// blockState is what the stream holds about one block.
type blockState struct {
	id     ergo.Digest
	height uint32
	at     uint64 // the block's timestamp (Unix ms): its events' time
	// conn is the connection (publish.IDConnects) of the last verdict,
	// retraction or rollback of the block; rolled the highest connection
	// rolled back. The block is connected in the stream (open) while
	// conn > rolled.
	conn, rolled int
	live         []liveEvent // verdicts of connection conn not retracted, in stream order
	retracting   bool        // a retraction of connection conn by its disconnect was applied (a rescan's leaves the block connected)
}

func (b *blockState) open() bool { return b.conn > b.rolled }

// next is the block's next connection.
func (b *blockState) next() int { return b.rolled + 1 }

// liveEvent is a verdict event the stream holds and has not retracted.
// Below the floor only its key is kept (msg and data are zero).
type liveEvent struct {
	key  eventKey
	msg  publish.Message // as stored in the stream
	data []byte          // its data, to compare with a verdict made again
}

// compact reports whether e lost its payload below the floor.
func (e liveEvent) compact() bool { return e.msg.Payload == nil }

// eventKey names a verdict within its block: one per box, protocol, kind
// and generation of the protocol (publish.IDConnects). Verdicts of two
// generations of a protocol may be live at once: a protocol pruned and
// configured again is backfilled under its next generation, its earlier
// verdicts left as they are (auditor prune publishes nothing).
type eventKey struct {
	box        ergo.Digest
	protocol   string
	kind       string
	generation int
}

// NewLedger returns an empty ledger that keeps the blocks of the last
// window heights the stream has events of (at least 1): a leader never
// compares its chain with the stream deeper than that.
func NewLedger(window uint32) *Ledger {
	return &Ledger{window: max(window, 1), blocks: map[ergo.Digest]*blockState{}, reach: map[protocolGeneration]uint32{},
		rescans: map[protocolGeneration]uint32{}}
}

// LastSeq is the stream sequence of the last message applied.
func (l *Ledger) LastSeq() uint64 { return l.lastSeq }

// MaxEpoch is the highest lease epoch an event carried.
func (l *Ledger) MaxEpoch() uint64 { return l.maxEpoch }

// Counts returns what the ledger was given.
func (l *Ledger) Counts() LedgerCounts { return l.counts }

// MaxHeight is the highest block height of an event in the stream; ok is
// false before the first.
func (l *Ledger) MaxHeight() (height uint32, ok bool) { return l.maxHeight, l.seen }

// Floor is the lowest height at which the leader compares its main chain
// with the stream: below it, the blocks of the main chain are taken as
// published, but for what a protocol's backfill or rescan adds there (see
// Member). It is 0 for a stream with no chain event (everything is to be
// published), else the lowest of the last window heights, raised to the
// height of the first chain event the ledger read when the stream's first
// messages are gone (aged out or purged: they were published, once).
func (l *Ledger) Floor() uint32 {
	if !l.seen {
		return 0
	}
	var f uint32
	if l.maxHeight >= l.window {
		f = l.maxHeight - l.window + 1
	}
	if l.firstSeq > 1 {
		f = max(f, l.firstHeight)
	}
	return f
}

// Reach is the highest block height of a verdict of protocol's generation
// generation the stream holds (retracted since or not); 0 when it holds
// none.
func (l *Ledger) Reach(protocol string, generation int) uint32 {
	return l.reach[protocolGeneration{protocol, generation}]
}

// Clone returns a copy that changes independently (payloads are shared:
// they are never changed).
func (l *Ledger) Clone() *Ledger {
	c := *l
	c.blocks = make(map[ergo.Digest]*blockState, len(l.blocks))
	for id, b := range l.blocks {
		bc := *b
		bc.live = slices.Clone(b.live)
		c.blocks[id] = &bc
	}
	c.reach = maps.Clone(l.reach)
	c.rescans = maps.Clone(l.rescans)
	return &c
}

// Skip records that the stream's messages up to seq, not applied, are not
// there (deleted).
func (l *Ledger) Skip(seq uint64) {
	if seq > l.lastSeq {
		if l.firstSeq == 0 {
			l.firstSeq = seq + 1
		}
		l.lastSeq = seq
	}
}

// Apply applies the stream's message at seq, whose Nats-Msg-Id header is
// m.ID. A message at or below the last one applied is ignored.
func (l *Ledger) Apply(seq uint64, m publish.Message) {
	if seq <= l.lastSeq {
		return
	}
	if l.firstSeq == 0 {
		l.firstSeq = seq
	}
	l.lastSeq = seq
	ev, err := publish.DecodeEvent(m.Payload)
	if err != nil || (m.ID != "" && ev.ID != m.ID) {
		l.counts.Foreign++
		return
	}
	at, err := ev.At()
	if err != nil {
		l.counts.Foreign++
		return
	}
	ms := uint64(max(at.UnixMilli(), 0))
	switch ev.Type {
	case publish.TypeVerdict:
		d, err := ev.Verdict()
		if err != nil {
			l.counts.Foreign++
			return
		}
		conn, gen, ok := publish.IDConnects(ev.ID)
		if !ok || ev.ID != publish.VerdictID(d.BlockID, d.Box.ID, d.Protocol, d.Kind, conn, gen) {
			l.counts.Foreign++
			return
		}
		l.counts.Verdicts++
		b := l.block(d.BlockID, d.Height, ms)
		switch {
		case conn <= b.rolled || conn < b.conn || (conn > b.conn && b.open()):
			// A connection rolled back, an older one, or a new one while
			// the block is still connected: not a step the stream can take.
			l.counts.Anomalies++
			return
		case conn > b.conn:
			b.conn, b.live, b.retracting = conn, nil, false
		case b.retracting:
			l.counts.Anomalies++ // a verdict after a retraction of its connection
			return
		}
		key := eventKey{d.Box.ID, d.Protocol, d.Kind, gen}
		if slices.ContainsFunc(b.live, func(e liveEvent) bool { return e.key == key }) {
			l.counts.Anomalies++ // the same verdict twice in one connection
			return
		}
		e := liveEvent{key: key, msg: m, data: ev.Data}
		if b.height < l.Floor() {
			e = liveEvent{key: key}
		}
		b.live = append(b.live, e)
		pg := protocolGeneration{d.Protocol, gen}
		l.reach[pg] = max(l.reach[pg], d.Height)
	case publish.TypeRetracted:
		// A disconnect's retraction names the disconnected block, a
		// rescan's the rescan (the block stays connected): one of the two.
		d, err := ev.Retraction()
		if err != nil || (d.DisconnectedBlock == nil) == (d.Rescan == nil) {
			l.counts.Foreign++
			return
		}
		conn, gen, ok := publish.IDConnects(ev.ID)
		dis, rescan := d.DisconnectedBlock, d.Rescan
		switch {
		case !ok || ev.ID != publish.RetractionID(d.BlockID, d.Box.ID, d.Protocol, d.Kind, conn, gen),
			d.Retracts != publish.VerdictID(d.BlockID, d.Box.ID, d.Protocol, d.Kind, conn, gen),
			dis != nil && (dis.ID != d.BlockID || dis.Height != d.Height || dis.Connects != conn),
			rescan != nil && (rescan.Protocol != d.Protocol || rescan.Generation <= gen):
			// Not the retraction of the verdict it names, or a rescan
			// that does not begin a later generation than the verdict's.
			l.counts.Foreign++
			return
		}
		l.counts.Retractions++
		b := l.block(d.BlockID, d.Height, ms)
		key := eventKey{d.Box.ID, d.Protocol, d.Kind, gen}
		i := slices.IndexFunc(b.live, func(e liveEvent) bool { return e.key == key })
		if !b.open() || conn != b.conn || i < 0 {
			l.counts.Anomalies++
			return
		}
		b.live = slices.Delete(b.live, i, i+1)
		if dis != nil {
			b.retracting = true
		} else {
			l.rescans[protocolGeneration{rescan.Protocol, rescan.Generation}] = rescan.FromHeight
		}
	case publish.TypeRollback:
		d, err := ev.Rollback()
		if err != nil || d.Block.Connects < 1 || ev.ID != publish.RollbackID(d.Block.ID, d.Block.Connects) {
			l.counts.Foreign++
			return
		}
		l.counts.Rollbacks++
		b := l.block(d.Block.ID, d.Block.Height, ms)
		c := d.Block.Connects
		if c <= b.rolled || c < b.conn || len(b.live) > 0 {
			// Rolled back already, an older connection, or verdicts of
			// the connection not retracted first: the stream holds it as
			// it says all the same.
			l.counts.Anomalies++
		}
		b.rolled = max(b.rolled, c)
		if c >= b.conn {
			b.conn, b.live, b.retracting = c, nil, false
		}
	case publish.TypeReportReady:
		l.counts.Reports++
	default:
		l.counts.Foreign++
	}
	l.maxEpoch = max(l.maxEpoch, ev.LeaseEpoch)
}

// block returns the state of block id at height, made if need be, and
// notes the height.
func (l *Ledger) block(id ergo.Digest, height uint32, at uint64) *blockState {
	if !l.seen {
		l.firstHeight = height
	}
	l.seen = true
	l.maxHeight = max(l.maxHeight, height)
	if l.maxHeight >= l.pruneAt {
		l.prune()
	}
	b := l.blocks[id]
	if b == nil {
		b = &blockState{id: id, height: height, at: at}
		l.blocks[id] = b
	}
	return b
}

// prune, every quarter window, compacts the blocks below the floor: it
// forgets those with no live verdict that were never rolled back (a
// verdict of one is then of its first connection) and drops the payloads
// of the others' live verdicts.
func (l *Ledger) prune() {
	floor := l.Floor()
	for id, b := range l.blocks {
		switch {
		case b.height >= floor:
		case len(b.live) == 0 && b.rolled == 0:
			delete(l.blocks, id)
		default:
			for i := range b.live {
				b.live[i] = liveEvent{key: b.live[i].key}
			}
		}
	}
	l.pruneAt = l.maxHeight + max(l.window/4, 1)
}

// openBlocks returns the blocks at or above height from the stream holds
// connected, highest first.
func (l *Ledger) openBlocks(from uint32) []*blockState {
	var out []*blockState
	for _, b := range l.blocks {
		if b.open() && b.height >= from {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b *blockState) int {
		if a.height != b.height {
			return int(b.height) - int(a.height)
		}
		return compareDigest(a.id, b.id)
	})
	return out
}

func compareDigest(a, b ergo.Digest) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}
