package publish

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Relay defaults, for the zero fields of a RelayConfig.
const (
	DefaultMaxInFlight  = 256
	DefaultMarkBatch    = 64
	DefaultPollInterval = time.Second
	DefaultAckTimeout   = 10 * time.Second
	DefaultBackoffMin   = 100 * time.Millisecond
	DefaultBackoffMax   = 15 * time.Second
	DefaultDrainTimeout = 5 * time.Second
)

// RelayConfig tunes a Relay. Zero fields take the defaults above.
type RelayConfig struct {
	// MaxInFlight bounds the messages published and not yet acknowledged.
	MaxInFlight int
	// BatchSize is the most rows one Source.Pending call returns; default
	// MaxInFlight.
	BatchSize int
	// MarkBatch is how many acknowledged rows one Source.Published call
	// marks while rows keep coming; when the relay catches up it marks
	// what it has at once.
	MarkBatch int
	// PollInterval is how often the relay looks for rows when nobody calls
	// Notify.
	PollInterval time.Duration
	// AckTimeout is how long a message may wait for its ack before the
	// relay gives up on it and republishes from it.
	AckTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait after a failure; it doubles
	// with each failure in a row, with jitter.
	BackoffMin, BackoffMax time.Duration
	// DrainTimeout bounds the wait for outstanding acks when Run's context
	// ends, and then the marking of the rows acknowledged.
	DrainTimeout time.Duration
	// Stream, when set, is the stream the relay publishes to: Run creates
	// or updates it before publishing, and again after every failure (so
	// that a stream deleted meanwhile is created again), retrying as after
	// any failure; every message asks JetStream to store it there (or
	// fail), and at start the relay marks pending rows the stream already
	// holds without republishing them, so that a restart long after a
	// crash does not depend on the duplicate window.
	Stream *StreamConfig
	// OnAck, when set, is called for every row JetStream acknowledges,
	// with the row's Written time and the ack's: the daemon's histogram
	// of that delay. It runs on the relay's goroutine and must return at
	// once.
	OnAck func(written, acked time.Time)
}

func (c RelayConfig) withDefaults() RelayConfig {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.BatchSize <= 0 {
		c.BatchSize = c.MaxInFlight
	}
	if c.MarkBatch <= 0 {
		c.MarkBatch = DefaultMarkBatch
	}
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.AckTimeout, DefaultAckTimeout)
	def(&c.BackoffMin, DefaultBackoffMin)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.DrainTimeout, DefaultDrainTimeout)
	if c.BackoffMin > c.BackoffMax {
		c.BackoffMin = c.BackoffMax
	}
	return c
}

// NewJetStream returns a JetStream context for a Relay on nc: an async
// publish that gets no ack within the relay's AckTimeout fails (so that an
// ack lost without a disconnect frees its slot), and up to four windows of
// publishes may be outstanding.
func NewJetStream(nc *nats.Conn, cfg RelayConfig) (jetstream.JetStream, error) {
	cfg = cfg.withDefaults()
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithPublishAsyncMaxPending(max(4*cfg.MaxInFlight, 1024)))
	if err != nil {
		return nil, newError(ErrConfig, "JetStream context", err)
	}
	return js, nil
}

// Stats counts what a Relay has done since it was made (for metrics).
type Stats struct {
	Published  uint64    // rows acknowledged by JetStream, duplicates included
	Duplicates uint64    // of those, acknowledged as duplicates of a stored message (republished rows)
	Reconciled uint64    // rows found already in the stream at start and marked without republishing
	Errors     uint64    // failures the relay backed off from: publish, ack timeout, outbox, stream
	InFlight   int       // published and not yet acknowledged
	LastAck    time.Time // of the last ack; zero before the first
}

