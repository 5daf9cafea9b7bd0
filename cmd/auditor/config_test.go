package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

func TestProtocolSection(t *testing.T) {
	cfg, err := loadConfig("testdata/config/protocol.good.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Protocols) != 1 || cfg.Protocols[0].Name != "demo" {
		t.Fatalf("protocols %+v", cfg.Protocols)
	}
}

// TestProtocolActions: [[protocol.action]] sections with their
// [[protocol.action.requires]] are read, and check-config counts them.
func TestProtocolActions(t *testing.T) {
	const path = "testdata/config/protocol_tree.good.toml"
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, errs := rules.ParseProtocols(cfg.Protocols)
	if errs != nil || len(ps) != 1 || len(ps[0].Actions) != 4 {
		t.Fatalf("protocols %+v %v", ps, errs)
	}
	settle := ps[0].Actions[3]
	want := []rules.Requirement{{Class: rules.ClassEmitted, Action: "aggregate"}, {Class: rules.ClassEmitted, Action: "quote"}, {Class: rules.ClassEmission}}
	if settle.Name != "settle" || !slices.Equal(settle.Requires, want) {
		t.Fatalf("settle %+v", settle)
	}
	var out strings.Builder
	if code := run([]string{"check-config", "--config", path}, &env{stdout: &out, stderr: &out}); code != exitOK ||
		!strings.Contains(out.String(), "valid (1 protocols with 4 actions") {
		t.Fatalf("check-config: exit %d: %s", code, out.String())
	}
}

// TestTemplateConventions: template keys take bare hex (sha256), sha256:
// or blake2b256: (PROTOCOL.md §2); the same bytes in two conventions are
// two templates, which check-config cannot tell apart from one shared, and
// says so.
func TestTemplateConventions(t *testing.T) {
	const path = "testdata/config/protocol_conventions.good.toml"
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ps, errs := rules.ParseProtocols(cfg.Protocols)
	if errs != nil {
		t.Fatal(errs)
	}
	h := func(s string) ergo.Digest {
		d, err := ergo.ParseDigest(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	demo, other := ps[0], ps[1]
	for _, c := range []struct {
		key       string
		got, want rules.Template
	}{
		{"bare emission_template", demo.EmissionTemplate, rules.Template{Convention: rules.SHA256, Hash: h("682db8df7a2a5aab16bfb90542fb796fa56d99ff056883b9293834ac0543c0f2")}},
		{"sha256: funnel_template", *demo.FunnelTemplate, rules.Template{Convention: rules.SHA256, Hash: h("b73f6c7c6eafdb7d891cdaede018ce8250c3bd9774c7901ec98f756b86c742de")}},
		{"blake2b256: emitted_template", *demo.EmittedTemplate, rules.Template{Convention: rules.Blake2b256, Hash: h("74e892c91130daa5e9c5ccdfa4555be059066ec373c5299559679abc05bbf304")}},
		{"the other's sha256: emission_template", other.EmissionTemplate, rules.Template{Convention: rules.SHA256, Hash: h("74e892c91130daa5e9c5ccdfa4555be059066ec373c5299559679abc05bbf304")}},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.key, c.got, c.want)
		}
	}
	if !demo.UsesBlake2b() || other.UsesBlake2b() || !rules.MixedConventions(ps) || rules.MixedConventions(ps[1:]) {
		t.Error("conventions not told apart")
	}
	if f := watchFilter(cfg); f == nil {
		t.Fatal("no watch filter")
	}
	var out strings.Builder
	if code := run([]string{"check-config", "--config", path}, &env{stdout: &out, stderr: &out}); code != exitOK ||
		!strings.Contains(out.String(), "valid (2 protocols") || !strings.Contains(out.String(), "both conventions") {
		t.Fatalf("check-config: exit %d: %s", code, out.String())
	}
}

func TestDefaultConfigIsValid(t *testing.T) {
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Scan.MaxReorgDepth != 200 || cfg.Scan.Confirmations != 0 || cfg.Scan.StartHeight != 1 {
		t.Fatalf("defaults %+v", cfg.Scan)
	}
}

