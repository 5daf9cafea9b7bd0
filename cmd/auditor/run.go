package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ha"
	"github.com/async-emission/auditor/internal/redact"
	"github.com/async-emission/auditor/lock"
	"github.com/async-emission/auditor/publish"
	"github.com/async-emission/auditor/report"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

const runSynopsis = `[--config FILE] [--until-height N] [--node URL] [--network NAME] [--nats URL[,URL...]] [--http ADDR] [--data-dir DIR]

Follows the Ergo node, judges every block for the configured protocols,
stores what they make relevant and publishes every verdict on NATS
JetStream (an embedded server unless nats.url or --nats names one).
Without --config every default applies (config.example.toml lists them).
SIGINT or SIGTERM stops it cleanly; a second one stops it at once.`

// optionalString is a string flag that knows whether it was given, so
// that --http "" can disable what the file enables.
type optionalString struct {
	value string
	set   bool
}

func (o *optionalString) String() string { return o.value }

func (o *optionalString) Set(v string) error {
	o.value, o.set = v, true
	return nil
}

// Files inside the data directory: the SQLite database, and the file
// whose lock makes the directory one process's.
const (
	dbFile   = "auditor.db"
	lockFile = "auditor.lock"
)

func runRun(e *env, args []string) error {
	fs := newFlagSet(e, "run", runSynopsis)
	cfgPath := fs.String("config", "", "read the configuration from `FILE` (TOML)")
	until := fs.Uint("until-height", 0, "exit 0 once this height is connected (0: follow forever)")
	nodeURL := fs.String("node", "", "the Ergo node at `URL`; overrides node.url")
	natsURL := fs.String("nats", "", "the NATS servers at `URLS`, comma-separated; overrides nats.url")
	dataDir := fs.String("data-dir", "", "keep the database in `DIR`; overrides data_dir")
	network := fs.String("network", "", "check the chain against the consensus rules of `NETWORK`: mainnet, testnet or devnet; overrides scan.network")
	var httpAddr optionalString
	fs.Var(&httpAddr, "http", "serve HTTP on `ADDR`; overrides http.listen (\"\" disables it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *until > 1<<31-1 {
		return badInput{fmt.Errorf("--until-height %d is beyond any block height", *until)}
	}
	cfg, err := fs.loadConfig(*cfgPath, func(c *Config) {
		if *nodeURL != "" {
			c.Node.URL = *nodeURL
		}
		if *natsURL != "" {
			c.NATS.URL = strings.Split(*natsURL, ",")
		}
		if *dataDir != "" {
			c.DataDir = *dataDir
		}
		if *network != "" {
			c.Scan.Network = *network
		}
		if httpAddr.set {
			c.HTTP.Listen = httpAddr.value
		}
	})
	if err != nil {
		return badInput{err}
	}
	log := newLogger(cfg.Log, e.stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// After the first signal, the next one has its default effect: the
		// process exits at once.
		<-ctx.Done()
		stop()
	}()
	return runAuditor(ctx, cfg, uint32(*until), log)
}

// runAuditor runs the auditor until ctx is done (a clean stop, nil), until
// untilHeight is connected (nil), or until a fault it cannot outlive.
//
// It owns every component's goroutine and waits for each before it
// returns. The scanner and the report scheduler run on ctx: a stop ends
// the block in progress and waits (bounded) for a running report. The
// outbox relay and the HTTP server run on a context of their own, stopped
// only once the scanner and the scheduler have, and the outbox has drained
// (within shutdownTimeout), so that what the last blocks and the last
// report concluded is published before the process goes; NATS and SQLite
// close last.
func runAuditor(ctx context.Context, cfg Config, untilHeight uint32, log zerolog.Logger) (err error) {
	d, err := openDaemon(ctx, cfg, untilHeight, log)
	if err != nil {
		return err
	}
	defer d.close()
	return d.run(ctx)
}

