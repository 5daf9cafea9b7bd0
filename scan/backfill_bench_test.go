package scan_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/internal/testchain"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// BenchmarkBackfill compares, on one chain (the async-emission scenario,
// 1,000 blocks of about 10 transactions, the chain served from memory over
// loopback HTTP), three syncs into a fresh store: the catch-up of a store
// watching the demo protocol and the action tree from the start
// (catchup-both), the catch-up watching the demo protocol alone
// (catchup-demo), and then, on that store, the backfill of the action tree
// from its deployment at height 3 to the tip (backfill: its blocks over its
// time alone). It reports each rate and backfill/catchup-both.
//
//	go test -run '^$' -bench Backfill -benchtime 3x ./scan/
func BenchmarkBackfill(b *testing.B) {
	const blocks = 1000
	d, err := devnet.New(devnet.Config{Seed: 1, Blocks: blocks, TxsPerBlock: 10, Scenario: &devnet.AsyncEmission{ForgeryRate: 0.1}}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	fetchAll(b, srv.URL, d, blocks) // warm the devnet's cache
	pcs, err := d.Protocols()
	if err != nil {
		b.Fatal(err)
	}
	protocols := testchain.ParseProtocols(b, devnet.ProtocolsTOML(pcs))
	both := rules.NewEngine(protocols, nil, zerolog.Nop())
	demo := rules.NewEngine(protocols[:1], nil, zerolog.Nop())
	tree := protocols[1]
	starts := []db.ProtocolStart{{Name: protocols[0].Name, StartHeight: protocols[0].StartHeight}, {Name: tree.Name, StartHeight: tree.StartHeight}}
	client, err := scan.NewClient(scan.ClientConfig{URL: srv.URL}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	open := func() *db.Store {
		s, err := db.Open(ctx, filepath.Join(b.TempDir(), "auditor.db"), zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	sync := func(s *db.Store, judge db.Judge) time.Duration {
		f := scan.NewFollower(client, s, judge, scan.FollowerConfig{Params: consensus.Devnet(), UntilHeight: blocks}, zerolog.Nop())
		start := time.Now()
		if err := f.Run(ctx); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var catchupBoth, catchupDemo, backfill time.Duration
	var digestBoth, digestBackfilled [32]byte
	for b.Loop() {
		s := open()
		catchupBoth += sync(s, both)
		digestBoth, _ = s.StateDigest(ctx)
		s.Close()

		s = open()
		catchupDemo += sync(s, demo)
		if _, err := s.RegisterProtocols(ctx, starts, nil); err != nil {
			b.Fatal(err)
		}
		bf := scan.NewBackfill(client, s, both, scan.BackfillConfig{}, zerolog.Nop())
		start := time.Now()
		if err := bf.Run(ctx); err != nil {
			b.Fatal(err)
		}
		backfill += time.Since(start)
		digestBackfilled, _ = s.StateDigest(ctx)
		s.Close()
	}
	if digestBoth != digestBackfilled {
		b.Fatalf("the backfilled store's digest %x differs from the one watching both from the start, %x", digestBackfilled, digestBoth)
	}
	n := float64(b.N)
	bothRate := n * blocks / catchupBoth.Seconds()
	backfillRate := n * float64(blocks-tree.StartHeight+1) / backfill.Seconds()
	b.ReportMetric(bothRate, "catchup-both-blocks/s")
	b.ReportMetric(n*blocks/catchupDemo.Seconds(), "catchup-demo-blocks/s")
	b.ReportMetric(backfillRate, "backfill-blocks/s")
	b.ReportMetric(backfillRate/bothRate, "ratio")
}
