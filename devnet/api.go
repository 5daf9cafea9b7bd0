package devnet

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/autolykos"
)

// Limits of the API.
const (
	// MaxHeaderIDs is the most ids POST /blocks/headerIds takes (the node
	// has no limit; an answer of 500 blocks is already megabytes).
	MaxHeaderIDs = 500
	// MaxChainSlice is the most headers GET /blocks/chainSlice returns:
	// node 6's MaxHeaders. A wider slice loses its low end, as on the node.
	MaxChainSlice = 16384
	// maxBody bounds a request body: MaxHeaderIDs ids take 34 kB.
	maxBody = 1 << 20
)

// What /info says about the node.
const (
	nodeName   = "ergo-devnet"
	appVersion = "6.0.3-devnet"
	network    = "devnet"
)

// Handler returns the node's REST API subset over the devnet:
//
//	GET  /info
//	GET  /blocks/at/{height}
//	GET  /blocks/{headerId}
//	GET  /blocks/{headerId}/header
//	POST /blocks/headerIds
//	GET  /blocks/chainSlice?fromHeight=&toHeight=
//
// Errors are JSON in the node's format, {"error":404,"reason":"not-found",
// "detail":"…"}: 400 for a malformed request, 404 for an unknown block or
// path, 405 for a known path asked with another method, 413 for a body over
// 1 MiB, 500 if rebuilding a block fails (a bug, logged). No request can
// make it panic: a panic would be recovered, logged and answered with 500.
// The package documentation details each endpoint's semantics.
func (d *Devnet) Handler() http.Handler {
	return &api{d: d, log: d.log.With().Str("component", "api").Logger()}
}

type api struct {
	d   *Devnet
	log zerolog.Logger
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			a.log.Error().Str("panic", fmt.Sprint(p)).Str("stack", string(debug.Stack())).Str("path", r.URL.Path).Msg("request panicked")
			writeError(rec, http.StatusInternalServerError, "internal error")
		}
		a.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.status).Dur("took", time.Since(start)).Msg("request")
	}()
	a.route(rec, r)
}

// route dispatches on the path. The node's routes overlap (/blocks/at/{h}
// and /blocks/{id}/header both match /blocks/at/header), so they are
// matched here by hand, in the node's order.
func (a *api) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/info" {
		if allow(w, r, http.MethodGet) {
			a.info(w)
		}
		return
	}
	seg, ok := strings.CutPrefix(p, "/blocks/")
	if !ok {
		writeError(w, http.StatusNotFound, "no such endpoint: %s", p)
		return
	}
	parts := strings.Split(seg, "/")
	switch {
	case len(parts) == 1 && parts[0] == "headerIds":
		if allow(w, r, http.MethodPost) {
			a.headerIDs(w, r)
		}
	case len(parts) == 1 && parts[0] == "chainSlice":
		if allow(w, r, http.MethodGet) {
			a.chainSlice(w, r)
		}
	case len(parts) == 2 && parts[0] == "at":
		if allow(w, r, http.MethodGet) {
			a.blocksAt(w, parts[1])
		}
	case len(parts) == 1:
		if allow(w, r, http.MethodGet) {
			a.block(w, parts[0])
		}
	case len(parts) == 2 && parts[1] == "header":
		if allow(w, r, http.MethodGet) {
			a.header(w, parts[0])
		}
	default:
		writeError(w, http.StatusNotFound, "no such endpoint: %s", p)
	}
}

// allow answers 405 unless r uses method (HEAD counts as GET).
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || method == http.MethodGet && r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", method)
	writeError(w, http.StatusMethodNotAllowed, "%s takes %s, not %s", r.URL.Path, method, r.Method)
	return false
}

// infoJSON is GET /info, with node 6's fields. Heights, ids and scores are
// null before the first block, as on a node that has synced nothing.
type infoJSON struct {
	Name                 string         `json:"name"`
	AppVersion           string         `json:"appVersion"`
	Network              string         `json:"network"`
	HeadersHeight        *uint32        `json:"headersHeight"`
	FullHeight           *uint32        `json:"fullHeight"`
	MaxPeerHeight        *uint32        `json:"maxPeerHeight"`
	BestHeaderID         *ergo.Digest   `json:"bestHeaderId"`
	BestFullHeaderID     *ergo.Digest   `json:"bestFullHeaderId"`
	PreviousFullHeaderID *ergo.Digest   `json:"previousFullHeaderId"`
	Difficulty           *big.Int       `json:"difficulty"`
	HeadersScore         *big.Int       `json:"headersScore"`
	FullBlocksScore      *big.Int       `json:"fullBlocksScore"`
	UnconfirmedCount     int            `json:"unconfirmedCount"`
	StateRoot            *ergo.HexBytes `json:"stateRoot"`
	StateType            string         `json:"stateType"`
	StateVersion         *ergo.Digest   `json:"stateVersion"`
	IsMining             bool           `json:"isMining"`
	PeersCount           int            `json:"peersCount"`
	LaunchTime           int64          `json:"launchTime"`
	LastSeenMessageTime  int64          `json:"lastSeenMessageTime"`
	LastMemPoolUpdate    int64          `json:"lastMemPoolUpdateTime"`
	GenesisBlockID       *ergo.Digest   `json:"genesisBlockId"`
	Parameters           parametersJSON `json:"parameters"`
	EIP27Supported       bool           `json:"eip27Supported"`
	EIP37Supported       bool           `json:"eip37Supported"`
	IsExplorer           bool           `json:"isExplorer"`
	CurrentTime          int64          `json:"currentTime"`
}

