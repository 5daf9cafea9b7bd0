package ergo

import (
	"testing"

	"github.com/async-emission/auditor/internal/fixtures"
)

// BenchmarkDecodeVerifyBlock decodes and fully verifies the largest fixture
// block (height 1000001: 46 transactions, 583 inputs, 649 outputs): every
// box id, transaction id, the transactions and extension roots, the header
// id, section ids and the Autolykos v2 PoW.
//
//	go test -run '^$' -bench DecodeVerifyBlock -benchmem ./ergo/
func BenchmarkDecodeVerifyBlock(b *testing.B) {
	benchDecodeVerify(b, fixtures.Read(b, "blocks", "mainnet_1000001.json"))
}

// benchDecodeVerify decodes and verifies data (a full block) b.N times.
func benchDecodeVerify(b *testing.B, data []byte) {
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		blk, err := DecodeBlock(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := blk.Verify(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
}
