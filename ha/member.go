package ha

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/publish"
)

// Chain is the auditor's own store as a member reads and marks it
// (cmd/auditor adapts the database to it).
type Chain interface {
	// Snapshot reads the main chain's verdict events (those no
	// retraction retracted) from height from up, whole blocks at a time,
	// stopping after the block at which more than limit events above
	// height newAbove were read, with whether each of ids is a
	// main-chain block and the protocols' histories, all at once with the
	// outbox's last row.
	Snapshot(ctx context.Context, from, newAbove uint32, limit int, ids []ergo.Digest) (*Snapshot, error)
	// ProtocolEvents reads protocol's verdict events of the main chain's
	// blocks from height from to to, as Snapshot does (whole blocks,
	// stopping after the block at which more than limit events were
	// read); next is the height after the last one read (above to once
	// all are read).
	ProtocolEvents(ctx context.Context, protocol string, from, to uint32, limit int) (blocks []Block, next uint32, err error)
	// Retracted returns the store's retractions of the verdicts refs
	// names, those it holds, by verdict: a rescan's
	// (publish.Encoder.Rescinded) of the verdict of the block's current
	// connection, else a disconnect's of the verdict of an earlier
	// connection of it.
	Retracted(ctx context.Context, refs []VerdictRef) (map[VerdictRef]publish.Message, error)
	// Header returns the stored header id; ok is false when it is not
	// stored.
	Header(ctx context.Context, id ergo.Digest) (h Header, ok bool, err error)
	// MainChainID returns the id of the main chain's block at height.
	MainChainID(ctx context.Context, height uint32) (ergo.Digest, bool, error)
	// Pending and Published are the outbox, as the relay reads it.
	publish.Source
	// Supersede marks outbox rows done with without publishing them: the
	// rows seqs, and every row up to through (0: none). It returns how
	// many rows it marked.
	Supersede(ctx context.Context, seqs []int64, through int64) (int64, error)
}

// Header is a stored header.
type Header struct {
	ID, Parent ergo.Digest
	Height     uint32
	Main       bool
}

// Member defaults.
const (
	DefaultWindow       = 400
	DefaultPlanEvents   = 256
	DefaultPollInterval = time.Second
)

// Config configures a Member.
type Config struct {
	Lease   LeaseConfig
	Stream  publish.StreamConfig
	Encoder *publish.Encoder
	// Window is how many heights below the stream's highest the members
	// compare the chain with it: at least the deepest reorg the followers
	// take (scan.max_reorg_depth). Default DefaultWindow.
	Window uint32
	// PlanEvents bounds the events of one comparison of the chain with
	// the stream (a catch-up is made of several); default
	// DefaultPlanEvents.
	PlanEvents int
	// AckTimeout is how long a message may wait for its ack; default
	// publish.DefaultAckTimeout.
	AckTimeout time.Duration
	// PollInterval is how often the outbox is looked at when nothing
	// calls Notify; default DefaultPollInterval.
	PollInterval time.Duration
	// BackoffMax bounds the wait after a failure; default
	// publish.DefaultBackoffMax.
	BackoffMax time.Duration
	// OnAck, when set, is called for every outbox row published and
	// acknowledged, with the row's Written time and the ack's (as
	// publish.RelayConfig.OnAck). It must return at once.
	OnAck func(written, acked time.Time)
}

