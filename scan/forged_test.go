package scan_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/autolykos"
	"github.com/async-emission/auditor/internal/fixtures"
	"github.com/async-emission/auditor/internal/poll"
	"github.com/async-emission/auditor/scan"
)

// mainnetNode serves a best chain of real mainnet blocks (from the
// fixtures), or of blocks forged on them, the way a lying node would: the
// node REST API subset the follower uses.
type mainnetNode struct {
	mu    sync.Mutex
	chain []*ergo.FullBlock // the best chain, consecutive heights
}

func (n *mainnetNode) set(chain []*ergo.FullBlock) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.chain = chain
}

func (n *mainnetNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	chain := n.chain
	n.mu.Unlock()
	tip := &chain[len(chain)-1].Header
	switch r.URL.Path {
	case "/info":
		id := tip.ComputeID()
		fmt.Fprintf(w, `{"name":"lying-node","network":"mainnet","fullHeight":%d,"headersHeight":%d,"bestFullHeaderId":"%s","bestHeaderId":"%s"}`,
			tip.Height, tip.Height, id, id)
	case "/blocks/chainSlice":
		from, _ := strconv.Atoi(r.URL.Query().Get("fromHeight"))
		to, _ := strconv.Atoi(r.URL.Query().Get("toHeight"))
		out := []byte{'['}
		for _, b := range chain {
			if h := int(b.Header.Height); h > from && h <= to { // the Scala node starts at fromHeight+1
				if len(out) > 1 {
					out = append(out, ',')
				}
				out = b.Header.AppendJSON(out)
			}
		}
		w.Write(append(out, ']'))
	case "/blocks/headerIds":
		var ids []ergo.Digest
		if err := json.NewDecoder(r.Body).Decode(&ids); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out := []byte{'['}
		for _, id := range ids {
			for _, b := range chain {
				if b.Header.ComputeID() == id {
					if len(out) > 1 {
						out = append(out, ',')
					}
					out = b.AppendJSON(out)
				}
			}
		}
		w.Write(append(out, ']'))
	default:
		http.NotFound(w, r)
	}
}

// realBlocks reads mainnet blocks 1000000 to 1000004.
func realBlocks(t *testing.T) []*ergo.FullBlock {
	t.Helper()
	var out []*ergo.FullBlock
	for h := 1000000; h <= 1000004; h++ {
		b, err := ergo.DecodeBlock(fixtures.Read(t, "blocks", fmt.Sprintf("mainnet_%d.json", h)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// forge returns a copy of real block b at height built on parent, with its first
// output given a million ERG more, every id and root derived again, and
// mined at difficulty 1 (one hash): a block anyone can make, whose ids,
// roots and proof of work all verify against its own nBits.
func forge(t *testing.T, b *ergo.FullBlock, height uint32, parent ergo.Digest) (*ergo.FullBlock, ergo.Digest) {
	t.Helper()
	raw := b.AppendJSON(nil)
	f, err := ergo.DecodeBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	tx := &f.Transactions[0]
	tx.Outputs[0].Value += 1_000_000 * 1_000_000_000
	tx.HasID = false
	txID := tx.ComputeID()
	for i := range tx.Outputs {
		tx.Outputs[i].TxID, tx.Outputs[i].HasBoxID = txID, false
	}
	h := &f.Header
	h.HasID, h.HasSectionIDs, h.Difficulty = false, false, nil
	h.ParentID, h.Height = parent, height
	h.TransactionsRoot = ergo.TransactionsRoot(h.Version, f.Transactions)
	h.NBits = autolykos.EncodeCompactBits(big.NewInt(1))
	if h.PoW.Nonce, err = autolykos.Solve(context.Background(), ergo.Hash(h.BytesWithoutPoW()), h.Version, h.Height, h.NBits, 0); err != nil {
		t.Fatal(err)
	}
	box := tx.Outputs[0].ComputeID()
	if f, err = ergo.DecodeBlock(f.AppendJSON(nil)); err != nil { // as the node serves it
		t.Fatal(err)
	}
	if err := f.Verify(); err != nil {
		t.Fatalf("the forged block does not verify on its own: %v", err)
	}
	return f, box
}

// TestForgedBlockOnARealParentIsRefused: a lying node serves, on real
// mainnet block 1000000, a forged block 1000001 that mints a million ERG,
// mined at difficulty 1 with every id and root re-derived. Whether the
// auditor meets it catching up or as a competing branch to the real chain
// it holds, it is refused by the difficulty rule and never stored.
func TestForgedBlockOnARealParentIsRefused(t *testing.T) {
	real := realBlocks(t)
	forged, forgedBox := forge(t, real[1], 1000001, real[0].Header.ComputeID())
	fakes := []*ergo.FullBlock{forged}
	for h := uint32(1000002); h <= 1000006; h++ { // more forged blocks on it: a longer branch
		next, _ := forge(t, real[2+h%3], h, fakes[len(fakes)-1].Header.ComputeID())
		fakes = append(fakes, next)
	}

	for _, c := range []struct {
		name    string
		honest  []*ergo.FullBlock // what the node serves first
		lying   []*ergo.FullBlock
		keptTip uint32
	}{
		{"catching up", real[:1], append(real[:1:1], forged), 1000000},
		{"as a longer branch", real, append(real[:1:1], fakes...), 1000004},
	} {
		t.Run(c.name, func(t *testing.T) {
			node := &mainnetNode{}
			node.set(c.honest)
			srv := httptest.NewServer(node)
			defer srv.Close()
			store := openStore(t, t.TempDir())
			log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
			f := scan.NewFollower(newClient(t, srv.URL, log), store, keepAll{}, scan.FollowerConfig{
				Params: consensus.Mainnet(), StartHeight: 1000000, PollInterval: time.Millisecond}, log)
			stop := runFollower(t, f)
			defer stop()
			poll.Until(t, 30*time.Second, "the honest chain", func() (bool, string) {
				tip, _, _ := store.Tip(context.Background())
				return tip.Height == c.keptTip, fmt.Sprintf("at %d", tip.Height)
			})
			want, _ := digest(t, store)
			node.set(c.lying)
			poll.Until(t, 30*time.Second, "the forged block to be refused", func() (bool, string) {
				return f.Stats().Refused[consensus.RuleDifficulty] > 0, fmt.Sprintf("%+v", f.Stats().Refused)
			})
			if r := f.Stats().LastRefusal; r.ID != forged.Header.ComputeID() || r.Height != 1000001 {
				t.Fatalf("refusal %+v, want the forged block", r)
			}
			if got, _ := digest(t, store); got != want {
				t.Fatal("the forged chain changed the store")
			}
			if _, ok, err := store.Explain(context.Background(), forgedBox); err != nil || ok {
				t.Fatalf("the forged box is stored (%v)", err)
			}
		})
	}
}