// Relay publishes the outbox to JetStream: rows in seq order, each with
// its message id as Nats-Msg-Id, up to MaxInFlight at a time, and marks
// them published as JetStream acknowledges them, in order and in batches.
//
// Nothing is dropped. When a publish fails, an ack does not come in time,
// or the outbox fails, the relay backs off (exponentially, capped, with
// jitter) and publishes again from the first row not acknowledged; the
// rows after it that JetStream had stored already are acknowledged as
// duplicates and not stored again. After a restart it starts from the
// first row not marked.
type Relay struct {
	src    Source
	js     jetstream.JetStream
	cfg    RelayConfig
	log    zerolog.Logger
	notify chan struct{}

	running atomic.Bool
	mu      sync.Mutex
	stats   Stats
}

// NewRelay returns a relay from src to js. Pass zerolog.Nop() for no
// logs; the relay logs a warning for each failure it backs off from.
func NewRelay(src Source, js jetstream.JetStream, cfg RelayConfig, log zerolog.Logger) *Relay {
	if cfg.Stream != nil {
		sc := *cfg.Stream
		cfg.Stream = &sc
	}
	return &Relay{src: src, js: js, cfg: cfg.withDefaults(), log: log, notify: make(chan struct{}, 1)}
}

// Notify wakes the relay to look for rows now; the database calls it after
// committing a transaction that wrote some. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Stats returns the relay's counters.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Relay) count(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// flight is a message published and waiting for its ack.
type flight struct {
	row  Pending
	ok   <-chan *jetstream.PubAck
	err  <-chan error
	sent time.Time
}

// runState is Run's progress.
type runState struct {
	cursor      int64     // rows up to this seq are acknowledged or in q or buf
	buf         []Pending // read from the outbox, not yet published
	q           []flight  // published, in seq order
	acked       []int64   // acknowledged, not yet marked
	idle        bool      // the outbox had nothing past cursor; wait for Notify or the poll
	streamReady bool
	reconciled  bool
	failures    int // in a row
}

// Run relays until ctx is done, and then drains: it publishes nothing
// more, waits up to DrainTimeout for the acks outstanding, marks the rows
// acknowledged, and returns ctx's error. Failures are retried, never
// returned. Run must not be called again before it returns.
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errorf(ErrConfig, "run relay", "already running")
	}
	defer r.running.Store(false)
	st := &runState{}
	tick := time.NewTicker(r.cfg.PollInterval)
	defer tick.Stop()
	for {
		err := r.session(ctx, st, tick.C)
		if ctx.Err() != nil {
			r.drain(ctx, st)
			return ctx.Err()
		}
		r.count(func(s *Stats) { s.Errors++ })
		r.recover(st)
		// The stream may be what failed (deleted, or lost with a server's
		// store): the next session creates it again if need be.
		st.streamReady = false
		st.failures++
		wait := r.backoff(st.failures)
		r.log.Warn().Err(err).Dur("retry_in", wait).Int64("from_seq", st.cursor+1).Msg("relay failed; will publish again from the first unacknowledged row")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			r.drain(ctx, st)
			return ctx.Err()
		case <-t.C:
		}
	}
}

