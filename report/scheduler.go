package report

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
)

// ParseSchedule parses a schedule as the configuration writes it: five
// cron fields (minute hour day-of-month month day-of-week), or a
// descriptor such as @daily, @hourly or @every 6h (robfig/cron's
// ParseStandard). A "CRON_TZ=Zone " prefix sets the schedule's own time
// zone.
func ParseSchedule(spec string) (cron.Schedule, error) {
	if spec == "" {
		return nil, errors.New("empty schedule")
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron schedule (five fields, or @daily, @hourly, @every 6h…): %w", spec, err)
	}
	return s, nil
}

// SchedulerConfig configures a Scheduler.
type SchedulerConfig struct {
	// Schedule is when reports run; see ParseSchedule.
	Schedule string
	// Location is the time zone the schedule's fields are read in (nil:
	// UTC): "0 3 * * *" is 03:00 there.
	Location *time.Location
	// ShutdownTimeout bounds how long a shutdown waits for a running
	// report before interrupting it; 0 takes DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// Chain returns the follower's view of the chain when a report starts;
	// nil reports the store's alone.
	Chain func() Chain
	// Clock drives the schedule; nil is the real clock.
	Clock Clock
}

// DefaultShutdownTimeout is SchedulerConfig.ShutdownTimeout's default.
const DefaultShutdownTimeout = 30 * time.Second

// Stats are a Scheduler's counters since it was made.
type Stats struct {
	Runs             uint64        // reports made (ok)
	Skipped          uint64        // scheduled runs skipped: the previous report was still running
	Failures         uint64        // runs that failed (interruptions not included)
	Interrupted      uint64        // runs a shutdown interrupted
	AnnounceFailures uint64        // reports made whose announcement failed
	Running          bool          // a report is running now
	LastStart        time.Time     // when the last run started (zero: none yet)
	LastDuration     time.Duration // how long the last finished run took
	LastSuccess      time.Time     // when the last ok report was made
}

// Scheduler runs a Reporter on a cron schedule. A scheduled time that
// comes while a report is still running is skipped (logged and counted),
// never queued. It owns the goroutine of the running report: Run returns
// only once that has ended.
type Scheduler struct {
	reporter *Reporter
	schedule cron.Schedule
	cfg      SchedulerConfig
	log      zerolog.Logger

	mu    sync.Mutex
	stats Stats
}

// NewScheduler returns a Scheduler of r; the schedule must parse.
func NewScheduler(r *Reporter, cfg SchedulerConfig, log zerolog.Logger) (*Scheduler, error) {
	if r == nil {
		return nil, errors.New("report: no reporter")
	}
	sched, err := ParseSchedule(cfg.Schedule)
	if err != nil {
		return nil, fmt.Errorf("report: schedule: %w", err)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Chain == nil {
		cfg.Chain = func() Chain { return Chain{} }
	}
	return &Scheduler{reporter: r, schedule: sched, cfg: cfg, log: log}, nil
}

// Stats returns a snapshot of the counters.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Scheduler) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// Run runs reports at the scheduled times until ctx is done, then returns
// ctx's error. A report running then is given ShutdownTimeout to finish;
// after that its context is cancelled, and it records itself as
// interrupted before Run returns.
func (s *Scheduler) Run(ctx context.Context) error {
	// A report's context outlives ctx until the shutdown gives up on it.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan struct{}, 1) // the running report has ended
	running := false

	var (
		tick <-chan time.Time
		next time.Time // the time tick fires for
		prev time.Time // the last scheduled time
	)
	s.log.Info().Str("schedule", s.cfg.Schedule).Str("time_zone", s.cfg.Location.String()).Msg("report scheduler started")
	for {
		if tick == nil {
			now := s.cfg.Clock.Now().In(s.cfg.Location)
			from := now
			if from.Before(prev) { // a clock that went back, or a timer that fired early
				from = prev
			}
			next = s.schedule.Next(from)
			if next.IsZero() {
				s.log.Warn().Str("schedule", s.cfg.Schedule).Msg("the schedule never fires again")
				tick = make(chan time.Time) // never
			} else {
				tick = s.cfg.Clock.After(next.Sub(now))
				s.log.Debug().Time("next", next).Msg("next report scheduled")
			}
		}
		select {
		case <-ctx.Done():
			if running {
				s.shutdown(done, stopRun)
			}
			s.log.Info().Msg("report scheduler stopped")
			return ctx.Err()
		case <-done:
			running = false
		case <-tick:
			tick, prev = nil, next
			if running {
				s.count(func(st *Stats) { st.Skipped++ })
				s.log.Warn().Time("scheduled", next).Msg("report skipped: the previous one is still running")
				continue
			}
			running = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.runOnce(runCtx)
				done <- struct{}{}
			}()
		}
	}
}

// shutdown waits for the running report to end, at most ShutdownTimeout;
// then it cancels it and waits for it to record itself interrupted.
func (s *Scheduler) shutdown(done <-chan struct{}, stop context.CancelFunc) {
	s.log.Info().Dur("timeout", s.cfg.ShutdownTimeout).Msg("waiting for the running report")
	select {
	case <-done:
	case <-s.cfg.Clock.After(s.cfg.ShutdownTimeout):
		s.log.Warn().Dur("timeout", s.cfg.ShutdownTimeout).Msg("interrupting the running report")
		stop()
		<-done
	}
}

// runOnce makes one report and counts how it went.
func (s *Scheduler) runOnce(ctx context.Context) {
	start := s.cfg.Clock.Now()
	s.count(func(st *Stats) { st.Running, st.LastStart = true, start })
	res, err := s.reporter.Run(ctx, s.cfg.Chain())
	took := s.cfg.Clock.Now().Sub(start)
	s.count(func(st *Stats) {
		st.Running, st.LastDuration = false, took
		switch {
		case errors.Is(err, ErrInterrupted):
			st.Interrupted++
		case err != nil:
			st.Failures++
		default:
			st.Runs++
			st.LastSuccess = start
			if res.AnnounceErr != nil {
				st.AnnounceFailures++
			}
		}
	})
	if err != nil && !errors.Is(err, ErrInterrupted) {
		s.log.Error().Err(err).Msg("scheduled report failed")
	}
}
