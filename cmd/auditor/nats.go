package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/internal/redact"
	"github.com/async-emission/auditor/lock"
	"github.com/async-emission/auditor/publish"
)

// validate checks the [nats] section, reporting each problem with bad.
func (n *NATSConfig) validate(bad func(field, format string, args ...any)) {
	for i, u := range n.URL {
		if err := publish.CheckURL(u); err != nil {
			bad(fmt.Sprintf("nats.url[%d]", i), "%q is not a NATS URL (nats://host:port, tls://, ws:// or wss://)", redact.URL(u))
		}
	}
	embedded := len(n.URL) == 0
	if n.Listen != "" {
		if host, _, err := publish.SplitListen(n.Listen); err != nil {
			bad("nats.listen", "%q is not host:port (or \"\" for in-process only)", n.Listen)
		} else if embedded && !publish.IsLoopback(host) && n.User == "" && n.NKeyFile == "" && !n.ListenAny {
			bad("nats.listen", "%q is reachable from other machines, and no operator credentials are set: set nats.user and nats.password, or nats.nkey_file (the write role; clients without credentials may only read), or set nats.listen_any = true", n.Listen)
		}
	}
	if n.User != "" && n.Token != "" {
		bad("nats.token", "set user and password, or token, not both")
	}
	if n.Password != "" && n.User == "" {
		bad("nats.password", "a password needs nats.user")
	}
	if embedded {
		if n.Token != "" {
			bad("nats.token", "applies only with nats.url: the embedded server takes nats.user and nats.password, or nats.nkey_file, for the write role")
		}
		if n.User != "" && n.Password == "" {
			bad("nats.password", "the embedded server's write role needs a password (or %s)", envNATSPassword)
		}
		if strings.HasPrefix(n.User, "_") {
			bad("nats.user", "%q: names that start with _ are the embedded server's own", n.User)
		}
	}
	for _, f := range []struct{ key, v string }{{"creds_file", n.CredsFile}, {"nkey_file", n.NKeyFile}} {
		switch {
		case f.v == "":
		case embedded && f.key == "creds_file":
			bad("nats."+f.key, "applies only with nats.url (the embedded server takes user and password, or nkey_file)")
		case n.User != "" || n.Token != "" || (f.key == "nkey_file" && n.CredsFile != ""):
			bad("nats."+f.key, "set one way to authenticate: user and password, token, creds_file or nkey_file")
		}
	}
	for _, f := range []struct{ key, v string }{{"tls_ca", n.TLSCA}, {"tls_cert", n.TLSCert}, {"tls_key", n.TLSKey}} {
		if f.v != "" && embedded {
			bad("nats."+f.key, "applies only with nats.url (the embedded server listens without TLS)")
		}
	}
	if (n.TLSCert == "") != (n.TLSKey == "") {
		bad("nats.tls_key", "tls_cert and tls_key go together")
	}
	if n.Stream == "" || strings.ContainsAny(n.Stream, ".*>/\\ \t\r\n") {
		bad("nats.stream", "%q is not a stream name (non-empty, without . * > / \\ or spaces)", n.Stream)
	}
	if err := publish.CheckPrefix(n.SubjectPrefix); err != nil {
		bad("nats.subject_prefix", "%q is not dot-separated subject tokens without wildcards", n.SubjectPrefix)
	}
	if n.MaxAge < 0 {
		bad("nats.max_age", "must not be negative (0: no limit)")
	}
	if n.MaxBytes < 0 {
		bad("nats.max_bytes", "must not be negative (0: no limit)")
	}
	switch {
	case n.Replicas < 1 || n.Replicas > 5:
		bad("nats.replicas", "must be 1 to 5")
	case n.Replicas > 1 && embedded:
		bad("nats.replicas", "the embedded server is a single node: replicas above 1 need a clustered nats.url")
	}
	switch {
	case n.DuplicateWindow <= 0:
		bad("nats.duplicate_window", "must be positive")
	case n.MaxAge > 0 && n.DuplicateWindow > n.MaxAge:
		bad("nats.duplicate_window", "must not exceed max_age")
	}
	if n.MaxInFlight < 1 || n.MaxInFlight > 10000 {
		bad("nats.max_in_flight", "must be 1 to 10000")
	}
	if n.OutboxMax < n.MaxInFlight {
		bad("nats.outbox_max", "must be at least max_in_flight")
	}
}

