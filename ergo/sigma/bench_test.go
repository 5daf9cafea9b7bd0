package sigma

import (
	"testing"
)

// BenchmarkParseErgoTree parses every distinct ErgoTree of the fixtures.
// "cold" forgets the verified curve points before each pass, as for trees
// whose keys were never seen; "warm" keeps them, as when keys recur.
func BenchmarkParseErgoTree(b *testing.B) {
	it := fixtureItems(b)
	trees := make([][]byte, 0, len(it.trees))
	size := 0
	for _, h := range sortedKeys(it.trees) {
		t := mustHex(b, h)
		trees = append(trees, t)
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
