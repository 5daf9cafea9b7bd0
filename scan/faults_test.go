package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
)

// The test clients make 4 attempts (newClient).
const attempts = 4

// asError returns err as an *Error, failing the test when it is not one of
// kind.
func asError(t *testing.T, err error, kind ErrorKind) *Error {
	t.Helper()
	var e *Error
	if !errors.Is(err, kind) || !errors.As(err, &e) {
		t.Fatalf("error %v, want an *Error of kind %q", err, kind)
	}
	return e
}

// status answers code on the hits for which fail says so.
func status(code int, fail func(hit int64) bool) fault {
	return func(hit int64, w http.ResponseWriter, r *http.Request) bool {
		if !fail(hit) {
			return false
		}
		nodeError(w, code, http.StatusText(code), "injected")
		return true
	}
}

func always(int64) bool { return true }

func TestServerErrorsAreRetried(t *testing.T) {
	ch := loadChain(t)
	n := newNode(t, ch, nil, withFault(status(http.StatusInternalServerError, func(hit int64) bool { return hit <= 2 })))
	c := newClient(t, n.srv.URL)
	b, err := c.Block(t.Context(), ch.ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if b.Header.Height != firstHeight || n.hits.Load() != 3 {
		t.Errorf("height %d after %d requests, want %d after 3", b.Header.Height, n.hits.Load(), firstHeight)
	}
	if s := c.Stats(); s.Attempts != 3 || s.Retries != 2 || s.BadResponses != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestPersistentUnavailabilityExhaustsAttempts(t *testing.T) {
	n := newNode(t, nil, nil, withFault(status(http.StatusServiceUnavailable, always)))
	logs := &logLines{}
	_, err := newClientWithLog(t, n.srv.URL, zerolog.New(logs)).Info(t.Context())
	e := asError(t, err, ErrHTTPStatus)
	if e.Status != http.StatusServiceUnavailable || e.Attempts != attempts || n.hits.Load() != attempts {
		t.Errorf("status %d after %d attempts (%d requests), want 503 after %d", e.Status, e.Attempts, n.hits.Load(), attempts)
	}
	for _, want := range []string{"GET /info", "503 Service Unavailable", "injected", "after 4 attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	// One warning per retry, with what an operator needs; no error level
	// for a node that is down.
	warns := logs.withLevel("warn")
	if len(warns) != attempts-1 || logs.levels()["error"] != 0 {
		t.Fatalf("logged %v", logs.levels())
	}
	for i, ev := range warns {
		if ev["attempt"] != float64(i+1) || ev["max_attempts"] != float64(attempts) || ev["request"] != "GET /info" ||
			ev["delay"] == nil || !strings.Contains(fmt.Sprint(ev["error"]), "503") {
			t.Errorf("warning %d: %v", i, ev)
		}
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	ch := loadChain(t)
	t.Run("400", func(t *testing.T) {
		n := newNode(t, ch, nil, withFault(func(_ int64, w http.ResponseWriter, _ *http.Request) bool {
			nodeError(w, http.StatusBadRequest, "bad.request", "toHeight < fromHeight")
			return true
		}))
		_, err := newClient(t, n.srv.URL).ChainSlice(t.Context(), 5, 10)
		e := asError(t, err, ErrHTTPStatus)
		if e.Status != 400 || e.Attempts != 1 || n.hits.Load() != 1 || !strings.Contains(err.Error(), "toHeight < fromHeight") {
			t.Errorf("%v: status %d, %d attempts, %d requests", err, e.Status, e.Attempts, n.hits.Load())
		}
	})
	t.Run("404", func(t *testing.T) {
		n := newNode(t, ch, nil)
		c := newClient(t, n.srv.URL)
		unknown := ergo.Hash([]byte("no such block"))
		_, err := c.Block(t.Context(), unknown)
		if e := asError(t, err, ErrNotFound); e.Attempts != 1 || e.Status != 404 {
			t.Errorf("block: %v", err)
		}
		_, err = c.Header(t.Context(), unknown)
		if e := asError(t, err, ErrNotFound); e.Attempts != 1 || !strings.Contains(err.Error(), "/blocks/"+unknown.String()+"/header") {
			t.Errorf("header: %v", err)
		}
		if n.hits.Load() != 2 {
			t.Errorf("%d requests, want 2", n.hits.Load())
		}
	})
	t.Run("redirect", func(t *testing.T) {
		// The API key must not follow a redirect to another host.
		elsewhere := newNode(t, ch, nil)
		n := newNode(t, ch, nil, withFault(func(_ int64, w http.ResponseWriter, r *http.Request) bool {
			http.Redirect(w, r, elsewhere.srv.URL+r.URL.Path, http.StatusFound)
			return true
		}))
		_, err := newClient(t, n.srv.URL, func(c *ClientConfig) { c.APIKey = "secret" }).Info(t.Context())
		if e := asError(t, err, ErrHTTPStatus); e.Status != http.StatusFound || n.hits.Load() != 1 || elsewhere.hits.Load() != 0 {
			t.Errorf("%v; %d requests, %d elsewhere", err, n.hits.Load(), elsewhere.hits.Load())
		}
	})
}

func TestRetryAfterIsHonouredUpToBackoffMax(t *testing.T) {
	ch := loadChain(t)
	n := newNode(t, ch, nil, withFault(func(hit int64, w http.ResponseWriter, _ *http.Request) bool {
		if hit > 1 {
			return false
		}
		w.Header().Set("Retry-After", "3600")
		nodeError(w, http.StatusTooManyRequests, "too many requests", "slow down")
		return true
	}))
	logs := &logLines{}
	// Without Retry-After the first retry would wait 1–2ms.
	c := newClientWithLog(t, n.srv.URL, zerolog.New(logs), func(c *ClientConfig) { c.BackoffMax = 25 * time.Millisecond })
	ids, err := c.BlockIDsAt(t.Context(), firstHeight)
	if err != nil || len(ids) != 1 || n.hits.Load() != 2 {
		t.Fatalf("%v, %v after %d requests", ids, err, n.hits.Load())
	}
	warns := logs.withLevel("warn")
	if len(warns) != 1 || warns[0]["delay"] != float64(25) { // zerolog logs durations in ms
		t.Errorf("warnings %v, want one with a 25ms delay", warns)
	}
}

func TestTimedOutAttemptIsRetried(t *testing.T) {
	ch := loadChain(t)
	n := newNode(t, ch, nil, withFault(func(hit int64, _ http.ResponseWriter, r *http.Request) bool {
		if hit > 1 {
			return false
		}
		<-r.Context().Done() // answer nothing until the client gives up
		return true
	}))
	logs := &logLines{}
	c := newClientWithLog(t, n.srv.URL, zerolog.New(logs), func(c *ClientConfig) { c.RequestTimeout = 100 * time.Millisecond })
	h, err := c.Header(t.Context(), ch.ids[2])
	if err != nil || h.Height != firstHeight+2 || n.hits.Load() != 2 {
		t.Fatalf("%v after %d requests", err, n.hits.Load())
	}
	if w := logs.withLevel("warn"); len(w) != 1 || !strings.Contains(fmt.Sprint(w[0]["error"]), "no complete answer within RequestTimeout (100ms)") {
		t.Errorf("warnings %v", w)
	}
}

func TestDroppedConnectionIsRetried(t *testing.T) {
	ch := loadChain(t)
	raw := ch.block[ch.ids[0]]
	for name, drop := range map[string]func(w *bytes.Buffer){
		"before answering": func(*bytes.Buffer) {},
		"mid-body": func(w *bytes.Buffer) {
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(raw))
			w.Write(raw[:len(raw)/2])
		},
	} {
		t.Run(name, func(t *testing.T) {
			n := newNode(t, ch, nil, withFault(func(hit int64, w http.ResponseWriter, _ *http.Request) bool {
				if hit > 1 {
					return false
				}
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return true
				}
				var out bytes.Buffer
				drop(&out)
				conn.Write(out.Bytes())
				conn.Close()
				return true
			}))
			logs := &logLines{}
			b, err := newClientWithLog(t, n.srv.URL, zerolog.New(logs)).Block(t.Context(), ch.ids[0])
			if err != nil || b.Header.Height != firstHeight || n.hits.Load() != 2 {
				t.Fatalf("%v after %d requests", err, n.hits.Load())
			}
			if w := logs.withLevel("warn"); len(w) != 1 || !strings.Contains(fmt.Sprint(w[0]["error"]), string(ErrUnreachable)) {
				t.Errorf("warnings %v", w)
			}
		})
	}
}

func TestConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	c := newClient(t, url)
	_, err := c.Info(t.Context())
	e := asError(t, err, ErrUnreachable)
	if e.Attempts != attempts || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("%v after %d attempts", err, e.Attempts)
	}
	if s := c.Stats(); s.Attempts != attempts || s.Retries != attempts-1 {
		t.Errorf("stats %+v", s)
	}
}

