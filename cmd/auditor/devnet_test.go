package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/async-emission/auditor/ergo"
)

// lockedBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestDevnetCommand runs `auditor devnet` in-process on a loopback port,
// learns its address from the line it prints, fetches /info and a block,
// verifies the block, and stops the command through its context.
func TestDevnetCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- devnetCommand(ctx, &env{stdin: strings.NewReader(""), stdout: outW, stderr: &stderr},
			[]string{"--listen", "127.0.0.1:0", "--blocks", "25", "--seed", "9", "--log-level", "debug"})
		outW.Close()
	}()
	stdout := bufio.NewReader(outR)
	line, err := stdout.ReadString('\n')
	if err != nil {
		t.Fatalf("no address printed: %v; stderr:\n%s", err, stderr.String())
	}
	drained := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdout); close(drained) }()
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "serving ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("printed %q, want serving http://127.0.0.1:PORT", line)
	}

	get := func(path string) []byte {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, body, err)
		}
		return body
	}
	var info ergo.NodeInfo
	if err := info.UnmarshalJSON(get("/info")); err != nil || info.FullHeight != 25 || info.Network != "devnet" {
		t.Fatalf("/info: %+v %v", info, err)
	}
	var ids []ergo.Digest
	if err := json.Unmarshal(get("/blocks/at/25"), &ids); err != nil || len(ids) != 1 || ids[0] != info.BestFullHeaderID {
		t.Fatalf("/blocks/at/25: %v %v, tip %s", ids, err, info.BestFullHeaderID)
	}
	b, err := ergo.DecodeBlock(get("/blocks/" + ids[0].String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(); err != nil || b.Header.ComputeID() != ids[0] || b.Header.Height != 25 {
		t.Fatalf("block 25: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the command ended with %v; stderr:\n%s", err, stderr.String())
	}
	<-drained
	if _, err := http.Get(url + "/info"); err == nil {
		t.Fatal("still serving after the command stopped")
	}
	if logs := stderr.String(); !strings.Contains(logs, "devnet ready") || !strings.Contains(logs, "stopped serving") {
		t.Fatalf("stderr lacks the lifecycle logs:\n%s", logs)
	}
}

func TestDevnetCommandBadInput(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "0.0.0.0:9053"}, "--listen-any"},
		{[]string{"--listen", ":9053"}, "not a loopback address"},
		{[]string{"--listen", "example.com:9053"}, "not a loopback address"},
		{[]string{"--listen", "nonsense"}, "--listen"},
		{[]string{"--reorg-every", "5", "--reorg-depth", "2"}, "--block-time"},
		{[]string{"--blocks", "0"}, "--blocks"},
		{[]string{"--block-time", "1s", "--reorg-every", "5"}, "--reorg-depth"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--cache-mb", "0"}, "--cache-mb"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	} {
		code, _, stderr := runCmd(t, "", append([]string{"devnet"}, c.args...)...)
		if code != exitBadInput || !strings.Contains(stderr, c.want) {
			t.Errorf("devnet %v: exit %d, stderr %q; want exit %d mentioning %q", c.args, code, stderr, exitBadInput, c.want)
		}
	}
}

func TestCheckListen(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:9053": true, "[::1]:9053": true, "localhost:0": true, "127.1.2.3:80": true,
		"0.0.0.0:9053": false, ":9053": false, "[::]:9053": false, "10.0.0.1:9053": false, "node.example:9053": false,
	} {
		if err := checkListen(addr, false); (err == nil) != ok {
			t.Errorf("checkListen(%q): %v", addr, err)
		}
		if err := checkListen(addr, true); err != nil {
			t.Errorf("checkListen(%q) with --listen-any: %v", addr, err)
		}
	}
}
