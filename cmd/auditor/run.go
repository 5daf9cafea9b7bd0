package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/publish"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

const runSynopsis = `[--config FILE] [--until-height N] [--node URL] [--nats URL[,URL...]] [--data-dir DIR]

Follows the Ergo node, judges every block for the configured protocols,
stores what they make relevant and publishes every verdict on NATS
JetStream (an embedded server unless nats.url or --nats names one).
Without --config every default applies (config.example.toml lists them).
SIGINT or SIGTERM stops it cleanly; a second one stops it at once.`

// dbFile is the SQLite database inside the data directory.
const dbFile = "auditor.db"

func runRun(e *env, args []string) error {
	fs := newFlagSet(e, "run", runSynopsis)
	cfgPath := fs.String("config", "", "configuration file (TOML)")
	until := fs.Uint("until-height", 0, "exit 0 once this height is connected (0: follow forever)")
	nodeURL := fs.String("node", "", "Ergo node URL; overrides node.url")
	natsURL := fs.String("nats", "", "NATS server URLs, comma-separated; overrides nats.url")
	dataDir := fs.String("data-dir", "", "data directory; overrides data_dir")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *until > 1<<31-1 {
		return badInput{fmt.Errorf("--until-height %d is beyond any block height", *until)}
	}
	cfg, err := loadConfig(*cfgPath, func(c *Config) {
		if *nodeURL != "" {
			c.Node.URL = *nodeURL
		}
		if *natsURL != "" {
			c.NATS.URL = strings.Split(*natsURL, ",")
		}
		if *dataDir != "" {
			c.DataDir = *dataDir
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
// Every component runs under this function, which owns its goroutines: the
// scanner on ctx; the outbox relay (and the other components) on a context
// of their own, stopped only once the scanner has stopped and the outbox
// has drained, within shutdownTimeout, so that what the last blocks
// concluded is published before the process goes.
func runAuditor(ctx context.Context, cfg Config, untilHeight uint32, log zerolog.Logger) (err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return err
	}
	store, err := db.Open(ctx, filepath.Join(cfg.DataDir, dbFile), log.With().Str("component", "db").Logger())
	if err != nil {
		return err
	}
	defer store.Close()
	client, err := scan.NewClient(scan.ClientConfig{
		URL:            cfg.Node.URL,
		APIKey:         cfg.Node.APIKey,
		RequestTimeout: time.Duration(cfg.Node.RequestTimeout),
		MaxAttempts:    cfg.Node.MaxAttempts,
	}, log.With().Str("component", "node").Logger())
	if err != nil {
		return badInput{err}
	}

	link, err := openNATS(ctx, cfg, log.With().Str("component", "nats").Logger())
	if err != nil {
		return err
	}
	defer link.Close() // before the store closes: deferred after it
	relay := publish.NewRelay(outboxSource{store}, link.JS, relayConfig(cfg.NATS), log.With().Str("component", "relay").Logger())
	store.SetEvents(eventEncoder{encoder(cfg.NATS)}, relay.Notify)

	scanLog := log.With().Str("component", "scan").Logger()
	gated := &gatedStore{Store: store, max: int64(cfg.NATS.OutboxMax), onWait: func(pending int64) {
		scanLog.Warn().Int64("outbox_pending", pending).Int("outbox_max", cfg.NATS.OutboxMax).
			Msg("the outbox is full: indexing waits for NATS to acknowledge events")
	}}
	follower := scan.NewFollower(client, gated, newEngine(cfg, log.With().Str("component", "rules").Logger()), scan.FollowerConfig{
		StartHeight:   cfg.Scan.StartHeight,
		Confirmations: cfg.Scan.Confirmations,
		MaxReorgDepth: cfg.Scan.MaxReorgDepth,
		PollInterval:  time.Duration(cfg.Scan.PollInterval),
		Batch:         cfg.Scan.FetchBatch,
		Ahead:         cfg.Scan.FetchAhead,
		UntilHeight:   untilHeight,
	}, scanLog)

	components, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() { stopComponents(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		relay.Run(components) //nolint:errcheck // returns only the context's error
	}()

	log.Info().Str("node", cfg.Node.URL).Str("data_dir", cfg.DataDir).Msg("auditor started")
	err = follower.Run(ctx)
	switch {
	case err == nil:
		st := follower.Stats()
		log.Info().Uint64("connected", st.Connected).Uint32("until_height", untilHeight).Msg("reached the requested height")
	case errors.Is(err, context.Canceled):
		log.Info().Msg("stopping")
		err = nil
	default:
		return err
	}
	drainOutbox(store, relay, log)
	return nil
}

// shutdownTimeout bounds how long a stopping auditor waits for the outbox
// to drain; what is left is published at the next start.
const shutdownTimeout = 10 * time.Second

// drainOutbox waits, up to shutdownTimeout, until JetStream has
// acknowledged every event in the outbox.
func drainOutbox(store *db.Store, relay *publish.Relay, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	relay.Notify()
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		written, pending, err := store.OutboxCounts(ctx)
		if err == nil && pending == 0 {
			log.Info().Int64("events_written", written).Msg("outbox drained")
			return
		}
		select {
		case <-ctx.Done():
			log.Warn().Int64("outbox_pending", pending).Msg("stopping with events not yet acknowledged: they are published at the next start")
			return
		case <-time.After(delay):
		}
	}
}

// newEngine builds the rules engine from the (validated) configuration:
// each [[protocol]] is judged as PROTOCOL.md says, and the boxes [watch]
// names are kept besides.
func newEngine(cfg Config, log zerolog.Logger) *rules.Engine {
	var tokens, templates []ergo.Digest
	for _, s := range cfg.Watch.Tokens {
		d, _ := ergo.ParseDigest(s) // Validate has checked every entry
		tokens = append(tokens, d)
	}
	for _, s := range cfg.Watch.Templates {
		d, _ := ergo.ParseDigest(s)
		templates = append(templates, d)
	}
	var watch rules.Watcher
	if len(tokens)+len(templates) > 0 {
		watch = db.NewFilter(tokens, templates)
	}
	protocols, _ := rules.ParseProtocols(cfg.Protocols) // validated too
	return rules.NewEngine(protocols, watch, log)
}