// tamperBoxID changes one byte of the id of the first output of the first
// transaction of a block's JSON.
func tamperBoxID(t *testing.T, raw []byte) []byte {
	t.Helper()
	b, err := ergo.DecodeBlock(raw)
	if err != nil {
		t.Fatal(err)
	}
	id := []byte(b.Transactions[0].Outputs[0].BoxID.String())
	at := bytes.Index(raw, []byte(`"outputs"`))
	if at < 0 {
		t.Fatal("no outputs in the fixture")
	}
	i := bytes.Index(raw[at:], id)
	if i < 0 {
		t.Fatal("box id not found in the fixture")
	}
	out := bytes.Clone(raw)
	if out[at+i] == '0' {
		out[at+i] = '1'
	} else {
		out[at+i] = '0'
	}
	return out
}

func TestTamperedBlockIsNeverReturned(t *testing.T) {
	ch := loadChain(t)
	bad := tamperBoxID(t, ch.block[ch.ids[0]])
	tampered := func() *chain {
		c := *ch
		c.block = map[ergo.Digest][]byte{}
		for id, raw := range ch.block {
			c.block[id] = raw
		}
		c.block[ch.ids[0]] = bad
		return &c
	}()
	check := func(t *testing.T, err error, n *fakeNode, c *Client) {
		t.Helper()
		e := asError(t, err, ErrBadResponse)
		if !errors.Is(err, ergo.ErrIDMismatch) {
			t.Errorf("%v does not wrap ergo.ErrIDMismatch", err)
		}
		if e.BlockID != ch.ids[0] || e.Height != firstHeight {
			t.Errorf("names block %s at %d, want %s at %d", e.BlockID, e.Height, ch.ids[0], firstHeight)
		}
		for _, want := range []string{ch.ids[0].String(), "height 700000", "blockTransactions.transactions[0].outputs[0].boxId"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q does not say %q", err, want)
			}
		}
		// A node that keeps lying exhausts the attempts.
		if n.hits.Load() != attempts || e.Attempts != attempts || c.Stats().BadResponses != attempts {
			t.Errorf("%d requests, %d attempts, stats %+v", n.hits.Load(), e.Attempts, c.Stats())
		}
	}
	t.Run("Block", func(t *testing.T) {
		n := newNode(t, tampered, nil)
		c := newClient(t, n.srv.URL)
		b, err := c.Block(t.Context(), ch.ids[0])
		if b != nil {
			t.Error("a tampered block was returned")
		}
		check(t, err, n, c)
	})
	t.Run("Blocks", func(t *testing.T) {
		n := newNode(t, tampered, nil)
		c := newClient(t, n.srv.URL)
		bs, err := c.Blocks(t.Context(), ch.ids[:3])
		if bs != nil {
			t.Error("blocks were returned")
		}
		check(t, err, n, c)
	})
	t.Run("BlocksFor", func(t *testing.T) {
		n := newNode(t, tampered, nil)
		c := newClient(t, n.srv.URL)
		var hs []*ergo.Header
		for _, id := range ch.ids[:3] {
			var h ergo.Header
			if err := h.UnmarshalJSON(ch.header[id]); err != nil {
				t.Fatal(err)
			}
			hs = append(hs, &h)
		}
		bs, err := c.BlocksFor(t.Context(), hs)
		if bs != nil {
			t.Error("blocks were returned")
		}
		check(t, err, n, c)
	})
	t.Run("corrupted once", func(t *testing.T) {
		// A body corrupted on the way is retried, and the good one returned.
		n := newNode(t, ch, nil, withFault(func(hit int64, w http.ResponseWriter, _ *http.Request) bool {
			if hit == 1 {
				serve(w, bad)
				return true
			}
			return false
		}))
		c := newClient(t, n.srv.URL)
		b, err := c.Block(t.Context(), ch.ids[0])
		if err != nil || n.hits.Load() != 2 {
			t.Fatalf("%v after %d requests", err, n.hits.Load())
		}
		if err := b.Verify(); err != nil {
			t.Errorf("returned block: %v", err)
		}
		if s := c.Stats(); s.BadResponses != 1 || s.Retries != 1 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		n := newNode(t, ch, nil, withFault(func(_ int64, w http.ResponseWriter, _ *http.Request) bool {
			serve(w, ch.block[ch.ids[1]][:5000])
			return true
		}))
		_, err := newClient(t, n.srv.URL).Block(t.Context(), ch.ids[1])
		if e := asError(t, err, ErrBadResponse); !errors.Is(err, ergo.ErrJSON) || e.BlockID != ch.ids[1] {
			t.Errorf("%v", err)
		}
	})
}