// daemon is the auditor's components, wired.
type daemon struct {
	cfg      Config
	log      zerolog.Logger
	lock     *lock.Lock // the data directory's
	store    *db.Store
	link     *natsLink
	relay    *publish.Relay // nil with HA: member publishes
	member   *ha.Member     // with HA only
	client   *scan.Client
	follower *scan.Follower
	backfill *scan.Backfill    // the histories of protocols added later (or rescanned)
	sched    *report.Scheduler // nil: no schedule
	reporter *report.Reporter
	sweeper  *report.Sweeper // the conservation sweep of the metrics
	http     net.Listener    // nil: no HTTP server
	handler  *api.Handler
	latency  *api.Latency // fed by the follower and the relay, served by the handler
	started  time.Time

	// drainTimeout bounds the wait for the outbox to drain at a stop
	// (shutdownTimeout).
	drainTimeout time.Duration

	// reportAtEnd makes a report once --until-height is reached, before
	// the outbox drains (auditor demo); its result is finalReport.
	reportAtEnd bool
	finalReport *report.Result
}

// openDaemon opens the store, NATS and the HTTP listener, and builds the
// rest; close releases what it opened.
func openDaemon(ctx context.Context, cfg Config, untilHeight uint32, log zerolog.Logger) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, log: log, started: time.Now(), drainTimeout: shutdownTimeout, latency: api.NewLatency()}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	// The data directory is this process's alone (a second auditor on it
	// is refused here, naming the one that holds it), and must be
	// writable: both are found now, not at the first block.
	if d.lock, err = lock.Acquire(cfg.DataDir, lockFile); err != nil {
		return nil, fmt.Errorf("data directory (data_dir): %w", err)
	}
	if d.store, err = db.Open(ctx, filepath.Join(cfg.DataDir, dbFile), component(log, "db")); err != nil {
		return nil, err
	}
	if err := d.store.CheckWritable(ctx); err != nil {
		return nil, err
	}
	if cfg.Reports.Schedule != "" {
		if err := checkWritableDir(cfg.reportsDir()); err != nil {
			return nil, fmt.Errorf("reports directory (reports.dir): %w", err)
		}
	}
	client, err := scan.NewClient(scan.ClientConfig{
		URL:              cfg.Node.URL,
		APIKey:           cfg.Node.APIKey,
		RequestTimeout:   time.Duration(cfg.Node.RequestTimeout),
		MaxAttempts:      cfg.Node.MaxAttempts,
		MaxResponseBytes: cfg.Node.MaxResponseBytes,
	}, component(log, "node"))
	if err != nil {
		// Validate refuses what the client does; the message must not
		// show a password the URL holds all the same.
		return nil, badInput{errors.New(strings.ReplaceAll(err.Error(), cfg.Node.URL, redact.URL(cfg.Node.URL)))}
	}
	d.client = client
	if cfg.HTTP.Listen != "" {
		// Listen first: an address in use fails before anything starts.
		if d.http, err = api.Listen(cfg.HTTP.Listen); err != nil {
			return nil, err
		}
	}
	if d.link, err = openNATS(ctx, cfg, log); err != nil {
		return nil, err
	}
	if cfg.HA.Enabled {
		if d.member, err = newMember(cfg, d.store, d.link.JS, d.inSync, d.latency.EventAcknowledged, component(log, "ha")); err != nil {
			return nil, err
		}
		d.store.SetEvents(eventEncoder{encoder(cfg.NATS)}, d.member.Notify)
	} else {
		rc := relayConfig(cfg.NATS)
		rc.OnAck = d.latency.EventAcknowledged
		d.relay = publish.NewRelay(outboxSource{d.store}, d.link.JS, rc, component(log, "relay"))
		d.store.SetEvents(eventEncoder{encoder(cfg.NATS)}, d.relay.Notify)
	}

	scanLog := component(log, "scan")
	if err := registerProtocols(ctx, d.store, cfg, scanLog); err != nil {
		return nil, err
	}
	gated := &gatedStore{Store: d.store, max: int64(cfg.NATS.OutboxMax), onWait: func(pending int64) {
		scanLog.Warn().Int64("outbox_pending", pending).Int("outbox_max", cfg.NATS.OutboxMax).
			Msg("the outbox is full: indexing waits for NATS to acknowledge events")
	}}
	engine := newEngine(cfg, component(log, "rules"))
	fc := followerConfig(cfg, untilHeight)
	fc.OnConnect = d.latency.BlockConnected
	d.follower = scan.NewFollower(client, gated, engine, fc, scanLog)
	d.backfill = scan.NewBackfill(client, gated, engine, scan.BackfillConfig{Batch: cfg.Scan.FetchBatch, Ahead: cfg.Scan.FetchAhead},
		component(log, "backfill"))

	reportLog := component(log, "report")
	protocols, _ := rules.ParseProtocols(cfg.Protocols) // validated
	if d.sweeper, err = report.NewSweeper(d.store, protocols, time.Duration(cfg.Reports.SweepInterval), reportLog); err != nil {
		return nil, err
	}
	if d.reporter, err = newReporter(cfg, d.store, d.sweeper, reportLog); err != nil {
		return nil, err
	}
	if cfg.Reports.Schedule != "" {
		loc, _ := time.LoadLocation(cfg.Reports.TimeZone) // validated
		d.sched, err = report.NewScheduler(d.reporter, report.SchedulerConfig{
			Schedule: cfg.Reports.Schedule, Location: loc,
			ShutdownTimeout: time.Duration(cfg.Reports.ShutdownTimeout), Chain: d.chain,
		}, reportLog)
		if err != nil {
			return nil, err
		}
	}
	if d.http != nil {
		if d.handler, err = d.newHandler(); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// followerConfig is the follower's part of the configuration.
func followerConfig(cfg Config, untilHeight uint32) scan.FollowerConfig {
	params, _ := consensus.ForNetwork(cfg.Scan.Network) // validated
	var cp consensus.Checkpoint
	if cfg.Scan.Checkpoint != "" {
		cp, _ = consensus.ParseCheckpoint(cfg.Scan.Checkpoint) // validated
	}
	return scan.FollowerConfig{
		Params:        params,
		Checkpoint:    cp,
		StartHeight:   cfg.Scan.StartHeight,
		Confirmations: cfg.Scan.Confirmations,
		MaxReorgDepth: cfg.Scan.MaxReorgDepth,
		PollInterval:  time.Duration(cfg.Scan.PollInterval),
		Batch:         cfg.Scan.FetchBatch,
		Ahead:         cfg.Scan.FetchAhead,
		UntilHeight:   untilHeight,
	}
}

// component is the logger of one component.
func component(log zerolog.Logger, name string) zerolog.Logger {
	return log.With().Str("component", name).Logger()
}

func (d *daemon) close() {
	if d.client != nil {
		d.client.Close()
	}
	if d.http != nil && d.handler == nil {
		d.http.Close() // never served
	}
	if d.link != nil {
		d.link.Close() // before the store: the relay has stopped
	}
	if d.store != nil {
		d.store.Close()
	}
	d.lock.Release() // last: the directory is free once everything in it is closed
}

// checkWritableDir creates dir if need be and a file in it, which it
// removes: a directory the daemon will write is found unwritable at start.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// run runs the components until ctx is done or the follower ends.
func (d *daemon) run(ctx context.Context) error {
	log := d.log
	components, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() { stopComponents(); wg.Wait() }()
	goRun := func(name string, run func(context.Context) error, ctx context.Context) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error().Err(err).Str("component", name).Msg("component stopped")
			}
		}()
	}
	if d.member != nil {
		goRun("ha", d.member.Run, components)
	} else {
		goRun("relay", d.relay.Run, components)
	}
	goRun("nats", d.link.run, components)
	goRun("sweep", d.sweeper.Run, components)
	if d.handler != nil {
		ln := d.http
		goRun("http", func(ctx context.Context) error {
			return api.ServeListener(ctx, ln, d.handler, component(log, "http"))
		}, components)
	}
	// The scheduler stops with the scanner: on ctx, or at --until-height.
	schedCtx, stopScheduler := context.WithCancel(ctx)
	defer stopScheduler()
	scheduled := make(chan struct{})
	if d.sched != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(scheduled)
			d.sched.Run(schedCtx) //nolint:errcheck // returns only its context's error
		}()
	} else {
		close(scheduled)
	}

	started := log.Info().Str("node", redact.URL(d.cfg.Node.URL)).Str("data_dir", d.cfg.DataDir).Str("network", d.cfg.Scan.Network)
	switch root, ok, err := d.store.TrustRoot(ctx); {
	case err != nil:
		return err
	case ok:
		started = started.Str("trust_root", fmt.Sprintf("%s %s at %d", root.Kind, root.ID, root.Height))
	case d.cfg.Scan.Checkpoint != "":
		started = started.Str("trust_root", "the checkpoint "+d.cfg.Scan.Checkpoint)
	default:
		started = started.Str("trust_root", "the first block to be connected")
	}
	started.Msg("auditor started")
	err := d.follow(ctx)
	switch {
	case err == nil:
		st := d.follower.Stats()
		log.Info().Uint64("connected", st.Connected).Msg("reached the requested height")
	case errors.Is(err, context.Canceled):
		log.Info().Msg("stopping")
	default:
		return err
	}
	stopScheduler()
	<-scheduled // a running report finishes, or is recorded interrupted
	if err == nil && d.reportAtEnd {
		if d.finalReport, err = d.reporter.Run(ctx, d.chain()); err != nil {
			return err
		}
	}
	drainOutbox(d.store, d.notify, d.drainTimeout, log)
	return nil
}

