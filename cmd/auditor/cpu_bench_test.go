package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// BenchmarkCPUPerBlock measures, in one run and on one chain (the
// async-emission scenario's, served by an `auditor devnet` process so
// that this process's CPU is the auditor's alone), the CPU time per block
// and the blocks/s of:
//
//	floor       check-node's verification (scan.CheckRange): fetch, decode,
//	            verify ids, roots, proofs of work and header rules, store nothing
//	nothing     the daemon's catch-up watching no protocol
//	rules       the daemon's catch-up judging the scenario's protocol
//	publishing  rules, with every verdict through the outbox and the relay
//	            to the embedded JetStream (an op ends once it is drained)
//
// at 10 and 30 transactions a block. Each reports cpu-µs/block,
// blocks/s, and x-floor: its CPU per block over the floor's, measured in
// the same run:
//
//	go test -run '^$' -bench CPUPerBlock -benchtime 1x ./cmd/auditor/
//
// AUDITOR_BENCH_BLOCKS sets the chain's length (default 2000).
func BenchmarkCPUPerBlock(b *testing.B) {
	if testing.Short() {
		b.Skip("builds the auditor and syncs thousands of blocks")
	}
	blocks := uint32(2000)
	if n, err := strconv.ParseUint(os.Getenv("AUDITOR_BENCH_BLOCKS"), 10, 31); err == nil && n > 0 {
		blocks = uint32(n)
	}
	bin := auditorBinary(b)
	for _, txs := range []int{10, 30} {
		b.Run(fmt.Sprintf("txs=%d", txs), func(b *testing.B) {
			dcfg := devnet.Config{Seed: 31, Blocks: int(blocks), TxsPerBlock: txs, Scenario: &devnet.AsyncEmission{ForgeryRate: 0.1}}
			url := startDevnetProcess(b, bin, dcfg)
			warmNode(b, url, blocks)
			pcs, err := devnet.ProtocolConfigsOf(context.Background(), dcfg)
			if err != nil {
				b.Fatal(err)
			}
			watching, err := protocolSpecs(devnet.ProtocolsTOML(pcs))
			if err != nil {
				b.Fatal(err)
			}
			var floor float64
			for _, mode := range []string{"floor", "nothing", "rules", "publishing"} {
				b.Run(mode, func(b *testing.B) {
					var cpu time.Duration
					var wall time.Duration
					for range b.N {
						c, w := cpuOf(b, mode, url, blocks, watching)
						cpu, wall = cpu+c, wall+w
					}
					perBlock := float64(cpu.Microseconds()) / float64(b.N) / float64(blocks)
					if mode == "floor" {
						floor = perBlock
					}
					b.ReportMetric(perBlock, "cpu-µs/block")
					b.ReportMetric(float64(blocks)*float64(b.N)/wall.Seconds(), "blocks/s")
					if floor > 0 {
						b.ReportMetric(perBlock/floor, "x-floor")
					}
				})
			}
		})
	}
}

// cpuOf runs one mode over blocks 1..blocks and returns the process CPU
// time and the wall time it took.
func cpuOf(b *testing.B, mode, url string, blocks uint32, watching []rules.ProtocolSpec) (time.Duration, time.Duration) {
	b.Helper()
	ctx := context.Background()
	cpu0, began := processCPU(), time.Now()
	switch mode {
	case "floor":
		c, err := scan.NewClient(scan.ClientConfig{URL: url}, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		r, err := scan.CheckRange(ctx, c, scan.CheckConfig{Params: consensus.Devnet(), From: 1, To: blocks})
		if err != nil || len(r.Bad) != 0 {
			b.Fatalf("check: %v, bad %v", err, r.Bad)
		}
	default:
		cfg := DefaultConfig()
		cfg.Node.URL = url
		cfg.Scan.Network = "devnet"
		cfg.NATS.Listen = ""
		cfg.HTTP.Listen = ""
		cfg.Reports.Schedule = ""
		if mode != "nothing" {
			cfg.Protocols = watching
		}
		p := newPipeline(b, cfg, mode == "publishing", blocks, nil, nil)
		if err := p.follower.Run(ctx); err != nil {
			b.Fatal(err)
		}
		if mode == "publishing" {
			p.drained(b, 5*time.Minute)
		}
		p.close()
	}
	return processCPU() - cpu0, time.Since(began)
}

// startDevnetProcess serves cfg's chain from an `auditor devnet` process
// and returns its URL once it is ready.
func startDevnetProcess(tb testing.TB, bin string, cfg devnet.Config) string {
	tb.Helper()
	args := []string{"devnet", "--seed", fmt.Sprint(cfg.Seed), "--blocks", fmt.Sprint(cfg.Blocks),
		"--txs-per-block", fmt.Sprint(cfg.TxsPerBlock), "--listen", "127.0.0.1:0", "--cache-mb", "2048", "--log-level", "warn"}
	if s, ok := cfg.Scenario.(*devnet.AsyncEmission); ok {
		args = append(args, "--scenario", devnet.AsyncEmissionScenario, "--forgery-rate", fmt.Sprint(s.ForgeryRate))
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if url, ok := strings.CutPrefix(lines.Text(), "serving "); ok {
			return url
		}
	}
	tb.Fatalf("the devnet printed no address: %v", lines.Err())
	return ""
}
