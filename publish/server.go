package publish

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"
)

// Embedded server defaults.
const (
	DefaultListen       = "127.0.0.1:4222"
	DefaultServerName   = "auditor"
	DefaultReadyTimeout = 10 * time.Second
)

// EmbeddedConfig configures the NATS server the auditor runs in its own
// process when no external NATS is configured.
type EmbeddedConfig struct {
	// Listen is the client address, host:port (port 0 picks a free one).
	// Empty: no listener at all, in-process connections only.
	Listen string
	// StoreDir holds JetStream's file store. Required.
	StoreDir string
	// User and Password, or Token, when set, are required of every
	// client, in-process ones included.
	User, Password string
	Token          string
	ServerName     string        // default "auditor"
	ReadyTimeout   time.Duration // to wait for the server to start; default 10s
}

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv *server.Server
	cfg EmbeddedConfig
	log zerolog.Logger
}

// StartEmbedded starts a NATS server with JetStream on a file store in
// cfg.StoreDir, and waits until it accepts connections. The server's own
// log lines go to log (notices at debug level). Errors wrap ErrConfig or
// ErrServer.
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig, log zerolog.Logger) (*Embedded, error) {
	const op = "start embedded NATS"
	if cfg.StoreDir == "" {
		return nil, errorf(ErrConfig, op, "no store directory")
	}
	if cfg.User != "" && cfg.Token != "" {
		return nil, errorf(ErrConfig, op, "set user or token, not both")
	}
	if cfg.Password != "" && cfg.User == "" {
		return nil, errorf(ErrConfig, op, "a password needs a user")
	}
	if cfg.ServerName == "" {
		cfg.ServerName = DefaultServerName
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	opts := &server.Options{
		ServerName:    cfg.ServerName,
		JetStream:     true,
		StoreDir:      cfg.StoreDir,
		NoSigs:        true,
		Username:      cfg.User,
		Password:      cfg.Password,
		Authorization: cfg.Token,
	}
	if cfg.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := SplitListen(cfg.Listen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
		if port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, newError(ErrServer, op, err)
	}
	sl := &serverLog{log: log}
	srv.SetLoggerV2(sl, log.GetLevel() <= zerolog.DebugLevel, log.GetLevel() <= zerolog.TraceLevel, false)
	srv.Start()
	e := &Embedded{srv: srv, cfg: cfg, log: log}
	if err := e.waitReady(ctx, sl); err != nil {
		srv.Shutdown()
		return nil, err
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, errorf(ErrServer, op, "JetStream did not start (store %s)%s", cfg.StoreDir, sl.fatalSuffix())
	}
	where := "in-process only"
	if u := e.ClientURL(); u != "" {
		where = u
	}
	log.Info().Str("listen", where).Str("store_dir", cfg.StoreDir).Msg("embedded NATS server started")
	return e, nil
}

// waitReady waits until the server accepts connections, it reports a
// fatal error, ReadyTimeout passes, or ctx is done.
func (e *Embedded) waitReady(ctx context.Context, sl *serverLog) error {
	const op = "start embedded NATS"
	deadline := time.Now().Add(e.cfg.ReadyTimeout)
	for {
		if e.srv.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if msg := sl.fatal(); msg != "" {
			return errorf(ErrServer, op, "%s", msg)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return errorf(ErrServer, op, "not ready after %s", e.cfg.ReadyTimeout)
		}
	}
}

// ClientURL is the URL TCP clients connect to ("" when the server does
// not listen).
func (e *Embedded) ClientURL() string {
	if e.cfg.Listen == "" {
		return ""
	}
	return e.srv.ClientURL()
}

// Server is the NATS server itself (for tests and metrics).
func (e *Embedded) Server() *server.Server { return e.srv }

// Connect opens an in-process connection to the server (no socket), with
// the server's credentials. It works whether or not the server listens.
func (e *Embedded) Connect(ctx context.Context, log zerolog.Logger) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cc := ConnConfig{User: e.cfg.User, Password: e.cfg.Password, Token: e.cfg.Token}
	opts, err := cc.options(log)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.InProcessServer(e.srv))
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, newError(ErrConnect, "connect in-process to the embedded NATS server", err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has stopped. Close the
// connections first (after the relay has drained).
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// SplitListen parses a listen address, host:port. Errors wrap ErrConfig.
func SplitListen(listen string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, errorf(ErrConfig, "listen address", "%q: %v", listen, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, errorf(ErrConfig, "listen address", "%q: port %q is not 0 to 65535", listen, p)
	}
	return h, n, nil
}

// serverLog sends the server's log lines to zerolog and remembers the
// first fatal one (the server does not exit the process with a custom
// logger; StartEmbedded reports the failure instead).
type serverLog struct {
	log      zerolog.Logger
	mu       sync.Mutex
	fatalMsg string
}

func (l *serverLog) Noticef(format string, v ...any) { l.log.Debug().Msgf(format, v...) }
func (l *serverLog) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l *serverLog) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l *serverLog) Debugf(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }
func (l *serverLog) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }

func (l *serverLog) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error().Msg(msg)
	l.mu.Lock()
	if l.fatalMsg == "" {
		l.fatalMsg = msg
	}
	l.mu.Unlock()
}

func (l *serverLog) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalMsg
}

func (l *serverLog) fatalSuffix() string {
	if m := l.fatal(); m != "" {
		return ": " + m
	}
	return ""
}
