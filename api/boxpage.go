package api

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strconv"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/internal/readable"
)

// The explanation of a box for people: GET /boxes/{id}, what
// /api/v1/boxes/{id} answers, as one self-contained HTML page (inline
// CSS, no script) linking the boxes it names to their own pages. The HTML
// reports link every box here.

//go:embed box.html.tmpl
var boxPageTemplate string

var boxPage = template.Must(template.New("box").Funcs(template.FuncMap{
	"hex":   func(d ergo.Digest) string { return d.String() },
	"short": func(d ergo.Digest) string { s := d.String(); return s[:8] + "…" + s[len(s)-6:] },
	"num":   func(v uint32) string { return readable.Group(strconv.FormatUint(uint64(v), 10)) },
	"group": func(v uint64) string { return readable.Group(strconv.FormatUint(v, 10)) },
	"erg":   func(v uint64) string { return readable.ERG(strconv.FormatUint(v, 10)) },
	"add":   func(a, b int) int { return a + b },
}).Parse(boxPageTemplate))

func (h *Handler) boxPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	id, err := ParseBoxID(r.PathValue("id"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ex, ok, err := h.cfg.Store.Explain(r.Context(), id)
	if err != nil {
		h.log.Error().Err(err).Str("path", r.URL.Path).Msg("request failed")
		http.Error(w, "internal error: see the auditor's log", http.StatusInternalServerError)
		return
	}
	if !ok {
		http.Error(w, fmt.Sprintf("box %s is not stored: no watched protocol found it relevant, or it is above the scanned tip", id), http.StatusNotFound)
		return
	}
	var b bytes.Buffer
	if err := boxPage.Execute(&b, Explain(ex)); err != nil { // the page's own fault
		h.log.Error().Err(err).Str("path", r.URL.Path).Msg("render the box page")
		http.Error(w, "internal error: see the auditor's log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b.Bytes()) //nolint:errcheck // the client went away
}