func TestTamperedHeaderIsNeverReturned(t *testing.T) {
	ch := loadChain(t)
	// The header hashes to the id asked for, but states a wrong section id.
	var m map[string]json.RawMessage
	if err := json.Unmarshal(ch.header[ch.ids[0]], &m); err != nil {
		t.Fatal(err)
	}
	m["transactionsId"] = json.RawMessage(`"` + ergo.Hash([]byte("not it")).String() + `"`)
	bad, _ := json.Marshal(m)
	n := newNode(t, ch, nil, withFault(func(_ int64, w http.ResponseWriter, _ *http.Request) bool {
		serve(w, bad)
		return true
	}))
	h, err := newClient(t, n.srv.URL).Header(t.Context(), ch.ids[0])
	e := asError(t, err, ErrBadResponse)
	if h != nil || !errors.Is(err, ergo.ErrIDMismatch) || e.BlockID != ch.ids[0] || e.Height != firstHeight ||
		!strings.Contains(err.Error(), "transactionsId") || n.hits.Load() != attempts {
		t.Errorf("%v after %d requests", err, n.hits.Load())
	}
}

func TestAnotherBlockThanAskedIsRefused(t *testing.T) {
	ch := loadChain(t)
	// The node answers block 700001 (valid in itself) for 700000.
	n := newNode(t, ch, nil, withFault(func(_ int64, w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/blocks/" + ch.ids[0].String():
			serve(w, ch.block[ch.ids[1]])
		case "/blocks/" + ch.ids[0].String() + "/header":
			serve(w, ch.header[ch.ids[1]])
		default:
			return false
		}
		return true
	}))
	c := newClient(t, n.srv.URL)
	_, errBlock := c.Block(t.Context(), ch.ids[0])
	_, errHeader := c.Header(t.Context(), ch.ids[0])
	for _, err := range []error{errBlock, errHeader} {
		e := asError(t, err, ErrBadResponse)
		if errors.Is(err, ergo.ErrIDMismatch) || e.BlockID != ch.ids[0] ||
			!strings.Contains(err.Error(), ch.ids[1].String()) || !strings.Contains(err.Error(), "height 700001") {
			t.Errorf("%v", err)
		}
	}
	if n.hits.Load() != 2*attempts {
		t.Errorf("%d requests", n.hits.Load())
	}
}

