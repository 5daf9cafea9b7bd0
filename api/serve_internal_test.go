package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/async-emission/auditor/internal/testlog"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

// TestServeListenerCutsOff: a request still running when the graceful
// part of the shutdown is over has its context cancelled, and
// ServeListener returns once its handler did.
func TestServeListenerCutsOff(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	old := shutdownTimeout
	shutdownTimeout = 50 * time.Millisecond
	t.Cleanup(func() { shutdownTimeout = old })

	entered := make(chan struct{})
	var returned atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-r.Context().Done() // a handler that would run for ever
		returned.Store(true)
	})
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, h, zerolog.New(logs)) }()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	requested := make(chan struct{})
	go func() {
		defer close(requested)
		if resp, err := client.Get("http://" + ln.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("ServeListener did not cut the running request off")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("ServeListener: %v, want %v", err, context.Canceled)
	}
	if !returned.Load() {
		t.Error("ServeListener returned before the handler it cut off")
	}
	if !strings.Contains(logs.String(), "HTTP requests cut off at shutdown") {
		t.Errorf("the cut-off is not logged: %s", logs)
	}
	<-requested
	tr.CloseIdleConnections()
}