// session publishes until something fails or ctx is done.
func (r *Relay) session(ctx context.Context, st *runState, tick <-chan time.Time) error {
	if err := r.mark(ctx, st); err != nil {
		return err
	}
	if sc := r.cfg.Stream; sc != nil && !st.streamReady {
		if _, err := EnsureStream(ctx, r.js, *sc); err != nil {
			return err
		}
		st.streamReady = true
	}
	if r.cfg.Stream != nil && !st.reconciled {
		if err := r.reconcile(ctx, st); err != nil {
			return err
		}
		st.reconciled = true
	}
	st.idle = false
	timer := time.NewTimer(r.cfg.AckTimeout)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := r.fill(ctx, st); err != nil {
			return err
		}
		if len(st.q) == 0 {
			if err := r.mark(ctx, st); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-r.notify:
			case <-tick:
			}
			st.idle = false
			continue
		}
		head := st.q[0]
		timer.Reset(time.Until(head.sent.Add(r.cfg.AckTimeout)))
		select {
		case ack := <-head.ok:
			r.acked(st, ack)
			if len(st.acked) >= r.cfg.MarkBatch || len(st.q) == 0 {
				if err := r.mark(ctx, st); err != nil {
					return err
				}
			}
		case err := <-head.err:
			return newError(ErrPublish, fmt.Sprintf("publish row %d (%s)", head.row.Seq, head.row.ID), err)
		case <-timer.C:
			return errorf(ErrPublish, fmt.Sprintf("publish row %d (%s)", head.row.Seq, head.row.ID), "no ack within %s", r.cfg.AckTimeout)
		case <-r.notify:
			st.idle = false
		case <-tick:
			st.idle = false
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fill publishes rows until MaxInFlight are outstanding or the outbox has
// no more.
func (r *Relay) fill(ctx context.Context, st *runState) error {
	for len(st.q) < r.cfg.MaxInFlight {
		if len(st.buf) == 0 {
			if st.idle {
				return nil
			}
			rows, err := r.src.Pending(ctx, st.cursor, r.cfg.BatchSize)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return newError(ErrSource, fmt.Sprintf("read rows after %d", st.cursor), err)
			}
			if len(rows) == 0 {
				st.idle = true
				return nil
			}
			prev := st.cursor
			for _, row := range rows {
				if row.Seq <= prev {
					return errorf(ErrSource, fmt.Sprintf("read rows after %d", st.cursor), "row %d follows row %d: not in seq order", row.Seq, prev)
				}
				prev = row.Seq
			}
			st.buf, st.cursor = rows, prev
		}
		f, err := r.send(st.buf[0])
		if err != nil {
			return err
		}
		st.q = append(st.q, f)
		st.buf = st.buf[1:]
		r.count(func(s *Stats) { s.InFlight = len(st.q) })
	}
	return nil
}

// send publishes one row asynchronously.
func (r *Relay) send(row Pending) (flight, error) {
	op := fmt.Sprintf("publish row %d", row.Seq)
	if row.ID == "" {
		return flight{}, errorf(ErrSource, op, "the row has no message id")
	}
	opts := []jetstream.PublishOpt{jetstream.WithMsgID(row.ID)}
	if r.cfg.Stream != nil {
		opts = append(opts, jetstream.WithExpectStream(r.cfg.Stream.WithDefaults().Name))
	}
	paf, err := r.js.PublishMsgAsync(&nats.Msg{Subject: row.Subject, Data: row.Payload}, opts...)
	if err != nil {
		return flight{}, newError(ErrPublish, op+" ("+row.ID+")", err)
	}
	return flight{row: row, ok: paf.Ok(), err: paf.Err(), sent: time.Now()}, nil
}

// acked takes the head of the window as acknowledged.
func (r *Relay) acked(st *runState, ack *jetstream.PubAck) {
	seq, written := st.q[0].row.Seq, st.q[0].row.Written
	st.q[0] = flight{}
	st.q = st.q[1:]
	st.acked = append(st.acked, seq)
	st.failures = 0
	now := time.Now()
	if r.cfg.OnAck != nil {
		r.cfg.OnAck(written, now)
	}
	r.count(func(s *Stats) {
		s.Published++
		if ack != nil && ack.Duplicate {
			s.Duplicates++
		}
		s.InFlight = len(st.q)
		s.LastAck = now
	})
}

// mark marks the acknowledged rows published.
func (r *Relay) mark(ctx context.Context, st *runState) error {
	if len(st.acked) == 0 {
		return nil
	}
	if err := r.src.Published(ctx, st.acked); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return newError(ErrSource, fmt.Sprintf("mark %d rows published (%d to %d)", len(st.acked), st.acked[0], st.acked[len(st.acked)-1]), err)
	}
	st.acked = st.acked[:0]
	return nil
}

// recover keeps what a failed session achieved: acks that had arrived, in
// order, count; everything from the first row not acknowledged is
// published again.
func (r *Relay) recover(st *runState) {
	for len(st.q) > 0 {
		select {
		case ack := <-st.q[0].ok:
			r.acked(st, ack)
			continue
		default:
		}
		break
	}
	switch {
	case len(st.q) > 0:
		st.cursor = st.q[0].row.Seq - 1
	case len(st.buf) > 0:
		st.cursor = st.buf[0].Seq - 1
	}
	st.q, st.buf = nil, nil
	r.count(func(s *Stats) { s.InFlight = 0 })
}

