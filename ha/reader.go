package ha

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/publish"
)

// reader keeps a Ledger up to date with the stream: it reads every
// message, in order, with an ordered consumer (recreated from the next
// sequence after any failure), from the stream's first message when it
// starts. It creates the stream if there is none yet. A stream deleted
// and created again (its creation time changed, or it ends before the
// ledger does) starts a new ledger.
//
// A consumer can die quietly: the cluster node that held it is lost, and
// the client library, reconnected elsewhere, waits for its messages
// forever (seen with one node of three killed: readers stuck for minutes
// while the stream went on). So the reader does not rely on the
// library's recovery alone: when no message has come for stallAfter while
// the stream holds messages past the last one read, it drops the consumer
// and reads on with a new one.
type reader struct {
	js     jetstream.JetStream
	cfg    publish.StreamConfig // created if need be: every member of a group has the same
	stream string
	window uint32
	log    zerolog.Logger
	// stallAfter is how long the reader waits for the next message while
	// the stream holds it before it starts again with a new consumer;
	// heartbeat is the consumer's idle heartbeat (the library's own
	// liveness check, after two missed).
	stallAfter, heartbeat time.Duration

	mu      sync.Mutex
	ledger  *Ledger
	created time.Time // of the stream the ledger is of
	applied chan struct{}
	err     string    // the last failure, "" once reading again
	last    time.Time // when the last message was applied
}

// How soon a reader notices a lost consumer: the library after two missed
// heartbeats, the reader itself after readerStallAfter without a message
// the stream holds.
const (
	readerHeartbeat  = time.Second
	readerStallAfter = 5 * time.Second
)

func newReader(js jetstream.JetStream, cfg publish.StreamConfig, window uint32, log zerolog.Logger) *reader {
	return &reader{js: js, cfg: cfg, stream: cfg.WithDefaults().Name, window: window, log: log, ledger: NewLedger(window), applied: make(chan struct{}),
		stallAfter: readerStallAfter, heartbeat: readerHeartbeat}
}

// snapshot returns a copy of the ledger.
func (r *reader) snapshot() *Ledger {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ledger.Clone()
}

// lastSeq returns the sequence of the last message applied, and a channel
// closed when the next one is.
func (r *reader) lastSeq() (uint64, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ledger.LastSeq(), r.applied
}

// status returns the ledger's counts, its highest epoch, and the reader's
// last failure.
func (r *reader) status() (LedgerCounts, uint64, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ledger.Counts(), r.ledger.MaxEpoch(), r.err
}

func (r *reader) apply(seq uint64, m publish.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ledger.Apply(seq, m)
	r.last = time.Now()
	close(r.applied)
	r.applied = make(chan struct{})
}

// skip records that the messages up to seq are gone from the stream.
func (r *reader) skip(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ledger.Skip(seq)
	close(r.applied)
	r.applied = make(chan struct{})
}

func (r *reader) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == "" {
		r.log.Warn().Err(err).Msg("cannot read the stream; retrying")
	}
	r.err = err.Error()
}

// Run reads until ctx is done and returns its error.
func (r *reader) Run(ctx context.Context) error {
	for failures := 0; ; failures++ {
		before, _ := r.lastSeq()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if after, _ := r.lastSeq(); after != before {
			failures = 0 // the session read: this failure is the first
		}
		r.failed(err)
		t := time.NewTimer(min(100*time.Millisecond<<min(failures, 6), 5*time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// session reads from the sequence after the ledger's last until a
// failure.
func (r *reader) session(ctx context.Context) error {
	s, err := publish.EnsureStream(ctx, r.js, r.cfg)
	if err != nil {
		return newError(ErrStream, "look up stream "+r.stream, err)
	}
	info := s.CachedInfo()
	r.mu.Lock()
	if last := r.ledger.LastSeq(); (!r.created.IsZero() && !info.Created.Equal(r.created)) || info.State.LastSeq < last {
		r.log.Warn().Time("created", info.Created).Uint64("last_seq", info.State.LastSeq).Uint64("read_to", last).
			Msg("the stream was created again: reading it from its start")
		r.ledger = NewLedger(r.window)
	}
	r.created = info.Created
	start := r.ledger.LastSeq() + 1
	r.mu.Unlock()
	// One attempt at each of the library's own consumer resets: when it
	// fails, the error comes here and the reader starts again, logged and
	// seen by Problems (with no bound, the library retries where neither
	// ctx nor anything else can end it: after a node loss, for minutes).
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy, MaxResetAttempts: 1}
	if start > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return newError(ErrStream, "read stream "+r.stream, err)
	}
	it, err := cons.Messages(jetstream.PullHeartbeat(r.heartbeat))
	if err != nil {
		return newError(ErrStream, "read stream "+r.stream, err)
	}
	defer it.Stop()
	r.mu.Lock()
	r.err = ""
	r.mu.Unlock()
	stalled := make(chan error, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.watch(watchCtx, s, it, stalled) }()
	defer func() { stopWatch(); wg.Wait() }()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			select {
			case err = <-stalled:
			default:
			}
			return newError(ErrStream, "read stream "+r.stream, err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return newError(ErrStream, "read stream "+r.stream, err)
		}
		r.apply(meta.Sequence.Stream, publish.Message{ID: m.Headers().Get(nats.MsgIdHdr), Subject: m.Subject(), Payload: m.Data()})
	}
}

// errStalled: the consumer delivered nothing for a while although the
// stream holds messages past the last one read.
var errStalled = errors.New("no message delivered")

// watch stops it, sending on stalled why, once no message has been
// applied for stallAfter (counted from when watch starts at the
// earliest) while the stream's last message is past the ledger's. It
// stops it too when ctx is done: Next ends at ctx, but not while it is
// inside one of the library's consumer resets. It returns once it
// stopped it.
func (r *reader) watch(ctx context.Context, s jetstream.Stream, it jetstream.MessagesContext, stalled chan<- error) {
	began := time.Now()
	tick := time.NewTicker(r.stallAfter / 5)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			it.Stop()
			return
		case <-tick.C:
		}
		r.mu.Lock()
		last, at := r.ledger.LastSeq(), r.last
		r.mu.Unlock()
		if at.Before(began) {
			at = began
		}
		quiet := time.Since(at)
		if quiet < r.stallAfter {
			continue
		}
		ictx, cancel := context.WithTimeout(ctx, r.stallAfter)
		info, err := s.Info(ictx)
		cancel()
		if err != nil || info.State.LastSeq <= last {
			continue // nothing is missing, or the stream cannot tell: the consumer may be fine
		}
		stalled <- fmt.Errorf("%w for %s while the stream holds messages %d to %d: reading on with a new consumer",
			errStalled, quiet.Round(time.Millisecond), last+1, info.State.LastSeq)
		it.Stop()
		return
	}
}

// waitFor waits until the ledger has applied the stream's messages up to
// seq. Messages that are gone (deleted from the stream's end) never
// arrive: when none has come for a while and the stream's message at seq
// is not there, the ledger skips to it.
func (r *reader) waitFor(ctx context.Context, s jetstream.Stream, seq uint64, quiet time.Duration) error {
	for {
		last, applied := r.lastSeq()
		if last >= seq {
			return nil
		}
		t := time.NewTimer(quiet)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-applied:
			t.Stop()
			continue
		case <-t.C:
		}
		if _, err := s.GetMsg(ctx, seq); errors.Is(err, jetstream.ErrMsgNotFound) {
			r.skip(seq)
			return nil
		} else if err != nil {
			return newError(ErrStream, "read the stream's last message", err)
		}
	}
}
