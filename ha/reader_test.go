package ha

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/internal/natstest"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/testlog"
	"github.com/async-emission/auditor/publish"
)

// TestReaderReadsOnAfterANodeIsLost: three readers, each connected to its
// own node of a three-node cluster, read a replicated stream that a
// client keeps publishing to; one node is killed. Every reader must go on
// reading what the stream holds once the stream takes messages again —
// the reader connected to the lost node too, whose consumer the client
// library could wait on forever.
func TestReaderReadsOnAfterANodeIsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a nats-server process")
	}
	t.Parallel()
	c := natstest.NewProcessCluster(t, 3)
	urls := c.URLs()
	cfg := publish.StreamConfig{Name: "EVENTS", Prefix: "audit.main", Replicas: 3}
	dial := func(first int) jetstream.JetStream {
		order := append([]string{urls[first]}, slices.Delete(slices.Clone(urls), first, first+1)...)
		nc, err := nats.Connect(strings.Join(order, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	pub := dial(0)
	if _, err := publish.EnsureStream(context.Background(), pub, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		stopped := make(chan struct{})
		go func() { wg.Wait(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(45 * time.Second): // a reset attempt (10 s), its backoff (≤ 10 s), and room
			t.Error("a reader did not stop within 45s of its context's end")
		}
	})
	var logs []*testlog.Buffer
	var readers []*reader
	for i := range urls {
		buf := &testlog.Buffer{}
		r := newReader(dial(i), cfg, 10, zerolog.New(buf))
		logs, readers = append(logs, buf), append(readers, r)
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }() //nolint:errcheck // its context's error
	}
	var stored atomic.Uint64 // the last message the stream acknowledged
	wg.Add(1)
	go func() {
		defer wg.Done()
		for n := 0; ctx.Err() == nil; n++ {
			pctx, done := context.WithTimeout(ctx, time.Second)
			if ack, err := pub.Publish(pctx, "audit.main.x", []byte(fmt.Sprint(n))); err == nil {
				stored.Store(ack.Sequence)
			}
			done()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	readTo := func(what string, seq func() uint64) {
		t.Helper()
		poll.Until(t, 60*time.Second, what, func() (bool, string) {
			want := seq()
			for i, r := range readers {
				if got, _ := r.lastSeq(); want == 0 || got < want {
					return false, fmt.Sprintf("reader %d (on node %d) at %d of %d; its log:\n%s", i, i+1, got, want, logs[i])
				}
			}
			return true, ""
		})
	}
	readTo("every reader at message 20", func() uint64 { return max(20, stored.Load()) })
	before := stored.Load()
	c.Stop(2)
	var after uint64
	poll.Until(t, 60*time.Second, "a message stored after the loss of node 3", func() (bool, string) {
		after = stored.Load()
		return after > before+10, fmt.Sprintf("stored up to %d, %d before", after, before)
	})
	readTo(fmt.Sprintf("every reader at message %d, stored after the loss", after), func() uint64 { return after })
}
