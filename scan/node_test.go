package scan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/fixtures"
)

// The tests run the client against fakeNode, an httptest server on
// loopback that serves the real mainnet fixtures the way a Scala node does,
// with a hook to inject faults.

// chain is the five consecutive mainnet blocks 700000–700004, as GET
// /blocks/{id} returns them.
type chain struct {
	ids    []ergo.Digest
	block  map[ergo.Digest][]byte // GET /blocks/{id}
	header map[ergo.Digest][]byte // GET /blocks/{id}/header
}

const firstHeight = 700000

func loadChain(t *testing.T) *chain {
	t.Helper()
	c := &chain{block: map[ergo.Digest][]byte{}, header: map[ergo.Digest][]byte{}}
	for h := firstHeight; h < firstHeight+5; h++ {
		raw := fixtures.Read(t, "blocks", fmt.Sprintf("mainnet_%d.json", h))
		b, err := ergo.DecodeBlock(raw)
		if err != nil {
			t.Fatalf("fixture %d: %v", h, err)
		}
		var parts struct{ Header json.RawMessage }
		if err := json.Unmarshal(raw, &parts); err != nil {
			t.Fatalf("fixture %d: %v", h, err)
		}
		id := b.Header.ComputeID()
		c.ids = append(c.ids, id)
		c.block[id], c.header[id] = raw, parts.Header
	}
	return c
}

// slice is a chainSlice fixture: consecutive headers by height.
type slice struct {
	first   uint32
	headers []json.RawMessage
	ids     []ergo.Digest
}

func loadSlice(t *testing.T, name string) *slice {
	t.Helper()
	var s slice
	fixtures.JSON(t, &s.headers, "headers", name)
	for i, raw := range s.headers {
		var h ergo.Header
		if err := h.UnmarshalJSON(raw); err != nil {
			t.Fatalf("%s[%d]: %v", name, i, err)
		}
		if i == 0 {
			s.first = h.Height
		}
		s.ids = append(s.ids, h.ComputeID())
	}
	return &s
}

func (s *slice) last() uint32 { return s.first + uint32(len(s.headers)) - 1 }

// fault handles a request instead of the node when it returns true. hit
// counts the requests the node has received, this one included, from 1.
type fault func(hit int64, w http.ResponseWriter, r *http.Request) bool

// seen is a request as the node received it.
type seen struct {
	method, path, query string
	apiKey              []string
	contentType         string
	body                []byte
}

type fakeNode struct {
	chain *chain
	slice *slice
	// inclusive serves chain slices from fromHeight; a Scala node starts
	// them at fromHeight+1.
	inclusive bool
	fault     fault
	// reorder returns the order in which POST /blocks/headerIds answers
	// the blocks it holds; by default a shuffle that differs from asked.
	reorder func([][]byte) [][]byte

	infoJSON, at700000, atAboveTip []byte

	srv  *httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	seen []seen
}

// newNode starts a fake node serving ch and sl (either may be nil) once
// configured by opts; it stops when the test ends.
func newNode(t *testing.T, ch *chain, sl *slice, opts ...func(*fakeNode)) *fakeNode {
	t.Helper()
	n := &fakeNode{chain: ch, slice: sl}
	n.infoJSON = fixtures.Read(t, "api", "info_mainnet_node6.0.x.json")
	n.at700000 = fixtures.Read(t, "api", "blocks_at_700000.json")
	n.atAboveTip = fixtures.Read(t, "api", "blocks_at_99999999_empty.json")
	for _, o := range opts {
		o(n)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /info", n.info)
	mux.HandleFunc("GET /blocks/{id}", n.block)
	// One pattern for both: /blocks/at/{height} and /blocks/{id}/header
	// would both match /blocks/at/header.
	mux.HandleFunc("GET /blocks/{a}/{b}", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.PathValue("a") == "at":
			n.blocksAt(w, r.PathValue("b"))
		case r.PathValue("b") == "header":
			n.lookup(w, r.PathValue("a"), n.chain.header)
		default:
			nodeError(w, http.StatusNotFound, "not-found", "The requested resource could not be found.")
		}
	})
	mux.HandleFunc("POST /blocks/headerIds", n.blocks)
	mux.HandleFunc("GET /blocks/chainSlice", n.chainSlice)
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit := n.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		n.mu.Lock()
		n.seen = append(n.seen, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Values("api_key"), r.Header.Get("Content-Type"), body})
		n.mu.Unlock()
		if n.fault != nil && n.fault(hit, w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func withFault(f fault) func(*fakeNode) { return func(n *fakeNode) { n.fault = f } }

func (n *fakeNode) requests() []seen {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.seen)
}

func (n *fakeNode) info(w http.ResponseWriter, r *http.Request) { serve(w, n.infoJSON) }

