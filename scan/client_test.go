package scan

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
)

func TestInfo(t *testing.T) {
	n := newNode(t, nil, nil)
	info, err := newClient(t, n.srv.URL).Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// api/info_mainnet_node6.0.x.json
	if info.Network != "mainnet" || info.FullHeight != 1772597 || info.HeadersHeight != 1772597 ||
		info.BestFullHeaderID.String() != "183b43b32e7fa87fb5d5572f3e29c659474f923f5d23764d039b3a6c34b8269a" ||
		info.GenesisBlockID.String() != "b0244dfc267baca974a4caee06120321562784303a8a688976ae56170e4d175b" ||
		info.HeadersScore.String() != "2740276953253305909248" {
		t.Errorf("info = %+v", info)
	}
	if r := n.requests(); len(r) != 1 || r[0].method != http.MethodGet || r[0].path != "/info" {
		t.Errorf("requests = %+v", r)
	}
}

func TestBlockIDsAt(t *testing.T) {
	ch := loadChain(t)
	n := newNode(t, ch, nil)
	c := newClient(t, n.srv.URL)
	for i, id := range ch.ids {
		ids, err := c.BlockIDsAt(t.Context(), uint32(firstHeight+i))
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) != 1 || ids[0] != id {
			t.Errorf("at %d: %v, want [%s]", firstHeight+i, ids, id)
		}
	}
	ids, err := c.BlockIDsAt(t.Context(), 99999999)
	if err != nil || ids == nil || len(ids) != 0 {
		t.Errorf("above the tip: %v, %v; want an empty list", ids, err)
	}
	if got := n.requests()[0]; got.path != "/blocks/at/700000" {
		t.Errorf("first request %s", got.path)
	}
}

