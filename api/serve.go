package api

import (
	"context"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// DefaultAddr is where the daemon serves by default: loopback only.
const DefaultAddr = "127.0.0.1:8080"

// ShutdownTimeout bounds a graceful shutdown: requests still running then
// are cut off.
const ShutdownTimeout = 5 * time.Second

// shutdownTimeout is ShutdownTimeout; the tests shorten it.
var shutdownTimeout = ShutdownTimeout

// Listen listens on addr (host:port, TCP). Call it before starting the
// rest of the daemon, so that an address in use fails at once.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("api: listen on %s: %w", addr, err)
	}
	return ln, nil
}

// Serve listens on addr and serves h there until ctx is done; see
// ServeListener. A failure to listen is returned at once.
func Serve(ctx context.Context, addr string, h http.Handler, log zerolog.Logger) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, h, log)
}

// ServeListener serves h on ln until ctx is done, then shuts down: it
// stops accepting, lets the running requests finish for up to
// ShutdownTimeout, then cancels and closes those still running and waits
// for their handlers to return. It returns ctx's error after a clean
// shutdown, or the error that stopped the server (the listener's, after
// shutting down the same way). It closes ln, and no handler of its runs
// once it returned.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, log zerolog.Logger) error {
	// Requests run under reqCtx, cancelled only when the graceful part of
	// the shutdown is over; running counts their handlers. Once stopped
	// is set (then running only goes down) a request that comes anyway, on
	// a connection srv.Close is closing, is refused.
	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	var (
		mu      sync.Mutex
		stopped bool
		running sync.WaitGroup
	)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if stopped {
				mu.Unlock()
				w.Header().Set("Connection", "close")
				http.Error(w, "shutting down", http.StatusServiceUnavailable)
				return
			}
			running.Add(1)
			mu.Unlock()
			defer running.Done()
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ErrorLog:          stdlog.New(warnWriter{log}, "", 0),
	}
	log.Info().Str("addr", ln.Addr().String()).Msg("HTTP server listening")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	var err error
	select {
	case err = <-served: // the listener failed: shut down the connections it accepted
		err = fmt.Errorf("api: serve on %s: %w", ln.Addr(), err)
		if serr := shutdown(srv, cancelRequests, log); serr != nil {
			err = errors.Join(err, fmt.Errorf("api: shut down: %w", serr))
		}
	case <-ctx.Done():
		serr := shutdown(srv, cancelRequests, log)
		if e := <-served; !errors.Is(e, http.ErrServerClosed) {
			serr = errors.Join(serr, e)
		}
		err = ctx.Err()
		if serr != nil {
			err = fmt.Errorf("api: shut down: %w", errors.Join(serr, err))
		}
	}
	cancelRequests()
	mu.Lock()
	stopped = true
	mu.Unlock()
	running.Wait()
	log.Info().Msg("HTTP server stopped")
	return err
}

// shutdown stops srv gracefully: it lets the running requests finish for
// up to ShutdownTimeout, then cancels them (cancelRequests) and closes
// their connections.
func shutdown(srv *http.Server, cancelRequests func(), log zerolog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		log.Warn().Err(err).Dur("timeout", shutdownTimeout).Msg("HTTP requests cut off at shutdown")
		cancelRequests()
		err = srv.Close()
	}
	return err
}

// warnWriter logs the http.Server's own messages (failed TLS handshakes,
// panics in handlers, accept errors) as warnings.
type warnWriter struct{ log zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn().Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}
