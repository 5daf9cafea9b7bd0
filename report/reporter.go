package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/rules"
)

// Store is what a Reporter reads and writes: *db.Store.
type Store interface {
	ReportData(ctx context.Context, q db.ReportQuery) (*db.ReportData, error)
	LastReport(ctx context.Context) (db.ReportRecord, bool, error)
	RecordReport(ctx context.Context, rec db.ReportRecord) (int64, error)
}

// Announcer announces a report once it is written and recorded (NATS'
// <prefix>.report.ready). files are the JSON and HTML paths.
type Announcer interface {
	ReportReady(ctx context.Context, summary Summary, files []string) error
}

// Config configures a Reporter.
type Config struct {
	// Dir is where the report files go; it is created when missing.
	Dir string
	// Retention is how many reports (JSON and HTML pairs) Dir keeps: after
	// each report the older ones' files are deleted. 0 keeps them all.
	Retention int
	// Protocols are the protocols reported on, in this order.
	Protocols []rules.Protocol
	// Location is the time zone the report's times are written in (nil:
	// UTC). File names are in UTC whatever it is.
	Location *time.Location
	// MaxInvalid bounds the invalid verdicts a report lists (the counts
	// are always complete); 0 takes DefaultMaxInvalid.
	MaxInvalid int
	// Buckets is the number of height ranges of the verdict histogram; 0
	// takes DefaultBuckets.
	Buckets int
	// Clock is the time reports are stamped with; nil is the real clock.
	Clock Clock
	// Sweeper, when set, takes every report's conservation sweep as its
	// last result.
	Sweeper *Sweeper
	// ExplorerURL is a block explorer's page of a box, with {box} where
	// the box id goes: the HTML report links every box (and lineage, by
	// its current box) there. "" links none.
	ExplorerURL string
}

// Defaults of Config.
const (
	DefaultMaxInvalid = 10_000
	DefaultBuckets    = 24
)

// recordTimeout bounds recording an interrupted or failed report, which
// runs after its context is done.
const recordTimeout = 10 * time.Second

// ErrInterrupted reports a run stopped by its context before the report
// was written and recorded; the run records it as interrupted. The error
// also wraps the context's.
var ErrInterrupted = errors.New("report interrupted")

// Reporter makes reports: it reads the store, writes the JSON and HTML
// files, records the report in the store, deletes the reports beyond the
// retention count and announces the new one. Runs are serialized.
type Reporter struct {
	store     Store
	announcer Announcer
	cfg       Config
	log       zerolog.Logger

	mu sync.Mutex // one run at a time
}