func TestBlocksAnswerMustMatchTheRequest(t *testing.T) {
	ch := loadChain(t)
	asked := ch.ids[:3]
	for _, tc := range []struct {
		name    string
		reorder func([][]byte) [][]byte
		block   ergo.Digest // the block the error must name, if any
		says    string
	}{
		{"missing", func(b [][]byte) [][]byte { return b[:2] }, ch.ids[2], "missing from the answer (2 of 3"},
		{"none", func([][]byte) [][]byte { return nil }, ch.ids[0], "missing"},
		{"not asked", func(b [][]byte) [][]byte { return [][]byte{b[0], b[1], ch.block[ch.ids[4]]} }, ch.ids[4], "not asked for"},
		{"duplicate", func(b [][]byte) [][]byte { return [][]byte{b[1], b[0], b[1]} }, ch.ids[1], "answered twice"},
		{"one too many", func(b [][]byte) [][]byte { return append(b, ch.block[ch.ids[3]]) }, ergo.Digest{}, "4 blocks for 3 ids"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, ch, nil, func(n *fakeNode) { n.reorder = tc.reorder })
			bs, err := newClient(t, n.srv.URL).Blocks(t.Context(), asked)
			e := asError(t, err, ErrBadResponse)
			if bs != nil || e.BlockID != tc.block || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%v: names %s, want %s", err, e.BlockID, tc.block)
			}
			if n.hits.Load() != attempts {
				t.Errorf("%d requests", n.hits.Load())
			}
		})
	}
}

