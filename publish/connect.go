package publish

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/internal/redact"
)

// Connection defaults.
const (
	DefaultClientName     = "async-emission-auditor"
	DefaultConnectTimeout = 5 * time.Second
	DefaultReconnectWait  = 2 * time.Second
)

// ConnConfig is how to reach a NATS server or cluster. Zero fields take
// the defaults above; at most one of User, Token, CredsFile and NKeyFile
// authenticates.
type ConnConfig struct {
	URLs []string // nats://host:port (tls://, ws://, wss://); several for a cluster
	Name string   // the client name servers show; default "async-emission-auditor"

	User, Password string
	Token          string
	CredsFile      string // a JWT user credentials file (decentralized auth)
	NKeyFile       string // a file holding an NKey user seed

	TLSCA             string // PEM roots to verify the servers with (implies TLS)
	TLSCert, TLSKey   string // PEM client certificate and key (implies TLS)
	ConnectTimeout    time.Duration
	ReconnectWait     time.Duration // between reconnect attempts (jittered); reconnects never stop
	RetryOnFailedConn bool          // return at once and keep trying when no server answers at first, instead of failing
}

// Check validates the configuration. Errors wrap ErrConfig.
func (c ConnConfig) Check() error {
	const op = "NATS connection config"
	if len(c.URLs) == 0 {
		return errorf(ErrConfig, op, "no server URL")
	}
	for _, s := range c.URLs {
		if err := CheckURL(s); err != nil {
			return err
		}
	}
	auth := 0
	for _, set := range []bool{c.User != "", c.Token != "", c.CredsFile != "", c.NKeyFile != ""} {
		if set {
			auth++
		}
	}
	switch {
	case auth > 1:
		return errorf(ErrConfig, op, "set at most one of user, token, creds file and nkey file")
	case c.Password != "" && c.User == "":
		return errorf(ErrConfig, op, "a password needs a user")
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errorf(ErrConfig, op, "a TLS client certificate and its key go together")
	case c.ConnectTimeout < 0 || c.ReconnectWait < 0:
		return errorf(ErrConfig, op, "negative timeout")
	}
	return nil
}

// CheckURL reports whether s is a NATS server URL: a nats, tls, ws or wss
// scheme and a host. Errors wrap ErrConfig.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL, which may hold a secret
		}
		return errorf(ErrConfig, "NATS URL", "%q: %v", redact.URL(s), err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return errorf(ErrConfig, "NATS URL", "%q: the scheme is not nats, tls, ws or wss", redact.URL(s))
	}
	if u.Hostname() == "" {
		return errorf(ErrConfig, "NATS URL", "%q has no host", redact.URL(s))
	}
	return nil
}

// Connect connects to the servers of cfg.URLs. Reconnects are unlimited,
// jittered, every ReconnectWait; while disconnected publishes fail at once
// (nothing is buffered: the relay keeps the rows and retries).
// Disconnects, reconnects and asynchronous errors are logged. ctx bounds
// the first connection only. Errors wrap ErrConfig or ErrConnect.
func Connect(ctx context.Context, cfg ConnConfig, log zerolog.Logger) (*nats.Conn, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	opts, err := cfg.options(log)
	if err != nil {
		return nil, err
	}
	d := &ctxDialer{ctx: ctx, timeout: cfg.ConnectTimeout}
	opts = append(opts, nats.SetCustomDialer(d), nats.Timeout(cfg.ConnectTimeout))
	if cfg.RetryOnFailedConn {
		opts = append(opts, nats.RetryOnFailedConnect(true))
	}
	servers := strings.Join(cfg.URLs, ",")
	nc, err := nats.Connect(servers, opts...)
	d.connected.Store(true)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, newError(ErrConnect, "connect to "+redact.URLs(cfg.URLs), err)
	}
	if !nc.IsConnected() {
		log.Warn().Str("servers", redact.URLs(cfg.URLs)).Msg("NATS not reachable yet; retrying in the background")
	}
	return nc, nil
}

// options are the connection options shared by Connect and
// Embedded.Connect: name, credentials, TLS, reconnects and event logging.
func (c ConnConfig) options(log zerolog.Logger) ([]nats.Option, error) {
	name := c.Name
	if name == "" {
		name = DefaultClientName
	}
	wait := c.ReconnectWait
	if wait == 0 {
		wait = DefaultReconnectWait
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.ReconnectJitter(wait/2, wait/2),
		nats.ReconnectBufSize(-1),
		nats.ConnectHandler(func(nc *nats.Conn) {
			url := nc.ConnectedUrlRedacted()
			if url == "" {
				url = "in-process"
			}
			log.Info().Str("url", url).Msg("connected to NATS")
		}),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn().Err(err).Msg("disconnected from NATS; reconnecting")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info().Str("url", nc.ConnectedUrlRedacted()).Uint64("reconnects", nc.Stats().Reconnects).Msg("reconnected to NATS")
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			log.Debug().Msg("NATS connection closed")
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			ev := log.Error().Err(err)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("NATS error")
		}),
	}
	switch {
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeyFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeyFile)
		if err != nil {
			return nil, newError(ErrConnect, "read nkey seed file "+c.NKeyFile, err)
		}
		opts = append(opts, o)
	}
	if c.TLSCA != "" {
		opts = append(opts, nats.RootCAs(c.TLSCA))
	}
	if c.TLSCert != "" {
		opts = append(opts, nats.ClientCert(c.TLSCert, c.TLSKey))
	}
	return opts, nil
}

// ctxDialer dials with the caller's context during the first connection
// and with a plain timeout afterwards (reconnects outlive that context).
type ctxDialer struct {
	ctx       context.Context
	timeout   time.Duration
	connected atomic.Bool // set once Connect has returned
}

// Dial implements nats.CustomDialer.
func (d *ctxDialer) Dial(network, address string) (net.Conn, error) {
	ctx := d.ctx
	if d.connected.Load() {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var nd net.Dialer
	return nd.DialContext(ctx, network, address)
}
