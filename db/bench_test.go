package db

import (
	"context"
	"fmt"
	"testing"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// BenchmarkConnectBlock measures ConnectBlock: the five mainnet blocks
// 700000-700004 keeping every box (each iteration connects the five, then
// disconnects them off the clock), and chains of synthetic 10-transaction
// blocks (each transaction spends three outputs of the block before, reads
// one and creates three), keeping every box, one box per block (a token
// filter), or none. The synthetic store grows as it would in catch-up.
func BenchmarkConnectBlock(b *testing.B) {
	// Cancellable, as the daemon's context is.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("mainnet-700000-700004/keep-all", func(b *testing.B) {
		bs := fixtureBlocks(b)
		s := newStore(b)
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			for _, blk := range bs {
				if err := s.ConnectBlock(ctx, blk, KeepAll{}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for i := len(bs) - 1; i >= 0; i-- {
				if err := s.DisconnectBlock(ctx, bs[i].Header.ID, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.StartTimer()
		}
		reportBlocks(b, b.N*len(bs))
	})
	token := sigma.Token{ID: id("bench token"), Amount: 1}
	for _, c := range []struct {
		name string
		keep Judge
	}{
		{"keep-all", KeepAll{}},
		{"keep-token", NewFilter([]ergo.Digest{token.ID}, nil)},
		{"keep-none", &Filter{}},
	} {
		b.Run("synthetic-10tx/"+c.name, func(b *testing.B) {
			chain := syntheticChain(b.N, 10, token)
			s := newStore(b)
			b.ReportAllocs()
			b.ResetTimer()
			for _, blk := range chain {
				if err := s.ConnectBlock(ctx, blk, c.keep); err != nil {
					b.Fatal(err)
				}
			}
			reportBlocks(b, b.N)
		})
	}
}

// BenchmarkDisconnectBlock measures DisconnectBlock on the five mainnet
// blocks 700000-700004 stored in full (each iteration disconnects the five,
// then connects them again off the clock).
func BenchmarkDisconnectBlock(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bs := fixtureBlocks(b)
	s := newStore(b)
	connect(b, s, KeepAll{}, bs...)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for i := len(bs) - 1; i >= 0; i-- {
			if err := s.DisconnectBlock(ctx, bs[i].Header.ID, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		connect(b, s, KeepAll{}, bs...)
		b.StartTimer()
	}
	reportBlocks(b, b.N*len(bs))
}

func reportBlocks(b *testing.B, blocks int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(blocks)/s, "blocks/s")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(blocks), "µs/block")
	}
}

// syntheticChain builds n blocks of txs transactions each. Transaction i of
// a block spends the three outputs of transaction i of the block before,
// reads an output of its transaction i+1, and creates three outputs with a
// register; the first output of the block's first transaction holds token.
func syntheticChain(n, txs int, token sigma.Token) []*ergo.FullBlock {
	chain := make([]*ergo.FullBlock, 0, n)
	parent := id("synthetic genesis parent")
	for h := range n {
		height := uint32(1_000_000 + h)
		blk := &ergo.FullBlock{Header: ergo.Header{
			ID: id(fmt.Sprintf("block %d", height)), HasID: true, Version: 3,
			ParentID: parent, Height: height, Timestamp: 1_700_000_000_000 + uint64(h)*120_000, NBits: 0x01020000, // difficulty 2
		}}
		for i := range txs {
			label := fmt.Sprintf("tx %d/%d", height, i)
			var ins, data []ergo.Digest
			if h > 0 {
				prev := fmt.Sprintf("tx %d/%d", height-1, i)
				ins = ids(boxRef(prev, 0), boxRef(prev, 1), boxRef(prev, 2))
				data = ids(boxRef(fmt.Sprintf("tx %d/%d", height-1, (i+1)%txs), 0))
			}
			outs := []ergo.Box{out(1_000_000), out(2_000_000), out(3_000_000)}
			for k := range outs {
				outs[k].CreationHeight = height
				outs[k].Registers = [][]byte{{0x05, byte(k + 2)}} // SLong
			}
			if i == 0 {
				outs[0].Tokens = []sigma.Token{token}
			}
			blk.Transactions = append(blk.Transactions, txn(label, ins, data, outs...))
		}
		chain = append(chain, blk)
		parent = blk.Header.ID
	}
	return chain
}