func (c Config) withDefaults() Config {
	c.Lease = c.Lease.withDefaults()
	if c.Encoder == nil {
		c.Encoder = &publish.Encoder{}
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.PlanEvents <= 0 {
		c.PlanEvents = DefaultPlanEvents
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = publish.DefaultAckTimeout
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = publish.DefaultBackoffMax
	}
	return c
}

// Status is a member's view of its group and what it did, for the status,
// metrics and readiness.
type Status struct {
	ID string
	LeaseState
	// StreamSeq is the last stream message the member has read.
	StreamSeq uint64
	// Published counts the events this member published (acknowledged by
	// JetStream); Superseded the outbox rows it did not publish (a
	// standby's, and those a leader found the stream to hold already or
	// to lack for good reason); Errors the failures it backed off from;
	// Reconciliations the comparisons of its chain with the stream, one a
	// session (each takeover, each failure), however many rounds of
	// PlanEvents a comparison takes.
	Published, Superseded, Errors, Reconciliations uint64
	InFlight                                       int
	LastAck                                        time.Time
	// Behind is, while the member leads and its chain is below the
	// stream's, the stream's highest height (0 otherwise).
	Behind uint32
	// ReadErr is the stream reader's last failure ("" while it reads).
	ReadErr string
}

// Member is one auditor of a group publishing to one stream: it keeps a
// Ledger of the stream, campaigns for the lease, and while it holds it
// publishes what the stream lacks of its own main chain.
//
// When it takes the lease it reads the stream to its end, compares it
// with its main chain and publishes the difference: retractions and a
// rollback for every block the stream holds connected that its chain does
// not hold (highest first), the retractions of its rescans the stream
// lacks, the verdicts of its backfills below the window the stream lacks,
// then every verdict of its chain the stream does not hold, in the next
// connection of its block (see the package's documentation, Protocols
// over time, for the rule); from then on it
// publishes its outbox's rows as they come, each in the connection the
// stream counts. Messages go one at a time, each expecting the stream's
// last sequence to be the one the member read or published last
// (Nats-Expected-Last-Sequence): when another publisher got in first the
// message is refused, and the member confirms its lease and reads the
// stream again before it publishes anything more. So whoever publishes,
// each message follows from exactly what the stream held (see sender for
// why one at a time). A member that loses the lease publishes nothing
// more; one that stands by marks its outbox rows superseded as they come.
type Member struct {
	cfg    Config
	log    zerolog.Logger
	js     jetstream.JetStream
	chain  Chain
	lease  *Lease
	reader *reader
	notify chan struct{}

	running sync.Mutex
	mu      sync.Mutex
	stats   Status
}

// New returns a member on js (a context like publish.NewJetStream's) and
// chain. Run it.
func New(js jetstream.JetStream, chain Chain, cfg Config, log zerolog.Logger) (*Member, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Stream.Check(); err != nil {
		return nil, newError(ErrConfig, "stream", err)
	}
	m := &Member{cfg: cfg, log: log, js: js, chain: chain, notify: make(chan struct{}, 1)}
	m.reader = newReader(js, cfg.Stream, cfg.Window, log)
	lc := cfg.Lease
	eligible := lc.Eligible
	lc.Eligible = func() bool {
		_, _, readErr := m.reader.status()
		return readErr == "" && (eligible == nil || eligible())
	}
	var err error
	if m.lease, err = NewLease(js, lc, log); err != nil {
		return nil, err
	}
	m.stats.ID = lc.ID
	return m, nil
}

// Notify wakes the member to look at the outbox now; the store calls it
// after a commit that wrote events. It never blocks.
func (m *Member) Notify() {
	select {
	case m.notify <- struct{}{}:
	default:
	}
}

// Status returns the member's view now.
func (m *Member) Status() Status {
	m.mu.Lock()
	st := m.stats
	m.mu.Unlock()
	st.LeaseState = m.lease.State()
	st.StreamSeq, _ = m.reader.lastSeq()
	_, _, st.ReadErr = m.reader.status()
	if st.Role != Leader {
		st.Behind = 0
	}
	return st
}

// Problems are the member's readiness problems: a member is ready when it
// reads the stream and the lease, and either leads (and its chain is not
// behind the stream's) or sees another member lead.
func (m *Member) Problems() []string {
	st := m.Status()
	var out []string
	if st.Err != "" {
		out = append(out, "cannot read or renew the lease: "+st.Err)
	}
	if st.ReadErr != "" {
		out = append(out, "cannot read the stream: "+st.ReadErr)
	}
	switch {
	case st.Role == Leader && st.Behind > 0:
		out = append(out, fmt.Sprintf("this auditor leads but its chain is below the stream's (height %d): it publishes once it catches up", st.Behind))
	case st.Role == Standby && st.Holder == "" && !st.VacantSince.IsZero():
		out = append(out, fmt.Sprintf("no auditor holds the lease (vacant for %s)", time.Since(st.VacantSince).Round(time.Millisecond)))
	case st.Role == Standby && st.Seen.IsZero():
		out = append(out, "the lease has not been read yet")
	}
	return out
}

func (m *Member) count(f func(*Status)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}

// Run runs the member until ctx is done: the lease, the stream reader and
// the publisher. Once ctx is done it stops publishing, then gives the
// lease up and stops reading; it returns ctx's error. Failures are
// retried, never returned.
func (m *Member) Run(ctx context.Context) error {
	if !m.running.TryLock() {
		return errorf(ErrConfig, "run member", "already running")
	}
	defer m.running.Unlock()
	var wg sync.WaitGroup
	leaseCtx, stopLease := context.WithCancel(context.WithoutCancel(ctx))
	readCtx, stopReading := context.WithCancel(context.WithoutCancel(ctx))
	wg.Add(2)
	go func() { defer wg.Done(); m.lease.Run(leaseCtx) }() //nolint:errcheck // returns its context's error
	go func() { defer wg.Done(); m.reader.Run(readCtx) }() //nolint:errcheck // returns its context's error
	m.loop(ctx)
	// Publishing has stopped: the lease is given up, and the reader stops.
	stopLease()
	stopReading()
	wg.Wait()
	return ctx.Err()
}

// loop leads while this member holds the lease and stands by otherwise,
// until ctx is done.
func (m *Member) loop(ctx context.Context) {
	tick := time.NewTicker(m.cfg.PollInterval)
	defer tick.Stop()
	for ctx.Err() == nil {
		changed := m.lease.Changed()
		if epoch, ok := m.lease.Term(); ok {
			m.lead(ctx, epoch)
			continue
		}
		m.supersedeAll(ctx)
		select {
		case <-ctx.Done():
		case <-changed:
		case <-m.notify:
		case <-tick.C:
		}
	}
}

// supersedeAll marks every outbox row superseded: a standby publishes
// none, and the lease's next holder publishes what the stream lacks.
func (m *Member) supersedeAll(ctx context.Context) {
	n, err := m.chain.Supersede(ctx, nil, math.MaxInt64)
	if err != nil && ctx.Err() == nil {
		m.log.Warn().Err(err).Msg("standby: cannot mark the outbox superseded")
		m.count(func(s *Status) { s.Errors++ })
	}
	m.count(func(s *Status) { s.Superseded += uint64(n) })
}

// lead publishes under the lease of epoch until it is lost or ctx is
// done, starting a session again (reading the stream to its end and
// comparing it with the chain) after each failure.
func (m *Member) lead(ctx context.Context, epoch uint64) {
	since := m.lease.State().Since
	log := m.log.With().Uint64("epoch", epoch).Logger()
	for failures := 0; ; failures++ {
		err := m.session(ctx, epoch, since, failures > 0, log)
		m.count(func(s *Status) { s.InFlight, s.Behind = 0, 0 })
		if ctx.Err() != nil {
			return
		}
		if !m.lease.Valid(epoch) {
			log.Warn().Err(err).Msg("stopped publishing: the lease is lost")
			return
		}
		m.count(func(s *Status) { s.Errors++ })
		wait := backoff(failures, m.cfg.BackoffMax)
		if errors.Is(err, errDiverged) || errors.Is(err, errWrongLast) {
			wait = 0 // nothing to wait for: read the stream again
		}
		log.Warn().Err(err).Dur("retry_in", wait).Msg("publishing failed; reading the stream again")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-m.lease.Changed():
		case <-t.C:
		}
		t.Stop()
	}
}

