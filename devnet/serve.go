package devnet

import (
	"context"
	"errors"
	stdlog "log"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// ShutdownTimeout is how long Serve waits for requests in flight once its
// context is done.
const ShutdownTimeout = 5 * time.Second

// ListenAndServe serves h on addr (host:port; use 127.0.0.1 to stay on the
// loopback) until ctx is done, then shuts down gracefully.
func ListenAndServe(ctx context.Context, addr string, h http.Handler, log zerolog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, h, log)
}

// Serve serves h on ln until ctx is done, then stops accepting, waits up to
// ShutdownTimeout for the requests in flight, and returns nil. It returns
// the server's error if serving fails first. ln is closed either way.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log zerolog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          stdlog.New(log.With().Str("component", "http").Logger(), "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info().Str("url", "http://"+ln.Addr().String()).Msg("serving the node API")
	select {
	case err := <-served:
		return err // Serve only returns early on failure
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutdown)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return err
	}
	log.Info().Msg("stopped serving")
	return nil
}
