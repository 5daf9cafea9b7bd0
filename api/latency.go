package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LatencyBuckets are the upper bounds, in seconds, of the latency
// histograms: from a millisecond (a block connected at the tip, an event
// acknowledged at once) to a quarter of an hour (NATS away).
var LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900}

// Latency is the daemon's two latency histograms. The follower and the
// relay call its methods (scan.FollowerConfig.OnConnect,
// publish.RelayConfig.OnAck), each observation an atomic add; a Handler
// given it in Config.Latency serves them.
type Latency struct {
	connect, ack prometheus.Histogram
}

// NewLatency returns empty histograms.
func NewLatency() *Latency {
	return &Latency{
		connect: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "auditor_block_connect_delay_seconds",
			Help:    "Time from a block's arrival from the node (fetched and verified; for a reorg's branch, the whole branch) to the commit of the transaction that connected it.",
			Buckets: LatencyBuckets,
		}),
		ack: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "auditor_event_ack_delay_seconds",
			Help:    "Time from an event's writing in its block's transaction to JetStream's acknowledgement of it (millisecond precision).",
			Buckets: LatencyBuckets,
		}),
	}
}

// BlockConnected observes a block fetched at fetched and committed at
// committed.
func (l *Latency) BlockConnected(fetched, committed time.Time) {
	l.connect.Observe(seconds(committed.Sub(fetched)))
}

// EventAcknowledged observes an event written at written and acknowledged
// at acked; an unknown written time (zero) is not observed.
func (l *Latency) EventAcknowledged(written, acked time.Time) {
	if !written.IsZero() {
		l.ack.Observe(seconds(acked.Sub(written)))
	}
}

// seconds is d in seconds, never negative: a write time kept in
// milliseconds may read a little after the ack's.
func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }

func (l *Latency) collectors() []prometheus.Collector {
	return []prometheus.Collector{l.connect, l.ack}
}
