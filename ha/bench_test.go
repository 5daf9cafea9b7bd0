package ha

import (
	"fmt"
	"testing"
	"time"

	"github.com/async-emission/auditor/internal/natstest"
	"github.com/async-emission/auditor/internal/poll"
)

// BenchmarkLeaderPublishes measures how fast a leader publishes its
// outbox, one message at a time: a member leading an empty stream (R1 on
// one node, R3 on a three-node cluster, in this process) is handed a chain
// of 200 blocks of 5 verdict events each (1 KiB payloads) at once.
func BenchmarkLeaderPublishes(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			const blocks, perBlock = 200, 5
			f := newFixture(b)
			var chain []Block
			for h := range uint32(blocks) {
				boxes := make([]byte, perBlock)
				for i := range boxes {
					boxes[i] = byte(h*perBlock + uint32(i))
				}
				chain = append(chain, f.block(byte(h), h+1, boxes...))
			}
			var took time.Duration
			for range b.N {
				b.StopTimer()
				c := natstest.NewCluster(b, nodes)
				mc := &memChain{done: map[int64]bool{}}
				m := startMember(b, c.URLs()[0], "a1", mc, nodes)
				poll.Until(b, time.Minute, "leading", func() (bool, string) {
					st := m.Status()
					return st.Role == Leader && st.Reconciliations > 0, fmt.Sprintf("%+v", st.LeaseState)
				})
				start := time.Now()
				b.StartTimer()
				for _, blk := range chain {
					mc.add(blk)
				}
				m.Notify()
				poll.Until(b, time.Minute, "the chain published", func() (bool, string) {
					st := m.Status()
					return st.Published == blocks*perBlock, fmt.Sprint(st.Published)
				})
				b.StopTimer()
				took += time.Since(start)
				m.stop()
				<-m.done
			}
			b.ReportMetric(float64(b.N*blocks*perBlock)/took.Seconds(), "events/s")
		})
	}
}
