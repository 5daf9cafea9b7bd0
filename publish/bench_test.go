package publish

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkRelay publishes b.N outbox rows (1 KiB events) through a relay
// to a file-backed JetStream in this process, over loopback TCP, and
// reports events/s: from the relay's start to the last row marked.
//
//	go test -run '^$' -bench Relay -benchtime 20000x ./publish/
func BenchmarkRelay(b *testing.B) {
	for _, inFlight := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("inflight=%d", inFlight), func(b *testing.B) {
			srv := startServer(b, b.TempDir(), 0)
			nc := connect(b, srv.ClientURL())
			cfg := RelayConfig{MaxInFlight: inFlight, PollInterval: time.Hour, Stream: &StreamConfig{}}
			js := newJS(b, nc, cfg)
			src := newFakeSource()
			src.add(b.N, "bench")
			payload := make([]byte, 1024)
			for i := range src.rows {
				src.rows[i].Payload = payload
			}
			r := NewRelay(src, js, cfg, testLog(b))
			b.ResetTimer()
			start := time.Now()
			stop := runRelay(b, r)
			src.waitAllMarked(b, 5*time.Minute)
			elapsed := time.Since(start)
			b.StopTimer()
			stop()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}