// notify wakes whatever publishes the outbox.
func (d *daemon) notify() {
	if d.member != nil {
		d.member.Notify()
	} else {
		d.relay.Notify()
	}
}

// follow runs the follower and, beside it, the backfill of the protocols
// whose history lacks blocks below the tip, until ctx is done or the
// follower ends. When the follower reaches --until-height (nil), it waits
// for the backfill to bring every history there too. A backfill that
// fails (a store error) stops the follower: the daemon does not go on with
// a history it cannot complete.
func (d *daemon) follow(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var backfillErr error
	backfilled := make(chan struct{})
	go func() {
		defer close(backfilled)
		if err := d.backfill.Run(ctx); err != nil && ctx.Err() == nil {
			backfillErr = err
			stop()
		}
	}()
	err := d.follower.Run(ctx)
	if err != nil {
		stop()
	}
	<-backfilled
	if backfillErr != nil {
		return backfillErr
	}
	return err
}

// registerProtocols makes the store's protocols agree with the
// configuration (db.Store.RegisterProtocols) and logs what that changed:
// a protocol added to a store with blocks is backfilled from its
// start_height, one whose start_height changed begins its history again,
// one removed is kept, inactive, until auditor prune.
func registerProtocols(ctx context.Context, store *db.Store, cfg Config, log zerolog.Logger) error {
	protocols, _ := rules.ParseProtocols(cfg.Protocols) // validated
	starts := make([]db.ProtocolStart, len(protocols))
	for i, p := range protocols {
		starts[i] = db.ProtocolStart{Name: p.Name, StartHeight: p.StartHeight}
	}
	changes, err := store.RegisterProtocols(ctx, starts, keepFunc(cfg))
	if err != nil {
		return err
	}
	for _, c := range changes {
		ev := log.Info().Str("protocol", c.Name)
		if c.BackfillFrom > 0 {
			ev = ev.Uint32("backfill_from", c.BackfillFrom)
		}
		switch c.What {
		case "added":
			if c.BackfillFrom > 0 {
				ev.Msg("protocol added: its history is backfilled from its start height while the others follow the tip")
			} else {
				ev.Msg("protocol added")
			}
		case "restarted":
			log.Warn().Str("protocol", c.Name).Uint32("backfill_from", c.BackfillFrom).Int64("retracted", c.Rescan.Retracted).
				Int("generation", c.Rescan.Generation).
				Msg("the protocol's start_height changed: its history begins again there (its verdicts above are retracted and judged again)")
		case "reactivated":
			ev.Msg("protocol configured again: its history is backfilled from where it stopped")
		case "deactivated":
			ev.Msg("protocol no longer configured: its verdicts and lineages are kept, not judged; auditor prune --protocol deletes them")
		}
	}
	return nil
}

