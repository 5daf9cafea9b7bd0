package publish

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/async-emission/auditor/lock"
)

// TestEmbeddedInProcessOnly: with no listen address the server opens no
// socket, and in-process connections publish to JetStream.
func TestEmbeddedInProcessOnly(t *testing.T) {
	ctx := context.Background()
	e, err := StartEmbedded(ctx, EmbeddedConfig{StoreDir: t.TempDir()}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	if e.ClientURL() != "" || e.Server().Addr() != nil {
		t.Fatalf("listening: %q %v", e.ClientURL(), e.Server().Addr())
	}
	nc, err := e.Connect(ctx, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js := newJS(t, nc, RelayConfig{})
	if _, err := EnsureStream(ctx, js, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "auditor.x.y", []byte("{}"), jetstream.WithMsgID("one"))
	if err != nil || ack.Stream != DefaultStream {
		t.Fatalf("publish: %v %+v", err, ack)
	}
}

// TestEmbeddedWriterCredentials: the write role's user and password, or
// nkey, log in and may write; wrong credentials are refused (not taken
// for a reader); without credentials a client is a reader, which may not.
// The in-process connection may write whatever is configured.
func TestEmbeddedWriterCredentials(t *testing.T) {
	ctx := context.Background()
	seed, pub := newUserNKey(t)
	seedFile := filepath.Join(t.TempDir(), "writer.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	otherSeed, _ := newUserNKey(t)
	otherFile := filepath.Join(t.TempDir(), "other.nk")
	if err := os.WriteFile(otherFile, otherSeed, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		server      EmbeddedConfig
		good, wrong ConnConfig
	}{
		{"user", EmbeddedConfig{User: "au", Password: "s3cret"}, ConnConfig{User: "au", Password: "s3cret"}, ConnConfig{User: "au", Password: "guess"}},
		{"nkey", EmbeddedConfig{NKey: pub}, ConnConfig{NKeyFile: seedFile}, ConnConfig{NKeyFile: otherFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.server
			cfg.StoreDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
			e, err := StartEmbedded(ctx, cfg, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Shutdown()
			own, err := e.Connect(ctx, testLog(t))
			if err != nil {
				t.Fatalf("in-process: %v", err)
			}
			defer own.Close()
			if _, err := EnsureStream(ctx, newJS(t, own, RelayConfig{}), StreamConfig{}); err != nil {
				t.Fatal(err)
			}
			tc.good.URLs, tc.wrong.URLs = []string{e.ClientURL()}, []string{e.ClientURL()}
			nc, err := Connect(ctx, tc.good, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			ack, err := newJS(t, nc, RelayConfig{}).Publish(ctx, "auditor.x.y", []byte("{}"))
			if err != nil || ack.Stream != DefaultStream {
				t.Fatalf("the writer's publish: %v %+v", err, ack)
			}
			quiet := testLog(t).Level(100)
			if _, err := Connect(ctx, tc.wrong, quiet); !errors.Is(err, ErrConnect) {
				t.Fatalf("wrong credentials: %v", err)
			}
		})
	}
}

// newUserNKey makes a user nkey: its seed and its public key.
func newUserNKey(t *testing.T) (seed []byte, pub string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ = kp.Seed()
	pub, _ = kp.PublicKey()
	return seed, pub
}

// TestEmbeddedStrangerMayOnlyRead: on the embedded server as the daemon
// runs it, a TCP client without credentials (or one claiming the server's
// own users) cannot publish on the stream's subjects, purge or delete the
// stream, delete a message, update the stream or create one; it can
// subscribe, read the stream, and create, fetch from, acknowledge and
// delete a consumer. Nothing it tried changed the stream.
func TestEmbeddedStrangerMayOnlyRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, EmbeddedConfig{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Shutdown()
	own, err := e.Connect(ctx, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	ownJS := newJS(t, own, RelayConfig{})
	if _, err := EnsureStream(ctx, ownJS, StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	publishOwn := func(id string) {
		t.Helper()
		if _, err := ownJS.Publish(ctx, "auditor.demo.verified.emitted", []byte(`{"id":"`+id+`"}`), jetstream.WithMsgID(id)); err != nil {
			t.Fatal(err)
		}
	}
	publishOwn("one")

	// The server's own users cannot be logged in as over TCP.
	for _, user := range []string{auditorUser, readerUser} {
		if _, err := Connect(ctx, ConnConfig{URLs: []string{e.ClientURL()}, User: user, Password: e.password}, testLog(t).Level(100)); !errors.Is(err, ErrConnect) {
			t.Fatalf("logged in over TCP as %s: %v", user, err)
		}
	}

	violations := make(chan error, 64)
	stranger, err := nats.Connect(e.ClientURL(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case violations <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("a client without credentials is not let in: %v", err)
	}
	defer stranger.Close()
	// refused fails unless the server reported a permissions violation
	// and, for a request (err != nil unless a core publish), it failed.
	refused := func(what string, err error, request bool) {
		t.Helper()
		if request && err == nil {
			t.Fatalf("%s: allowed", what)
		}
		select {
		case v := <-violations:
			if !strings.Contains(strings.ToLower(v.Error()), "permissions violation") {
				t.Fatalf("%s: %v, then %v", what, err, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: %v, and no permissions violation reported", what, err)
		}
	}
	sjs, err := jetstream.New(stranger, jetstream.WithDefaultTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	// A refused request gets no answer: wait for it briefly.
	quick := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 250*time.Millisecond) }

	// Reading works: a subscription sees what the auditor publishes, the
	// stream can be read, and a consumer created, fetched and acked.
	sub, err := stranger.SubscribeSync("auditor.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := stranger.Flush(); err != nil {
		t.Fatal(err)
	}
	publishOwn("two")
	if m, err := sub.NextMsg(5 * time.Second); err != nil || !strings.Contains(string(m.Data), `"two"`) {
		t.Fatalf("subscription: %v %v", m, err)
	}
	s, err := sjs.Stream(ctx, DefaultStream)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	if m, err := s.GetMsg(ctx, 1); err != nil || m.Header.Get(jetstream.MsgIDHeader) != "one" {
		t.Fatalf("get message 1: %v", err)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "watch", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("create a consumer: %v", err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, m.Headers().Get(jetstream.MsgIDHeader))
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if batch.Error() != nil || strings.Join(got, ",") != "one,two" {
		t.Fatalf("fetched %v (%v)", got, batch.Error())
	}
	if err := s.DeleteConsumer(ctx, "watch"); err != nil {
		t.Fatalf("delete the consumer: %v", err)
	}

	// Writing does not: each attempt is a permissions violation.
	if err := stranger.Publish("auditor.demo.invalid.emitted", []byte(`{"forged":true}`)); err != nil {
		t.Fatal(err)
	}
	refused("publish on auditor.>", stranger.Flush(), false)
	c1, c2 := quick()
	_, err = sjs.Publish(c1, "auditor.demo.invalid.emitted", []byte(`{"forged":true}`))
	c2()
	refused("JetStream publish", err, true)
	for _, op := range []struct {
		what string
		do   func(context.Context) error
	}{
		{"purge", func(ctx context.Context) error { return s.Purge(ctx) }},
		{"delete", func(ctx context.Context) error { return sjs.DeleteStream(ctx, DefaultStream) }},
		{"delete a message", func(ctx context.Context) error { return s.DeleteMsg(ctx, 1) }},
		{"update", func(ctx context.Context) error {
			_, err := sjs.UpdateStream(ctx, jetstream.StreamConfig{Name: DefaultStream, Subjects: []string{"auditor.>"}, MaxMsgs: 1})
			return err
		}},
		{"create a stream", func(ctx context.Context) error {
			_, err := sjs.CreateStream(ctx, jetstream.StreamConfig{Name: "MINE", Subjects: []string{"mine.>"}})
			return err
		}},
	} {
		c1, c2 := quick()
		refused(op.what, op.do(c1), true)
		c2()
	}
	if _, err := stranger.SubscribeSync(AuditorInbox + ".>"); err != nil {
		t.Fatal(err)
	}
	refused("subscribe to the auditor's inbox", stranger.Flush(), false)

	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 || info.State.LastSeq != 2 || info.Config.MaxMsgs != -1 {
		t.Fatalf("the stream changed: %+v, max msgs %d", info.State, info.Config.MaxMsgs)
	}
	if names := streamNames(t, ownJS); strings.Join(names, ",") != DefaultStream {
		t.Fatalf("streams %v", names)
	}
}

func streamNames(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var names []string
	l := js.StreamNames(context.Background())
	for n := range l.Name() {
		names = append(names, n)
	}
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	return names
}

// TestEmbeddedStoreIsLocked: a second server on a store a running one uses
// is refused at once, naming the store and this process; once the first
// has shut down the store can be used again.
func TestEmbeddedStoreIsLocked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	e, err := StartEmbedded(ctx, EmbeddedConfig{StoreDir: dir}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = StartEmbedded(ctx, EmbeddedConfig{StoreDir: dir}, testLog(t))
	if !errors.Is(err, ErrServer) || !errors.Is(err, lock.ErrHeld) || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("second server on %s: %v", dir, err)
	}
	e.Shutdown()
	e, err = StartEmbedded(ctx, EmbeddedConfig{StoreDir: dir}, testLog(t))
	if err != nil {
		t.Fatalf("after the first shut down: %v", err)
	}
	e.Shutdown()
}

// TestEmbeddedStoreMustFit: a stream limit more than the store's disk can
// hold (3/4 of free plus held) stops the start with a *SpaceError naming
// the figures; one that fits starts.
func TestEmbeddedStoreMustFit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	free, err := FreeSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = StartEmbedded(ctx, EmbeddedConfig{StoreDir: dir, MaxStore: free}, testLog(t))
	var se *SpaceError
	if !errors.Is(err, ErrNoSpace) || !errors.As(err, &se) || se.Need != free || se.Free <= 0 || se.Dir != dir ||
		!strings.Contains(err.Error(), "free") {
		t.Fatalf("max store = all the free space: %v", err)
	}
	e, err := StartEmbedded(ctx, EmbeddedConfig{StoreDir: dir, MaxStore: se.Fits() / 2}, testLog(t))
	if err != nil {
		t.Fatalf("half of what fits: %v", err)
	}
	e.Shutdown()
}

func TestConnectFailsFast(t *testing.T) {
	// Nothing listens on port 1 of loopback.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Connect(ctx, ConnConfig{URLs: []string{"nats://127.0.0.1:1"}}, testLog(t).Level(100))
	if !errors.Is(err, ErrConnect) || time.Since(start) > 3*time.Second {
		t.Fatalf("%v after %s", err, time.Since(start))
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := Connect(cancelled, ConnConfig{URLs: []string{"nats://127.0.0.1:1"}}, testLog(t).Level(100)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestConnConfigCheck(t *testing.T) {
	u := []string{"nats://127.0.0.1:4222"}
	for name, c := range map[string]ConnConfig{
		"no url":         {},
		"http url":       {URLs: []string{"http://x:4222"}},
		"no host":        {URLs: []string{"nats://"}},
		"user and token": {URLs: u, User: "a", Token: "b"},
		"creds and nkey": {URLs: u, CredsFile: "a", NKeyFile: "b"},
		"password alone": {URLs: u, Password: "p"},
		"cert alone":     {URLs: u, TLSCert: "c"},
	} {
		if err := c.Check(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := (ConnConfig{URLs: []string{"nats://a:1", "tls://b:2", "wss://c"}, User: "u", Password: "p", TLSCA: "ca"}).Check(); err != nil {
		t.Error(err)
	}
}

func TestStartEmbeddedRefuses(t *testing.T) {
	ctx := context.Background()
	for name, c := range map[string]EmbeddedConfig{
		"no store":       {},
		"bad listen":     {StoreDir: t.TempDir(), Listen: "4222"},
		"bad port":       {StoreDir: t.TempDir(), Listen: "127.0.0.1:99999"},
		"user and nkey":  {StoreDir: t.TempDir(), User: "a", Password: "p", NKey: "UAQ"},
		"no password":    {StoreDir: t.TempDir(), User: "a"},
		"password alone": {StoreDir: t.TempDir(), Password: "p"},
		"server's user":  {StoreDir: t.TempDir(), User: "_auditor", Password: "p"},
		"bad nkey":       {StoreDir: t.TempDir(), NKey: "SUAXYZ"},
		"negative store": {StoreDir: t.TempDir(), MaxStore: -1},
	} {
		if _, err := StartEmbedded(ctx, c, testLog(t)); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A port in use is reported, not fatal to the process.
	e := startServer(t, t.TempDir(), 0)
	_, err := StartEmbedded(ctx, EmbeddedConfig{StoreDir: t.TempDir(), Listen: e.Server().Addr().String(), ReadyTimeout: 2 * time.Second}, testLog(t).Level(100))
	if !errors.Is(err, ErrServer) {
		t.Fatalf("port in use: %v", err)
	}
}

// TestEnsureStream: created, then updated in place; a change JetStream
// refuses is an ErrStream.
func TestEnsureStream(t *testing.T) {
	ctx := context.Background()
	e := startServer(t, t.TempDir(), 0)
	nc := connect(t, e.ClientURL())
	js := newJS(t, nc, RelayConfig{})
	s, err := EnsureStream(ctx, js, StreamConfig{Name: "EV", Prefix: "audit.main", MaxAge: time.Hour, Duplicates: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	c := s.CachedInfo().Config
	if c.Subjects[0] != "audit.main.>" || c.MaxAge != time.Hour || c.Duplicates != time.Minute || c.MaxBytes != -1 || c.Storage != jetstream.FileStorage || c.Replicas != 1 {
		t.Fatalf("created %+v", c)
	}
	s, err = EnsureStream(ctx, js, StreamConfig{Name: "EV", Prefix: "audit.main", MaxAge: 2 * time.Hour, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	c = s.CachedInfo().Config
	if c.MaxAge != 2*time.Hour || c.MaxBytes != 1<<20 || c.Duplicates != DefaultDuplicates {
		t.Fatalf("updated %+v", c)
	}
	if _, err := EnsureStream(ctx, js, StreamConfig{Name: "EV", Prefix: "audit.main", Replicas: 3}); !errors.Is(err, ErrStream) {
		t.Fatalf("3 replicas on one server: %v", err)
	}
	for name, bad := range map[string]StreamConfig{
		"name":       {Name: "A.B"},
		"prefix":     {Prefix: "a.*"},
		"replicas":   {Replicas: 7},
		"duplicates": {MaxAge: time.Minute, Duplicates: time.Hour},
		"max bytes":  {MaxBytes: -1},
	} {
		if _, err := EnsureStream(ctx, js, bad); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
