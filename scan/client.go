package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
)

// Defaults for the zero fields of a ClientConfig.
const (
	DefaultRequestTimeout   = 15 * time.Second
	DefaultMaxAttempts      = 6
	DefaultBackoffMin       = 200 * time.Millisecond
	DefaultBackoffMax       = 10 * time.Second
	DefaultMaxResponseBytes = 32 << 20
)

// MaxChainSlice is the most heights one ChainSlice call may span. Nodes cap
// a slice by dropping its low end: older ones at twice the voting epoch
// length (2048 headers on mainnet), newer ones at 16384. A wider slice
// could not be answered in full.
const MaxChainSlice = 2048

// maxHeight is the highest height the node's API accepts (a JVM int).
const maxHeight = math.MaxInt32

const userAgent = "async-emission-auditor"

// ClientConfig configures a Client. Zero fields take the defaults above.
type ClientConfig struct {
	URL              string        // node base URL, e.g. http://127.0.0.1:9053; may have a path prefix
	APIKey           string        // sent as the "api_key" header when set
	RequestTimeout   time.Duration // per attempt: connecting, sending and reading the whole body; default 15s
	MaxAttempts      int           // per call, the first included, whatever failed (bad answers too); default 6
	BackoffMin       time.Duration // shortest wait between attempts; default 200ms
	BackoffMax       time.Duration // longest wait between attempts, Retry-After included; default 10s
	MaxResponseBytes int64         // default 64 MiB; a larger body is ErrTooLarge (not retried)
	// HTTPClient, when set, sends the requests; its own Timeout, if any,
	// applies on top of RequestTimeout. The default client does not follow
	// redirects, so that the API key never travels to another host: a
	// client given here with an APIKey should not either.
	HTTPClient *http.Client
}

// Client is a client of an Ergo node's REST API that takes the node's word
// for nothing it can check: every block and header is decoded and verified
// (ids, roots, proof of work) and must be the one asked for, and answers
// that fail are errors naming the block, never data. Failures another
// attempt may cure are retried with jittered exponential backoff.
//
// Every header returned, alone or in a block, has HasID set and ID equal
// to the id computed from its contents (a node may leave the id out).
//
// A Client is safe for concurrent use.
type Client struct {
	cfg  ClientConfig // defaults filled in
	base *url.URL
	http *http.Client
	log  zerolog.Logger

	attempts, retries, badResponses, powChecks atomic.Uint64

	// verified remembers the ids of the headers whose proof of work this
	// client has checked, so that a header seen again (the stored tip at
	// each poll, a branch walked twice) costs a hash, not a proof of work:
	// an id is the hash of every field, so a header with a remembered id
	// is the one checked.
	verified *idSet
}

// Stats counts what a Client has done since it was made (for metrics).
type Stats struct {
	Attempts     uint64 // HTTP requests sent
	Retries      uint64 // requests that repeated a failed attempt
	BadResponses uint64 // 2xx answers refused: undecodable, unverifiable, or not what was asked
	PoWChecks    uint64 // Autolykos proofs of work computed (each header once, see ChainSlice)
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{Attempts: c.attempts.Load(), Retries: c.retries.Load(), BadResponses: c.badResponses.Load(),
		PoWChecks: c.powChecks.Load()}
}

