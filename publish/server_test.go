package publish

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
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

// TestEmbeddedAuth: credentials set on the embedded server are required of
// clients; Connect passes user/password and token.
func TestEmbeddedAuth(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		server      EmbeddedConfig
		good, wrong ConnConfig
	}{
		{"user", EmbeddedConfig{User: "au", Password: "s3cret"}, ConnConfig{User: "au", Password: "s3cret"}, ConnConfig{User: "au", Password: "guess"}},
		{"token", EmbeddedConfig{Token: "t0ken"}, ConnConfig{Token: "t0ken"}, ConnConfig{Token: "guess"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.server
			cfg.StoreDir, cfg.Listen = t.TempDir(), "127.0.0.1:0"
			e, err := StartEmbedded(ctx, cfg, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			defer e.Shutdown()
			tc.good.URLs, tc.wrong.URLs = []string{e.ClientURL()}, []string{e.ClientURL()}
			nc, err := Connect(ctx, tc.good, testLog(t))
			if err != nil {
				t.Fatal(err)
			}
			nc.Close()
			quiet := testLog(t).Level(100)
			if _, err := Connect(ctx, tc.wrong, quiet); !errors.Is(err, ErrConnect) {
				t.Fatalf("wrong credentials: %v", err)
			}
			if _, err := Connect(ctx, ConnConfig{URLs: tc.good.URLs}, quiet); !errors.Is(err, ErrConnect) {
				t.Fatalf("no credentials: %v", err)
			}
			nc, err = e.Connect(ctx, testLog(t))
			if err != nil {
				t.Fatalf("in-process: %v", err)
			}
			nc.Close()
		})
	}
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
		"user and token": {StoreDir: t.TempDir(), User: "a", Token: "b"},
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
