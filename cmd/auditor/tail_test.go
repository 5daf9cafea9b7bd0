package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/publish"
	"github.com/async-emission/auditor/rules"
)

// sampleEvents are one event of each type, and a message that is no event.
func sampleEvents(t *testing.T) []publish.Message {
	t.Helper()
	box := &ergo.Box{Box: sigma.Box{BoxCandidate: sigma.BoxCandidate{
		Value: 1_000_000, ErgoTree: []byte{0x00, 0x08, 0xcd, 0x02, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87, 0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16, 0xf8, 0x17, 0x98},
		CreationHeight: 100, Tokens: []sigma.Token{{ID: [32]byte{0xaa}, Amount: 5}},
	}}}
	block := publish.BlockRef{ID: ergo.Digest{0xb1}, Height: 101, Timestamp: 1_700_000_000_000, Connects: 1}
	enc := &publish.Encoder{}
	v, err := enc.Verdict(&rules.Verdict{
		Protocol: "demo", Kind: rules.KindCreated, Class: rules.ClassEmitted, BoxID: box.ComputeID(),
		Reasons: []rules.Reason{rules.ReasonMissingDataInput, rules.ReasonStaleState},
	}, box, block)
	if err != nil {
		t.Fatal(err)
	}
	r, err := enc.Retraction(v, block)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := enc.Rollback(publish.Rollback{ForkID: ergo.Digest{0xf0}, ForkHeight: 99, Depth: 2, Block: block})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := enc.ReportReady(publish.Report{Name: "conservation", Time: time.UnixMilli(1_700_000_000_000), Files: []string{"a.json", "a.html"}})
	if err != nil {
		t.Fatal(err)
	}
	junk := publish.Message{Subject: "auditor.junk", Payload: []byte("not json")}
	return []publish.Message{v, r, rb, rep, junk}
}

