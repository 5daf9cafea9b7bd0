package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/lock"
)

// Embedded server defaults.
const (
	DefaultListen       = "127.0.0.1:4222"
	DefaultServerName   = "auditor"
	DefaultReadyTimeout = 10 * time.Second
)

// The embedded server's users besides the operators' (EmbeddedConfig.User
// or NKey). Their names start with an underscore; a configured user may
// not take them.
const (
	// auditorUser is the auditor's own connection: in-process only (no TCP
	// client can log in as it, whatever it knows), with a password made
	// anew at every start.
	auditorUser = "_auditor"
	// readerUser is every TCP client that gives no credentials (the
	// server's no_auth_user): it may read and nothing else.
	readerUser = "_reader"
	// AuditorInbox is the inbox prefix of the auditor's own connection:
	// readers may not subscribe to it, so they never see the answers
	// JetStream sends the auditor, and may publish to no inbox at all.
	AuditorInbox = "_AUDITOR_INBOX"
	// lockFile is the file in the store directory whose lock keeps a
	// second server (of this or another auditor) off the store.
	lockFile = "auditor.lock"
)

// ReaderPermissions are what a client without credentials may do on the
// embedded server: subscribe (the auditor's inbox excepted), read the
// streams, and create, use and delete consumers; nothing that writes a
// stream (publishing on its subjects, purging, deleting, updating,
// creating one, deleting a message) is allowed.
func ReaderPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.INFO",
			"$JS.API.STREAM.NAMES",
			"$JS.API.STREAM.LIST",
			"$JS.API.STREAM.INFO.*",
			"$JS.API.STREAM.MSG.GET.*",
			"$JS.API.DIRECT.GET.>",
			"$JS.API.CONSUMER.CREATE.>",
			"$JS.API.CONSUMER.DURABLE.CREATE.>",
			"$JS.API.CONSUMER.NAMES.*",
			"$JS.API.CONSUMER.LIST.*",
			"$JS.API.CONSUMER.INFO.>",
			"$JS.API.CONSUMER.MSG.NEXT.>",
			"$JS.API.CONSUMER.DELETE.>",
			"$JS.ACK.>", // acknowledging what a consumer delivered
			"$JS.FC.>",  // answering a push consumer's flow control
		}},
		Subscribe: &server.SubjectPermission{
			Allow: []string{">"},
			Deny:  []string{AuditorInbox + ".>"},
		},
	}
}

// EmbeddedConfig configures the NATS server the auditor runs in its own
// process when no external NATS is configured.
//
// The server has three roles. The auditor's own connection (Connect) is
// the only in-process one and may do anything. Operators may be given the
// write role too: User and Password, or NKey. Every other TCP client, one
// without credentials, may only read (ReaderPermissions); wrong
// credentials are refused.
type EmbeddedConfig struct {
	// Listen is the client address, host:port (port 0 picks a free one).
	// Empty: no listener at all, in-process connections only.
	Listen string
	// StoreDir holds JetStream's file store. Required. The server holds a
	// lock on it (auditor.lock) while it runs: a second server on the same
	// store is refused.
	StoreDir string
	// User and Password, or NKey (a user's public key, "U…"), when set,
	// are the credentials of the write role.
	User, Password string
	NKey           string
	// MaxStore is what JetStream may store, in bytes (the stream's
	// max_bytes); StartEmbedded refuses to start when it is more than 3/4
	// of what the store's file system has free plus what the store holds
	// (the headroom nats-server keeps when it sizes itself). 0: nats-server
	// decides (3/4 of the free space).
	MaxStore     int64
	ServerName   string        // default "auditor"
	ReadyTimeout time.Duration // to wait for the server to start; default 10s
}

// Embedded is a running in-process NATS server with JetStream.
type Embedded struct {
	srv       *server.Server
	cfg       EmbeddedConfig
	log       zerolog.Logger
	lock      *lock.Lock
	password  string // the auditor user's, made at start
	maxMemory int64  // JetStream's memory limit as the server set it at start

	mu      sync.Mutex
	problem string // the store's failure while it lasts, for readiness
}

