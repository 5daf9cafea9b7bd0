package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/internal/testlog"
)

// A test of a server run checks, once it returned, that no goroutine it
// started is left: the goroutines already running (the test framework's,
// the devnet's, the database's) are not its.

// served waits for a server run's result.
func served(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(api.ShutdownTimeout + 10*time.Second):
		t.Fatal("the server did not return")
		return nil
	}
}

// testServeListener checks a graceful shutdown: cancelling the context
// stops the accepting at once, lets a running request finish, then
// returns the context's error, having closed the listener.
func testServeListener(t *testing.T, c *chain) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	store := newCountingStore(c.store, true)
	h, err := api.NewHandler(api.Config{Store: store}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	logs := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- api.ServeListener(ctx, ln, h, zerolog.New(logs)) }()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	base := "http://" + addr
	get(t, client, base+"/healthz").wantCode(t, "GET /healthz", http.StatusOK) // leaves an idle connection

	running := make(chan response, 1)
	go func() { running <- get(t, client, base+"/api/v1/status") }()
	<-store.entered // the request is running, held in its read of the store

	cancel()
	// The listener closes at once...
	poll.True(t, 10*time.Second, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
	// ...but the server waits for the running request.
	select {
	case err := <-done:
		t.Fatalf("ServeListener returned %v while a request was running", err)
	default:
	}
	close(store.gate)
	r := <-running
	r.wantCode(t, "the request running at shutdown", http.StatusOK)
	var st api.Status
	r.decodeJSON(t, "the request running at shutdown", &st)
	if st.EventsWritten != c.written {
		t.Errorf("the request running at shutdown: %s", r.body)
	}

	if err := served(t, done); !errors.Is(err, context.Canceled) {
		t.Errorf("ServeListener: %v, want %v", err, context.Canceled)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on the listener after ServeListener: %v, want %v", err, net.ErrClosed)
	}
	var listening, stopped bool
	for _, l := range logLines(t, logs) {
		listening = listening || l["message"] == "HTTP server listening" && l["addr"] == addr
		stopped = stopped || l["message"] == "HTTP server stopped"
	}
	if !listening || !stopped || strings.Contains(logs.String(), `"level":"warn"`) {
		t.Errorf("log of a clean run: %s", logs)
	}
	tr.CloseIdleConnections()
}

// testServeListenerFails checks that when the listener fails the server
// returns the error, and closes its connections instead of serving them on.
func testServeListenerFails(t *testing.T, c *chain) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h, err := api.NewHandler(api.Config{Store: c.store}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- api.ServeListener(context.Background(), ln, h, zerolog.Nop()) }()

	// A keep-alive connection, idle after one request.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: auditor\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "ok\n" || resp.Close {
		t.Fatalf("GET /healthz: %d %q (%v), close %v", resp.StatusCode, body, err, resp.Close)
	}

	ln.Close()
	err = served(t, done)
	if err == nil || !errors.Is(err, net.ErrClosed) {
		t.Errorf("ServeListener on a failed listener: %v, want %v", err, net.ErrClosed)
	}
	// The idle connection is closed, not served on after the return.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := br.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("read on the connection after ServeListener returned: %d bytes, %v; want EOF", n, err)
	}
}

// testServe runs Serve on a loopback address it picks, found in its log.
func testServe(t *testing.T, c *chain) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	h, err := api.NewHandler(api.Config{Store: c.store}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, "127.0.0.1:0", h, zerolog.New(logs)) }()
	var addr string
	poll.True(t, 10*time.Second, "Serve to log its address", func() bool {
		for _, l := range logLines(t, logs) {
			if a, ok := l["addr"].(string); ok && l["message"] == "HTTP server listening" {
				addr = a
				return true
			}
		}
		return false
	})
	if ip := net.ParseIP(strings.Split(addr, ":")[0]); ip == nil || !ip.IsLoopback() {
		t.Errorf("Serve listens on %s, want the loopback address it was given", addr)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get(t, client, "http://"+addr+"/healthz").wantCode(t, "GET /healthz", http.StatusOK)
	r := get(t, client, "http://"+addr+"/api/v1/status")
	r.wantCode(t, "GET /api/v1/status", http.StatusOK)

	cancel()
	if err := served(t, done); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve: %v, want %v", err, context.Canceled)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("Serve returned with its address still accepting")
	}
	tr.CloseIdleConnections()

	t.Run("address in use", func(t *testing.T) {
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		// It fails at once, without the context being done.
		err = api.Serve(context.Background(), ln.Addr().String(), h, zerolog.Nop())
		if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), ln.Addr().String()) {
			t.Errorf("Serve on an address in use: %v, want %v naming the address", err, syscall.EADDRINUSE)
		}
	})
}

func TestListen(t *testing.T) {
	host, port, err := net.SplitHostPort(api.DefaultAddr)
	if err != nil {
		t.Fatalf("DefaultAddr %q: %v", api.DefaultAddr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || port == "" {
		t.Errorf("DefaultAddr %q is not a loopback address", api.DefaultAddr)
	}

	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := api.Listen(addr)
		if err != nil {
			t.Fatalf("Listen(%q): %v", addr, err)
		}
		a, ok := ln.Addr().(*net.TCPAddr)
		if !ok || !a.IP.IsLoopback() || a.Port == 0 {
			t.Errorf("Listen(%q) listens on %v, want a loopback TCP address", addr, ln.Addr())
		}
		ln.Close()
	}

	// An address in use fails at once, naming it.
	ln, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = api.Listen(ln.Addr().String())
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Listen on an address in use: %v, want %v naming the address", err, syscall.EADDRINUSE)
	}
	if _, err := api.Listen("8080"); err == nil {
		t.Error("Listen(\"8080\") succeeded: want an error for a missing port separator")
	}
}