// NewReporter returns a Reporter; announcer may be nil (no announcement).
func NewReporter(store Store, announcer Announcer, cfg Config, log zerolog.Logger) (*Reporter, error) {
	if store == nil {
		return nil, errors.New("report: no store")
	}
	if cfg.Dir == "" {
		return nil, errors.New("report: no directory")
	}
	if cfg.Retention < 0 {
		return nil, fmt.Errorf("report: retention %d is negative", cfg.Retention)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.MaxInvalid <= 0 {
		cfg.MaxInvalid = DefaultMaxInvalid
	}
	if cfg.Buckets <= 0 {
		cfg.Buckets = DefaultBuckets
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	return &Reporter{store: store, announcer: announcer, cfg: cfg, log: log}, nil
}

// Result is what a run made.
type Result struct {
	ID     int64 // the report's row in the store
	Report *Report
	// Files are the JSON and HTML files' paths.
	Files []string
	// Deleted are the files of older reports that retention deleted.
	Deleted []string
	// AnnounceErr is the Announcer's failure: the report is made and
	// recorded all the same.
	AnnounceErr error
}

// Run makes one report now from the stored state; chain is the follower's
// view of the chain (the zero Chain when none runs). A run whose ctx ends
// before the report is recorded deletes what it wrote, records the report
// as interrupted, and returns an error wrapping ErrInterrupted; one that
// fails otherwise records it as failed.
func (r *Reporter) Run(ctx context.Context, chain Chain) (*Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := r.cfg.Clock.Now()
	run := &run{r: r, now: start.In(r.cfg.Location)}
	res, err := run.make(ctx, chain)
	if err != nil {
		run.abandon(ctx, err)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("report: %w: %w", ErrInterrupted, ctx.Err())
		}
		return nil, fmt.Errorf("report: %w", err)
	}
	r.log.Info().Int64("id", res.ID).Strs("files", res.Files).Uint32("tip_height", res.Report.Chain.TipHeight).
		Bool("conserved", res.Report.Summary.Conserved).Int64("invalid", res.Report.Summary.Invalid).
		Int("deleted_files", len(res.Deleted)).Dur("took", r.cfg.Clock.Now().Sub(start)).Msg("report written")
	return res, nil
}

// run is one Run: what it has done so far, for abandon.
type run struct {
	r     *Reporter
	now   time.Time
	last  *db.ReportRecord
	since uint32
	tip   uint32
	files []string // written so far
}

func (u *run) make(ctx context.Context, chain Chain) (*Result, error) {
	r := u.r
	last, ok, err := r.store.LastReport(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the last report: %w", err)
	}
	if ok {
		u.last, u.since, u.tip = &last, last.ToHeight, last.ToHeight
	}
	protocols := make([]db.ReportProtocol, len(r.cfg.Protocols))
	for i, p := range r.cfg.Protocols {
		protocols[i] = db.ReportProtocol{Name: p.Name, ParticipantToken: p.ParticipantTokenID}
	}
	var read time.Time // for the Sweeper, on its clock
	if r.cfg.Sweeper != nil {
		read = r.cfg.Sweeper.now()
	}
	data, err := r.store.ReportData(ctx, db.ReportQuery{
		Since: u.since, Protocols: protocols, MaxInvalid: r.cfg.MaxInvalid, Buckets: r.cfg.Buckets,
	})
	if err != nil {
		return nil, fmt.Errorf("read the store: %w", err)
	}
	u.tip = data.Tip.Height
	var previous *findings
	if u.last != nil {
		previous = recordedFindings(u.last)
	}
	rep := build(data, input{now: u.now, last: u.last, since: u.since, chain: chain, protocols: r.cfg.Protocols, previous: previous})
	if r.cfg.Sweeper != nil {
		r.cfg.Sweeper.report(read, rep)
	}

	if err := os.MkdirAll(r.cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	stem, err := newStem(r.cfg.Dir, u.now)
	if err != nil {
		return nil, err
	}
	rep.Summary.Files = []string{stem + ".json", stem + ".html"}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode JSON: %w", err)
	}
	page, err := renderHTML(rep, r.cfg.ExplorerURL)
	if err != nil {
		return nil, fmt.Errorf("render HTML: %w", err)
	}
	for i, data := range [][]byte{append(js, '\n'), page} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		path := filepath.Join(r.cfg.Dir, rep.Summary.Files[i])
		if err := writeFile(path, data); err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		u.files = append(u.files, path)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, err := r.store.RecordReport(ctx, u.record(db.ReportOK, recorded{rep.Summary, findingsOf(rep)}, ""))
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	res := &Result{ID: id, Report: rep, Files: u.files}
	res.Deleted, err = prune(r.cfg.Dir, r.cfg.Retention)
	if err != nil {
		r.log.Warn().Err(err).Str("dir", r.cfg.Dir).Msg("could not delete old reports")
	}
	if r.announcer != nil {
		if err := r.announcer.ReportReady(ctx, rep.Summary, res.Files); err != nil {
			res.AnnounceErr = err
			r.log.Warn().Err(err).Int64("id", id).Msg("could not announce the report")
		}
	}
	return res, nil
}

// record is the row of this run's report.
func (u *run) record(status db.ReportStatus, summary recorded, why string) db.ReportRecord {
	rec := db.ReportRecord{
		Time: u.now, FromHeight: u.since + 1, ToHeight: u.tip, ToTime: u.now,
		Status: status, Error: why,
	}
	if u.last != nil {
		rec.FromTime = u.last.Time
	}
	if len(u.files) == 2 && status == db.ReportOK {
		rec.JSONPath, rec.HTMLPath = u.files[0], u.files[1]
	}
	rec.Summary, _ = json.Marshal(summary) // plain values: cannot fail
	return rec
}

// abandon deletes what a failed run wrote and records it, interrupted when
// ctx is done, failed otherwise.
func (u *run) abandon(ctx context.Context, cause error) {
	for _, f := range u.files {
		if err := os.Remove(f); err != nil {
			u.r.log.Warn().Err(err).Str("file", f).Msg("could not delete an unfinished report")
		}
	}
	u.files = nil
	status, ev := db.ReportFailed, u.r.log.Error()
	if ctx.Err() != nil {
		status, ev = db.ReportInterrupted, u.r.log.Warn()
		cause = ctx.Err()
	}
	ev.Err(cause).Str("status", string(status)).Msg("report not made")
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := u.r.store.RecordReport(rctx, u.record(status, recorded{Summary: Summary{Time: u.now, Files: []string{}}}, cause.Error())); err != nil {
		u.r.log.Error().Err(err).Str("status", string(status)).Msg("could not record the report")
	}
}