// StartEmbedded starts a NATS server with JetStream on a file store in
// cfg.StoreDir, and waits until it accepts connections. The server's own
// log lines go to log (notices at debug level). Errors wrap ErrConfig,
// ErrServer (a store another process uses: also lock.ErrHeld), or
// ErrNoSpace (a *SpaceError).
func StartEmbedded(ctx context.Context, cfg EmbeddedConfig, log zerolog.Logger) (_ *Embedded, err error) {
	const op = "start embedded NATS"
	switch {
	case cfg.StoreDir == "":
		return nil, errorf(ErrConfig, op, "no store directory")
	case cfg.Password != "" && cfg.User == "":
		return nil, errorf(ErrConfig, op, "a password needs a user")
	case cfg.User != "" && cfg.Password == "":
		return nil, errorf(ErrConfig, op, "user %q needs a password", cfg.User)
	case cfg.User != "" && cfg.NKey != "":
		return nil, errorf(ErrConfig, op, "set a user and password, or an nkey, not both")
	case strings.HasPrefix(cfg.User, "_"):
		return nil, errorf(ErrConfig, op, "user names that start with _ are the server's own")
	case cfg.MaxStore < 0:
		return nil, errorf(ErrConfig, op, "max store %d is negative", cfg.MaxStore)
	}
	if cfg.NKey != "" && !nkeys.IsValidPublicUserKey(cfg.NKey) {
		return nil, errorf(ErrConfig, op, "%q is not a user's public nkey (U…)", cfg.NKey)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = DefaultServerName
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = DefaultReadyTimeout
	}
	e := &Embedded{cfg: cfg, log: log}
	if e.password, err = randomSecret(); err != nil {
		return nil, newError(ErrServer, op, err)
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoAuthUser: readerUser,
	}
	opts.Users, opts.Nkeys = e.users()
	if cfg.MaxStore > 0 {
		opts.JetStreamMaxStore = cfg.MaxStore
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

	// The store is this server's alone, and must fit its disk.
	if e.lock, err = lock.Acquire(cfg.StoreDir, lockFile); err != nil {
		return nil, newError(ErrServer, "lock the NATS store", err)
	}
	defer func() {
		if err != nil {
			e.lock.Release()
		}
	}()
	if cfg.MaxStore > 0 {
		if err := checkSpace(cfg.StoreDir, cfg.MaxStore); err != nil {
			return nil, err
		}
	}

	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, newError(ErrServer, op, err)
	}
	sl := &serverLog{log: log}
	srv.SetLoggerV2(sl, log.GetLevel() <= zerolog.DebugLevel, log.GetLevel() <= zerolog.TraceLevel, false)
	srv.Start()
	e.srv = srv
	if err := e.waitReady(ctx, sl); err != nil {
		srv.Shutdown()
		return nil, err
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, errorf(ErrServer, op, "JetStream did not start (store %s)%s", cfg.StoreDir, sl.fatalSuffix())
	}
	e.maxMemory = srv.JetStreamConfig().MaxMemory
	where := "in-process only"
	if u := e.ClientURL(); u != "" {
		where = u
	}
	log.Info().Str("listen", where).Str("store_dir", cfg.StoreDir).Msg("embedded NATS server started")
	return e, nil
}

// users are the server's users: the auditor (in-process only), the reader
// (no credentials), and the operators' write role when configured.
func (e *Embedded) users() ([]*server.User, []*server.NkeyUser) {
	users := []*server.User{
		{Username: auditorUser, Password: e.password,
			AllowedConnectionTypes: map[string]struct{}{jwt.ConnectionTypeInProcess: {}}},
		{Username: readerUser, Password: "", Permissions: ReaderPermissions()},
	}
	// The reader is reached only as the no_auth_user; give it a password
	// nobody knows, so that it cannot be logged in as by name.
	users[1].Password, _ = randomSecret()
	var nkeyUsers []*server.NkeyUser
	switch {
	case e.cfg.User != "":
		users = append(users, &server.User{Username: e.cfg.User, Password: e.cfg.Password})
	case e.cfg.NKey != "":
		nkeyUsers = append(nkeyUsers, &server.NkeyUser{Nkey: e.cfg.NKey})
	}
	return users, nkeyUsers
}

// randomSecret is 32 random bytes in hex.
func randomSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
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

// Connect opens the auditor's own connection to the server: in-process (no
// socket), as the user only an in-process connection can be, with the
// inbox prefix readers may not subscribe to. It works whether or not the
// server listens.
func (e *Embedded) Connect(ctx context.Context, log zerolog.Logger) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cc := ConnConfig{User: auditorUser, Password: e.password}
	opts, err := cc.options(log)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.InProcessServer(e.srv), nats.CustomInboxPrefix(AuditorInbox))
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, newError(ErrConnect, "connect in-process to the embedded NATS server", err)
	}
	return nc, nil
}

// Shutdown stops the server, waits until it has stopped, and releases the
// store. Close the connections first (after the relay has drained).
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	e.lock.Release()
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

// IsLoopback tells whether a listen host reaches this machine only:
// "localhost" or a loopback address. An empty host, 0.0.0.0 and :: listen
// on every interface; any other name may resolve to anything.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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

// Warnf logs a warning, except the one about the plaintext passwords the
// server was given: they are its own users' (made at start, in memory) and
// the operator's, which it could only be given in plain text.
func (l *serverLog) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Plaintext passwords detected") {
		l.log.Debug().Msg(msg)
		return
	}
	l.log.Warn().Msg(msg)
}

// Errorf logs an error, except what clients did wrong (a failed login, a
// permissions violation): those are warnings, error being kept for faults
// of the auditor.
func (l *serverLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "authentication error") || strings.Contains(msg, " Violation ") {
		l.log.Warn().Msg(msg)
		return
	}
	l.log.Error().Msg(msg)
}
func (l *serverLog) Debugf(format string, v ...any) { l.log.Trace().Msgf(format, v...) }
func (l *serverLog) Tracef(format string, v ...any) { l.log.Trace().Msgf(format, v...) }

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
