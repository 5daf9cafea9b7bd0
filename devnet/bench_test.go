package devnet

import (
	"testing"

	"github.com/rs/zerolog"
)

// BenchmarkGenerate measures generating the final chain: block bodies,
// headers and proof of work, as New does with BlockTime 0.
func BenchmarkGenerate(b *testing.B) {
	const blocks = 500
	for b.Loop() {
		if _, err := New(Config{Seed: 1, Blocks: blocks}, zerolog.Nop()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(blocks*b.N)/b.Elapsed().Seconds(), "blocks/s")
}

// BenchmarkRebuild measures rebuilding block bodies from a checkpoint, as a
// request for a block no longer cached does (no proof of work: the header
// is kept).
func BenchmarkRebuild(b *testing.B) {
	const blocks = 500
	d, err := New(Config{Seed: 1, Blocks: blocks, CheckpointEvery: blocks}, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		st, err := d.checkpointBelow(0)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.replayFinal(st, blocks, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(blocks*b.N)/b.Elapsed().Seconds(), "blocks/s")
}
