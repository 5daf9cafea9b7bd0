//go:build linux

package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/testfs"
)

// TestSuperviseRecoversFromAFullDisk: the embedded server's store is on a
// small tmpfs. Filled up by something else, JetStream stops storing (the
// stream keeps a write error) and Problem says so; once the space is
// freed, Supervise restarts JetStream on the same store, the relay goes on,
// and the stream ends with every row exactly once, in order, and no
// problem reported.
func TestSuperviseRecoversFromAFullDisk(t *testing.T) {
	mnt := testfs.Tmpfs(t, 16<<20, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := testLog(t).Level(zerolog.Disabled) // the server logs the write errors it is made to have
	e, err := StartEmbedded(ctx, EmbeddedConfig{StoreDir: filepath.Join(mnt, "nats"), MaxStore: 8 << 20}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	supervised := make(chan error, 1)
	go func() { supervised <- e.Supervise(ctx, 20*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-supervised; !errors.Is(err, context.Canceled) {
			t.Errorf("Supervise returned %v", err)
		}
	}()
	nc, err := e.Connect(ctx, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cfg := fastRelay()
	cfg.Stream = &StreamConfig{MaxBytes: 8 << 20}
	js := newJS(t, nc, cfg)
	src := newFakeSource()
	src.add(200, "before")
	r := NewRelay(src, js, cfg, quiet)
	runRelay(t, r)
	src.waitAllMarked(t, 10*time.Second)

	junk := filepath.Join(mnt, "junk")
	filled := testfs.Fill(t, junk)
	src.add(300, "full")
	r.Notify()
	poll.NoError(t, 20*time.Second, "the full disk to be noticed", func() error {
		if p := e.Problem(); !strings.Contains(p, "no space left on device") {
			return fmt.Errorf("problem %q, %d rows marked", p, src.marked())
		}
		return nil
	})
	if m := src.marked(); m == 500 {
		t.Fatal("every row marked with the disk full")
	}
	marked := src.marked()
	t.Logf("disk full (%s written to fill it): %d of 500 rows marked; %q", Bytes(filled), marked, e.Problem())

	if err := os.Remove(junk); err != nil {
		t.Fatal(err)
	}
	src.waitAllMarked(t, 60*time.Second)
	poll.NoError(t, 10*time.Second, "the problem to clear", func() error {
		if p := e.Problem(); p != "" {
			return errors.New(p)
		}
		return nil
	})
	if got, want := streamIDs(t, js, DefaultStream), src.rowIDs(); !slices.Equal(got, want) {
		t.Fatalf("stream holds %d messages, want the %d rows once each in order (%s)", len(got), len(want), firstDiff(got, want))
	}
	t.Logf("recovered: stats %+v", r.Stats())
}

// TestStreamWatch: the watch finds the stream; deleted, it is missing;
// created again, it is not the stream first found, which stays a problem.
func TestStreamWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := startServer(t, t.TempDir(), 0)
	js := newJS(t, connect(t, srv.ClientURL()), RelayConfig{})
	w := NewStreamWatch(js, StreamConfig{}, 10*time.Millisecond, testLog(t).Level(zerolog.Disabled))
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	}()
	problem := func(want string) {
		t.Helper()
		poll.NoError(t, 5*time.Second, "the problem", func() error {
			if p := w.Problem(); (want == "") != (p == "") || !strings.Contains(p, want) {
				return fmt.Errorf("problem %q, want %q", p, want)
			}
			return nil
		})
	}
	problem("stream AUDITOR does not exist")
	if _, err := EnsureStream(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	problem("")
	time.Sleep(20 * time.Millisecond) // stays fine
	problem("")
	if err := js.DeleteStream(ctx, DefaultStream); err != nil {
		t.Fatal(err)
	}
	problem("stream AUDITOR does not exist")
	time.Sleep(5 * time.Millisecond) // a creation time of its own (JetStream's are to the nanosecond)
	if _, err := EnsureStream(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	problem("stream AUDITOR was deleted and created again")
}

// TestRelayRecreatesADeletedStream: the stream deleted under a running
// relay is created again, and the rows written since reach it.
func TestRelayRecreatesADeletedStream(t *testing.T) {
	srv := startServer(t, t.TempDir(), 0)
	nc := connect(t, srv.ClientURL())
	cfg := fastRelay()
	js := newJS(t, nc, cfg)
	src := newFakeSource()
	src.add(50, "a")
	r := NewRelay(src, js, cfg, testLog(t).Level(zerolog.Disabled))
	runRelay(t, r)
	src.waitAllMarked(t, 10*time.Second)
	if err := js.DeleteStream(context.Background(), DefaultStream); err != nil {
		t.Fatal(err)
	}
	src.add(50, "b")
	r.Notify()
	src.waitAllMarked(t, 20*time.Second)
	got := streamIDs(t, js, DefaultStream)
	if want := src.rowIDs()[50:]; !slices.Equal(got, want) {
		t.Fatalf("the stream created again holds %v, want the rows written since %v", got, want)
	}
	s, err := js.Stream(context.Background(), DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	if c := s.CachedInfo().Config; c.Subjects[0] != "auditor.>" || c.Storage != jetstream.FileStorage {
		t.Fatalf("created again as %+v", c)
	}
}

// TestSuperviseRestartsJetStreamTurnedOff: JetStream turned off under the
// server (as nats-server does when it runs out of resources) is started
// again on the same store, with the stream and its messages.
func TestSuperviseRestartsJetStreamTurnedOff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	quiet := testLog(t).Level(zerolog.Disabled)
	e, err := StartEmbedded(ctx, EmbeddedConfig{StoreDir: t.TempDir()}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	nc, err := e.Connect(ctx, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js := newJS(t, nc, RelayConfig{})
	if _, err := EnsureStream(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "auditor.a.b", []byte("{}"), jetstream.WithMsgID("one")); err != nil {
		t.Fatal(err)
	}
	if err := e.Server().ShutdownJetStream(); err != nil {
		t.Fatal(err)
	}
	supervised := make(chan error, 1)
	go func() { supervised <- e.Supervise(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); <-supervised }()
	poll.NoError(t, 10*time.Second, "JetStream back", func() error {
		if !e.Server().JetStreamEnabled() || e.Problem() != "" {
			return fmt.Errorf("JetStream enabled %v, problem %q", e.Server().JetStreamEnabled(), e.Problem())
		}
		return nil
	})
	ack, err := js.Publish(ctx, "auditor.a.b", []byte("{}"), jetstream.WithMsgID("two"))
	if err != nil || ack.Sequence != 2 {
		t.Fatalf("publish after the restart: %+v %v", ack, err)
	}
}
