package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
)

const statusSynopsis = `[--config FILE | --data-dir DIR] [--json]

Prints the stored chain state: tip, counts and the state digest (a hash of
the stored main-chain state, equal for equal chains however they were
reached).`

// statusJSON is the output of status --json.
type statusJSON struct {
	Empty           bool        `json:"empty"`
	TipHeight       uint32      `json:"tip_height"`
	TipID           ergo.Digest `json:"tip_id"`
	Headers         int64       `json:"headers"`
	OrphanedHeaders int64       `json:"orphaned_headers"`
	Transactions    int64       `json:"transactions"`
	Boxes           int64       `json:"boxes"`
	UnspentBoxes    int64       `json:"unspent_boxes"`
	Spends          int64       `json:"spends"`
	DataInputReads  int64       `json:"data_input_reads"`
	StateDigest     ergo.Digest `json:"state_digest"`
}

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
	cfg, err := loadConfig(*cfgPath, func(c *Config) {
		if *dataDir != "" {
			c.DataDir = *dataDir
		}
	})
	if err != nil {
		return badInput{err}
	}
	path := filepath.Join(cfg.DataDir, dbFile)
	if _, err := os.Stat(path); err != nil {
		return badInput{fmt.Errorf("no auditor database in %s: %w", cfg.DataDir, err)}
	}
	ctx := context.Background()
	store, err := db.Open(ctx, path, zerolog.Nop())
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := store.Status(ctx)
	if err != nil {
		return err
	}
	out := statusJSON{
		Empty: st.Empty, TipHeight: st.TipHeight, TipID: st.TipID,
		Headers: st.Headers, OrphanedHeaders: st.OrphanedHeaders, Transactions: st.Transactions,
		Boxes: st.Boxes, UnspentBoxes: st.UnspentBoxes, Spends: st.Spends, DataInputReads: st.DataInputReads,
		StateDigest: st.StateDigest,
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
	fmt.Fprintf(e.stdout, "tip           %d %s\nheaders       %d (+%d orphaned)\ntransactions  %d\nboxes         %d (%d unspent)\nspends        %d\ndata reads    %d\nstate digest  %s\n",
		out.TipHeight, out.TipID, out.Headers, out.OrphanedHeaders, out.Transactions, out.Boxes, out.UnspentBoxes, out.Spends, out.DataInputReads, out.StateDigest)
	return nil
}