// TestTail: tail prints each event published while it runs, in one line
// for people or as the JSON published, and stops cleanly when its context
// ends.
func TestTail(t *testing.T) {
	ctx := context.Background()
	srv, err := publish.StartEmbedded(ctx, publish.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	pub, err := srv.Connect(ctx, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	events := sampleEvents(t)
	for _, asJSON := range []bool{false, true} {
		tctx, cancel := context.WithCancel(ctx)
		var out lockedBuffer
		ready := make(chan struct{})
		done := make(chan error, 1)
		opts := tailOptions{Conn: publish.ConnConfig{URLs: []string{srv.ClientURL()}}, Subject: "auditor.>", JSON: asJSON, ready: func() { close(ready) }}
		go func() { done <- tail(tctx, opts, &out, zerolog.Nop()) }()
		select {
		case <-ready:
		case err := <-done:
			t.Fatalf("tail returned before subscribing: %v", err)
		}
		for _, m := range events {
			if err := pub.Publish(m.Subject, m.Payload); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Second)
		for strings.Count(out.String(), "\n") < len(events) {
			if time.Now().After(deadline) {
				t.Fatalf("printed %q", out.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("tail: %v", err)
		}
		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if asJSON {
			for i, m := range events {
				if lines[i] != string(m.Payload) {
					t.Errorf("--json line %d: %s", i, lines[i])
				}
			}
			continue
		}
		boxShort := short(strings.Split(events[0].ID, "-")[1])
		for i, want := range [][]string{
			{"2023-11-14T22:13:20.000Z", "auditor.demo.invalid.emitted", "invalid emitted", "box " + boxShort, "emitted.missing_data_input,emitted.stale_state", "height 101"},
			{"auditor.demo.retracted.emitted", "retracted emitted", "box " + boxShort, "was invalid", "height 101"},
			{"auditor.chain.rollback", "rollback", "height 101", "depth 2", "at 99"},
			{"auditor.report.ready", "report conservation", "a.json, a.html"},
			{"auditor.junk", "undecodable"},
		} {
			for _, w := range want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d %q lacks %q", i, lines[i], w)
				}
			}
		}
	}
}

func TestTailURLs(t *testing.T) {
	cfg := DefaultConfig()
	if got, err := tailURLs(cfg, ""); err != nil || len(got) != 1 || got[0] != "nats://127.0.0.1:4222" {
		t.Fatalf("default: %v %v", got, err)
	}
	cfg.NATS.Listen = ":5222"
	if got, _ := tailURLs(cfg, ""); got[0] != "nats://127.0.0.1:5222" {
		t.Fatalf("any-address listen: %v", got)
	}
	cfg.NATS.URL = []string{"nats://a:1", "nats://b:2"}
	if got, _ := tailURLs(cfg, ""); len(got) != 2 {
		t.Fatalf("url: %v", got)
	}
	if got, _ := tailURLs(cfg, "nats://c:3, tls://d:4"); len(got) != 2 || got[1] != "tls://d:4" {
		t.Fatalf("--nats: %v", got)
	}
	var bad badInput
	if _, err := tailURLs(cfg, "http://x"); !errors.As(err, &bad) {
		t.Fatalf("--nats http: %v", err)
	}
	cfg = DefaultConfig()
	cfg.NATS.Listen = ""
	if _, err := tailURLs(cfg, ""); !errors.As(err, &bad) {
		t.Fatalf("in-process only: %v", err)
	}
}

func TestTailCommandErrors(t *testing.T) {
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut}
	if code := run([]string{"tail", "--nats", "http://127.0.0.1:1"}, e); code != exitBadInput {
		t.Fatalf("--nats http: exit %d", code)
	}
	if code := run([]string{"tail", "extra"}, e); code != exitBadInput {
		t.Fatalf("argument: exit %d", code)
	}
	errOut.Reset()
	if code := run([]string{"tail", "--nats", "nats://127.0.0.1:1"}, e); code != exitFailed || !strings.Contains(errOut.String(), "cannot connect") {
		t.Fatalf("nothing listening: exit %d: %s", code, errOut.String())
	}
}

func TestNATSEnvOverrides(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NATS.Password, cfg.NATS.Token, cfg.Node.APIKey = "file", "file", "file"
	env := map[string]string{envNATSPassword: "pw", envNATSToken: "", envNodeAPIKey: "key"}
	applyEnv(&cfg, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if cfg.NATS.Password != "pw" || cfg.NATS.Token != "file" || cfg.Node.APIKey != "key" {
		t.Fatalf("%+v %+v", cfg.NATS, cfg.Node)
	}
	t.Setenv(envNATSToken, "tok")
	loaded, err := loadConfig("", func(c *Config) { c.NATS.URL = []string{"nats://127.0.0.1:4222"} })
	if err != nil || loaded.NATS.Token != "tok" {
		t.Fatalf("loadConfig: %v %q", err, loaded.NATS.Token)
	}
	// The embedded server takes no token: one from the environment is
	// refused, naming the key.
	var fe *FieldError
	if _, err := loadConfig("", nil); !errors.As(err, &fe) || fe.Field != "nats.token" {
		t.Fatalf("a token for the embedded server: %v", err)
	}
}

// FuzzFormatEvent: whatever arrives on the subjects, tail prints one line
// of printable text (nothing that moves the cursor or changes the
// terminal, valid UTF-8).
func FuzzFormatEvent(f *testing.F) {
	for _, m := range sampleEvents(&testing.T{}) {
		f.Add(m.Payload)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		line := formatEvent("auditor.x", b)
		if line == "" || !utf8.ValidString(line) || strings.ContainsFunc(line, func(r rune) bool {
			return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
		}) {
			t.Fatalf("line %q", line)
		}
	})
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain … text":          "plain … text",
		"a\nb\tc\x1b[31m":       `a\x0ab\x09c\x1b[31m`,
		"\u2028x\u202ey\u0085":  `\u2028x\u202ey\x85`,
		"bad \xff byte":         `bad \xff byte`,
		"ok \ufffd replacement": "ok \ufffd replacement",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}