func TestBlock(t *testing.T) {
	ch := loadChain(t)
	n := newNode(t, ch, nil)
	c := newClient(t, n.srv.URL)
	txs := []int{3, 7, 3, 11, 4} // SOURCES.md
	for i, id := range ch.ids {
		b, err := c.Block(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if b.Header.ComputeID() != id || b.Header.Height != uint32(firstHeight+i) || len(b.Transactions) != txs[i] {
			t.Errorf("block %s: height %d, %d txs", id, b.Header.Height, len(b.Transactions))
		}
	}
	if s := c.Stats(); s.Attempts != 5 || s.Retries != 0 || s.BadResponses != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestBlocksAnswersInRequestOrder(t *testing.T) {
	ch := loadChain(t)
	var (
		mu     sync.Mutex
		served []ergo.Digest
	)
	n := newNode(t, ch, nil, func(n *fakeNode) {
		n.reorder = func(raws [][]byte) [][]byte {
			out := shuffled(raws)
			mu.Lock()
			defer mu.Unlock()
			for _, raw := range out {
				b, _ := ergo.DecodeBlock(raw)
				served = append(served, b.Header.ComputeID())
			}
			return out
		}
	})
	blocks, err := newClient(t, n.srv.URL).Blocks(t.Context(), ch.ids)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(served) != len(ch.ids) || slices.Equal(served, ch.ids) {
		t.Fatal("the node answered in the order asked; the test proves nothing")
	}
	for i, b := range blocks {
		if b.Header.ComputeID() != ch.ids[i] || b.Header.Height != uint32(firstHeight+i) {
			t.Errorf("blocks[%d] is %s at %d, want %s", i, b.Header.ComputeID(), b.Header.Height, ch.ids[i])
		}
	}
	reqs := n.requests()
	want, _ := json.Marshal(ch.ids)
	if len(reqs) != 1 || reqs[0].method != http.MethodPost || reqs[0].path != "/blocks/headerIds" ||
		reqs[0].contentType != "application/json" || string(reqs[0].body) != string(want) {
		t.Errorf("request %+v, want a POST of %s", reqs, want)
	}
}

// TestBlocksForChecksBodiesNotProofsOfWorkAgain: the blocks of headers
// checked on their own are fetched without computing the headers' proofs
// of work again; Blocks, by ids, computes them.
func TestBlocksForChecksBodiesNotProofsOfWorkAgain(t *testing.T) {
	ch := loadChain(t)
	n := newNode(t, ch, nil)
	c := newClient(t, n.srv.URL)
	var hs []*ergo.Header
	for _, id := range ch.ids {
		h, err := c.Header(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
	if got := c.Stats().PoWChecks; got != uint64(len(hs)) {
		t.Fatalf("%d proofs of work for %d headers", got, len(hs))
	}
	blocks, err := c.BlocksFor(t.Context(), hs)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range blocks {
		if b.Header.ComputeID() != ch.ids[i] {
			t.Fatalf("block %d is %s", i, b.Header.ComputeID())
		}
	}
	if got := c.Stats().PoWChecks; got != uint64(len(hs)) {
		t.Fatalf("BlocksFor computed %d proofs of work again", got-uint64(len(hs)))
	}
	fresh := newClient(t, n.srv.URL)
	if _, err := fresh.Blocks(t.Context(), ch.ids); err != nil || fresh.Stats().PoWChecks != uint64(len(ch.ids)) {
		t.Fatalf("Blocks: %v, %d proofs of work", err, fresh.Stats().PoWChecks)
	}
}

func TestHeader(t *testing.T) {
	ch := loadChain(t)
	n := newNode(t, ch, nil)
	c := newClient(t, n.srv.URL)
	for i, id := range ch.ids {
		h, err := c.Header(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if !h.HasID || h.ID != id || h.Height != uint32(firstHeight+i) {
			t.Errorf("header %s: %+v", id, h)
		}
	}
	if got := n.requests()[0].path; got != "/blocks/"+ch.ids[0].String()+"/header" {
		t.Errorf("path %s", got)
	}
}

func TestChainSlice(t *testing.T) {
	for _, tc := range []struct {
		file      string
		inclusive bool
	}{
		{"chainslice_mainnet_844573_844672_v2.json", false},
		{"chainslice_mainnet_844573_844672_v2.json", true},
		{"chainslice_mainnet_417692_417791_v1.json", false}, // Autolykos v1: PoW unchecked, ids checked
	} {
		name := tc.file
		if tc.inclusive {
			name += "/inclusive"
		}
		t.Run(name, func(t *testing.T) {
			s := loadSlice(t, tc.file)
			n := newNode(t, nil, s, func(n *fakeNode) { n.inclusive = tc.inclusive })
			c := newClient(t, n.srv.URL)
			tip := s.last()
			for _, r := range []struct{ from, to, wantTo uint32 }{
				{s.first + 10, s.first + 20, s.first + 20},
				{s.first + 1, s.first + 1, s.first + 1},
				{tip - 5, tip + 100, tip}, // above the tip: up to the tip
				{tip + 1, tip + 10, 0},    // nothing that high: empty
				{tip + 50, tip + 60, 0},
			} {
				hs, err := c.ChainSlice(t.Context(), r.from, r.to)
				if err != nil {
					t.Fatalf("%d..%d: %v", r.from, r.to, err)
				}
				if r.wantTo == 0 {
					if len(hs) != 0 {
						t.Errorf("%d..%d: %d headers, want none", r.from, r.to, len(hs))
					}
					continue
				}
				if len(hs) != int(r.wantTo-r.from+1) {
					t.Fatalf("%d..%d: %d headers, want %d", r.from, r.to, len(hs), r.wantTo-r.from+1)
				}
				for i, h := range hs {
					if h.Height != r.from+uint32(i) || h.ComputeID() != s.ids[h.Height-s.first] {
						t.Errorf("%d..%d: [%d] is %s at %d", r.from, r.to, i, h.ComputeID(), h.Height)
					}
				}
			}
			if q := n.requests()[0].query; q != "fromHeight="+itoa(s.first+9)+"&toHeight="+itoa(s.first+20) {
				t.Errorf("query %s: the node must be asked from one height below", q)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	ch := loadChain(t)
	for _, key := range []string{"", "hello-ergo"} {
		n := newNode(t, ch, nil)
		c := newClient(t, n.srv.URL, func(cfg *ClientConfig) { cfg.APIKey = key })
		if _, err := c.Info(t.Context()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Block(t.Context(), ch.ids[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Blocks(t.Context(), ch.ids[:2]); err != nil {
			t.Fatal(err)
		}
		for _, r := range n.requests() {
			switch {
			case key == "" && len(r.apiKey) != 0:
				t.Errorf("%s %s: api_key %q sent, none configured", r.method, r.path, r.apiKey)
			case key != "" && !slices.Equal(r.apiKey, []string{key}):
				t.Errorf("%s %s: api_key %q, want %q", r.method, r.path, r.apiKey, key)
			}
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	ch := loadChain(t)
	n := newNode(t, ch, nil)
	c := newClient(t, n.srv.URL)
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(ch.ids))
	for _, id := range ch.ids {
		wg.Go(func() {
			_, err := c.Block(t.Context(), id)
			errs <- err
		})
		wg.Go(func() {
			_, err := c.Header(t.Context(), id)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := c.Stats().Attempts; got != uint64(2*len(ch.ids)) || n.hits.Load() != int64(got) {
		t.Errorf("%d attempts, node saw %d", got, n.hits.Load())
	}
}

func TestNewClient(t *testing.T) {
	for _, tc := range []struct {
		cfg  ClientConfig
		want string
	}{
		{ClientConfig{}, "scheme must be http or https"},
		{ClientConfig{URL: "ftp://node:9053"}, "scheme must be http or https"},
		{ClientConfig{URL: "localhost:9053"}, "scheme must be http or https"},
		{ClientConfig{URL: "127.0.0.1:9053"}, "first path segment"},
		{ClientConfig{URL: "http://"}, "has no host"},
		{ClientConfig{URL: "http:///info"}, "has no host"},
		{ClientConfig{URL: "http://node:99999"}, "port \"99999\" is out of range"},
		{ClientConfig{URL: "http://node:9053/?x=1"}, "query or fragment"},
		{ClientConfig{URL: "http://node:9053/#top"}, "query or fragment"},
		{ClientConfig{URL: "http://no de"}, "invalid character"},
		{ClientConfig{URL: "http://node", MaxAttempts: -1}, "MaxAttempts is negative"},
		{ClientConfig{URL: "http://node", RequestTimeout: -time.Second}, "RequestTimeout is negative"},
		{ClientConfig{URL: "http://node", MaxResponseBytes: -1}, "MaxResponseBytes is negative"},
		{ClientConfig{URL: "http://node", BackoffMin: time.Minute}, "BackoffMin (1m0s) is above BackoffMax (10s)"},
	} {
		_, err := NewClient(tc.cfg, zerolog.Nop())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one saying %q", tc.cfg, err, tc.want)
		}
	}

	c, err := NewClient(ClientConfig{URL: "https://user:secret@node.example:9053/ergo/"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	want := ClientConfig{URL: c.cfg.URL, RequestTimeout: 15 * time.Second, MaxAttempts: 6,
		BackoffMin: 200 * time.Millisecond, BackoffMax: 10 * time.Second, MaxResponseBytes: 32 << 20}
	if c.cfg != want {
		t.Errorf("defaults %+v, want %+v", c.cfg, want)
	}
	r := c.newRequest(http.MethodGet, "/blocks/chainSlice", map[string][]string{"toHeight": {"2"}, "fromHeight": {"1"}}, nil)
	if r.url != "https://user:secret@node.example:9053/ergo/blocks/chainSlice?fromHeight=1&toHeight=2" ||
		r.name != "GET /blocks/chainSlice?fromHeight=1&toHeight=2" {
		t.Errorf("url %s, name %s", r.url, r.name)
	}
}

func TestInvalidArgumentsSendNothing(t *testing.T) {
	n := newNode(t, nil, nil, withFault(func(_ int64, w http.ResponseWriter, _ *http.Request) bool {
		serve(w, []byte("[]"))
		return true
	}))
	c := newClient(t, n.srv.URL)
	id := ergo.Hash([]byte("x"))
	blocks, err := c.Blocks(t.Context(), nil)
	if blocks != nil || err != nil {
		t.Errorf("Blocks(nil) = %v, %v", blocks, err)
	}
	for name, call := range map[string]func() error{
		"duplicate ids":    func() error { _, err := c.Blocks(t.Context(), []ergo.Digest{id, ergo.Hash(nil), id}); return err },
		"toHeight < from":  func() error { _, err := c.ChainSlice(t.Context(), 10, 9); return err },
		"toHeight 0":       func() error { _, err := c.ChainSlice(t.Context(), 0, 0); return err },
		"too wide":         func() error { _, err := c.ChainSlice(t.Context(), 1, MaxChainSlice+1); return err },
		"too high":         func() error { _, err := c.ChainSlice(t.Context(), 1<<31, 1<<31); return err },
		"height above int": func() error { _, err := c.BlockIDsAt(t.Context(), math.MaxUint32); return err },
	} {
		var e *Error
		if err := call(); !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) || e.Attempts != 0 || e.Request == "" {
			t.Errorf("%s: %v, want ErrInvalidArgument naming the request", name, err)
		}
	}
	if hits := n.hits.Load(); hits != 0 {
		t.Errorf("%d requests sent", hits)
	}
	if _, err := c.ChainSlice(t.Context(), 1, MaxChainSlice); err != nil || n.hits.Load() != 1 {
		t.Errorf("a slice of MaxChainSlice heights: %v", err)
	}
}

func TestBackoff(t *testing.T) {
	const lo, hi = 200 * time.Millisecond, 10 * time.Second
	for n := 1; n <= 12; n++ {
		ceil := min(hi, lo<<n)
		seen := map[time.Duration]bool{}
		for range 500 {
			d := backoff(n, lo, hi)
			if d < lo || d > ceil {
				t.Fatalf("retry %d: %s outside [%s, %s]", n, d, lo, ceil)
			}
			seen[d] = true
		}
		if len(seen) < 100 {
			t.Errorf("retry %d: %d distinct delays in 500: not jittered", n, len(seen))
		}
	}
	if d := backoff(math.MaxInt, lo, hi); d < lo || d > hi {
		t.Errorf("retry MaxInt: %s", d)
	}
	if d := backoff(3, time.Hour, time.Hour); d != time.Hour {
		t.Errorf("min = max: %s", d)
	}
	if d := backoff(70, math.MaxInt64/4, math.MaxInt64); d < math.MaxInt64/4 {
		t.Errorf("huge bounds: %s", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"soon", 0, false},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"99999999999999999999", 0, false}, // overflows uint64: not a number
		{"9999999999999", math.MaxInt64, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func itoa(h uint32) string { return strconv.FormatUint(uint64(h), 10) }

// A node may leave a header's id out; the client fills in the one it
// computed, so that callers can use Header.ID.
func TestIDsAreComputedWhenLeftOut(t *testing.T) {
	ch := loadChain(t)
	withoutID := func(raw []byte, path ...string) []byte {
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber() // keep big numbers exact
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		obj := m
		for _, p := range path {
			obj = obj[p].(map[string]any)
		}
		delete(obj, "id")
		b, _ := json.Marshal(m)
		return b
	}
	stripped := &chain{ids: ch.ids, block: map[ergo.Digest][]byte{}, header: map[ergo.Digest][]byte{}}
	for _, id := range ch.ids {
		stripped.block[id] = withoutID(ch.block[id], "header")
		stripped.header[id] = withoutID(ch.header[id])
	}
	n := newNode(t, stripped, nil)
	c := newClient(t, n.srv.URL)
	b, err := c.Block(t.Context(), ch.ids[1])
	if err != nil || !b.Header.HasID || b.Header.ID != ch.ids[1] {
		t.Errorf("Block: %v, id %s given %v", err, b.Header.ID, b.Header.HasID)
	}
	bs, err := c.Blocks(t.Context(), ch.ids[2:4])
	if err != nil || !bs[0].Header.HasID || bs[0].Header.ID != ch.ids[2] || bs[1].Header.ID != ch.ids[3] {
		t.Errorf("Blocks: %v", err)
	}
	h, err := c.Header(t.Context(), ch.ids[4])
	if err != nil || !h.HasID || h.ID != ch.ids[4] {
		t.Errorf("Header: %v", err)
	}
	if strings.Contains(string(stripped.header[ch.ids[4]]), `"id"`) {
		t.Fatal("the id was not left out")
	}

	s := loadSlice(t, "chainslice_mainnet_844573_844672_v2.json")
	noIDs := *s
	noIDs.headers = nil
	for _, raw := range s.headers {
		noIDs.headers = append(noIDs.headers, withoutID(raw))
	}
	n = newNode(t, nil, &noIDs)
	hs, err := newClient(t, n.srv.URL).ChainSlice(t.Context(), s.first+1, s.first+3)
	if err != nil || len(hs) != 3 {
		t.Fatalf("ChainSlice: %d headers, %v", len(hs), err)
	}
	for i, h := range hs {
		if !h.HasID || h.ID != s.ids[i+1] {
			t.Errorf("ChainSlice[%d]: id %s given %v", i, h.ID, h.HasID)
		}
	}
}