// natsStoreDir is the embedded server's JetStream store.
func natsStoreDir(cfg Config) string {
	if cfg.NATS.StoreDir != "" {
		return cfg.NATS.StoreDir
	}
	return filepath.Join(cfg.DataDir, "nats")
}

// connConfig is how to reach the configured external NATS.
func connConfig(n NATSConfig, urls []string) publish.ConnConfig {
	return publish.ConnConfig{
		URLs:      urls,
		User:      n.User,
		Password:  n.Password,
		Token:     n.Token,
		CredsFile: n.CredsFile,
		NKeyFile:  n.NKeyFile,
		TLSCA:     n.TLSCA,
		TLSCert:   n.TLSCert,
		TLSKey:    n.TLSKey,
	}
}

// streamConfig is the configured JetStream stream.
func streamConfig(n NATSConfig) publish.StreamConfig {
	return publish.StreamConfig{
		Name:       n.Stream,
		Prefix:     n.SubjectPrefix,
		MaxAge:     time.Duration(n.MaxAge),
		MaxBytes:   n.MaxBytes,
		Replicas:   n.Replicas,
		Duplicates: time.Duration(n.DuplicateWindow),
	}
}

// relayConfig is the relay's configuration: the stream it creates or
// updates and publishes to, and the bound on messages in flight.
func relayConfig(n NATSConfig) publish.RelayConfig {
	sc := streamConfig(n)
	return publish.RelayConfig{MaxInFlight: n.MaxInFlight, Stream: &sc, AckTimeout: relayAckTimeout, BackoffMax: relayBackoffMax}
}

// The relay's ack timeout and longest backoff, and how often the stream is
// looked up for readiness: the publish package's defaults; the tests
// shorten them.
var (
	relayAckTimeout     = publish.DefaultAckTimeout
	relayBackoffMax     = publish.DefaultBackoffMax
	streamWatchInterval = publish.DefaultWatchInterval
)

// encoder builds the events with the configured subject prefix.
func encoder(n NATSConfig) *publish.Encoder {
	return &publish.Encoder{Prefix: n.SubjectPrefix}
}

// natsLink is the auditor's side of NATS: the embedded server when there
// is one, the connection, and the JetStream context the relay publishes
// with.
type natsLink struct {
	Server *publish.Embedded // nil with an external NATS
	Conn   *nats.Conn
	JS     jetstream.JetStream
	Watch  *publish.StreamWatch
}

// openNATS starts the embedded server (no nats.url) or connects to the
// configured one, retrying in the background if it is down: the relay
// backs off until it is up, and creates the stream then. Close the link
// after the relay's Run has returned. It names the components of the
// logs it writes (nats, nats-server).
func openNATS(ctx context.Context, cfg Config, log zerolog.Logger) (*natsLink, error) {
	l := &natsLink{}
	serverLog, log := component(log, "nats-server"), component(log, "nats")
	var err error
	if len(cfg.NATS.URL) == 0 {
		ec := publish.EmbeddedConfig{
			Listen:   cfg.NATS.Listen,
			StoreDir: natsStoreDir(cfg),
			User:     cfg.NATS.User,
			Password: cfg.NATS.Password,
			MaxStore: cfg.NATS.MaxBytes,
		}
		if cfg.NATS.NKeyFile != "" {
			if ec.NKey, err = publicNKey(cfg.NATS.NKeyFile); err != nil {
				return nil, badInput{fmt.Errorf("nats.nkey_file: %w", err)}
			}
		}
		l.Server, err = publish.StartEmbedded(ctx, ec, serverLog)
		var space *publish.SpaceError
		switch {
		case errors.As(err, &space):
			return nil, fmt.Errorf("nats.max_bytes = %d (%s) does not fit the disk of the NATS store %s: it has %s free, and the store holds %s; at most %d (%s) fits: lower nats.max_bytes, or free space: %w",
				cfg.NATS.MaxBytes, publish.Bytes(cfg.NATS.MaxBytes), space.Dir, publish.Bytes(space.Free), publish.Bytes(space.Used), space.Fits(), publish.Bytes(space.Fits()), publish.ErrNoSpace)
		case errors.Is(err, lock.ErrHeld), errors.Is(err, lock.ErrUnwritable):
			return nil, fmt.Errorf("NATS store (nats.store_dir): %w", err)
		case err != nil:
			return nil, err
		}
		l.Conn, err = l.Server.Connect(ctx, log)
	} else {
		cc := connConfig(cfg.NATS, cfg.NATS.URL)
		cc.RetryOnFailedConn = true
		l.Conn, err = publish.Connect(ctx, cc, log)
	}
	if err == nil {
		l.JS, err = publish.NewJetStream(l.Conn, relayConfig(cfg.NATS))
	}
	if err != nil {
		l.Close()
		return nil, err
	}
	l.Watch = publish.NewStreamWatch(l.JS, streamConfig(cfg.NATS), streamWatchInterval, log)
	return l, nil
}

