package devnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// newDevnet makes a devnet that logs to the test.
func newDevnet(t testing.TB, cfg Config) *Devnet {
	t.Helper()
	d, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return d
}

// node is a devnet served over loopback HTTP.
type node struct {
	t   testing.TB
	d   *Devnet
	url string
}

func serve(t testing.TB, d *Devnet) *node {
	t.Helper()
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return &node{t: t, d: d, url: srv.URL}
}

// do sends a request and returns the status and body.
func (n *node) do(method, path, body string) (int, []byte) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.url+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatalf("%s %s: reading: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		n.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, b
}

// get fetches path and requires 200.
func (n *node) get(path string) []byte {
	n.t.Helper()
	status, b := n.do(http.MethodGet, path, "")
	if status != http.StatusOK {
		n.t.Fatalf("GET %s: %d %s", path, status, b)
	}
	return b
}

func (n *node) getJSON(path string, v any) {
	n.t.Helper()
	if err := json.Unmarshal(n.get(path), v); err != nil {
		n.t.Fatalf("GET %s: %v", path, err)
	}
}

func (n *node) info() ergo.NodeInfo {
	n.t.Helper()
	var info ergo.NodeInfo
	n.getJSON("/info", &info)
	return info
}

func (n *node) idsAt(h uint32) []ergo.Digest {
	n.t.Helper()
	var ids []ergo.Digest
	n.getJSON(fmt.Sprintf("/blocks/at/%d", h), &ids)
	return ids
}

// block fetches a block, decodes it and verifies it as a scanner would:
// every id, root and the PoW, and that it is the block asked for.
func (n *node) block(id ergo.Digest) (*ergo.FullBlock, []byte) {
	n.t.Helper()
	raw := n.get("/blocks/" + id.String())
	b := verifyBlock(n.t, raw)
	if got := b.Header.ComputeID(); got != id {
		n.t.Fatalf("asked for block %s, got %s", id, got)
	}
	return b, raw
}

func verifyBlock(t testing.TB, raw []byte) *ergo.FullBlock {
	t.Helper()
	b, err := ergo.DecodeBlock(raw)
	if err != nil {
		t.Fatalf("decoding a block: %v", err)
	}
	if err := b.Verify(); err != nil {
		t.Fatalf("block %d does not verify: %v", b.Header.Height, err)
	}
	return b
}

// ledger replays blocks over a UTXO set and checks what Verify cannot:
// every input and data input is an unspent box, values balance, tokens are
// conserved (a mint excepted; a token may be burnt only whole), creation
// heights are at most the block's and at least the inputs'. It counts the
// features the chain is meant to show.
type ledger struct {
	t       testing.TB
	utxo    map[ergo.Digest]ergo.Box
	blocks  int
	txs     int
	mints   int
	burns   int
	data    int
	vars    int
	regs    map[string]int // register type → count
	trees   map[byte]int   // ErgoTree header → count
	templat map[[32]byte]bool
}

func newLedger(t testing.TB, genesis []*Box) *ledger {
	l := &ledger{t: t, utxo: map[ergo.Digest]ergo.Box{}, regs: map[string]int{}, trees: map[byte]int{}, templat: map[[32]byte]bool{}}
	for _, b := range genesis {
		l.utxo[b.ID] = b.Box
	}
	return l
}