// chain is the follower's view of the chain, for a report.
func (d *daemon) chain() report.Chain {
	st := d.follower.Stats()
	c := report.Chain{Following: true, NodeHeight: st.NodeHeight, Reorgs: st.Reorgs, DeepestReorg: st.DeepestReorg}
	if tip, ok, err := d.store.Tip(context.Background()); err == nil && ok {
		c.TipHeight = tip.Height
	}
	if secs := time.Since(d.started).Seconds(); secs > 0 {
		c.BlocksPerSecond = float64(st.Connected) / secs
	}
	return c
}

// newHandler is the HTTP server's handler, reading every component.
func (d *daemon) newHandler() (*api.Handler, error) {
	cfg := api.Config{
		Store:           d.store,
		Protocols:       protocolNames(d.cfg),
		MaxLag:          d.cfg.HTTP.MaxLag,
		MaxPublishDelay: time.Duration(d.cfg.HTTP.MaxPublishDelay),
		Chain:           func() api.ChainStats { return chainStats(d.follower.Stats()) },
		Checks: append(d.link.checks(), api.Check{Name: "node", Problems: nodeProblems(d.follower)},
			api.Check{Name: "backfill", Problems: backfillProblems(d.backfill.Stats, time.Duration(d.cfg.HTTP.MaxBackfillStall))}),
		Publish: func() api.PublishStats {
			st := d.relay.Stats()
			return api.PublishStats{Published: st.Published, Duplicates: st.Duplicates, Errors: st.Errors, InFlight: st.InFlight, LastAck: st.LastAck}
		},
		Latency:    d.latency,
		ReportsDir: d.cfg.reportsDir(),
		Conservation: func() (api.ConservationStats, bool) {
			sw, ok := d.sweeper.Last()
			return conservationStats(sw), ok
		},
	}
	cfg.Backfill = func() map[string]api.BackfillStats {
		out := map[string]api.BackfillStats{}
		for name, p := range d.backfill.Stats().Protocols {
			out[name] = api.BackfillStats{BlocksPerSecond: p.BlocksPerSecond, Remaining: p.Remaining, Done: p.Done}
		}
		return out
	}
	if d.member != nil {
		cfg.Publish = func() api.PublishStats {
			st := d.member.Status()
			return api.PublishStats{Published: st.Published, Errors: st.Errors, InFlight: st.InFlight, LastAck: st.LastAck}
		}
		cfg.HA = func() api.HAStatus { return haStatus(d.member.Status()) }
		cfg.Checks = append(cfg.Checks, api.Check{Name: "ha", Problems: func(context.Context) []string { return d.member.Problems() }})
	}
	if d.sched != nil {
		cfg.Reports = func() api.ReportStats {
			st := d.sched.Stats()
			return api.ReportStats{Runs: st.Runs, Skipped: st.Skipped, Failures: st.Failures, Running: st.Running, LastSuccess: st.LastSuccess}
		}
	}
	return api.NewHandler(cfg, component(d.log, "http"))
}