func (n *fakeNode) blocksAt(w http.ResponseWriter, height string) {
	h, err := strconv.Atoi(height)
	if err != nil {
		nodeError(w, http.StatusNotFound, "not-found", "The requested resource could not be found.")
		return
	}
	switch {
	case h == firstHeight:
		serve(w, n.at700000)
	case h > firstHeight && h < firstHeight+len(n.chain.ids):
		serveJSON(w, []ergo.Digest{n.chain.ids[h-firstHeight]})
	default: // above the tip
		serve(w, n.atAboveTip)
	}
}

func (n *fakeNode) lookup(w http.ResponseWriter, hexID string, m map[ergo.Digest][]byte) {
	id, err := ergo.ParseDigest(hexID)
	if err != nil {
		nodeError(w, http.StatusBadRequest, "bad.request", "Wrong modifierId format")
		return
	}
	raw, ok := m[id]
	if !ok {
		nodeError(w, http.StatusNotFound, "not-found", "The requested resource could not be found.")
		return
	}
	serve(w, raw)
}

func (n *fakeNode) block(w http.ResponseWriter, r *http.Request) {
	n.lookup(w, r.PathValue("id"), n.chain.block)
}

// blocks answers the blocks it holds, leaving out the others as the node
// does, in an order that differs from the one asked.
func (n *fakeNode) blocks(w http.ResponseWriter, r *http.Request) {
	var ids []ergo.Digest
	if err := json.NewDecoder(r.Body).Decode(&ids); err != nil {
		nodeError(w, http.StatusBadRequest, "bad.request", err.Error())
		return
	}
	var out [][]byte
	for _, id := range ids {
		if raw, ok := n.chain.block[id]; ok {
			out = append(out, raw)
		}
	}
	if n.reorder != nil {
		out = n.reorder(out)
	} else {
		out = shuffled(out)
	}
	serveArray(w, out)
}

// shuffled returns a fixed permutation of s that differs from s when s has
// two elements or more.
func shuffled(s [][]byte) [][]byte {
	out := slices.Clone(s)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) > 1 && slices.EqualFunc(out, s, bytes.Equal) {
		out[0], out[1] = out[1], out[0]
	}
	return out
}

// chainSlice follows the Scala node: the chain back from the header at
// toHeight (or from the tip when there is none) down to the first header
// at or below fromHeight+1, which always includes the first one.
func (n *fakeNode) chainSlice(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err1 := strconv.Atoi(q.Get("fromHeight"))
	to, err2 := strconv.Atoi(q.Get("toHeight"))
	if err1 != nil || err2 != nil || to < from {
		nodeError(w, http.StatusBadRequest, "bad.request", "toHeight < fromHeight")
		return
	}
	s := n.slice
	top := min(to, int(s.last()))
	stop := from + 1
	if n.inclusive {
		stop = from
	}
	bottom := min(top, max(stop, int(s.first)))
	serveArray(w, rawsOf(s.headers[bottom-int(s.first):top-int(s.first)+1]))
}

func rawsOf(ms []json.RawMessage) [][]byte {
	out := make([][]byte, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

func serve(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func serveJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	serve(w, b)
}

func serveArray(w http.ResponseWriter, elems [][]byte) {
	serve(w, append(append([]byte("["), bytes.Join(elems, []byte(","))...), ']'))
}

// nodeError writes an error the way the node's API does.
func nodeError(w http.ResponseWriter, code int, reason, detail string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]any{"error": code, "reason": reason, "detail": detail})
	_, _ = w.Write(b)
}

// newClient returns a client of url with test settings: tiny backoff, four
// attempts, logs to the test log. mods adjust the configuration.
func newClient(t *testing.T, url string, mods ...func(*ClientConfig)) *Client {
	t.Helper()
	return newClientWithLog(t, url, zerolog.New(zerolog.NewTestWriter(t)), mods...)
}

func newClientWithLog(t *testing.T, url string, log zerolog.Logger, mods ...func(*ClientConfig)) *Client {
	t.Helper()
	cfg := ClientConfig{
		URL:            url,
		RequestTimeout: 10 * time.Second,
		MaxAttempts:    4,
		BackoffMin:     time.Millisecond,
		BackoffMax:     2 * time.Millisecond,
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := NewClient(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// logLines captures a client's log events.
type logLines struct {
	mu     sync.Mutex
	events []map[string]any
	// onWrite, when set, sees each event as it is logged.
	onWrite func(map[string]any)
}

func (l *logLines) Write(p []byte) (int, error) {
	var ev map[string]any
	if err := json.Unmarshal(p, &ev); err != nil {
		return 0, err
	}
	l.mu.Lock()
	l.events = append(l.events, ev)
	hook := l.onWrite
	l.mu.Unlock()
	if hook != nil {
		hook(ev)
	}
	return len(p), nil
}

func (l *logLines) levels() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, ev := range l.events {
		out[fmt.Sprint(ev["level"])]++
	}
	return out
}

func (l *logLines) withLevel(level string) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, ev := range l.events {
		if ev["level"] == level {
			out = append(out, ev)
		}
	}
	return out
}