func TestChainSliceMustBeAVerifiedChain(t *testing.T) {
	s := loadSlice(t, "chainslice_mainnet_844573_844672_v2.json")
	const from, to = 844600, 844610
	at := func(h int) []byte { return s.headers[h-int(s.first)] }
	run := func(h ...int) [][]byte {
		var out [][]byte
		for _, x := range h {
			out = append(out, at(x))
		}
		return out
	}
	heights := func(lo, hi int, skip ...int) []int {
		var out []int
		for h := lo; h <= hi; h++ {
			if !slicesContains(skip, h) {
				out = append(out, h)
			}
		}
		return out
	}
	tampered := func(h int) []byte { // a header whose timestamp was changed
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(at(h)))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		ts, _ := strconv.ParseInt(string(m["timestamp"].(json.Number)), 10, 64)
		m["timestamp"] = ts + 1
		b, _ := json.Marshal(m)
		return b
	}
	for _, tc := range []struct {
		name   string
		answer [][]byte
		height uint32 // of the header the error names, 0 for none
		is     error
		says   string
	}{
		{"gap", run(heights(from, to, 844605)...), 844606, ergo.ErrLink, "parentId"},
		{"swapped", run(append(heights(from, 844603), 844605, 844604)...), 844605, ergo.ErrLink, "parentId"},
		{"tampered", append(run(heights(from, 844603)...), append([][]byte{tampered(844604)}, run(heights(844605, to)...)...)...), 844604, ergo.ErrIDMismatch, "id does not match"},
		{"above toHeight", run(heights(from, to+1)...), to + 1, ErrBadResponse, "above toHeight 844610"},
		{"not from fromHeight", run(heights(from+1, to)...), 0, ErrBadResponse, "starts at height 844601, not at fromHeight 844600"},
		{"too many", run(heights(from-5, to)...), 0, ErrBadResponse, "16 headers for 11 heights"},
		{"a block", [][]byte{[]byte(`{"header":{}}`)}, 0, ergo.ErrMissingField, "header 0 of the answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, nil, s, withFault(func(_ int64, w http.ResponseWriter, _ *http.Request) bool {
				serveArray(w, tc.answer)
				return true
			}))
			hs, err := newClient(t, n.srv.URL).ChainSlice(t.Context(), from, to)
			e := asError(t, err, ErrBadResponse)
			if hs != nil || !errors.Is(err, tc.is) || e.Height != tc.height || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%v: names height %d, want %d", err, e.Height, tc.height)
			}
			if tc.height != 0 && e.BlockID != s.ids[tc.height-s.first] && tc.name != "tampered" {
				t.Errorf("names %s, want %s", e.BlockID, s.ids[tc.height-s.first])
			}
		})
	}
}