// backoff is the wait after the n+1-th failure in a row: 100ms doubled,
// capped, half of it random.
func backoff(n int, most time.Duration) time.Duration {
	d := most
	if n < 20 {
		d = min(most, 100*time.Millisecond<<n)
	}
	return d/2 + rand.N(d/2+1)
}

// outboxBatch is how many outbox rows a member reads at once.
const outboxBatch = 256

// session brings the stream to the chain, then publishes the outbox as it
// comes, until a failure, the loss of the lease, or ctx. After a failure
// (again), it first confirms the lease.
func (m *Member) session(ctx context.Context, epoch uint64, since time.Time, again bool, log zerolog.Logger) error {
	changed := m.lease.Changed()
	// A compare-and-set on the lease before reading the stream again:
	// after a refused message, a leader whose clock says its lease is
	// valid (it stood still while the machine was suspended) learns here
	// that another took it. The first session follows the write that took
	// the lease.
	if again {
		if err := m.lease.Confirm(ctx, epoch); err != nil {
			return err
		}
	}
	s, err := m.js.Stream(ctx, m.cfg.Stream.WithDefaults().Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = publish.EnsureStream(ctx, m.js, m.cfg.Stream)
	}
	if err != nil {
		return newError(ErrStream, "look up the stream", err)
	}
	last, firstTime := s.CachedInfo().State.LastSeq, s.CachedInfo().State.FirstTime
	wctx, cancel := context.WithTimeout(ctx, m.cfg.AckTimeout)
	err = m.reader.waitFor(wctx, s, last, time.Second)
	cancel()
	if err != nil {
		return newError(ErrStream, fmt.Sprintf("read the stream to its last message %d", last), err)
	}
	p := &planner{enc: m.cfg.Encoder, id: m.lease.ID(), epoch: epoch, l: m.reader.snapshot()}
	out := &sender{m: m, epoch: epoch, stream: m.cfg.Stream.WithDefaults().Name}
	defer out.flush(ctx)
	outboxSeq, err := m.reconcile(ctx, p, out, changed, firstTime, log)
	if err != nil {
		return err
	}
	if err := m.reports(ctx, p, out, outboxSeq, since); err != nil {
		return err
	}
	return m.follow(ctx, p, out, outboxSeq, changed)
}