func (l *ledger) apply(b *ergo.FullBlock) {
	t := l.t
	t.Helper()
	h := b.Header.Height
	l.blocks++
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		where := fmt.Sprintf("block %d tx %d", h, i)
		l.txs++
		var in, out uint64
		var maxCreation uint32
		tokensIn := map[[32]byte]uint64{}
		for j, input := range tx.Inputs {
			box, ok := l.utxo[input.BoxID]
			if !ok {
				t.Fatalf("%s input %d: box %s is not unspent", where, j, input.BoxID)
			}
			delete(l.utxo, input.BoxID)
			in += box.Value
			maxCreation = max(maxCreation, box.CreationHeight)
			for _, tk := range box.Tokens {
				tokensIn[tk.ID] += tk.Amount
			}
			l.vars += len(input.Extension)
			for _, v := range input.Extension {
				if _, err := sigma.ParseConstant(v.Value); err != nil {
					t.Fatalf("%s input %d: context variable %d: %v", where, j, v.Key, err)
				}
			}
		}
		for j, id := range tx.DataInputs {
			if _, ok := l.utxo[id]; !ok {
				t.Fatalf("%s data input %d: box %s is not unspent", where, j, id)
			}
			l.data++
		}
		tokensOut := map[[32]byte]uint64{}
		txID := tx.ComputeID()
		for j := range tx.Outputs {
			o := &tx.Outputs[j]
			if o.CreationHeight > h || o.CreationHeight < maxCreation {
				t.Fatalf("%s output %d: creation height %d, block %d, inputs up to %d", where, j, o.CreationHeight, h, maxCreation)
			}
			out += o.Value
			for _, tk := range o.Tokens {
				tokensOut[tk.ID] += tk.Amount
			}
			for k, r := range o.Registers {
				c, err := sigma.ParseConstant(r)
				if err != nil {
					t.Fatalf("%s output %d: R%d: %v", where, j, 4+k, err)
				}
				l.regs[c.Type.String()]++
			}
			tree, err := sigma.ParseErgoTree(o.ErgoTree)
			if err != nil {
				t.Fatalf("%s output %d: ErgoTree: %v", where, j, err)
			}
			th, err := tree.TemplateHash()
			if err != nil {
				t.Fatalf("%s output %d: template: %v", where, j, err)
			}
			l.templat[th] = true
			l.trees[tree.Header]++
			l.utxo[ergo.Digest(o.ComputeID())] = *o
			if ergo.Digest(o.TxID) != txID {
				t.Fatalf("%s output %d: not linked to its transaction", where, j)
			}
		}
		if in != out {
			t.Fatalf("%s: inputs hold %d nanoERG, outputs %d", where, in, out)
		}
		minted := [32]byte(tx.Inputs[0].BoxID)
		for id, amount := range tokensOut {
			switch {
			case id == minted && tokensIn[id] == 0:
				l.mints++
			case amount != tokensIn[id]:
				t.Fatalf("%s: token %x: inputs hold %d, outputs %d", where, id, tokensIn[id], amount)
			}
		}
		for id := range tokensIn {
			if _, ok := tokensOut[id]; !ok {
				l.burns++
			}
		}
	}
}

// chainSlice fetches headers of the visible chain and checks each verifies
// and links to the one before.
func (n *node) chainSlice(query string) []ergo.Header {
	n.t.Helper()
	var raw []json.RawMessage
	n.getJSON("/blocks/chainSlice"+query, &raw)
	headers := make([]ergo.Header, len(raw))
	for i, m := range raw {
		h := &headers[i]
		if err := h.UnmarshalJSON(m); err != nil {
			n.t.Fatalf("chainSlice%s: header %d: %v", query, i, err)
		}
		if err := h.CheckIDs(); err != nil {
			n.t.Fatalf("chainSlice%s: header %d: %v", query, i, err)
		}
		if _, err := h.CheckPoW(); err != nil {
			n.t.Fatalf("chainSlice%s: header %d: %v", query, i, err)
		}
		if i > 0 && (h.ParentID != headers[i-1].ComputeID() || h.Height != headers[i-1].Height+1) {
			n.t.Fatalf("chainSlice%s: header %d does not follow the one before", query, i)
		}
	}
	return headers
}

func heights(hs []ergo.Header) []uint32 {
	out := make([]uint32, len(hs))
	for i := range hs {
		out[i] = hs[i].Height
	}
	return out
}

func jsonEqual(a, b []byte) bool { return bytes.Equal(a, b) }