func slicesContains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestTooLargeIsNotRetried(t *testing.T) {
	ch := loadChain(t)
	raw := ch.block[ch.ids[0]]
	for _, tc := range []struct {
		name          string
		limit         int64
		contentLength bool
		wantErr       bool
	}{
		{"announced", int64(len(raw)) - 1, true, true},
		{"chunked", int64(len(raw)) - 1, false, true},
		{"exactly the limit", int64(len(raw)), false, false},
		{"exactly the limit, announced", int64(len(raw)), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, ch, nil, withFault(func(_ int64, w http.ResponseWriter, _ *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				if tc.contentLength {
					w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
				}
				w.Write(raw[:100])
				if !tc.contentLength {
					http.NewResponseController(w).Flush() // forces chunked encoding
				}
				w.Write(raw[100:])
				return true
			}))
			b, err := newClient(t, n.srv.URL, func(c *ClientConfig) { c.MaxResponseBytes = tc.limit }).Block(t.Context(), ch.ids[0])
			if !tc.wantErr {
				if err != nil || b.Header.Height != firstHeight {
					t.Fatal(err)
				}
				return
			}
			if e := asError(t, err, ErrTooLarge); b != nil || e.Attempts != 1 || n.hits.Load() != 1 ||
				!strings.Contains(err.Error(), fmt.Sprintf("MaxResponseBytes (%d)", tc.limit)) {
				t.Errorf("%v after %d requests", err, n.hits.Load())
			}
		})
	}
}

