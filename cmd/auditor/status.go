package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/rules"
)

const statusSynopsis = `[--config FILE | --data-dir DIR] [--json]

Prints the stored chain state: tip, counts and the state digest (a hash of
the stored main-chain state, equal for equal chains however they were
reached).`

func runStatus(e *env, args []string) error {
	fs := newFlagSet(e, "status", statusSynopsis)
	cfgPath := fs.String("config", "", "configuration file (TOML)")
	dataDir := fs.String("data-dir", "", "data directory; overrides data_dir")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	ctx := context.Background()
	cfg, err := loadConfig(*cfgPath, func(c *Config) {
		if *dataDir != "" {
			c.DataDir = *dataDir
		}
	})
	if err != nil {
		return badInput{err}
	}
	store, err := openStoreIn(ctx, cfg.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := store.Status(ctx)
	if err != nil {
		return err
	}
	written, pending, err := store.OutboxCounts(ctx)
	if err != nil {
		return err
	}
	out := api.NewStatus(st, written, pending)
	if cfg.HA.Enabled {
		h := readHAStatus(cfg)
		out.HA = &h
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if out.Empty {
		fmt.Fprintln(e.stdout, "empty store: nothing connected yet")
		return nil
	}
	fmt.Fprintf(e.stdout, "tip           %d %s\nheaders       %d (+%d orphaned)\ntransactions  %d\nboxes         %d (%d unspent)\nspends        %d\ndata reads    %d\nevents        %d written, %d not yet published\nstate digest  %s\n",
		out.TipHeight, out.TipID, out.Headers, out.OrphanedHeaders, out.Transactions, out.Boxes, out.UnspentBoxes, out.Spends, out.DataInputReads,
		out.EventsWritten, out.OutboxPending, out.StateDigest)
	if r := out.TrustRoot; r != nil {
		fmt.Fprintf(e.stdout, "trust root    %s: %s at %d (%s, since %s)\n", r.Kind, r.ID, r.Height, r.Network, r.SetAt.Format(time.RFC3339))
	}
	if h := out.HA; h != nil {
		fmt.Fprintf(e.stdout, "ha            %s is %s", h.ID, h.Role)
		switch {
		case h.Error != "":
			fmt.Fprintf(e.stdout, " (%s)\n", h.Error)
		case h.Leader != nil:
			fmt.Fprintf(e.stdout, "; %s holds the lease, epoch %d\n", *h.Leader, *h.Epoch)
		default:
			fmt.Fprintln(e.stdout, "; nobody holds the lease")
		}
	}
	for _, p := range slices.Sorted(maps.Keys(out.Verdicts)) {
		for _, c := range rules.Classes() {
			vc := out.Verdicts[p][c]
			if vc == nil {
				continue
			}
			fmt.Fprintf(e.stdout, "%-13s %s %s: %d verified, %d invalid\n", "verdicts", p, c, vc.Verified, vc.Invalid)
			for _, r := range slices.Sorted(maps.Keys(vc.Reasons)) {
				fmt.Fprintf(e.stdout, "%-13s   %s %d\n", "", r, vc.Reasons[r])
			}
		}
	}
	return nil
}

// openExistingStore opens the database of the configuration's data
// directory (dataDir overriding it), which must exist: the read-only
// commands never create one.
func openExistingStore(ctx context.Context, cfgPath, dataDir string) (*db.Store, error) {
	cfg, err := loadConfig(cfgPath, func(c *Config) {
		if dataDir != "" {
			c.DataDir = dataDir
		}
	})
	if err != nil {
		return nil, badInput{err}
	}
	return openStoreIn(ctx, cfg.DataDir)
}

// openStoreIn opens the database of dataDir, which must exist.
func openStoreIn(ctx context.Context, dataDir string) (*db.Store, error) {
	path := filepath.Join(dataDir, dbFile)
	if _, err := os.Stat(path); err != nil {
		return nil, badInput{fmt.Errorf("no auditor database in %s: %w", dataDir, err)}
	}
	return db.Open(ctx, path, zerolog.Nop())
}