// NewClient validates cfg and returns a client of the node at cfg.URL. It
// does not contact the node. Pass zerolog.Nop() for no logs; the client
// logs a warning for each failed attempt it retries, and nothing above.
func NewClient(cfg ClientConfig, log zerolog.Logger) (*Client, error) {
	base, err := parseNodeURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		neg  bool
	}{
		{"RequestTimeout", cfg.RequestTimeout < 0},
		{"MaxAttempts", cfg.MaxAttempts < 0},
		{"BackoffMin", cfg.BackoffMin < 0},
		{"BackoffMax", cfg.BackoffMax < 0},
		{"MaxResponseBytes", cfg.MaxResponseBytes < 0},
	} {
		if f.neg {
			return nil, fmt.Errorf("scan: %s is negative", f.name)
		}
	}
	setDefault(&cfg.RequestTimeout, DefaultRequestTimeout)
	setDefault(&cfg.MaxAttempts, DefaultMaxAttempts)
	setDefault(&cfg.BackoffMin, DefaultBackoffMin)
	setDefault(&cfg.BackoffMax, DefaultBackoffMax)
	setDefault(&cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	if cfg.BackoffMin > cfg.BackoffMax {
		return nil, fmt.Errorf("scan: BackoffMin (%s) is above BackoffMax (%s)", cfg.BackoffMin, cfg.BackoffMax)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	return &Client{cfg: cfg, base: base, http: hc, log: log,
		verified: newIDSet(verifiedIDs)}, nil
}

// verifiedIDs is how many checked header ids a client remembers: more than
// a reorg walk or a fetch window re-reads.
const verifiedIDs = 1 << 14

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// parseNodeURL accepts an absolute http(s) URL with a host, and an optional
// path prefix (a node behind a reverse proxy), without query or fragment.
func parseNodeURL(raw string) (*url.URL, error) {
	const example = " (e.g. http://127.0.0.1:9053)"
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("scan: node URL %q: %v%s", raw, err, example)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("scan: node URL %q: the scheme must be http or https%s", raw, example)
	case u.Opaque != "" || u.Hostname() == "":
		return nil, fmt.Errorf("scan: node URL %q has no host%s", raw, example)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("scan: node URL %q: a query or fragment has no place in a base URL", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("scan: node URL %q: port %q is out of range", raw, p)
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func defaultHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          32,
			MaxIdleConnsPerHost:   8, // the scanner fetches ahead concurrently
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Close closes the client's idle connections to the node, so that no
// connection goroutine outlives the client's owner. A request made after
// it opens a new connection.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
}

// Info returns the node's status (GET /info). Nothing in it can be
// verified; the client checks only that it is a node's answer: it names
// its network, and states a best block id wherever it states a height.
func (c *Client) Info(ctx context.Context) (*ergo.NodeInfo, error) {
	r := c.newRequest(http.MethodGet, "/info", nil, nil)
	return fetch(ctx, c, r, func(body []byte) (*ergo.NodeInfo, *Error) {
		n := new(ergo.NodeInfo)
		if err := n.UnmarshalJSON(body); err != nil {
			return nil, badResponse("%w", err)
		}
		switch {
		case n.Network == "":
			return nil, badResponse("no network named")
		case n.FullHeight != 0 && n.BestFullHeaderID.IsZero():
			return nil, badResponse("fullHeight %d without a bestFullHeaderId", n.FullHeight)
		case n.HeadersHeight != 0 && n.BestHeaderID.IsZero():
			return nil, badResponse("headersHeight %d without a bestHeaderId", n.HeadersHeight)
		}
		return n, nil
	})
}

// BlockIDsAt returns the ids of the headers the node holds at height (GET
// /blocks/at/{height}); the first is its best chain's. Above the node's
// headers tip the list is empty. The ids are the node's word: verify them
// by fetching the blocks.
func (c *Client) BlockIDsAt(ctx context.Context, height uint32) ([]ergo.Digest, error) {
	path := "/blocks/at/" + strconv.FormatUint(uint64(height), 10)
	if height > maxHeight {
		return nil, invalidArgument("GET "+path, "height %d is above the highest the node accepts (%d)", height, maxHeight)
	}
	r := c.newRequest(http.MethodGet, path, nil, nil)
	return fetch(ctx, c, r, func(body []byte) ([]ergo.Digest, *Error) {
		// Strings, not Digests: encoding/json leaves a Digest zero for null.
		var hexIDs []string
		if err := json.Unmarshal(body, &hexIDs); err != nil {
			return nil, &Error{Kind: ErrBadResponse, Height: height, Err: fmt.Errorf("not a JSON array of ids: %w", err)}
		}
		if hexIDs == nil {
			return nil, &Error{Kind: ErrBadResponse, Height: height, Err: errors.New("null instead of an array of ids")}
		}
		ids := make([]ergo.Digest, len(hexIDs))
		seen := make(map[ergo.Digest]struct{}, len(ids))
		for i, s := range hexIDs {
			id, err := ergo.ParseDigest(s)
			if err != nil {
				return nil, &Error{Kind: ErrBadResponse, Height: height, Err: fmt.Errorf("id %d of the answer: %w", i, err)}
			}
			if _, dup := seen[id]; dup {
				return nil, &Error{Kind: ErrBadResponse, BlockID: id, Height: height, Err: errors.New("listed twice")}
			}
			seen[id], ids[i] = struct{}{}, id
		}
		return ids, nil
	})
}

// Block returns the full block id (GET /blocks/{id}), decoded and verified
// (FullBlock.Verify: every id, root and the proof of work; and the body
// rules, consensus.CheckTransactions), whose header id is id. A node that
// does not hold the block in full answers ErrNotFound.
func (c *Client) Block(ctx context.Context, id ergo.Digest) (*ergo.FullBlock, error) {
	r := c.newRequest(http.MethodGet, "/blocks/"+id.String(), nil, nil)
	return fetch(ctx, c, r, func(body []byte) (*ergo.FullBlock, *Error) {
		b, err := ergo.DecodeBlock(body)
		if err != nil {
			return nil, badBlock(id, 0, err)
		}
		if got := b.Header.ComputeID(); got != id {
			return nil, badBlock(id, 0, fmt.Errorf("the node answered with block %s at height %d", got, b.Header.Height))
		}
		if err := b.Verify(); err != nil {
			return nil, badBlock(id, b.Header.Height, err)
		}
		b.Header.ID, b.Header.HasID = id, true
		if err := consensus.CheckTransactions(b); err != nil {
			return nil, badBlock(id, b.Header.Height, err)
		}
		return b, nil
	})
}

// Blocks returns the full blocks ids in one request (POST
// /blocks/headerIds), in the order of ids, each verified as by Block. The
// node leaves out the blocks it does not hold; here a block missing from
// the answer, or one not asked for or answered twice, is ErrBadResponse
// naming it. The answer must fit MaxResponseBytes: keep batches to a few
// blocks (a mainnet block is at most about 1.3 MB serialized, a few MB as
// JSON). No ids asks nothing and returns nothing; an id given twice is
// ErrInvalidArgument.
func (c *Client) Blocks(ctx context.Context, ids []ergo.Digest) ([]*ergo.FullBlock, error) {
	return c.blocks(ctx, ids, func(b *ergo.FullBlock, id ergo.Digest) error {
		if err := c.checkHeader(&b.Header, id); err != nil {
			return err
		}
		return verifyBody(b)
	})
}

// BlocksFor returns the full blocks of headers, which the caller has
// verified (as ChainSlice does), in one request and in their order. Each
// block's header must be the given one, which its id proves (the id is the
// hash of every field), so its proof of work is not computed again; the
// body is verified against it (verifyBody). Errors are as for Blocks.
func (c *Client) BlocksFor(ctx context.Context, headers []*ergo.Header) ([]*ergo.FullBlock, error) {
	ids := make([]ergo.Digest, len(headers))
	for i, h := range headers {
		ids[i] = h.TrustedID()
	}
	return c.blocks(ctx, ids, func(b *ergo.FullBlock, _ ergo.Digest) error { return verifyBody(b) })
}

// verifyBody checks a block whose header is verified: its ids and roots
// (FullBlock.VerifyBody), then its transactions against the body rules
// (consensus.CheckTransactions).
func verifyBody(b *ergo.FullBlock) error {
	if err := b.VerifyBody(); err != nil {
		return err
	}
	return consensus.CheckTransactions(b)
}

// blocks asks for ids and verifies each block of the answer, whose header
// id is among them, with verify.
func (c *Client) blocks(ctx context.Context, ids []ergo.Digest, verify func(b *ergo.FullBlock, id ergo.Digest) error) ([]*ergo.FullBlock, error) {
	const path = "/blocks/headerIds"
	if len(ids) == 0 {
		return nil, nil
	}
	pos := make(map[ergo.Digest]int, len(ids))
	for i, id := range ids {
		if _, dup := pos[id]; dup {
			return nil, invalidArgument("POST "+path, "block %s is asked for twice", id)
		}
		pos[id] = i
	}
	body, err := json.Marshal(ids)
	if err != nil { // Digest marshals as hex and cannot fail
		return nil, invalidArgument("POST "+path, "%w", err)
	}
	r := c.newRequest(http.MethodPost, path, nil, body)
	return fetch(ctx, c, r, func(body []byte) ([]*ergo.FullBlock, *Error) {
		raw, err := splitArray(body)
		if err != nil {
			return nil, badResponse("an array of blocks expected: %w", err)
		}
		if len(raw) > len(ids) {
			return nil, badResponse("%d blocks for %d ids", len(raw), len(ids))
		}
		out := make([]*ergo.FullBlock, len(ids))
		for i, m := range raw {
			b, err := ergo.DecodeBlock(m)
			if err != nil {
				return nil, badResponse("block %d of the answer: %w", i, err)
			}
			id := b.Header.ComputeID()
			j, asked := pos[id]
			switch {
			case !asked:
				return nil, badBlock(id, b.Header.Height, errors.New("not asked for"))
			case out[j] != nil:
				return nil, badBlock(id, b.Header.Height, errors.New("answered twice"))
			}
			if err := verify(b, id); err != nil {
				return nil, badBlock(id, b.Header.Height, err)
			}
			b.Header.ID, b.Header.HasID = id, true
			out[j] = b
		}
		for j, b := range out {
			if b == nil {
				return nil, badBlock(ids[j], 0, fmt.Errorf("missing from the answer (%d of %d blocks answered)", len(raw), len(ids)))
			}
		}
		return out, nil
	})
}

// Header returns the header of block id (GET /blocks/{id}/header), its id,
// stated difficulty and section ids checked, and its proof of work (a
// version 1 header's Autolykos v1 solution is not checked: CheckPoW says
// ergo.PoWUnchecked). The node answers only for blocks it holds in full,
// ErrNotFound otherwise.
func (c *Client) Header(ctx context.Context, id ergo.Digest) (*ergo.Header, error) {
	r := c.newRequest(http.MethodGet, "/blocks/"+id.String()+"/header", nil, nil)
	return fetch(ctx, c, r, func(body []byte) (*ergo.Header, *Error) {
		h := new(ergo.Header)
		if err := h.UnmarshalJSON(body); err != nil {
			return nil, badBlock(id, 0, err)
		}
		got := h.ComputeID()
		if got != id {
			return nil, badBlock(id, 0, fmt.Errorf("the node answered with the header of block %s at height %d", got, h.Height))
		}
		if err := c.checkHeader(h, id); err != nil {
			return nil, badBlock(id, h.Height, err)
		}
		h.ID, h.HasID = id, true
		return h, nil
	})
}

// checkHeader verifies what header id states about itself and its proof
// of work (Autolykos v1 excepted, see ergo.Header.CheckPoW), unless this
// client checked that header before.
func (c *Client) checkHeader(h *ergo.Header, id ergo.Digest) error {
	if err := h.CheckIDs(); err != nil {
		return err
	}
	if c.verified.has(id) {
		return nil
	}
	c.powChecks.Add(1)
	if _, err := consensus.CheckPoW(h, id); err != nil {
		return err
	}
	c.verified.add(id)
	return nil
}

// checkLink checks that h is the child of parent, whose id is parentID.
func checkLink(h, parent *ergo.Header, parentID ergo.Digest) error {
	switch {
	case h.ParentID != parentID:
		return &ergo.Error{Kind: ergo.ErrLink, Field: "parentId",
			Detail: fmt.Sprintf("is %s, the header before it is %s at height %d", h.ParentID, parentID, parent.Height)}
	case h.Height != parent.Height+1:
		return &ergo.Error{Kind: ergo.ErrLink, Field: "height",
			Detail: fmt.Sprintf("the parent %s is at height %d", parentID, parent.Height)}
	}
	return nil
}

// ChainSlice returns the node's best chain of headers from fromHeight to
// toHeight, or to the node's headers tip when that is lower (GET
// /blocks/chainSlice): each header verified as by Header, and each the
// child of the one before (parentId is the previous id, height one more).
// The first header is at fromHeight; the slice is empty when the node has
// no header that high. Height 0 has no block: a slice from 0 starts at 1.
// The span may be at most MaxChainSlice heights; a wider one, or fromHeight
// above toHeight, is ErrInvalidArgument.
//
// The node's slice starts one above the fromHeight it is given (its
// headerChainBack stops at fromHeight+1), so the request asks from
// fromHeight-1; a node that answers that height too has it checked for its
// link and left out.
func (c *Client) ChainSlice(ctx context.Context, fromHeight, toHeight uint32) ([]*ergo.Header, error) {
	from := max(fromHeight, 1)
	q := url.Values{
		"fromHeight": {strconv.FormatUint(uint64(from-1), 10)},
		"toHeight":   {strconv.FormatUint(uint64(toHeight), 10)},
	}
	r := c.newRequest(http.MethodGet, "/blocks/chainSlice", q, nil)
	switch {
	case toHeight < from:
		return nil, invalidArgument(r.name, "toHeight %d is below fromHeight %d", toHeight, from)
	case toHeight > maxHeight:
		return nil, invalidArgument(r.name, "toHeight %d is above the highest the node accepts (%d)", toHeight, maxHeight)
	case toHeight-from >= MaxChainSlice:
		return nil, invalidArgument(r.name, "%d heights, more than MaxChainSlice (%d)", toHeight-from+1, MaxChainSlice)
	}
	span := int(toHeight - from + 1)
	return fetch(ctx, c, r, func(body []byte) ([]*ergo.Header, *Error) {
		raw, err := splitArray(body)
		if err != nil {
			return nil, badResponse("an array of headers expected: %w", err)
		}
		if len(raw) > span+1 {
			return nil, badResponse("%d headers for %d heights", len(raw), span)
		}
		headers := make([]*ergo.Header, len(raw))
		var prev ergo.Digest
		for i, m := range raw {
			h := new(ergo.Header)
			if err := h.UnmarshalJSON(m); err != nil {
				return nil, badResponse("header %d of the answer: %w", i, err)
			}
			id := h.ComputeID()
			if err := c.checkHeader(h, id); err != nil {
				return nil, badBlock(id, h.Height, err)
			}
			if h.Height > toHeight {
				return nil, badBlock(id, h.Height, fmt.Errorf("above toHeight %d", toHeight))
			}
			if i > 0 {
				if err := checkLink(h, headers[i-1], prev); err != nil {
					return nil, badBlock(id, h.Height, err)
				}
			}
			h.ID, h.HasID = id, true
			headers[i], prev = h, id
		}
		// Heights are consecutive: what lies below from is a prefix.
		for len(headers) > 0 && headers[0].Height < from {
			headers = headers[1:]
		}
		if len(headers) > 0 && headers[0].Height != from {
			return nil, badResponse("the slice starts at height %d, not at fromHeight %d", headers[0].Height, from)
		}
		return headers, nil
	})
}

// idSet is a bounded set of ids that forgets the oldest first. It is safe
// for concurrent use.
type idSet struct {
	mu    sync.Mutex
	ids   map[ergo.Digest]struct{}
	order []ergo.Digest // a ring: next is the oldest once full
	next  int
}

func newIDSet(n int) *idSet {
	return &idSet{ids: make(map[ergo.Digest]struct{}, n), order: make([]ergo.Digest, 0, n)}
}

func (s *idSet) has(id ergo.Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

func (s *idSet) add(id ergo.Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ids[id]; ok {
		return
	}
	if len(s.order) < cap(s.order) {
		s.order = append(s.order, id)
	} else {
		delete(s.ids, s.order[s.next])
		s.order[s.next] = id
		s.next = (s.next + 1) % len(s.order)
	}
	s.ids[id] = struct{}{}
}
