package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
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
// with the async-emission scenario, learns its address from the line it
// prints, fetches /info and a block, verifies the block, checks that the
// deployment block mints the tokens --print-config names for the same
// flags, and stops the command through its context.
func TestDevnetCommand(t *testing.T) {
	protocol := printConfig(t, "--seed", "9", "--blocks", "25", "--forgery-rate", "0.5")[0]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outR, outW := io.Pipe()
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- devnetCommand(ctx, &env{stdin: strings.NewReader(""), stdout: outW, stderr: &stderr},
			[]string{"--listen", "127.0.0.1:0", "--blocks", "25", "--seed", "9", "--log-level", "debug",
				"--scenario", "async-emission", "--forgery-rate", "0.5"})
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
	if err := json.Unmarshal(get(fmt.Sprintf("/blocks/at/%d", *protocol.StartHeight)), &ids); err != nil || len(ids) != 1 {
		t.Fatalf("/blocks/at/%d: %v %v", *protocol.StartHeight, ids, err)
	}
	deployment, err := ergo.DecodeBlock(get("/blocks/" + ids[0].String()))
	if err != nil {
		t.Fatal(err)
	}
	minted := map[string]bool{}
	for _, tx := range deployment.Transactions {
		for _, o := range tx.Outputs {
			for _, tk := range o.Tokens {
				if tk.ID == [32]byte(tx.Inputs[0].BoxID) {
					minted[ergo.Digest(tk.ID).String()] = true
				}
			}
		}
	}
	if !minted[protocol.StateNFTID] || !minted[protocol.ParticipantTokenID] {
		t.Fatalf("block %d mints %v, not the state NFT %s and the participant token %s that --print-config names",
			*protocol.StartHeight, minted, protocol.StateNFTID, protocol.ParticipantTokenID)
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
		{[]string{"--scenario", "nope"}, "--scenario"},
		{[]string{"--forgery-rate", "0.5"}, "--forgery-rate needs --scenario"},
		{[]string{"--print-config"}, "--print-config needs --scenario"},
		{[]string{"--scenario", "async-emission", "--forgery-rate", "1.5"}, "--forgery-rate"},
		{[]string{"--scenario", "async-emission", "--forgery-rate", "-0.1"}, "--forgery-rate"},
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

// printConfig runs `auditor devnet --scenario async-emission --print-config`
// with args, checks that `auditor check-config` accepts what it prints, and
// parses it strictly.
func printConfig(t *testing.T, args ...string) []rules.ProtocolSpec {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"devnet", "--scenario", "async-emission", "--print-config"}, args...)
	if code := run(args, &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}); code != exitOK {
		t.Fatalf("%v: exit %d: %s", args, code, stderr.String())
	}
	path := filepath.Join(t.TempDir(), "auditor.toml")
	if err := os.WriteFile(path, stdout.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := run([]string{"check-config", "--config", path}, &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr}); code != exitOK {
		t.Fatalf("check-config refuses what %v prints: exit %d: %s\n%s", args, code, stderr.String(), stdout.String())
	}
	var file struct {
		Scan struct {
			Network string `toml:"network"`
		} `toml:"scan"`
		Protocol []rules.ProtocolSpec `toml:"protocol"`
	}
	dec := toml.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil || len(file.Protocol) != 2 || file.Scan.Network != "devnet" {
		t.Fatalf("%v printed what is not the devnet's network and two [[protocol]] sections: %v", args, err)
	}
	return file.Protocol
}

// TestDevnetPrintConfig: --print-config prints the deployments' sections
// (as the devnet package computes them for the same flags: the demo
// protocol's, then the action tree's) without serving or generating the
// chain past the deployments.
func TestDevnetPrintConfig(t *testing.T) {
	all := printConfig(t, "--seed", "5", "--blocks", "2000000", "--listen", "127.0.0.1:0")
	wants, err := devnet.ProtocolConfigsOf(t.Context(), devnet.Config{Seed: 5, Blocks: 2_000_000, Scenario: &devnet.AsyncEmission{}})
	if err != nil {
		t.Fatal(err)
	}
	got, want := all[0], wants[0]
	if got.Name != want.Name || got.ParticipantTokenID != want.ParticipantTokenID.String() || got.StateNFTID != want.StateNFTID.String() ||
		got.EmissionTemplate != fmt.Sprintf("%x", want.EmissionTemplate) || got.FunnelTemplate != fmt.Sprintf("%x", want.FunnelTemplate) ||
		got.EmittedTemplate != fmt.Sprintf("%x", want.EmittedTemplate) || got.AsyncSupply == nil || *got.AsyncSupply != 1<<63-1 || got.StartHeight == nil || *got.StartHeight != want.StartHeight ||
		len(got.EmissionRequires) != 1 || devnet.EmissionRequirement(got.EmissionRequires[0]) != want.EmissionRequires[0] {
		t.Fatalf("printed %+v, want %+v", got, want)
	}
	tree, wantTree := all[1], wants[1]
	if tree.Name != devnet.TreeProtocol || tree.StateNFTID != wantTree.StateNFTID.String() || tree.EmittedTemplate != "" ||
		len(tree.Actions) != len(wantTree.Actions) || tree.StartHeight == nil || *tree.StartHeight != devnet.TreeHeight {
		t.Fatalf("printed %+v, want %+v", tree, wantTree)
	}
	for k, a := range tree.Actions {
		w := wantTree.Actions[k]
		if a.Name != w.Name || a.EmittedTemplate != fmt.Sprintf("%x", w.EmittedTemplate) || len(a.Requires) != len(w.Requires) {
			t.Fatalf("action %d: printed %+v, want %+v", k, a, w)
		}
		for j, r := range a.Requires {
			if devnet.EmissionRequirement(r) != w.Requires[j] {
				t.Fatalf("action %s requirement %d: printed %+v, want %+v", a.Name, j, r, w.Requires[j])
			}
		}
	}
	if other := printConfig(t, "--seed", "6")[0]; other.StateNFTID == got.StateNFTID || other.EmissionTemplate != got.EmissionTemplate {
		t.Fatalf("seeds 5 and 6: %+v and %+v; want other tokens, the same contracts", got, other)
	}
}