// conservationStats is a conservation sweep as the HTTP server shows it.
func conservationStats(sw report.Sweep) api.ConservationStats {
	out := api.ConservationStats{CurrentAt: sw.Current, TipHeight: sw.Tip.Height, Protocols: []api.ProtocolConservation{}}
	for _, p := range sw.Protocols {
		tokens, _ := p.Misplaced.Big() // the sweep's own sum
		out.Protocols = append(out.Protocols, api.ProtocolConservation{Protocol: p.Name, Lineages: p.Lineages,
			FailingLineages: p.FailingLineages, MisplacedBoxes: p.MisplacedBoxes, MisplacedTokens: clampUint64(tokens)})
	}
	return out
}

// clampUint64 is v as a uint64: 0 below, the largest uint64 above.
func clampUint64(v *big.Int) uint64 {
	switch {
	case v == nil || v.Sign() <= 0:
		return 0
	case !v.IsUint64():
		return math.MaxUint64
	}
	return v.Uint64()
}

// protocolNames are the names of the configured protocols.
func protocolNames(cfg Config) []string {
	var names []string
	for _, p := range cfg.Protocols {
		names = append(names, p.Name)
	}
	return names
}

// chainStats is the follower's view of the chain as the HTTP server shows
// it.
func chainStats(st scan.FollowerStats) api.ChainStats {
	c := api.ChainStats{NodeHeight: st.NodeHeight, Connected: st.Connected, Disconnected: st.Disconnected,
		Reorgs: st.Reorgs, DeepestReorg: st.DeepestReorg, NodeErrors: st.NodeErrors, LastConnectedAt: st.LastConnectedAt,
		Refusals: make(map[string]uint64, len(st.Refused)), Withheld: st.Withheld}
	for r, n := range st.Refused {
		c.Refusals[string(r)] = n
	}
	return c
}

