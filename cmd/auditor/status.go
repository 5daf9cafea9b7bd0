package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	cfgPath := fs.String("config", "", "read the configuration from `FILE` (TOML)")
	dataDir := fs.String("data-dir", "", "keep the database in `DIR`; overrides data_dir")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	ctx := context.Background()
	store, cfg, err := existingStore(ctx, fs, *cfgPath, *dataDir)
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
	for i, p := range out.Protocols {
		label := ""
		if i == 0 {
			label = "protocols"
		}
		fmt.Fprintf(e.stdout, "%-13s %s\n", label, protocolLine(p, out.TipHeight))
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
func openExistingStore(ctx context.Context, fs *flagSet, cfgPath, dataDir string) (*db.Store, error) {
	s, _, err := existingStore(ctx, fs, cfgPath, dataDir)
	return s, err
}

// existingStore is openExistingStore, with the configuration read.
func existingStore(ctx context.Context, fs *flagSet, cfgPath, dataDir string) (*db.Store, Config, error) {
	cfg, err := fs.loadConfig(cfgPath, func(c *Config) {
		if dataDir != "" {
			c.DataDir = dataDir
		}
	})
	if err != nil {
		return nil, cfg, badInput{err}
	}
	s, err := openStoreIn(ctx, cfg.DataDir, fs.quietLogger(cfg.Log))
	return s, cfg, err
}

// openStoreIn opens the database of dataDir, which must exist.
func openStoreIn(ctx context.Context, dataDir string, log zerolog.Logger) (*db.Store, error) {
	path := filepath.Join(dataDir, dbFile)
	if _, err := os.Stat(path); err != nil {
		return nil, badInput{fmt.Errorf("no auditor database in %s: %w", dataDir, err)}
	}
	return db.Open(ctx, path, log)
}

// protocolLine says how far a protocol's history reaches.
func protocolLine(p api.ProtocolStatus, tip uint32) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", p.Name, p.State)
	switch {
	case p.State == string(db.ProtocolPruned):
		b.WriteString(" (its history deleted)")
	case p.Backfilling:
		fmt.Fprintf(&b, ", backfilling: history complete to %d of %d (%.0f%% of its backfill from %d, %d blocks left)",
			p.Cursor, tip, 100*p.Progress, p.BackfillFrom, p.RemainingBlocks)
	case p.State == string(db.ProtocolActive):
		fmt.Fprintf(&b, ", history complete to the tip")
	default:
		fmt.Fprintf(&b, ", not judged: history kept up to %d", p.Cursor)
	}
	if p.StartHeight > 0 {
		fmt.Fprintf(&b, ", start_height %d", p.StartHeight)
	}
	if p.Generation > 0 {
		fmt.Fprintf(&b, ", generation %d (judged again %d times)", p.Generation, p.Generation)
	}
	return b.String()
}