// reconcile compares the chain with the stream, from the ledger's floor
// to the tip in rounds of at most PlanEvents new events, and publishes the
// difference; it returns the outbox row the last round's chain includes.
// A round plans, in this order: the retractions and rollbacks of the
// stale blocks; the retractions by the leader's rescans of verdicts the
// stream holds (in the first round, all of them: below the floor and
// above the blocks the round reads too); the verdicts
// below the floor of the protocols the leader backfilled that the stream
// lacks (catchUp); the verdicts of its chain from the floor up that the
// stream lacks. firstTime is when the stream's first message was stored.
func (m *Member) reconcile(ctx context.Context, p *planner, out *sender, changed <-chan struct{}, firstTime time.Time, log zerolog.Logger) (int64, error) {
	var above uint32
	for round := 0; ; round++ {
		snap, err := m.chain.Snapshot(ctx, p.l.Floor(), above, m.cfg.PlanEvents, openIDs(p.l))
		if err != nil {
			return 0, newError(ErrChain, "read the main chain", err)
		}
		c, err := compare(p.l, snap)
		if err != nil {
			return 0, newError(ErrPlan, "compare the chain with the stream", err)
		}
		if c.behind > 0 {
			// The stream holds blocks above this auditor's tip: it waits
			// for its chain to reach them before it compares.
			m.count(func(s *Status) { s.Behind = c.behind })
			if err := m.wait(ctx, changed); err != nil {
				return 0, err
			}
			continue
		}
		first := above == 0
		m.count(func(s *Status) {
			s.Behind = 0
			if first {
				s.Reconciliations++ // once a session, however many rounds
			}
		})
		older := c.older
		if first {
			older = append(older, olderOutside(p.l, snap)...)
		}
		found, err := m.retractedOlder(ctx, older)
		if err != nil {
			return 0, err
		}
		c.stale = withStale(c.stale, disconnected(older, found, snap.From, snap.To))
		fork, err := m.forkOf(ctx, p.l, snap, c.stale)
		if err != nil {
			return 0, err
		}
		if err := p.retract(c.stale, fork, snap.Tip); err != nil {
			return 0, newError(ErrPlan, "retract", err)
		}
		retractions := len(p.out)
		rescinded, err := p.rescind(older, found, snap.Protocols)
		if err != nil {
			return 0, newError(ErrPlan, "retract what a rescan retracted", err)
		}
		if err := out.send(ctx, p); err != nil {
			return 0, err
		}
		caught, err := m.catchUp(ctx, p, out, snap, firstTime, log)
		if err != nil {
			return 0, err
		}
		if err := p.publishChain(snap.Blocks); err != nil {
			return 0, newError(ErrPlan, "publish the chain", err)
		}
		if len(p.out) > 0 || retractions+rescinded+caught > 0 || round == 0 {
			log.Info().Int("retracted_blocks", len(c.stale)).Int("retraction_events", retractions).Int("rescan_retractions", rescinded).
				Int("backfilled_below_floor", caught).Int("events", len(p.out)).
				Uint32("from", snap.From).Uint32("to", snap.To).Uint32("tip", snap.Tip.Height).
				Uint64("stream_seq", p.l.LastSeq()-uint64(len(p.out))).Msg("compared the chain with the stream")
		}
		if err := out.send(ctx, p); err != nil {
			return 0, err
		}
		if snap.Complete {
			return snap.OutboxSeq, nil
		}
		above = snap.To
	}
}

