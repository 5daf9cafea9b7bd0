package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/devnet"
	"github.com/async-emission/auditor/ergo"
)

// contract is docs/openapi.yaml, loaded and validated, with a router
// that finds the operation of a request, and what the test has seen of
// it.
type contract struct {
	doc    *openapi3.T
	router routers.Router
	// seen records the status codes each operation answered.
	seen map[string]map[int]bool
}

func loadContract(t *testing.T) *contract {
	t.Helper()
	// The reports' HTML (and the listing) is text, as far as a schema of
	// type string goes.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	ctx := context.Background()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatalf("docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(ctx, openapi3.EnableSchemaFormatValidation(), openapi3.EnableSchemaPatternValidation()); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &contract{doc: doc, router: router, seen: map[string]map[int]bool{}}
}

// check sends a GET for path to h and validates the answer against the
// document: the path must be one of its operations, and the status code,
// content type, headers and body one it documents. It returns the answer.
func (c *contract) check(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080"+path, nil)
	h.ServeHTTP(w, req)
	if err := c.validate(req, w.Code, w.Header(), w.Body.Bytes()); err != nil {
		t.Errorf("GET %s answered %d %s, which docs/openapi.yaml does not allow: %v\n%s",
			path, w.Code, w.Header().Get("Content-Type"), err, truncate(w.Body.Bytes()))
	}
	if w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET %s: no X-Content-Type-Options: nosniff", path)
	}
	return w
}

// validate checks one answer to req against the document and records it.
func (c *contract) validate(req *http.Request, code int, header http.Header, body []byte) error {
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("no operation: %w", err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		return fmt.Errorf("request: %w", err)
	}
	err = openapi3filter.ValidateResponse(req.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: code, Header: header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true,
			SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.EnableFormatValidation()}},
	})
	if err != nil {
		return err
	}
	op := route.Operation.OperationID
	if c.seen[op] == nil {
		c.seen[op] = map[int]bool{}
	}
	c.seen[op][code] = true
	return nil
}

