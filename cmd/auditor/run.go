package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

const runSynopsis = `[--config FILE] [--until-height N] [--node URL] [--data-dir DIR]

Follows the Ergo node and stores what the configuration watches. Without
--config every default applies (config.example.toml lists them).`

// dbFile is the SQLite database inside the data directory.
const dbFile = "auditor.db"

func runRun(e *env, args []string) error {
	fs := newFlagSet(e, "run", runSynopsis)
	cfgPath := fs.String("config", "", "configuration file (TOML)")
	until := fs.Uint("until-height", 0, "exit 0 once this height is connected (0: follow forever)")
	nodeURL := fs.String("node", "", "Ergo node URL; overrides node.url")
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
	return runAuditor(ctx, cfg, uint32(*until), log)
}

// runAuditor runs the auditor until ctx is done (a clean stop, nil), until
// untilHeight is connected (nil), or until a fault it cannot outlive.
func runAuditor(ctx context.Context, cfg Config, untilHeight uint32, log zerolog.Logger) error {
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
	follower := scan.NewFollower(client, store, newEngine(cfg, log.With().Str("component", "rules").Logger()), scan.FollowerConfig{
		StartHeight:   cfg.Scan.StartHeight,
		Confirmations: cfg.Scan.Confirmations,
		MaxReorgDepth: cfg.Scan.MaxReorgDepth,
		PollInterval:  time.Duration(cfg.Scan.PollInterval),
		Batch:         cfg.Scan.FetchBatch,
		Ahead:         cfg.Scan.FetchAhead,
		UntilHeight:   untilHeight,
	}, log.With().Str("component", "scan").Logger())
	log.Info().Str("node", cfg.Node.URL).Str("data_dir", cfg.DataDir).Msg("auditor started")
	err = follower.Run(ctx)
	switch {
	case err == nil:
		st := follower.Stats()
		log.Info().Uint64("connected", st.Connected).Uint32("until_height", untilHeight).Msg("reached the requested height")
		return nil
	case errors.Is(err, context.Canceled):
		log.Info().Msg("stopped")
		return nil
	}
	return err
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
