package report

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests run where the system has no zone database

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
)

// gatedStore is a Store whose ReportData waits for the test to open the
// gate (or for its context to end), and that remembers every record.
type gatedStore struct {
	Store
	entered chan struct{} // a report started reading
	gate    chan struct{} // receives let one ReportData through; nil: never wait

	mu      sync.Mutex
	records []db.ReportRecord
}

func (g *gatedStore) ReportData(ctx context.Context, q db.ReportQuery) (*db.ReportData, error) {
	if g.gate != nil {
		g.entered <- struct{}{}
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Store.ReportData(ctx, q)
}

func (g *gatedStore) RecordReport(ctx context.Context, rec db.ReportRecord) (int64, error) {
	g.mu.Lock()
	g.records = append(g.records, rec)
	g.mu.Unlock()
	return g.Store.RecordReport(ctx, rec)
}

func (g *gatedStore) statuses() []db.ReportStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []db.ReportStatus
	for _, r := range g.records {
		out = append(out, r.Status)
	}
	return out
}

func emptyStore(t *testing.T) Store {
	t.Helper()
	s, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "auditor.db"), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// schedulerRig runs a Scheduler on a fake clock in the background.
type schedulerRig struct {
	clock *fakeClock
	store *gatedStore
	sched *Scheduler
	dir   string
	stop  context.CancelFunc
	done  chan error
}

func newRig(t *testing.T, schedule string, retention int, gated bool) *schedulerRig {
	t.Helper()
	g := &gatedStore{Store: emptyStore(t)}
	if gated {
		g.entered, g.gate = make(chan struct{}), make(chan struct{})
	}
	r := &schedulerRig{clock: newFakeClock(reportTime.Add(-time.Second)), store: g, dir: t.TempDir(), done: make(chan error, 1)}
	rep, err := NewReporter(g, nil, Config{Dir: r.dir, Retention: retention, Clock: r.clock}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	r.sched, err = NewScheduler(rep, SchedulerConfig{Schedule: schedule, ShutdownTimeout: time.Minute, Clock: r.clock}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { r.done <- r.sched.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if g.gate != nil {
			close(g.gate)
		}
		<-r.done
	})
	return r
}

// fire moves the clock to the next scheduled time, once the scheduler
// waits for it.
func (r *schedulerRig) fire(t *testing.T) {
	t.Helper()
	r.clock.AdvanceTo(r.clock.waitForWaiters(t, 1))
}

// waitStats waits until the stats satisfy cond.
func (r *schedulerRig) waitStats(t *testing.T, what string, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := r.sched.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSchedulerSkipsOverlappingRuns(t *testing.T) {
	r := newRig(t, "@every 1m", 0, true)
	r.fire(t)
	<-r.store.entered // the first report runs, held at the gate
	r.fire(t)         // its next time comes: skipped
	r.fire(t)         // and the next
	st := r.waitStats(t, "two skips", func(s Stats) bool { return s.Skipped == 2 })
	if !st.Running || st.Runs != 0 {
		t.Fatalf("stats %+v", st)
	}
	r.store.gate <- struct{}{}
	r.waitStats(t, "the first report", func(s Stats) bool { return s.Runs == 1 && !s.Running })
	r.fire(t) // the scheduler goes on
	<-r.store.entered
	r.store.gate <- struct{}{}
	st = r.waitStats(t, "the second report", func(s Stats) bool { return s.Runs == 2 && !s.Running })
	if st.Skipped != 2 || st.Failures != 0 || st.LastSuccess.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	if got := r.store.statuses(); !slices.Equal(got, []db.ReportStatus{db.ReportOK, db.ReportOK}) {
		t.Fatalf("recorded %v", got)
	}
}

func TestSchedulerFollowsTheCronFieldsInItsTimeZone(t *testing.T) {
	// 03:00 every day in Tokyo is 18:00 UTC.
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	rep, err := NewReporter(emptyStore(t), nil, Config{Dir: t.TempDir(), Clock: clock}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScheduler(rep, SchedulerConfig{Schedule: "0 3 * * *", Location: tokyo, Clock: clock}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	at := clock.waitForWaiters(t, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if want := time.Date(2026, 11, 24, 18, 0, 0, 0, time.UTC); !at.Equal(want) {
		t.Fatalf("next report at %s, want %s", at.UTC(), want)
	}
}

func TestSchedulerRetention(t *testing.T) {
	r := newRig(t, "@hourly", 2, false)
	foreign := filepath.Join(r.dir, "notes.txt")
	if err := os.WriteFile(foreign, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		r.fire(t)
		r.waitStats(t, "a report", func(s Stats) bool { return s.Runs == uint64(i) && !s.Running })
	}
	entries, err := os.ReadDir(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	// Reports at 03:00, 04:00, 05:00 and 06:00: the newest two are kept.
	want := []string{"notes.txt", "report-20261124T050000Z.html", "report-20261124T050000Z.json",
		"report-20261124T060000Z.html", "report-20261124T060000Z.json"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %q, want %q", names, want)
	}
}

func TestSchedulerShutdownWaitsForTheRunningReport(t *testing.T) {
	r := newRig(t, "@every 1m", 0, true)
	r.fire(t)
	<-r.store.entered
	r.stop()
	// Two timers: the next scheduled time's, and the shutdown's timeout.
	r.clock.waitForWaiters(t, 2)
	select {
	case err := <-r.done:
		t.Fatalf("Run returned %v with a report running", err)
	default:
	}
	r.store.gate <- struct{}{} // the report finishes within the timeout
	if err := <-r.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	r.done <- nil // for the cleanup
	if st := r.sched.Stats(); st.Runs != 1 || st.Interrupted != 0 {
		t.Fatalf("stats %+v", st)
	}
	if got := r.store.statuses(); !slices.Equal(got, []db.ReportStatus{db.ReportOK}) {
		t.Fatalf("recorded %v", got)
	}
}

func TestSchedulerShutdownInterruptsAReportThatTakesTooLong(t *testing.T) {
	r := newRig(t, "@every 1m", 0, true)
	r.fire(t)
	<-r.store.entered
	r.stop()
	// Two timers: the next scheduled time's, and the shutdown's timeout.
	r.clock.waitForWaiters(t, 2)
	r.clock.Advance(time.Second) // not yet
	select {
	case err := <-r.done:
		t.Fatalf("Run returned %v before the shutdown's timeout", err)
	default:
	}
	r.clock.Advance(time.Minute) // the shutdown's timeout passes
	if err := <-r.done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	r.done <- nil
	if st := r.sched.Stats(); st.Runs != 0 || st.Interrupted != 1 || st.Running {
		t.Fatalf("stats %+v", st)
	}
	if got := r.store.statuses(); !slices.Equal(got, []db.ReportStatus{db.ReportInterrupted}) {
		t.Fatalf("recorded %v", got)
	}
	if entries, _ := os.ReadDir(r.dir); len(entries) != 0 {
		t.Fatalf("an interrupted report left %d files", len(entries))
	}
}

func TestParseSchedule(t *testing.T) {
	for _, good := range []string{"@daily", "@hourly", "@every 6h", "0 3 * * *", "*/15 * * * 1-5", "CRON_TZ=Europe/Paris 0 3 * * *"} {
		if _, err := ParseSchedule(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for _, bad := range []string{"", "daily", "0 3 * *", "61 * * * *", "@every", "@fortnightly"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