type parametersJSON struct {
	Height           uint32 `json:"height"`
	StorageFeeFactor int    `json:"storageFeeFactor"`
	MinValuePerByte  int    `json:"minValuePerByte"`
	MaxBlockSize     int    `json:"maxBlockSize"`
	MaxBlockCost     int    `json:"maxBlockCost"`
	BlockVersion     int    `json:"blockVersion"`
	TokenAccessCost  int    `json:"tokenAccessCost"`
	InputCost        int    `json:"inputCost"`
	DataInputCost    int    `json:"dataInputCost"`
	OutputCost       int    `json:"outputCost"`
}

func (a *api) info(w http.ResponseWriter) {
	d := a.d
	launch := d.launched.UnixMilli()
	info := infoJSON{
		Name: nodeName, AppVersion: appVersion, Network: network, StateType: "utxo",
		LaunchTime: launch, LastSeenMessageTime: launch, LastMemPoolUpdate: launch, EIP27Supported: true, EIP37Supported: true,
		CurrentTime: time.Now().UnixMilli(),
		Parameters: parametersJSON{
			StorageFeeFactor: 1_250_000, MinValuePerByte: minValuePerByte, MaxBlockSize: 1_271_009,
			MaxBlockCost: 8_001_091, BlockVersion: blockVersion, TokenAccessCost: 100, InputCost: 2_407,
			DataInputCost: 100, OutputCost: 298,
		},
	}
	d.mu.RLock()
	tip := d.visible(d.view.height)
	var genesis ergo.Digest
	if tip != nil {
		genesis = d.final[0].id
	}
	d.mu.RUnlock()
	if tip != nil {
		h, id, parent, root := tip.height, tip.id, tip.parent, ergo.HexBytes(tip.stateRoot[:])
		diff, _ := autolykos.DecodeCompactBits(tip.nBits) // the devnet's own, valid
		score := new(big.Int).SetUint64(tip.work)
		info.HeadersHeight, info.FullHeight, info.MaxPeerHeight = &h, &h, &h
		info.BestHeaderID, info.BestFullHeaderID, info.PreviousFullHeaderID, info.StateVersion = &id, &id, &parent, &id
		info.Difficulty, info.HeadersScore, info.FullBlocksScore = diff, score, score
		info.StateRoot, info.GenesisBlockID = &root, &genesis
		info.Parameters.Height = h / params.VotingLength * params.VotingLength
	}
	writeValue(w, info)
}

// blocksAt answers GET /blocks/at/{height}: the ids at height, the visible
// best chain's first; [] above the tip.
func (a *api) blocksAt(w http.ResponseWriter, s string) {
	h, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		writeError(w, http.StatusBadRequest, "height %q is not a number in 0 … 2147483647", s)
		return
	}
	a.d.mu.RLock()
	ids := a.d.idsAt(uint32(h))
	a.d.mu.RUnlock()
	if ids == nil {
		ids = []ergo.Digest{}
	}
	writeValue(w, ids)
}

// parseID reads a header id from a path. Hex that is not an id (the wrong
// length) names no block: the node answers 404 for it, and so does the
// devnet.
func parseID(w http.ResponseWriter, s string) (ergo.Digest, bool) {
	b, err := hex.DecodeString(s)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Wrong modifierId format: %q is not hex", s)
		return ergo.Digest{}, false
	}
	if len(b) != len(ergo.Digest{}) {
		writeError(w, http.StatusNotFound, "no block %s", s)
		return ergo.Digest{}, false
	}
	return ergo.Digest(b), true
}

func (a *api) block(w http.ResponseWriter, s string) {
	id, ok := parseID(w, s)
	if !ok {
		return
	}
	body, ok, err := a.d.blockJSON(id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, "cannot rebuild block %s: %v", id, err)
	case !ok:
		writeError(w, http.StatusNotFound, "no block %s", id)
	default:
		writeJSON(w, http.StatusOK, body)
	}
}

func (a *api) header(w http.ResponseWriter, s string) {
	id, ok := parseID(w, s)
	if !ok {
		return
	}
	ref, ok := a.d.served(id)
	if !ok {
		writeError(w, http.StatusNotFound, "no block %s", id)
		return
	}
	a.d.mu.RLock()
	h := a.d.record(ref).header()
	a.d.mu.RUnlock()
	writeJSON(w, http.StatusOK, h.AppendJSON(nil))
}