// retractedOlder reads the store's retractions of the verdicts older
// names (Chain.Retracted), by verdict.
func (m *Member) retractedOlder(ctx context.Context, older []liveRef) (map[VerdictRef]publish.Message, error) {
	found := map[VerdictRef]publish.Message{}
	refs := make([]VerdictRef, len(older))
	for i, r := range older {
		refs[i] = r.ref()
	}
	for batch := range slices.Chunk(refs, outboxBatch) {
		f, err := m.chain.Retracted(ctx, batch)
		if err != nil {
			return nil, newError(ErrChain, "read the store's retractions", err)
		}
		maps.Copy(found, f)
	}
	return found, nil
}

// catchUp publishes the verdicts below the snapshot's floor that the
// stream lacks of each protocol the leader backfilled there (a protocol
// added, configured again, or judged again by a rescan): from the highest
// block the stream holds a verdict of the protocol's generation at
// (Ledger.Reach), or the backfill's start, up to the protocol's cursor.
// Every auditor publishes a protocol's verdicts in block order (a
// backfill goes up, and a takeover publishes below the floor before it
// publishes above), so the stream holds those below that block already.
// When the stream holds no verdict of the generation and has lost
// messages stored after the protocol's history began (its limits), what
// it held is not known: nothing is published below the floor, as for the
// other protocols. It returns how many verdicts it published.
func (m *Member) catchUp(ctx context.Context, p *planner, out *sender, snap *Snapshot, firstTime time.Time, log zerolog.Logger) (int, error) {
	n := 0
	for _, name := range slices.Sorted(maps.Keys(snap.Protocols)) {
		pr := snap.Protocols[name]
		if pr.BackfillFrom == 0 || pr.BackfillFrom >= snap.From || pr.Cursor < pr.BackfillFrom {
			continue
		}
		reach := p.l.Reach(name, pr.Generation)
		if reach == 0 && p.l.firstSeq > 1 && firstTime.After(pr.Since) {
			log.Warn().Str("protocol", name).Time("stream_first", firstTime).Time("history_since", pr.Since).
				Msg("the stream lost messages stored since the protocol's backfill began: its verdicts below the floor are taken as published")
			continue
		}
		to := min(pr.Cursor, snap.From-1)
		for from := max(pr.BackfillFrom, reach); from <= to; {
			blocks, next, err := m.chain.ProtocolEvents(ctx, name, from, to, m.cfg.PlanEvents)
			if err != nil {
				return n, newError(ErrChain, "read protocol "+name+"'s events", err)
			}
			before := len(p.out)
			if err := p.publishChain(blocks); err != nil {
				return n, newError(ErrPlan, "publish protocol "+name+"'s backfill", err)
			}
			n += len(p.out) - before
			if err := out.send(ctx, p); err != nil {
				return n, err
			}
			if next <= from {
				return n, errorf(ErrChain, "read protocol "+name+"'s events", "from %d, the next height is %d", from, next)
			}
			from = next
		}
	}
	return n, nil
}

// openIDs are the blocks from the ledger's floor up it holds connected.
func openIDs(l *Ledger) []ergo.Digest {
	bs := l.openBlocks(l.Floor())
	ids := make([]ergo.Digest, len(bs))
	for i, b := range bs {
		ids[i] = b.id
	}
	return ids
}

