package sigma

import (
	"testing"
)

// BenchmarkParseErgoTree parses every distinct ErgoTree of the fixtures.
// "cold" forgets the verified curve points before each pass, as for trees
// whose keys were never seen; "warm" keeps them, as when keys recur.
func BenchmarkParseErgoTree(b *testing.B) {
	trees := benchTrees(b)
	size := 0
	for _, t := range trees {
		size += len(t)
	}
	for _, cold := range []bool{true, false} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if cold {
					b.StopTimer()
					for i := range validPoints {
						validPoints[i].Store(nil)
					}
					b.StartTimer()
				}
				for _, t := range trees {
					if _, err := ParseErgoTree(t); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkTemplateHashOf takes the template hash of the fixture trees
// without parsing their root expressions (compare BenchmarkParseErgoTree).
func BenchmarkTemplateHashOf(b *testing.B) {
	trees := benchTrees(b)
	var n int64
	for _, t := range trees {
		n += int64(len(t))
	}
	b.SetBytes(n)
	for b.Loop() {
		for _, t := range trees {
			if _, err := TemplateHashOf(t); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchTrees returns every distinct fixture tree.
func benchTrees(b *testing.B) [][]byte {
	it := fixtureItems(b)
	trees := make([][]byte, 0, len(it.trees))
	for _, h := range sortedKeys(it.trees) {
		trees = append(trees, mustHex(b, h))
	}
	return trees
}