// headerIDs answers POST /blocks/headerIds: the full blocks of the ids in
// the body's JSON array, in its order. As on the node, an id the devnet does
// not serve is left out (the answer is then shorter than the question), an
// id given twice is answered twice, and one that is not hex fails the whole
// request.
func (a *api) headerIDs(w http.ResponseWriter, r *http.Request) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "the body exceeds %d bytes", maxBody)
		} else {
			writeError(w, http.StatusBadRequest, "reading the body: %v", err)
		}
		return
	}
	var given []string
	if err := json.Unmarshal(raw, &given); err != nil || given == nil {
		writeError(w, http.StatusBadRequest, "the body must be a JSON array of header ids")
		return
	}
	if len(given) > MaxHeaderIDs {
		writeError(w, http.StatusBadRequest, "%d ids, at most %d", len(given), MaxHeaderIDs)
		return
	}
	ids := make([]ergo.Digest, 0, len(given))
	var wrong []string
	for _, s := range given {
		b, err := hex.DecodeString(s)
		switch {
		case err != nil:
			wrong = append(wrong, strconv.Quote(s))
		case len(b) == len(ergo.Digest{}):
			ids = append(ids, ergo.Digest(b))
		}
	}
	if len(wrong) > 0 {
		writeError(w, http.StatusBadRequest, "Wrong modifierId format for: %s", strings.Join(wrong, ", "))
		return
	}
	found := make([][]byte, 0, len(ids))
	size := 2
	for _, id := range ids {
		body, ok, err := a.d.blockJSON(id)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "cannot rebuild block %s: %v", id, err)
			return
		}
		if ok {
			found = append(found, body)
			size += len(body) + 1
		}
	}
	out := append(make([]byte, 0, size), '[')
	for i, body := range found {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, body...)
	}
	writeJSON(w, http.StatusOK, append(out, ']'))
}

// chainSlice answers GET /blocks/chainSlice as the node does: from the
// visible best chain's header at toHeight (the tip when toHeight is above
// it, 0 or negative) down to the header at fromHeight+1 — the node's
// slice starts one above fromHeight — or to height 1, keeping at most
// MaxChainSlice headers (the highest). The defaults are fromHeight=1 and
// toHeight=16384; toHeight below fromHeight is 400. (A value that is not a
// 32-bit integer is 400 here; the node answers 500.)
func (a *api) chainSlice(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	param := func(name string, def int64) (int64, bool) {
		s := q.Get(name)
		if s == "" {
			return def, true
		}
		v, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			writeError(w, http.StatusBadRequest, "%s=%q is not a 32-bit integer", name, s)
			return 0, false
		}
		return v, true
	}
	from, ok := param("fromHeight", 1)
	if !ok {
		return
	}
	to, ok := param("toHeight", MaxChainSlice)
	if !ok {
		return
	}
	if to < from {
		writeError(w, http.StatusBadRequest, "toHeight < fromHeight")
		return
	}
	d := a.d
	d.mu.RLock()
	tip := int64(d.view.height)
	top := tip
	if to >= 1 && to <= tip {
		top = to
	}
	bottom := top
	if top > from+1 {
		bottom = max(1, from+1, top-MaxChainSlice+1)
	}
	headers := make([]ergo.Header, 0, max(0, top-bottom+1))
	for h := bottom; h <= top && tip > 0; h++ {
		headers = append(headers, d.visible(uint32(h)).header())
	}
	d.mu.RUnlock()
	out := append(make([]byte, 0, 1024*len(headers)+2), '[')
	for i := range headers {
		if i > 0 {
			out = append(out, ',')
		}
		out = headers[i].AppendJSON(out)
	}
	writeJSON(w, http.StatusOK, append(out, ']'))
}

// statusRecorder remembers the status a handler answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client hung up: nothing to do
}

func writeValue(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding the answer: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// apiError is the node's error body.
type apiError struct {
	Error  int    `json:"error"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// reasons are the node's reason strings (ApiError), and HTTP's for the
// statuses the node has none for.
var reasons = map[int]string{
	http.StatusBadRequest:            "bad.request",
	http.StatusNotFound:              "not-found",
	http.StatusInternalServerError:   "internal.error",
	http.StatusMethodNotAllowed:      "method-not-allowed",
	http.StatusRequestEntityTooLarge: "request-entity-too-large",
	http.StatusServiceUnavailable:    "service-unavailable",
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	body, _ := json.Marshal(apiError{Error: status, Reason: reasons[status], Detail: fmt.Sprintf(format, args...)}) // cannot fail
	writeJSON(w, status, body)
}

// Unavailable answers every request with 503 in the node's error format,
// with detail as the reason: what to serve while a devnet is being made.
func Unavailable(detail string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "%s", detail)
	})
}
