package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/lock"
)

const rescanSynopsis = `--protocol NAME [--from HEIGHT] [--config FILE] [--data-dir DIR]

Judges one protocol again from a height (its start_height by default): after
an upgrade that changes a rule, its verdicts from there are retracted
(retracted events in the outbox) and its history begins again, so that the
next 'auditor run' backfills it from there with the new build's rules while
the other protocols follow the tip, publishing its new verdicts under new
message ids. The result is the store a new auditor watching it from the
start would hold.

It holds the data directory's lock while it works, as run does: stop the
daemon first (a running one is named). The protocol must be in the
configuration, so that the daemon judges it again.`

func runRescan(e *env, args []string) error {
	fs := newFlagSet(e, "rescan", rescanSynopsis)
	cfgPath := fs.String("config", "", "read the configuration from `FILE` (TOML)")
	dataDir := fs.String("data-dir", "", "keep the database in `DIR`; overrides data_dir")
	name := fs.String("protocol", "", "judge the protocol `NAME` again (its [[protocol]] name)")
	from := fs.Uint("from", 0, "judge it again from `HEIGHT` (default: its start_height)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *from > 1<<31-1 {
		return badInput{fmt.Errorf("--from %d is beyond any block height", *from)}
	}
	cfg, store, release, err := openForProtocolCommand(fs, *cfgPath, *dataDir, *name)
	if err != nil {
		return err
	}
	defer release()
	if !slices.Contains(configuredNames(cfg), *name) {
		return badInput{fmt.Errorf("--protocol %s: no [[protocol]] section of the configuration names it: the daemon would not judge it again "+
			"(to delete a removed protocol's history, use auditor prune)", *name)}
	}
	res, err := store.RescanProtocol(context.Background(), *name, uint32(*from), keepFunc(cfg))
	if err != nil {
		if errors.Is(err, db.ErrConflict) {
			return badInput{err}
		}
		return err
	}
	if res.BackfillFrom == 0 && res.Retracted == 0 && res.Verdicts == 0 {
		fmt.Fprintf(e.stdout, "protocol %s: its history does not reach height %d yet: nothing to judge again\n", res.Protocol, res.FromHeight)
		return nil
	}
	fmt.Fprintf(e.stdout, "protocol %s: judged again from height %d (generation %d): %d verdicts and %d lineage steps deleted, %d verdict events retracted, "+
		"%d boxes and %d transactions no history needs any more deleted\n",
		res.Protocol, res.FromHeight, res.Generation, res.Verdicts, res.Steps, res.Retracted, res.Boxes, res.Transactions)
	fmt.Fprintf(e.stdout, "the next auditor run backfills it from height %d (the retractions are published then)\n", res.FromHeight)
	return nil
}

const pruneSynopsis = `--protocol NAME [--config FILE] [--data-dir DIR]

Deletes the history of a protocol removed from the configuration: its
verdicts and lineage steps, and the boxes and transactions no other
protocol's history needs. A removed protocol's history is otherwise kept
(inactive: not judged). Its events are not retracted (nothing is published);
a protocol of that name configured again later is backfilled from its
start_height under new message ids.

It holds the data directory's lock while it works, as run does: stop the
daemon first.`

func runPrune(e *env, args []string) error {
	fs := newFlagSet(e, "prune", pruneSynopsis)
	cfgPath := fs.String("config", "", "read the configuration from `FILE` (TOML)")
	dataDir := fs.String("data-dir", "", "keep the database in `DIR`; overrides data_dir")
	name := fs.String("protocol", "", "delete the history of the protocol `NAME`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	cfg, store, release, err := openForProtocolCommand(fs, *cfgPath, *dataDir, *name)
	if err != nil {
		return err
	}
	defer release()
	if slices.Contains(configuredNames(cfg), *name) {
		return badInput{fmt.Errorf("--protocol %s: the configuration still watches it: remove its [[protocol]] section first "+
			"(auditor rescan judges a configured protocol again)", *name)}
	}
	res, err := store.PruneProtocol(context.Background(), *name, keepFunc(cfg))
	if err != nil {
		if errors.Is(err, db.ErrConflict) {
			return badInput{err}
		}
		return err
	}
	fmt.Fprintf(e.stdout, "protocol %s pruned: %d verdicts, %d lineage steps, %d boxes and %d transactions deleted (%d events left unretracted)\n",
		res.Protocol, res.Verdicts, res.Steps, res.Boxes, res.Transactions, res.Events)
	return nil
}

// openForProtocolCommand loads the configuration, takes the data
// directory's lock (refused while a daemon runs on it) and opens its
// database, which must exist, with the events' encoder; release closes both.
func openForProtocolCommand(fs *flagSet, cfgPath, dataDir, name string) (Config, *db.Store, func(), error) {
	if name == "" {
		return Config{}, nil, nil, badInput{errors.New("--protocol NAME is required")}
	}
	cfg, err := fs.loadConfig(cfgPath, func(c *Config) {
		if dataDir != "" {
			c.DataDir = dataDir
		}
	})
	if err != nil {
		return cfg, nil, nil, badInput{err}
	}
	l, err := lock.Acquire(cfg.DataDir, lockFile)
	if err != nil {
		if errors.Is(err, lock.ErrHeld) {
			return cfg, nil, nil, fmt.Errorf("data directory (data_dir): %w: stop the daemon first", err)
		}
		return cfg, nil, nil, fmt.Errorf("data directory (data_dir): %w", err)
	}
	store, err := openStoreIn(context.Background(), cfg.DataDir, fs.logger(cfg.Log))
	if err != nil {
		l.Release()
		return cfg, nil, nil, err
	}
	store.SetEvents(eventEncoder{encoder(cfg.NATS)}, nil)
	return cfg, store, func() { store.Close(); l.Release() }, nil
}

// configuredNames are the names of the configuration's protocols.
func configuredNames(cfg Config) []string {
	names := make([]string, len(cfg.Protocols))
	for i, p := range cfg.Protocols {
		names[i] = p.Name
	}
	return names
}
