package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ha"
	"github.com/async-emission/auditor/internal/redact"
	"github.com/async-emission/auditor/internal/tomlstrict"
	"github.com/async-emission/auditor/publish"
	"github.com/async-emission/auditor/report"
	"github.com/async-emission/auditor/rules"
	"github.com/async-emission/auditor/scan"
)

// Config is the auditor's configuration file (config.example.toml documents
// every key). Load it with loadConfig: DefaultConfig, then strict decoding
// (an unknown key is an error naming it and its line), then Validate.
type Config struct {
	DataDir   string               `toml:"data_dir"`
	Node      NodeConfig           `toml:"node"`
	Scan      ScanConfig           `toml:"scan"`
	Watch     WatchConfig          `toml:"watch"`
	Log       LogConfig            `toml:"log"`
	NATS      NATSConfig           `toml:"nats"`
	HTTP      HTTPConfig           `toml:"http"`
	Reports   ReportsConfig        `toml:"reports"`
	HA        HAConfig             `toml:"ha"`
	Protocols []rules.ProtocolSpec `toml:"protocol"`
}

// NodeConfig is how to reach the Ergo node.
type NodeConfig struct {
	URL            string   `toml:"url"`
	APIKey         string   `toml:"api_key"`
	RequestTimeout Duration `toml:"request_timeout"`
	MaxAttempts    int      `toml:"max_attempts"`
	// MaxResponseBytes is the largest answer accepted from the node.
	MaxResponseBytes int64 `toml:"max_response_bytes"`
}

// ScanConfig tunes the chain follower.
type ScanConfig struct {
	// Network names the consensus rules the chain is checked against
	// (consensus.ForNetwork); Checkpoint, "<height>:<header id>", a header
	// the followed chain must pass through.
	Network       string   `toml:"network"`
	Checkpoint    string   `toml:"checkpoint"`
	StartHeight   uint32   `toml:"start_height"`
	Confirmations uint32   `toml:"confirmations"`
	MaxReorgDepth uint32   `toml:"max_reorg_depth"`
	PollInterval  Duration `toml:"poll_interval"`
	FetchBatch    int      `toml:"fetch_batch"`
	FetchAhead    int      `toml:"fetch_ahead"`
}

// WatchConfig lists what makes a box relevant until protocol rules do:
// boxes holding one of the tokens, or whose ErgoTree has one of the
// template hashes (bare hex or sha256:, or blake2b256:), are stored.
type WatchConfig struct {
	Tokens    []string `toml:"tokens"`
	Templates []string `toml:"templates"`
}

// LogConfig sets the log output.
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"` // auto (console on a terminal, JSON otherwise), json or console
}

// NATSConfig is where events go: NATS JetStream, by default a server
// embedded in the auditor (no url), else the servers of url. The
// environment variables AUDITOR_NATS_PASSWORD and AUDITOR_NATS_TOKEN, when
// set, override password and token.
type NATSConfig struct {
	URL    []string `toml:"url"`    // empty: run an embedded server
	Listen string   `toml:"listen"` // the embedded server's client address; "": in-process only
	// ListenAny lets the embedded server listen on an address other
	// machines reach (not loopback) although no user or nkey has the
	// write role: clients without credentials may only read.
	ListenAny       bool     `toml:"listen_any"`
	StoreDir        string   `toml:"store_dir"` // the embedded server's JetStream store; "": <data_dir>/nats
	User            string   `toml:"user"`
	Password        string   `toml:"password"`
	Token           string   `toml:"token"`
	CredsFile       string   `toml:"creds_file"`
	NKeyFile        string   `toml:"nkey_file"`
	TLSCA           string   `toml:"tls_ca"`
	TLSCert         string   `toml:"tls_cert"`
	TLSKey          string   `toml:"tls_key"`
	Stream          string   `toml:"stream"`
	SubjectPrefix   string   `toml:"subject_prefix"`
	MaxAge          Duration `toml:"max_age"`   // 0: no limit
	MaxBytes        int64    `toml:"max_bytes"` // 0: no limit
	Replicas        int      `toml:"replicas"`
	DuplicateWindow Duration `toml:"duplicate_window"`
	MaxInFlight     int      `toml:"max_in_flight"`
	OutboxMax       int      `toml:"outbox_max"` // unpublished events past which the scanner waits
}

