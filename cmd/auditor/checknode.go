package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/scan"
)

const checkNodeSynopsis = `[--config FILE] [--node URL] [--network NAME] [--from H] [--to H] [--json]

Fetches a range of the node's best chain and verifies it exactly as the
daemon does — every header's id, stated values, proof of work and consensus
rules (the difficulty each height requires, links, timestamps, versions,
votes), every block's transactions, boxes and roots — without storing
anything, and reports blocks/s, CPU per block and every block the node got
wrong. "Is my node serving a valid chain?", and the verification floor the
daemon's catch-up is measured against. --to defaults to the node's height,
--from to 999 below it; the block at --from is the trust root (its own rules
are checked only at height 1). Exit status: 0 when everything verifies, 1
when a block does not (or the node cannot be checked), 2 for bad usage.`

// checkNodeResult is what check-node prints with --json.
type checkNodeResult struct {
	Node            string         `json:"node"`
	Network         string         `json:"network"`
	From            uint32         `json:"from"`
	To              uint32         `json:"to"`
	Blocks          int            `json:"blocks"`
	Seconds         float64        `json:"seconds"`
	BlocksPerSecond float64        `json:"blocks_per_second"`
	CPUSeconds      float64        `json:"cpu_seconds"`
	CPUMicrosPerBlk float64        `json:"cpu_us_per_block"`
	Bad             []badBlockJSON `json:"bad"`
}

type badBlockJSON struct {
	Height uint32       `json:"height"`
	ID     *ergo.Digest `json:"id"`
	Error  string       `json:"error"`
}

func runCheckNode(e *env, args []string) error {
	fs := newFlagSet(e, "check-node", checkNodeSynopsis)
	cfgPath := fs.String("config", "", "read the configuration from `FILE` (TOML): node.*, scan.network, scan.fetch_batch, scan.fetch_ahead")
	nodeURL := fs.String("node", "", "the Ergo node at `URL`; overrides node.url")
	network := fs.String("network", "", "check the chain against the consensus rules of `NETWORK`: mainnet, testnet or devnet; overrides scan.network")
	from := fs.Uint("from", 0, "first height (default: 999 below --to)")
	to := fs.Uint("to", 0, "last height (default: the node's height)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *from > 1<<31-1 || *to > 1<<31-1 {
		return badInput{fmt.Errorf("--from and --to are block heights, below 2^31")}
	}
	cfg, err := fs.loadConfig(*cfgPath, func(c *Config) {
		if *nodeURL != "" {
			c.Node.URL = *nodeURL
		}
		if *network != "" {
			c.Scan.Network = *network
		}
	})
	if err != nil {
		return badInput{err}
	}
	params, _ := consensus.ForNetwork(cfg.Scan.Network) // validated
	client, err := scan.NewClient(scan.ClientConfig{URL: cfg.Node.URL, APIKey: cfg.Node.APIKey,
		RequestTimeout: time.Duration(cfg.Node.RequestTimeout), MaxAttempts: cfg.Node.MaxAttempts,
		MaxResponseBytes: cfg.Node.MaxResponseBytes}, newLogger(cfg.Log, e.stderr).With().Str("component", "node").Logger())
	if err != nil {
		return badInput{err}
	}
	defer client.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	info, err := client.Info(ctx)
	if err != nil {
		return err
	}
	if info.Network != params.Network {
		return fmt.Errorf("the node is on %s, the rules are %s's (--network, scan.network)", info.Network, params.Network)
	}
	res := checkNodeResult{Node: redactedURL(cfg.Node.URL), Network: params.Network, To: uint32(*to), From: uint32(*from)}
	if res.To == 0 {
		res.To = info.FullHeight
	}
	if res.From == 0 {
		res.From = max(res.To, 1000) - 999
	}
	if res.From > res.To || res.To > info.FullHeight {
		return badInput{fmt.Errorf("no range %d to %d on a node at height %d", res.From, res.To, info.FullHeight)}
	}
	cpu0, began := processCPU(), time.Now()
	report, err := scan.CheckRange(ctx, client, scan.CheckConfig{Params: params, From: res.From, To: res.To,
		Batch: cfg.Scan.FetchBatch, Ahead: cfg.Scan.FetchAhead})
	if err != nil {
		return err
	}
	elapsed, cpu := time.Since(began), processCPU()-cpu0
	res.Blocks, res.Seconds, res.CPUSeconds = report.Blocks, elapsed.Seconds(), cpu.Seconds()
	if report.Blocks > 0 {
		res.BlocksPerSecond = float64(report.Blocks) / elapsed.Seconds()
		res.CPUMicrosPerBlk = float64(cpu.Microseconds()) / float64(report.Blocks)
	}
	res.Bad = []badBlockJSON{}
	for _, b := range report.Bad {
		bb := badBlockJSON{Height: b.Height, Error: b.Err.Error()}
		if !b.ID.IsZero() {
			id := b.ID
			bb.ID = &id
		}
		res.Bad = append(res.Bad, bb)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "checked heights %d to %d of %s (%s): %d blocks in %s, %.0f blocks/s, CPU %.0f µs/block\n",
			res.From, res.To, res.Node, res.Network, res.Blocks, elapsed.Round(time.Millisecond), res.BlocksPerSecond, res.CPUMicrosPerBlk)
		for _, b := range res.Bad {
			fmt.Fprintf(e.stdout, "  bad block at %d: %s\n", b.Height, b.Error)
		}
		if len(res.Bad) == 0 {
			fmt.Fprintln(e.stdout, "every id, root, proof of work and header rule verifies")
		}
	}
	if len(res.Bad) > 0 {
		return errFailed
	}
	return nil
}

// redactedURL is raw without its password, for printing.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}