// covered fails t unless every operation was seen answering every status
// code the document gives it.
func (c *contract) covered(t *testing.T) {
	t.Helper()
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				var n int
				fmt.Sscan(code, &n)
				if !c.seen[op.OperationID][n] {
					t.Errorf("%s %s (%s) documents %s, which the test never saw", method, path, op.OperationID, code)
				}
			}
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// testOpenAPI checks the handler's real answers — every route, every
// status code, the JSON bodies of every shape — against docs/openapi.yaml,
// and that the document describes nothing the handler does not do.
func testOpenAPI(t *testing.T, c *chain) {
	ct := loadContract(t)
	ctx := context.Background()
	tip, _, err := c.store.Tip(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reports := t.TempDir()
	if err := os.WriteFile(filepath.Join(reports, "report-20261124T030000Z.json"), []byte(`{"schema": "async-emission-auditor/report/v1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(reports, "report-20261124T030000Z.html"), []byte("<!DOCTYPE html><title>r</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(reports, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	lat := api.NewLatency()
	lat.BlockConnected(time.Now(), time.Now())
	full := api.Config{Store: c.store, MaxLag: 5, Protocols: []string{"demo", "tree"}, ReportsDir: reports,
		Chain:        func() api.ChainStats { s := chainStats(c); s.NodeHeight = tip.Height + 1; return s },
		Publish:      func() api.PublishStats { return publishStats },
		Reports:      func() api.ReportStats { return reportStats },
		Conservation: func() (api.ConservationStats, bool) { return conservationStats, true },
		Latency:      lat,
		HA:           func() api.HAStatus { return haStatus },
	}
	handler := func(cfg api.Config) http.Handler {
		h, err := api.NewHandler(cfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	h := handler(full)
	bare := handler(api.Config{Store: c.store})
	faulty := &faultyStore{Store: c.store}
	faulty.fail.Store(true)
	broken := handler(api.Config{Store: faulty, Chain: full.Chain})

	ct.check(t, h, "/healthz")
	ct.check(t, h, "/readyz")
	ct.check(t, bare, "/readyz") // 503: no chain
	ct.check(t, broken, "/readyz")
	ct.check(t, h, "/metrics")
	ct.check(t, h, "/api/v1/status")
	ct.check(t, bare, "/api/v1/status")
	ct.check(t, broken, "/api/v1/status")
	// Boxes of every shape: each class, a result with what it was built on
	// and what was built on it, a spent box, one with a second verdict.
	picked := map[string]bool{}
	for _, e := range c.exp {
		key := e.Class + "/" + e.Verdict
		if e.Kind == devnet.VerdictSpent {
			key = "spent"
		}
		if picked[key] {
			continue
		}
		picked[key] = true
		ct.check(t, h, "/api/v1/boxes/"+e.BoxID.String())
	}
	if len(picked) < 8 {
		t.Errorf("the scenario's boxes cover only %v", picked)
	}
	for _, bad := range []string{"nothex", strings.Repeat("ab", 31), strings.Repeat("AB", 32) + "00"} {
		ct.check(t, h, "/api/v1/boxes/"+bad)
	}
	ct.check(t, h, "/api/v1/boxes/"+ergo.Hash([]byte("not stored")).String())
	ct.check(t, broken, "/api/v1/boxes/"+c.exp[0].BoxID.String())
	// The same boxes' pages for people.
	for _, e := range c.exp[:40] {
		ct.check(t, h, "/boxes/"+e.BoxID.String())
	}
	ct.check(t, h, "/boxes/nothex")
	ct.check(t, h, "/boxes/"+ergo.Hash([]byte("not stored")).String())
	ct.check(t, broken, "/boxes/"+c.exp[0].BoxID.String())
	ct.check(t, h, "/reports/")
	ct.check(t, h, "/reports/report-20261124T030000Z.json")
	ct.check(t, h, "/reports/report-20261124T030000Z.html")
	ct.check(t, h, "/reports/report-19700101T000000Z.json")
	if w := ct.check(t, h, "/reports/archive"); w.Code != http.StatusMovedPermanently || w.Header().Get("Location") != "archive/" {
		t.Errorf("GET /reports/archive: %d to %q, want a redirect to its listing", w.Code, w.Header().Get("Location"))
	}
	ct.check(t, bare, "/reports/")
	ct.covered(t)

	// The document is strict: answers it does not describe fail. Real
	// answers, each changed in one place.
	real := func(h http.Handler, path string) map[string]any {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		var v map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return v
	}
	box := "/api/v1/boxes/" + c.exp[0].BoxID.String()
	for _, tc := range []struct {
		what, path string
		code       int
		ctype      string
		body       any
	}{
		{"an undocumented field", "/api/v1/status", 200, "application/json",
			with(real(h, "/api/v1/status"), func(v map[string]any) { v["version"] = "v1.2.3" })},
		{"a field missing", "/api/v1/status", 200, "application/json",
			with(real(h, "/api/v1/status"), func(v map[string]any) { delete(v, "state_digest") })},
		{"a field of the wrong type", "/readyz", 200, "application/json",
			with(real(h, "/readyz"), func(v map[string]any) { v["ready"] = "yes" })},
		{"an id that is not lower-case hex", box, 200, "application/json",
			with(real(h, box), func(v map[string]any) { v["box"].(map[string]any)["id"] = strings.ToUpper(c.exp[0].BoxID.String()) })},
		{"a verdict of another word", box, 200, "application/json",
			with(real(h, box), func(v map[string]any) { v["verdicts"].([]any)[0].(map[string]any)["verdict"] = "failed" })},
		{"a negative amount", box, 200, "application/json",
			with(real(h, box), func(v map[string]any) { v["box"].(map[string]any)["value"] = -1 })},
		{"an undocumented status", "/healthz", 418, "text/plain", "ok\n"},
		{"another content type", box, 200, "text/html", "<p>"},
		{"an error without its message", "/api/v1/boxes/00", 400, "application/json", map[string]any{}},
	} {
		body, ok := tc.body.(string)
		if !ok {
			b, err := json.Marshal(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			body = string(b)
		}
		req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8080"+tc.path, nil)
		if err := ct.validate(req, tc.code, http.Header{"Content-Type": {tc.ctype}}, []byte(body)); err == nil {
			t.Errorf("%s: %d %s %s passes docs/openapi.yaml", tc.what, tc.code, tc.ctype, truncate([]byte(body)))
		}
	}
	// Every path the document names is served: none is a 404 of the mux
	// for an unknown path.
	var paths []string
	for p := range ct.doc.Paths.Map() {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	want := []string{"/api/v1/boxes/{id}", "/api/v1/status", "/boxes/{id}", "/healthz", "/metrics", "/readyz", "/reports/", "/reports/{file}"}
	if !slices.Equal(paths, want) {
		t.Errorf("docs/openapi.yaml documents %v, want the handler's routes %v", paths, want)
	}
}

// with returns v after change.
func with(v map[string]any, change func(map[string]any)) map[string]any {
	change(v)
	return v
}