func TestEndlessBodyIsCutAtTheLimit(t *testing.T) {
	n := newNode(t, nil, nil, withFault(func(_ int64, w http.ResponseWriter, r *http.Request) bool {
		chunk := bytes.Repeat([]byte("[[[[[[[["), 4<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				break
			}
		}
		return true
	}))
	_, err := newClient(t, n.srv.URL, func(c *ClientConfig) {
		c.MaxResponseBytes, c.RequestTimeout, c.MaxAttempts = 1<<20, 5*time.Second, 1
	}).Info(t.Context())
	if e := asError(t, err, ErrTooLarge); e.Attempts != 1 || n.hits.Load() != 1 {
		t.Errorf("%v after %d requests", err, n.hits.Load())
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	n := newNode(t, nil, nil, withFault(status(http.StatusBadGateway, always)))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The client logs its warning just before it waits an hour; cancel
	// from another goroutine, while it waits.
	logs := &logLines{onWrite: func(ev map[string]any) {
		if ev["level"] == "warn" {
			go cancel()
		}
	}}
	c := newClientWithLog(t, n.srv.URL, zerolog.New(logs), func(c *ClientConfig) { c.BackoffMin, c.BackoffMax = time.Hour, time.Hour })
	done := make(chan error, 1)
	go func() {
		_, err := c.Info(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || n.hits.Load() != 1 {
			t.Errorf("%v after %d requests, want context.Canceled after 1", err, n.hits.Load())
		}
	case <-time.After(time.Minute): // a watchdog, not a timing assertion: the wait is an hour
		t.Fatal("Info kept waiting after its context was cancelled")
	}
}

func TestCancelDuringRequest(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	n := newNode(t, nil, nil, withFault(func(_ int64, _ http.ResponseWriter, r *http.Request) bool {
		cancel()
		<-r.Context().Done()
		return true
	}))
	_, err := newClient(t, n.srv.URL).Info(ctx)
	if err != context.Canceled || n.hits.Load() != 1 { // ctx.Err() itself, not wrapped
		t.Errorf("%v after %d requests, want ctx.Err() after 1", err, n.hits.Load())
	}
}

func TestCancelledContextSendsNothing(t *testing.T) {
	n := newNode(t, nil, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newClient(t, n.srv.URL).Info(ctx)
	if !errors.Is(err, context.Canceled) || n.hits.Load() != 0 {
		t.Errorf("%v after %d requests", err, n.hits.Load())
	}
}

// TestGarbageIsRefused answers every call with bodies no node would send:
// each must be ErrBadResponse, never data, never a panic.
func TestGarbageIsRefused(t *testing.T) {
	id := ergo.Hash([]byte("any"))
	calls := map[string]func(*Client, context.Context) (any, error){
		"Info":       func(c *Client, ctx context.Context) (any, error) { return c.Info(ctx) },
		"BlockIDsAt": func(c *Client, ctx context.Context) (any, error) { return c.BlockIDsAt(ctx, 5) },
		"Block":      func(c *Client, ctx context.Context) (any, error) { return c.Block(ctx, id) },
		"Blocks":     func(c *Client, ctx context.Context) (any, error) { return c.Blocks(ctx, []ergo.Digest{id}) },
		"Header":     func(c *Client, ctx context.Context) (any, error) { return c.Header(ctx, id) },
		"ChainSlice": func(c *Client, ctx context.Context) (any, error) { return c.ChainSlice(ctx, 1, 10) },
	}
	// An empty array is a valid answer where the node may have nothing.
	valid := map[string]map[string]bool{"[]": {"BlockIDsAt": true, "ChainSlice": true}}
	bodies := []string{
		"", " \n", "null", "{}", "[]", "[", "]", "{", `"text"`, "true", "0", "-1", "1e999999",
		"123456789012345678901234567890123456789", "[null]", "[{}]", "[1]", `["zz"]`, `[""]`, "[1e400]",
		`[[]]`, `[{"header":{}}]`, `{"header":5}`, `{"header":{}}`, `{"header":null,"blockTransactions":[]}`,
		`{"header":{"version":1e400}}`, `{"header":{"version":-1}}`, `{"header":{"height":"x"}}`,
		`{"powSolutions":{"d":"1e99999"}}`, `[{"height":99999999999999999999999}]`,
		strings.Repeat("[", 100000), strings.Repeat(`{"a":`, 20000), "\xff\xfe\x00", "\x00",
		`{"network":"mainnet","fullHeight":-1}`, `{"network":"mainnet","fullHeight":1e400}`,
		`{"network":"mainnet","fullHeight":5}`, `{"network":"mainnet","headersHeight":7}`, `{"network":5}`,
		`{"network":"mainnet","headersHeight":"x"}`, `{"network":"mainnet","difficulty":"a lot"}`,
		`["` + id.String() + `","` + id.String() + `"]`,
	}
	for i, body := range bodies {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { serve(w, []byte(body)) }))
		c := newClientWithLog(t, srv.URL, zerolog.Nop(), func(c *ClientConfig) { c.MaxAttempts = 1 })
		for name, call := range calls {
			v, err := call(c, t.Context())
			if valid[body][name] {
				if err != nil {
					t.Errorf("body %d %.40q, %s: %v", i, body, name, err)
				}
				continue
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != ErrBadResponse || !isNil(v) {
				t.Errorf("body %d %.40q, %s: %v, %v; want ErrBadResponse and nothing", i, body, name, v, err)
			}
		}
		srv.Close()
	}
}

func isNil(v any) bool {
	switch v := v.(type) {
	case *ergo.NodeInfo:
		return v == nil
	case []ergo.Digest:
		return v == nil
	case *ergo.FullBlock:
		return v == nil
	case []*ergo.FullBlock:
		return v == nil
	case *ergo.Header:
		return v == nil
	case []*ergo.Header:
		return v == nil
	}
	return v == nil
}