// publicNKey reads a user's nkey seed file (or a credentials file holding
// one) and returns the user's public key.
func publicNKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("%s does not hold a user's nkey seed", path)
	}
	return pub, nil
}

// run runs the link's background work until ctx is done: the stream watch
// and, for the embedded server, its supervision. It returns ctx's error.
func (l *natsLink) run(ctx context.Context) error {
	done := make(chan struct{})
	if l.Server != nil {
		go func() {
			defer close(done)
			l.Server.Supervise(ctx, 0) //nolint:errcheck // returns only its context's error
		}()
	} else {
		close(done)
	}
	err := l.Watch.Run(ctx)
	<-done
	return err
}

// Close closes the connection and stops the embedded server.
func (l *natsLink) Close() {
	if l.Conn != nil {
		l.Conn.Close()
	}
	if l.Server != nil {
		l.Server.Shutdown()
	}
}

// tailURLs are the servers auditor tail connects to: --nats (a
// comma-separated list), else nats.url, else the embedded server's listen
// address.
func tailURLs(cfg Config, flagURL string) ([]string, error) {
	switch {
	case flagURL != "":
		var urls []string
		for u := range strings.SplitSeq(flagURL, ",") {
			if u = strings.TrimSpace(u); u != "" {
				urls = append(urls, u)
			}
		}
		for _, u := range urls {
			if err := publish.CheckURL(u); err != nil {
				return nil, badInput{fmt.Errorf("--nats: %w", err)}
			}
		}
		if len(urls) == 0 {
			return nil, badInput{errors.New("--nats: no URL")}
		}
		return urls, nil
	case len(cfg.NATS.URL) > 0:
		return cfg.NATS.URL, nil
	case cfg.NATS.Listen == "":
		return nil, badInput{errors.New(`nats.listen is "": the embedded server takes in-process connections only; give --nats URL, or set nats.listen`)}
	}
	host, port, _ := publish.SplitListen(cfg.NATS.Listen) // validated
	switch host {
	case "", "0.0.0.0", "::":
		host = "127.0.0.1"
	}
	return []string{"nats://" + net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// checks are the link's readiness checks: the connection is up ("nats"),
// the stream exists and is the one first found ("stream"), and the
// embedded server's store can be written ("nats_store"). None blocks.
func (l *natsLink) checks() []api.Check {
	checks := []api.Check{
		{Name: "nats", Problems: func(context.Context) []string {
			if st := l.Conn.Status(); st != nats.CONNECTED {
				return []string{"NATS connection " + strings.ToLower(st.String())}
			}
			return nil
		}},
		{Name: "stream", Problems: func(context.Context) []string { return nonEmpty(l.Watch.Problem()) }},
	}
	if l.Server != nil {
		checks = append(checks, api.Check{Name: "nats_store", Problems: func(context.Context) []string { return nonEmpty(l.Server.Problem()) }})
	}
	return checks
}

// nonEmpty is the problem p as a list: none when it is "".
func nonEmpty(p string) []string {
	if p == "" {
		return nil
	}
	return []string{p}
}