// HTTPConfig is the daemon's HTTP server: probes, metrics, the JSON API
// and the reports.
type HTTPConfig struct {
	Listen string `toml:"listen"` // host:port; "": no HTTP server
	// ListenAny lets the server listen on an address other machines reach
	// (not loopback): it has no authentication of its own.
	ListenAny bool `toml:"listen_any"`
	// MaxLag is how many blocks the auditor's tip may trail the node's
	// height for /readyz to answer 200 (scan.confirmations included).
	MaxLag uint32 `toml:"max_lag"`
	// MaxPublishDelay is how long an event may wait for NATS to
	// acknowledge it for /readyz to answer 200; 0: no bound.
	MaxPublishDelay Duration `toml:"max_publish_delay"`
	// MaxBackfillStall is how long a protocol's backfill may go without
	// progress while the node fails it for /readyz to answer 200; 0: no
	// bound.
	MaxBackfillStall Duration `toml:"max_backfill_stall"`
}

// ReportsConfig schedules the audit reports.
type ReportsConfig struct {
	Schedule  string `toml:"schedule"`  // cron (five fields) or @daily, @hourly, @every 6h; "": no scheduled reports
	TimeZone  string `toml:"time_zone"` // the zone the schedule and the reports' times are read in
	Dir       string `toml:"dir"`       // "": <data_dir>/reports
	Retention int    `toml:"retention"` // reports kept; 0: all
	// ShutdownTimeout bounds how long a stop waits for a running report
	// before recording it interrupted.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// SweepInterval is how often the daemon runs the conservation sweep
	// for the metrics, when the tip moved (each report runs it too); 0:
	// with the reports only.
	SweepInterval Duration `toml:"sweep_interval"`
	// ExplorerURL is a block explorer's page of a box, {box} where the id
	// goes: the HTML report links every box there. "": no such links.
	ExplorerURL string `toml:"explorer_url"`
}

// reportsDir is where the reports go.
func (c *Config) reportsDir() string {
	if c.Reports.Dir != "" {
		return c.Reports.Dir
	}
	return filepath.Join(c.DataDir, "reports")
}

// Duration is a time.Duration written as a string with a unit, such as
// "2s" or "150ms". A bare number is refused: 15 would otherwise be 15ns.
type Duration time.Duration

// Expected says what form a duration is written in, for the decoder's
// messages.
func (*Duration) Expected() string { return `a duration with a unit, such as "15s", "2m" or "150ms"` }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	if _, err := strconv.ParseFloat(string(b), 64); err == nil && string(b) != "0" {
		return fmt.Errorf("%q has no unit (write \"%ss\" for seconds)", b, b)
	}
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not one", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText renders the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// DefaultConfig is the configuration with every default filled in: a run
// with no file at all uses it.
func DefaultConfig() Config {
	return Config{
		DataDir: "auditor-data",
		Node: NodeConfig{
			URL:              "http://127.0.0.1:9053",
			RequestTimeout:   Duration(15 * time.Second),
			MaxAttempts:      6,
			MaxResponseBytes: scan.DefaultMaxResponseBytes,
		},
		Scan: ScanConfig{
			Network:       "mainnet",
			StartHeight:   1,
			MaxReorgDepth: 200,
			PollInterval:  Duration(2 * time.Second),
			FetchBatch:    16,
			FetchAhead:    2,
		},
		Log: LogConfig{Level: "info", Format: "auto"},
		NATS: NATSConfig{
			Listen:          publish.DefaultListen,
			Stream:          publish.DefaultStream,
			SubjectPrefix:   publish.DefaultPrefix,
			MaxAge:          Duration(30 * 24 * time.Hour),
			MaxBytes:        1 << 30,
			Replicas:        1,
			DuplicateWindow: Duration(publish.DefaultDuplicates),
			MaxInFlight:     publish.DefaultMaxInFlight,
			OutboxMax:       100000,
		},
		HTTP: HTTPConfig{Listen: api.DefaultAddr, MaxLag: 5, MaxPublishDelay: Duration(time.Minute), MaxBackfillStall: Duration(5 * time.Minute)},
		Reports: ReportsConfig{
			Schedule:        "@daily",
			TimeZone:        "UTC",
			Retention:       30,
			ShutdownTimeout: Duration(30 * time.Second),
			SweepInterval:   Duration(time.Minute),
		},
		HA: HAConfig{LeaseTTL: Duration(ha.DefaultLeaseTTL), Bucket: ha.DefaultBucket},
	}
}