// drain waits, up to DrainTimeout, for the acks of the messages in flight,
// and marks the rows acknowledged (with a context of its own: ctx is done).
func (r *Relay) drain(ctx context.Context, st *runState) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.DrainTimeout)
	defer cancel()
wait:
	for len(st.q) > 0 {
		select {
		case ack := <-st.q[0].ok:
			r.acked(st, ack)
		case <-st.q[0].err:
			break wait
		case <-dctx.Done():
			break wait
		}
	}
	left := len(st.q)
	st.q, st.buf = nil, nil
	r.count(func(s *Stats) { s.InFlight = 0 })
	mctx, mcancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.DrainTimeout)
	defer mcancel()
	n := len(st.acked)
	if err := r.mark(mctx, st); err != nil {
		r.log.Warn().Err(err).Msg("relay stopping: could not mark acknowledged rows; they will be republished and dropped as duplicates")
	}
	r.log.Info().Int("marked", n).Int("unacknowledged", left).Msg("relay stopped")
}

// reconcile marks, without republishing, the first pending rows when the
// stream's last messages are exactly those rows, in order: what a crash
// between the acks and the marking leaves. Anything else is left to
// republishing and the duplicate window.
func (r *Relay) reconcile(ctx context.Context, st *runState) error {
	name := r.cfg.Stream.WithDefaults().Name
	s, err := r.js.Stream(ctx, name)
	if err != nil {
		return newError(ErrStream, "look up stream "+name, err)
	}
	last := s.CachedInfo().State.LastSeq
	if last == 0 {
		return nil
	}
	// A crash leaves at most MaxInFlight rows stored and not acknowledged
	// and MarkBatch acknowledged and not marked; look at twice that.
	rows, err := r.src.Pending(ctx, st.cursor, 2*(r.cfg.MaxInFlight+r.cfg.MarkBatch))
	if err != nil {
		return newError(ErrSource, fmt.Sprintf("read rows after %d", st.cursor), err)
	}
	idAt := func(seq uint64) (string, error) {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return "", nil
		}
		if err != nil {
			return "", newError(ErrStream, fmt.Sprintf("read message %d of stream %s", seq, name), err)
		}
		return m.Header.Get(jetstream.MsgIDHeader), nil
	}
	id, err := idAt(last)
	if err != nil || id == "" {
		return err
	}
	j := -1
	for i := range rows {
		if rows[i].ID == id {
			j = i
			break
		}
	}
	if j < 0 || uint64(j) >= last {
		return nil
	}
	for i := j - 1; i >= 0; i-- {
		id, err := idAt(last - uint64(j-i))
		if err != nil {
			return err
		}
		if id != rows[i].ID {
			r.log.Debug().Int64("seq", rows[i].Seq).Msg("stream does not end with the pending rows; republishing them")
			return nil
		}
	}
	for _, row := range rows[:j+1] {
		st.acked = append(st.acked, row.Seq)
	}
	if err := r.mark(ctx, st); err != nil {
		return err
	}
	r.count(func(s *Stats) { s.Reconciled += uint64(j + 1) })
	st.cursor = rows[j].Seq
	r.log.Info().Int("rows", j+1).Int64("through_seq", rows[j].Seq).Msg("rows already in the stream marked published")
	return nil
}

// backoff is the wait after the n-th failure in a row: BackoffMin doubled
// n-1 times, capped at BackoffMax, half of it random.
func (r *Relay) backoff(n int) time.Duration {
	d := r.cfg.BackoffMax
	if n-1 < 32 {
		if b := r.cfg.BackoffMin << (n - 1); b > 0 && b < d {
			d = b
		}
	}
	return d/2 + rand.N(d/2+1)
}