// nodeProblems is the readiness check of the node's chain: the auditor is
// not ready while the node's best chain is one it refuses, or one whose
// blocks the node withholds.
func nodeProblems(f *scan.Follower) func(context.Context) []string {
	return func(context.Context) []string {
		st := f.Stats()
		var out []string
		if r := st.LastRefusal; st.Refusing && r != nil {
			out = append(out, fmt.Sprintf("the node offers a chain the auditor refuses: block %s at height %d breaks the %s rule (%s)",
				r.ID, r.Height, string(r.Rule), r.Detail))
		}
		if st.Withholding {
			out = append(out, "the node names a branch with more work but does not serve its blocks")
		}
		return out
	}
}

// backfillProblems is the readiness check of the backfills: the auditor is
// not ready while a protocol's history has not moved for longer than bound
// because the node fails to serve its blocks (a pruned node, one that is
// down): that protocol gets no verdicts until it does. A bound of 0 turns
// the check off.
func backfillProblems(stats func() scan.BackfillStats, bound time.Duration) func(context.Context) []string {
	return func(context.Context) []string {
		st := stats()
		f := st.Failing
		if bound <= 0 || f == nil {
			return nil
		}
		failed := time.Since(f.Since)
		if failed <= bound {
			return nil
		}
		var out []string
		for _, name := range slices.Sorted(maps.Keys(st.Protocols)) {
			if p := st.Protocols[name]; !p.Done {
				out = append(out, fmt.Sprintf("the backfill of protocol %s has not moved for %s, more than %s: its history is complete to height %d of %d, and the node fails to serve the blocks above (%s)",
					name, failed.Round(time.Second), bound, p.Cursor, p.Tip, f.Err))
			}
		}
		return out
	}
}

// shutdownTimeout bounds how long a stopping auditor waits for the outbox
// to drain; what is left is published at the next start.
const shutdownTimeout = 10 * time.Second

// drainOutbox waits, up to timeout, until JetStream has acknowledged
// every event in the outbox (or, with HA, the member has superseded what
// it does not publish), and logs how that ended; notify wakes the
// publisher.
func drainOutbox(store *db.Store, notify func(), timeout time.Duration, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	notify()
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		written, pending, err := store.OutboxCounts(ctx)
		if err == nil && pending == 0 {
			log.Info().Int64("events_written", written).Msg("outbox drained")
			return
		}
		select {
		case <-ctx.Done():
			// Counted afresh: the last count may be an error's zeros, cut
			// short by the deadline.
			cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
			_, pending, err := store.OutboxCounts(cctx)
			ccancel()
			ev := log.Warn()
			if err != nil {
				ev = ev.Err(err).Str("outbox_pending", "unknown")
			} else {
				ev = ev.Int64("outbox_pending", pending)
			}
			ev.Dur("waited", timeout).Msg("stopping with events not yet acknowledged: they are published at the next start")
			return
		case <-time.After(delay):
		}
	}
}

// newEngine builds the rules engine from the (validated) configuration:
// each [[protocol]] is judged as PROTOCOL.md says, and the boxes [watch]
// names are kept besides.
func newEngine(cfg Config, log zerolog.Logger) *rules.Engine {
	var watch rules.Watcher
	if f := watchFilter(cfg); f != nil {
		watch = f
	}
	protocols, _ := rules.ParseProtocols(cfg.Protocols) // validated too
	return rules.NewEngine(protocols, watch, log)
}

// watchFilter is the [watch] section's filter; nil when it names nothing.
func watchFilter(cfg Config) *db.Filter {
	var tokens []ergo.Digest
	var templates []rules.Template
	for _, s := range cfg.Watch.Tokens {
		d, _ := ergo.ParseDigest(s) // Validate has checked every entry
		tokens = append(tokens, d)
	}
	for _, s := range cfg.Watch.Templates {
		t, _ := rules.ParseTemplate(s)
		templates = append(templates, t)
	}
	if len(tokens)+len(templates) == 0 {
		return nil
	}
	return db.NewFilter(tokens, templates)
}

// keepFunc is the [watch] section's filter as the store's rescan and prune
// take it (nil for none).
func keepFunc(cfg Config) func(*ergo.Box) bool {
	if f := watchFilter(cfg); f != nil {
		return f.KeepBox
	}
	return nil
}