// loadConfig reads path (if not empty) over the defaults, applies the
// command line's overrides, and validates the result. Errors name the file,
// and the key and line or the field.
func loadConfig(path string, override func(*Config)) (Config, error) {
	cfg := DefaultConfig()
	var doc *tomlstrict.Document
	var decodeErr error
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, err
		}
		doc, decodeErr = decodeConfig(data, &cfg)
		var p *tomlstrict.Problem
		if errors.As(decodeErr, &p) && p.Syntax {
			return cfg, &FileError{Path: path, Err: decodeErr}
		}
	}
	applyEnv(&cfg, os.LookupEnv)
	if override != nil {
		override(&cfg)
	}
	if !doc.Has("http.max_lag") {
		// The follower stays scan.confirmations behind the node on purpose.
		cfg.HTTP.MaxLag = cfg.Scan.Confirmations + defaultLagMargin
	}
	problems := unjoin(decodeErr)
	for _, e := range unjoin(cfg.Validate()) {
		// A value that did not decode is left at its default: what
		// Validate says of it is beside the point.
		if !slices.ContainsFunc(problems, func(p error) bool { return within(fieldOf(e), keyOf(p)) }) {
			problems = append(problems, e)
		}
	}
	if len(problems) == 0 {
		return cfg, nil
	}
	if path == "" {
		return cfg, errors.Join(problems...)
	}
	for i, e := range problems {
		if line := doc.Line(fieldOf(e)); line > 0 && keyOf(e) == "" {
			problems[i] = &LineError{Line: line, Err: e}
		}
	}
	slices.SortStableFunc(problems, func(a, b error) int { return lineOf(a) - lineOf(b) })
	return cfg, &FileError{Path: path, Err: errors.Join(problems...)}
}

// fieldOf is the key a validation problem is about, as the decoder names
// keys ("protocol[1].action[0].name"); "" for other errors.
func fieldOf(err error) string {
	var fe *FieldError
	var ke *rules.KeyError
	switch {
	case errors.As(err, &fe):
		return fe.Field
	case errors.As(err, &ke):
		return fmt.Sprintf("protocol[%d].%s", ke.Index, ke.Key)
	}
	return ""
}

// keyOf is the key a decoding problem is about; "" for other errors.
func keyOf(err error) string {
	var p *tomlstrict.Problem
	if errors.As(err, &p) {
		return p.Key
	}
	return ""
}

// lineOf is the line a problem is on; 0 when not known.
func lineOf(err error) int {
	var p *tomlstrict.Problem
	var le *LineError
	switch {
	case errors.As(err, &le):
		return le.Line
	case errors.As(err, &p):
		return p.Line
	}
	return 0
}

// within tells whether key is in (or is) the key outer.
func within(key, outer string) bool {
	return key != "" && outer != "" &&
		(key == outer || strings.HasPrefix(key, outer+".") || strings.HasPrefix(key, outer+"["))
}