func TestConfigOverridesAndDurations(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte("data_dir = \"/var/lib/auditor\"\n[scan]\npoll_interval = \"150ms\"\nconfirmations = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(p, func(c *Config) { c.Node.URL = "http://127.0.0.1:1234" })
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(cfg.Scan.PollInterval) != 150*time.Millisecond || cfg.Scan.Confirmations != 3 || cfg.Node.URL != "http://127.0.0.1:1234" || cfg.DataDir != "/var/lib/auditor" {
		t.Fatalf("got %+v", cfg)
	}
	if cfg.Scan.MaxReorgDepth != 200 {
		t.Fatal("a key absent from the file lost its default")
	}
}

// TestBadConfigs checks that each testdata/config/*.bad.toml fails with an
// error naming the offending key (and its line where the decoder knows it).
func TestBadConfigs(t *testing.T) {
	want := map[string][]string{
		"unknown_key.bad.toml":               {"line 3", `"node.urll"`},
		"unknown_table.bad.toml":             {"line 2", `"sacn"`},
		"bad_duration.bad.toml":              {"line 2", "scan.poll_interval", "soon"},
		"node_url.bad.toml":                  {"node.url"},
		"watch_token.bad.toml":               {"watch.tokens[0]"},
		"fetch_batch.bad.toml":               {"scan.fetch_batch"},
		"log_level.bad.toml":                 {"log.level"},
		"syntax.bad.toml":                    {"line 1"},
		"negative_height.bad.toml":           {"line 2", "scan.start_height"},
		"protocol_token.bad.toml":            {"protocol demo", "participant_token_id", "32 bytes"},
		"protocol_class.bad.toml":            {"protocol demo", "emission_requires[0].class", "oracle"},
		"protocol_duplicate.bad.toml":        {"protocol demo", "name", "two protocols"},
		"protocol_register_pair.bad.toml":    {"protocol demo", "emission_requires[0]", "go together"},
		"protocol_action_duplicate.bad.toml": {"protocol tree", "action[1].name", `"observe" names two actions`},
		"protocol_action_template.bad.toml":  {"protocol tree", "action[1].emitted_template", "action[0].emitted_template"},
		"protocol_action_unknown.bad.toml":   {"protocol tree", "action[1].requires[0].action", `"observer"`},
		"protocol_action_cycle.bad.toml": {"protocol tree", "action[0].requires[0]", "action[1].requires[0]",
			"cycle with no leaf"},
		"protocol_shared_template.bad.toml": {"protocol other", "action[0].emitted_template", "of protocol tree"},
		"protocol_shared_template_prefixed.bad.toml": {"protocol other", "emitted_template",
			"sha256:74e892c91130daa5e9c5ccdfa4555be059066ec373c5299559679abc05bbf304", "action[0].emitted_template of protocol tree"},
		"protocol_shared_template_blake2b.bad.toml": {"protocol other", "emission_template",
			"blake2b256:5f0a4ab6a8c53d1b5ba0e3b3f1ef8c1d22a1e4cfd3f0b8b1b0cc49f03c54a8f2", "emission_template of protocol tree"},
		"protocol_template_prefix.bad.toml": {"protocol demo", "emission_template", `"blake2b"`, "sha256:", "blake2b256:"},
		"protocol_template_short.bad.toml":  {"protocol demo", "emission_template", "32 bytes of hex"},
		"watch_template.bad.toml":           {"watch.templates[0]", `"md5"`},
		"nats_url.bad.toml":                 {"nats.url[0]", "http://"},
		"nats_listen.bad.toml":              {"nats.listen", "4222"},
		"nats_auth.bad.toml":                {"nats.token", "not both"},
		"nats_prefix.bad.toml":              {"nats.subject_prefix", "auditor.>"},
		"nats_replicas.bad.toml":            {"nats.replicas", "single node"},
		"nats_duplicate_window.bad.toml":    {"nats.duplicate_window", "max_age"},
		"nats_creds_embedded.bad.toml":      {"nats.creds_file", "nats.url"},
		"nats_max_in_flight.bad.toml":       {"nats.max_in_flight"},
		"http_listen.bad.toml":              {"http.listen", "8080"},
		"reports_schedule.bad.toml":         {"reports.schedule", "every day at 3"},
		"reports_time_zone.bad.toml":        {"reports.time_zone", "Mars/Olympus"},
		"reports_retention.bad.toml":        {"reports.retention"},
		"reports_sweep_interval.bad.toml":   {"reports.sweep_interval"},
		"reports_explorer_url.bad.toml":     {"reports.explorer_url", "{box}"},
		"reports_explorer_scheme.bad.toml":  {"reports.explorer_url", "http or https"},
		"nats_listen_any.bad.toml":          {"nats.listen", "0.0.0.0:4222", "nats.user", "nats.listen_any"},
		"http_listen_any.bad.toml":          {"http.listen", "0.0.0.0:8080", "http.listen_any"},
		"nats_token_embedded.bad.toml":      {"nats.token", "nats.url"},
		"node_url_secret.bad.toml":          {"node.url", "user:xxxxx@node", "99999"},
		"http_max_publish_delay.bad.toml":   {"http.max_publish_delay"},
		"http_max_backfill_stall.bad.toml":  {"line 2: http.max_backfill_stall", "must not be negative"},
		"ha_embedded.bad.toml":              {"ha.enabled", "nats.url"},
		"ha_keys.bad.toml":                  {"line 6: ha.id", "line 7: ha.lease_ttl", "line 8: ha.bucket"},
		"duration_bare_number.bad.toml":     {"line 3: node.request_timeout", `a duration with a unit, such as "15s"`, "got the number 15"},
		"duration_no_unit.bad.toml":         {"line 2: scan.poll_interval", `"2" has no unit (write "2s" for seconds)`},
		"many_problems.bad.toml": {"5 problems", `line 2: scan.confirmations: expected a whole number from 0 to 4294967295, got the string "ten"`,
			"line 3: scan.fetch_batch: expected a whole number, got the number 1.5", "line 4: scan.start_height", "line 7: nats.url: expected a list",
			"line 10: log.level: expected a string in quotes, got a list"},
		"http_max_lag.bad.toml":        {"line 5: http.max_lag", "not above scan.confirmations (10)", "11 or more"},
		"http_nats_same_port.bad.toml": {"line 5: http.listen", "nats.listen"},
	}
	files, _ := filepath.Glob("testdata/config/*.bad.toml")
	if len(files) != len(want) {
		t.Fatalf("%d bad configs in testdata, %d expectations", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := loadConfig(f, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range want[filepath.Base(f)] {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			var fe *FieldError
			if errors.As(err, &fe) && fe.Field == "" {
				t.Errorf("field error without a field: %v", err)
			}
			// User words, not Go's: no type names, no package paths.
			for _, internal := range []string{"main.", "uint32", "int64", "of type", "reflect"} {
				if strings.Contains(err.Error(), internal) {
					t.Errorf("error %q shows Go internals (%q)", err, internal)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

// TestConfigMadeConsistent: a single URL is a list of one, and /readyz's
// lag bound follows scan.confirmations when it is not written.
func TestConfigMadeConsistent(t *testing.T) {
	cfg, err := loadConfig("testdata/config/single_url.good.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.NATS.URL, []string{"nats://127.0.0.1:4222"}) {
		t.Errorf("nats.url %q, want the one URL as a list", cfg.NATS.URL)
	}
	if cfg.HTTP.MaxLag != 15 {
		t.Errorf("http.max_lag %d with confirmations 10 and no max_lag written, want 15", cfg.HTTP.MaxLag)
	}
	cfg, err = loadConfig("", func(c *Config) { c.Scan.Confirmations = 30 })
	if err != nil || cfg.HTTP.MaxLag != 35 {
		t.Errorf("no file, confirmations 30: max_lag %d, %v", cfg.HTTP.MaxLag, err)
	}
	// Written, it is kept as written (and checked).
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte("[scan]\nconfirmations = 10\n[http]\nmax_lag = 11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err = loadConfig(path, nil); err != nil || cfg.HTTP.MaxLag != 11 {
		t.Errorf("max_lag 11 written: %d, %v", cfg.HTTP.MaxLag, err)
	}
}

// TestExampleConfigIsTheDefaults keeps config.example.toml honest: it
// decodes strictly and equals DefaultConfig.
func TestExampleConfigIsTheDefaults(t *testing.T) {
	cfg, err := loadConfig("../../config.example.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	def.Watch = WatchConfig{Tokens: []string{}, Templates: []string{}}
	if fmt.Sprintf("%+v", cfg) != fmt.Sprintf("%+v", def) {
		t.Fatalf("config.example.toml differs from DefaultConfig:\n%+v\n%+v", cfg, def)
	}
}

// TestListenBeyondLoopback: an embedded NATS or HTTP server listening
// where other machines reach it needs credentials for the write role (NATS)
// or an explicit listen_any; loopback needs neither.
func TestListenBeyondLoopback(t *testing.T) {
	for _, tc := range []struct {
		toml  string
		field string // "" when valid
	}{
		{"[nats]\nlisten = \"127.0.0.1:4222\"\n[http]\nlisten = \"[::1]:8080\"\n", ""},
		{"[nats]\nlisten = \"localhost:4222\"\n[http]\nlisten = \"localhost:8080\"\n", ""},
		{"[nats]\nlisten = \":4222\"\n", "nats.listen"},
		{"[nats]\nlisten = \"192.0.2.7:4222\"\n", "nats.listen"},
		{"[nats]\nlisten = \"nats.example:4222\"\n", "nats.listen"},
		{"[nats]\nlisten = \"0.0.0.0:4222\"\nuser = \"ops\"\npassword = \"pw\"\n", ""},
		{"[nats]\nlisten = \"0.0.0.0:4222\"\nlisten_any = true\n", ""},
		{"[nats]\nlisten = \"0.0.0.0:4222\"\nuser = \"ops\"\n", "nats.password"},
		{"[nats]\nlisten = \"0.0.0.0:4222\"\nurl = [\"nats://n1:4222\"]\n", ""}, // ignored with url
		{"[http]\nlisten = \"0.0.0.0:8080\"\nlisten_any = true\n", ""},
		{"[http]\nlisten = \":8080\"\n", "http.listen"},
	} {
		path := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(path, []byte(tc.toml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadConfig(path, nil)
		var fe *FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%q: %v", tc.toml, err)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%q: %v, want an error about %s", tc.toml, err, tc.field)
		}
	}
}

// TestDemoHTTPLoopbackOnly: the demo, which takes no configuration, serves
// HTTP on loopback only.
func TestDemoHTTPLoopbackOnly(t *testing.T) {
	var out, errOut strings.Builder
	code := run([]string{"demo", "--http", "0.0.0.0:8080", "--data-dir", t.TempDir()}, &env{stdout: &out, stderr: &errOut})
	if code != exitBadInput || !strings.Contains(errOut.String(), "--http 0.0.0.0:8080: the demo serves on loopback only") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestCheckConfigCommand(t *testing.T) {
	var out, errOut strings.Builder
	e := &env{stdout: &out, stderr: &errOut}
	if code := run([]string{"check-config", "--config", "testdata/config/protocol.good.toml"}, e); code != exitOK {
		t.Fatalf("good config: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "valid (1 protocols") {
		t.Fatalf("output %q", out.String())
	}
	errOut.Reset()
	if code := run([]string{"check-config", "--config", "testdata/config/unknown_key.bad.toml"}, e); code != exitBadInput {
		t.Fatalf("bad config: exit %d", code)
	}
	if !strings.Contains(errOut.String(), `line 3: unknown key "node.urll"`) {
		t.Fatalf("stderr %q does not name the key and line", errOut.String())
	}
	if code := run([]string{"check-config"}, e); code != exitBadInput {
		t.Fatalf("no --config: exit %d", code)
	}
	// A password in the node's URL is not printed.
	path := filepath.Join(t.TempDir(), "secret.toml")
	if err := os.WriteFile(path, []byte("[node]\nurl = \"http://ops:s3cret@node.example:9053\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run([]string{"check-config", "--config", path}, e); code != exitOK {
		t.Fatalf("a node URL with a password: exit %d: %s", code, errOut.String())
	}
	if strings.Contains(out.String(), "s3cret") || !strings.Contains(out.String(), "node http://ops:xxxxx@node.example:9053") {
		t.Fatalf("output %q: want the node's URL without its password", out.String())
	}
}