// forkOf finds where the stale blocks' branch leaves the snapshot's
// chain: from the stored headers when this auditor saw that branch, else
// the highest block below it that both the stream and the chain hold, else
// the chain's block just below the lowest stale one.
func (m *Member) forkOf(ctx context.Context, l *Ledger, snap *Snapshot, stale []*blockState) (Point, error) {
	if len(stale) == 0 {
		return Point{}, nil
	}
	low := stale[len(stale)-1]
	id := low.id
	for range m.cfg.Window + 1 {
		h, ok, err := m.chain.Header(ctx, id)
		if err != nil {
			return Point{}, newError(ErrChain, "read header "+id.String(), err)
		}
		if !ok {
			break
		}
		if h.Main && id != low.id {
			return Point{h.ID, h.Height}, nil
		}
		id = h.Parent
	}
	isStale := map[ergo.Digest]bool{}
	for _, b := range stale {
		isStale[b.id] = true
	}
	var best Point
	for _, b := range l.openBlocks(snap.From) {
		if b.height < low.height && b.height > best.Height && snap.Main[b.id] && !isStale[b.id] {
			best = Point{b.id, b.height}
		}
	}
	if best.Height > 0 || low.height <= 1 {
		return best, nil
	}
	below, ok, err := m.chain.MainChainID(ctx, low.height-1)
	if err != nil {
		return Point{}, newError(ErrChain, "read the main chain", err)
	}
	if !ok {
		return Point{Height: low.height - 1}, nil
	}
	return Point{below, low.height - 1}, nil
}

// reports publishes the report.ready events of the outbox up to row
// through that were written since this auditor took the lease (its
// reports as leader; a standby's are not announced), and marks every
// other row up to through superseded.
func (m *Member) reports(ctx context.Context, p *planner, out *sender, through int64, since time.Time) error {
	var after int64
	var skipped []int64
	for after < through {
		rows, err := m.chain.Pending(ctx, after, outboxBatch)
		if err != nil {
			return newError(ErrChain, "read the outbox", err)
		}
		if len(rows) == 0 {
			break
		}
		for _, row := range rows {
			if row.Seq > through {
				after = through
				break
			}
			after = row.Seq
			if ev, err := publish.DecodeEvent(row.Payload); err == nil && ev.Type == publish.TypeReportReady {
				if at, err := ev.At(); err == nil && !at.Before(since.Truncate(time.Millisecond)) {
					if _, err := p.translate(row); err != nil {
						return newError(ErrPlan, "report", err)
					}
					continue
				}
			}
			skipped = append(skipped, row.Seq)
		}
		if err := out.send(ctx, p); err != nil {
			return err
		}
	}
	return m.supersede(ctx, skipped, through)
}

func (m *Member) supersede(ctx context.Context, seqs []int64, through int64) error {
	if len(seqs) == 0 && through == 0 {
		return nil
	}
	n, err := m.chain.Supersede(ctx, seqs, through)
	if err != nil {
		return newError(ErrChain, "mark outbox rows superseded", err)
	}
	m.count(func(s *Status) { s.Superseded += uint64(n) })
	return nil
}

// follow publishes the outbox rows after row after as they come, each as
// the stream counts it.
func (m *Member) follow(ctx context.Context, p *planner, out *sender, after int64, changed <-chan struct{}) error {
	for {
		rows, err := m.chain.Pending(ctx, after, outboxBatch)
		if err != nil {
			return newError(ErrChain, "read the outbox", err)
		}
		var skipped []int64
		for _, row := range rows {
			ok, err := p.translate(row)
			if err != nil {
				return newError(ErrPlan, fmt.Sprintf("outbox row %d", row.Seq), err)
			}
			if !ok {
				skipped = append(skipped, row.Seq)
			}
			after = row.Seq
		}
		if err := out.send(ctx, p); err != nil {
			return err
		}
		if err := m.supersede(ctx, skipped, 0); err != nil {
			return err
		}
		if len(rows) > 0 {
			continue
		}
		if err := m.wait(ctx, changed); err != nil {
			return err
		}
	}
}