// FileError is the problems of a configuration file, one per line when
// there are several.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string {
	errs := unjoin(e.Err)
	if len(errs) == 1 {
		return e.Path + ": " + errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", e.Path, len(errs))
	for _, err := range errs {
		b.WriteString("\n  ")
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// defaultLagMargin is how many blocks beyond scan.confirmations the tip may
// trail the node for /readyz, when http.max_lag is not set.
const defaultLagMargin = 5

// decodeConfig decodes TOML strictly over cfg: every problem at once (an
// unknown key, a value of the wrong form), each naming the key as written,
// its line and the form expected.
func decodeConfig(data []byte, cfg *Config) (*tomlstrict.Document, error) {
	return tomlstrict.Decode(data, cfg)
}

// unjoin returns the errors errors.Join joined into err (none for nil).
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// LineError is a problem with a key of the file, at the line it is written.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Environment variables that override the secrets of the file, so that
// they need not be written in it (systemd's EnvironmentFile, say).
const (
	envNodeAPIKey   = "AUDITOR_NODE_API_KEY"
	envNATSPassword = "AUDITOR_NATS_PASSWORD"
	envNATSToken    = "AUDITOR_NATS_TOKEN"
)

// applyEnv sets the secrets the environment gives (a set, non-empty
// variable wins over the file).
func applyEnv(cfg *Config, lookup func(string) (string, bool)) {
	for _, s := range []struct {
		env   string
		field *string
	}{
		{envNodeAPIKey, &cfg.Node.APIKey},
		{envNATSPassword, &cfg.NATS.Password},
		{envNATSToken, &cfg.NATS.Token},
	} {
		if v, ok := lookup(s.env); ok && v != "" {
			*s.field = v
		}
	}
}

// loopbackListen tells whether a listen address (host:port) reaches this
// machine only; one that does not parse is left to the validation that
// says so.
func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err != nil || publish.IsLoopback(host)
}

// FieldError names the configuration field a validation failure is about.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks every field and returns the problems joined: each a
// *FieldError, or a *rules.KeyError for a [[protocol]] section.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if u, err := url.Parse(c.Node.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		bad("node.url", "%q is not an http(s) URL with a host", redact.URL(c.Node.URL))
	} else if p, err := strconv.Atoi(u.Port()); u.Port() != "" && (err != nil || p < 1 || p > 65535) {
		bad("node.url", "%q: port %q is not 1 to 65535", redact.URL(c.Node.URL), u.Port())
	} else if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		bad("node.url", "%q: a query or fragment has no place in the node's base URL", redact.URL(c.Node.URL))
	}
	if c.Node.RequestTimeout <= 0 {
		bad("node.request_timeout", "must be positive")
	}
	if c.Node.MaxAttempts < 1 {
		bad("node.max_attempts", "must be at least 1")
	}
	if c.Node.MaxResponseBytes < 1<<20 {
		bad("node.max_response_bytes", "%d is below 1 MiB (1048576): a mainnet block's JSON alone can take a few MB", c.Node.MaxResponseBytes)
	}
	if _, err := consensus.ForNetwork(c.Scan.Network); err != nil {
		bad("scan.network", "%q is not mainnet, testnet or devnet", c.Scan.Network)
	}
	if c.Scan.Checkpoint != "" {
		if _, err := consensus.ParseCheckpoint(c.Scan.Checkpoint); err != nil {
			bad("scan.checkpoint", "%v", err)
		}
	}
	if c.Scan.StartHeight < 1 {
		bad("scan.start_height", "heights start at 1")
	}
	if c.Scan.MaxReorgDepth < 1 {
		bad("scan.max_reorg_depth", "must be at least 1")
	}
	if c.Scan.PollInterval <= 0 {
		bad("scan.poll_interval", "must be positive")
	}
	if c.Scan.FetchBatch < 1 || c.Scan.FetchBatch > 500 {
		bad("scan.fetch_batch", "must be 1 to 500")
	}
	if c.Scan.FetchAhead < 1 || c.Scan.FetchAhead > 64 {
		bad("scan.fetch_ahead", "must be 1 to 64")
	}
	for i, s := range c.Watch.Tokens {
		if _, err := ergo.ParseDigest(s); err != nil {
			bad(fmt.Sprintf("watch.tokens[%d]", i), "%q is not a token id (32 bytes of hex)", s)
		}
	}
	for i, s := range c.Watch.Templates {
		if _, err := rules.ParseTemplate(s); err != nil {
			bad(fmt.Sprintf("watch.templates[%d]", i), "%v", err)
		}
	}
	if _, perrs := rules.ParseProtocols(c.Protocols); len(perrs) > 0 {
		errs = append(errs, perrs...)
	}
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of trace, debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "json", "console":
	default:
		bad("log.format", "%q is not one of auto, json, console", c.Log.Format)
	}
	c.NATS.validate(bad)
	if c.HTTP.Listen != "" {
		if host, port, err := net.SplitHostPort(c.HTTP.Listen); err != nil || port == "" {
			bad("http.listen", "%q is not host:port (or \"\" for no HTTP server)", c.HTTP.Listen)
		} else if !publish.IsLoopback(host) && !c.HTTP.ListenAny {
			bad("http.listen", "%q is reachable from other machines, and the HTTP server has no authentication: listen on loopback (127.0.0.1:8080) behind a proxy that authenticates, or set http.listen_any = true", c.HTTP.Listen)
		}
	}
	if c.HTTP.Listen != "" && c.HTTP.MaxLag <= c.Scan.Confirmations {
		bad("http.max_lag", "%d is not above scan.confirmations (%d): the auditor stays that many blocks behind the node on purpose, so /readyz would answer 503 while it is caught up; set it to %d or more, or leave it out (it is then scan.confirmations + %d)",
			c.HTTP.MaxLag, c.Scan.Confirmations, c.Scan.Confirmations+1, defaultLagMargin)
	}
	if c.HTTP.Listen != "" && len(c.NATS.URL) == 0 && c.NATS.Listen != "" && sameAddress(c.HTTP.Listen, c.NATS.Listen) {
		bad("http.listen", "%q is also nats.listen, where the embedded NATS server listens: give them different ports", c.HTTP.Listen)
	}
	if c.HTTP.MaxPublishDelay < 0 {
		bad("http.max_publish_delay", "must not be negative (0: no bound)")
	}
	if c.HTTP.MaxBackfillStall < 0 {
		bad("http.max_backfill_stall", "must not be negative (0: no bound)")
	}
	if c.Reports.Schedule != "" {
		if _, err := report.ParseSchedule(c.Reports.Schedule); err != nil {
			bad("reports.schedule", "%v", err)
		}
	}
	if _, err := time.LoadLocation(c.Reports.TimeZone); err != nil || c.Reports.TimeZone == "" {
		bad("reports.time_zone", "%q is not a time zone such as \"UTC\" or \"Europe/Paris\"", c.Reports.TimeZone)
	}
	if c.Reports.Retention < 0 {
		bad("reports.retention", "must not be negative (0 keeps every report)")
	}
	if c.Reports.ShutdownTimeout <= 0 {
		bad("reports.shutdown_timeout", "must be positive")
	}
	if u := c.Reports.ExplorerURL; u != "" {
		parsed, err := url.Parse(strings.ReplaceAll(u, report.BoxPlaceholder, strings.Repeat("0", 64)))
		switch {
		case strings.Count(u, report.BoxPlaceholder) != 1:
			bad("reports.explorer_url", "%q must hold %s once, where the box id goes (\"https://explorer.example/boxes/{box}\")", u, report.BoxPlaceholder)
		case err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "":
			bad("reports.explorer_url", "%q is not an http or https URL", u)
		}
	}
	if c.Reports.SweepInterval < 0 {
		bad("reports.sweep_interval", "must not be negative (0: the conservation metrics change with the reports only)")
	}
	c.HA.validate(c, bad)
	return errors.Join(errs...)
}

// sameAddress tells whether two listen addresses (host:port) would collide:
// the same port on the same host, or on all interfaces.
func sameAddress(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb {
		return false
	}
	everywhere := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return ha == hb || everywhere(ha) || everywhere(hb) || (publish.IsLoopback(ha) && publish.IsLoopback(hb) && canon(ha) == canon(hb))
}

// canon names loopback hosts alike: localhost is 127.0.0.1.
func canon(h string) string {
	if h == "localhost" {
		return "127.0.0.1"
	}
	return h
}
