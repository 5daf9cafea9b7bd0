package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/publish"
	"github.com/async-emission/auditor/report"
	"github.com/async-emission/auditor/rules"
)

const reportSynopsis = `[--config FILE] [--data-dir DIR] [--out DIR]

Makes one audit report now from the stored state (the conservation sweep,
verdict counts, invalid boxes and lineages), writes report-<time>.json and
report-<time>.html to --out (default reports.dir), records it, and queues
its report.ready event for the daemon's relay. It prints the two paths.`

func runReport(e *env, args []string) error {
	fs := newFlagSet(e, "report", reportSynopsis)
	cfgPath := fs.String("config", "", "read the configuration from `FILE` (TOML)")
	dataDir := fs.String("data-dir", "", "keep the database in `DIR`; overrides data_dir")
	out := fs.String("out", "", "write the report files to `DIR`; overrides reports.dir")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	cfg, err := fs.loadConfig(*cfgPath, func(c *Config) {
		if *dataDir != "" {
			c.DataDir = *dataDir
		}
		if *out != "" {
			c.Reports.Dir = *out
		}
	})
	if err != nil {
		return badInput{err}
	}
	ctx := context.Background()
	store, err := openStoreIn(ctx, cfg.DataDir, fs.quietLogger(cfg.Log))
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := newReporter(cfg, store, nil, fs.quietLogger(cfg.Log))
	if err != nil {
		return err
	}
	res, err := rep.Run(ctx, report.Chain{})
	if err != nil {
		return err
	}
	if res.AnnounceErr != nil {
		fmt.Fprintf(e.stderr, "auditor report: the report is made, but its event could not be queued: %v\n", res.AnnounceErr)
	}
	for _, f := range res.Files {
		fmt.Fprintln(e.stdout, f)
	}
	return nil
}

// newReporter builds the reporter of the configuration, announcing each
// report through the store's outbox.
func newReporter(cfg Config, store *db.Store, sweeper *report.Sweeper, log zerolog.Logger) (*report.Reporter, error) {
	loc, err := time.LoadLocation(cfg.Reports.TimeZone) // validated
	if err != nil {
		return nil, err
	}
	protocols, _ := rules.ParseProtocols(cfg.Protocols) // validated
	return report.NewReporter(store, outboxAnnouncer{store: store, enc: encoder(cfg.NATS)}, report.Config{
		Dir: cfg.reportsDir(), Retention: cfg.Reports.Retention, Protocols: protocols, Location: loc,
		Sweeper: sweeper, ExplorerURL: cfg.Reports.ExplorerURL,
	}, log)
}

// outboxAnnouncer announces a report with a report.ready event written to
// the outbox, which the relay publishes like any other.
type outboxAnnouncer struct {
	store *db.Store
	enc   *publish.Encoder
}

func (a outboxAnnouncer) ReportReady(ctx context.Context, summary report.Summary, files []string) error {
	raw, err := json.Marshal(summary)
	if err != nil {
		return err
	}
	m, err := a.enc.ReportReady(publish.Report{Name: "audit", Time: summary.Time, Summary: json.RawMessage(raw), Files: files})
	if err != nil {
		return err
	}
	return a.store.AppendEvent(ctx, "report", db.Message(m))
}