// wait waits for a reason to look at the outbox again: Notify or the
// poll. It fails when the lease changes or ctx is done.
func (m *Member) wait(ctx context.Context, changed <-chan struct{}) error {
	t := time.NewTimer(m.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-changed:
		return newError(ErrLeaseLost, "publish", nil)
	case <-m.notify:
	case <-t.C:
	}
	return nil
}

// errWrongLast reports a message JetStream refused because the stream's
// last sequence was not the one it expected: another publisher got in
// first.
var errWrongLast = errors.New("the stream has messages this auditor has not read")

// sender publishes a session's planned messages, one at a time: each
// expects the stream's last sequence to be its predecessor's, and is
// published once its predecessor is acknowledged. One at a time is what
// makes the expectation a fence. A leader paused with messages in flight
// (written to its connection, not yet sent) sends them when it resumes,
// after its successor may have published: the first of them is refused,
// since the stream moved on, but with several in flight a later one could
// find the stream's last sequence equal to the one it expects, by chance,
// and be stored after messages it was not planned after. With one, the
// only message a paused leader can get stored is the one it sent last,
// and only if nothing was appended since it was planned: then it follows
// exactly what it was planned from, and the successor, whose first
// message expects the stream as it was before, is refused and reads the
// stream again. The cost is a round trip a message (see README.md,
// Performance).
type sender struct {
	m      *Member
	epoch  uint64
	stream string
	marks  []int64 // outbox rows acknowledged, not yet marked
	first  bool    // an event was acknowledged in this session
}

// send publishes p's planned messages and forgets them. Before each it
// checks that this auditor still holds the lease.
func (s *sender) send(ctx context.Context, p *planner) error {
	defer func() { p.out = nil }()
	for _, pl := range p.out {
		if !s.m.lease.Valid(s.epoch) {
			return newError(ErrLeaseLost, "publish", nil)
		}
		if err := s.publish(ctx, pl); err != nil {
			return err
		}
		if len(s.marks) >= publish.DefaultMarkBatch {
			if err := s.flush(ctx); err != nil {
				return err
			}
		}
	}
	return s.flush(ctx)
}

// publish publishes one message and waits for its ack.
func (s *sender) publish(ctx context.Context, pl planned) error {
	op := "publish " + pl.msg.ID
	s.m.count(func(st *Status) { st.InFlight = 1 })
	defer s.m.count(func(st *Status) { st.InFlight = 0 })
	pctx, cancel := context.WithTimeout(ctx, s.m.cfg.AckTimeout)
	defer cancel()
	ack, err := s.m.js.PublishMsg(pctx, &nats.Msg{Subject: pl.msg.Subject, Data: pl.msg.Payload, Header: nats.Header{}},
		jetstream.WithMsgID(pl.msg.ID),
		jetstream.WithExpectStream(s.stream),
		jetstream.WithExpectLastSequence(pl.seq-1),
		jetstream.WithRetryAttempts(0))
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant):
		return newError(ErrStream, op, fmt.Errorf("%w: %w", errWrongLast, err))
	default:
		return newError(ErrStream, op, err)
	}
	if ack.Duplicate || ack.Sequence != pl.seq {
		return errorf(ErrStream, op, "not stored as message %d: stored as %d (duplicate %v)", pl.seq, ack.Sequence, ack.Duplicate)
	}
	now := time.Now()
	if pl.row != 0 {
		s.marks = append(s.marks, pl.row)
		if s.m.cfg.OnAck != nil {
			s.m.cfg.OnAck(pl.written, now)
		}
	}
	s.m.count(func(st *Status) { st.Published++; st.LastAck = now })
	if !s.first {
		s.first = true
		s.m.log.Info().Uint64("epoch", s.epoch).Str("event", pl.msg.ID).Uint64("stream_seq", ack.Sequence).
			Msg("first event published in this session")
	}
	return nil
}

// flush marks the acknowledged rows published.
func (s *sender) flush(ctx context.Context) error {
	if len(s.marks) == 0 {
		return nil
	}
	mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.m.chain.Published(mctx, s.marks); err != nil {
		return newError(ErrChain, "mark "+strconv.Itoa(len(s.marks))+" outbox rows published", err)
	}
	s.marks = s.marks[:0]
	return nil
}
