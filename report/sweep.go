package report

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/rules"
)

// The conservation sweep of PROTOCOL.md §5 between reports, for the
// metrics: a Sweeper runs it every interval (when the tip moved since the
// last one) and takes the result of every report its Reporter makes, so
// that a scrape reads the last result and never sweeps the store.

// SweepStore is what a Sweeper reads: *db.Store.
type SweepStore interface {
	Tip(ctx context.Context) (db.Tip, bool, error)
	ConservationData(ctx context.Context, protocols []db.ReportProtocol) (*db.ReportData, error)
}

// Sweep is the outcome of a conservation sweep.
type Sweep struct {
	// Read is when the sweep (or the report it comes from) started
	// reading the store; Current is when its result was last known to
	// hold: then, or at a later check that found the tip where it was.
	Read, Current time.Time
	// Tip is the tip the sweep read; Empty when the store held no block.
	Tip   db.Tip
	Empty bool
	// Protocols are the sweep's findings, in the configuration's order.
	Protocols []ProtocolSweep
}

// ProtocolSweep is what a sweep found of one protocol.
type ProtocolSweep struct {
	Name string
	// Lineages is how many lineages were checked, FailingLineages how
	// many of them break conservation.
	Lineages, FailingLineages int
	// MisplacedBoxes counts the live boxes holding participant tokens
	// where §5 allows none; Misplaced is how many tokens they hold.
	MisplacedBoxes int
	Misplaced      Amount
}

// sweepOf is the ProtocolSweep of a protocol's Conservation.
func sweepOf(name string, c *Conservation) ProtocolSweep {
	return ProtocolSweep{Name: name, Lineages: c.LineagesChecked, FailingLineages: len(c.FailingLineages),
		MisplacedBoxes: len(c.Participant.MisplacedList), Misplaced: c.Participant.Misplaced}
}

// Sweeper keeps the last conservation sweep. Its methods may be called
// concurrently.
type Sweeper struct {
	store     SweepStore
	protocols []rules.Protocol
	interval  time.Duration
	log       zerolog.Logger
	now       func() time.Time

	mu   sync.Mutex
	last *Sweep
}

// NewSweeper returns a Sweeper of protocols over store, sweeping every
// interval once Run runs (0: only when a report is made).
func NewSweeper(store SweepStore, protocols []rules.Protocol, interval time.Duration, log zerolog.Logger) (*Sweeper, error) {
	if store == nil {
		return nil, errors.New("report: no store to sweep")
	}
	if interval < 0 {
		return nil, errors.New("report: negative sweep interval")
	}
	return &Sweeper{store: store, protocols: protocols, interval: interval, log: log, now: time.Now}, nil
}

// Run sweeps at once and then every interval until ctx is done, and
// returns ctx's error. A sweep that fails is logged and tried again at the
// next interval; the last result stays. With no interval it sweeps once
// and then waits for ctx (reports keep the result current).
func (s *Sweeper) Run(ctx context.Context) error {
	for {
		if err := s.SweepNow(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Dur("retry_in", s.interval).Msg("conservation sweep failed")
		}
		if s.interval <= 0 {
			<-ctx.Done()
			return ctx.Err()
		}
		t := time.NewTimer(s.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// SweepNow sweeps the store, unless its tip is where the last sweep read
// it: then the last result is still current, and says so.
func (s *Sweeper) SweepNow(ctx context.Context) error {
	read := s.now()
	tip, ok, err := s.store.Tip(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.last != nil && s.last.Empty == !ok && s.last.Tip == tip {
		if read.After(s.last.Current) {
			s.last.Current = read
		}
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()

	protocols := make([]db.ReportProtocol, len(s.protocols))
	for i, p := range s.protocols {
		protocols[i] = db.ReportProtocol{Name: p.Name, ParticipantToken: p.ParticipantTokenID}
	}
	d, err := s.store.ConservationData(ctx, protocols)
	if err != nil {
		return err
	}
	sw := &Sweep{Read: read, Current: read, Tip: d.Tip, Empty: d.Empty}
	for i := range s.protocols {
		p := &s.protocols[i]
		c := conservation(d, p, new(big.Int).SetUint64(p.AsyncSupply))
		sw.Protocols = append(sw.Protocols, sweepOf(p.Name, &c))
	}
	s.keep(sw)
	s.log.Debug().Uint32("tip_height", d.Tip.Height).Dur("took", s.now().Sub(read)).Msg("conservation swept")
	return nil
}

// report takes the conservation sweep of a report that started reading
// the store at read.
func (s *Sweeper) report(read time.Time, r *Report) {
	sw := &Sweep{Read: read, Current: read, Tip: db.Tip{Height: r.Chain.TipHeight}, Empty: r.Chain.Empty}
	if r.Chain.TipID != nil {
		sw.Tip.ID = *r.Chain.TipID
	}
	for i := range r.Protocols {
		sw.Protocols = append(sw.Protocols, sweepOf(r.Protocols[i].Name, &r.Protocols[i].Conservation))
	}
	s.keep(sw)
}

// keep makes sw the last sweep, unless the last read the store later.
func (s *Sweeper) keep(sw *Sweep) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil || !sw.Read.Before(s.last.Read) {
		s.last = sw
	}
}

// Last returns the last sweep; ok is false before the first.
func (s *Sweeper) Last() (sw Sweep, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return Sweep{}, false
	}
	sw = *s.last
	sw.Protocols = append([]ProtocolSweep(nil), s.last.Protocols...)
	return sw, true
}
