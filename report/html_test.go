package report

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/rules"
)

// samplePage makes two reports of the sample history, a day apart: one
// midway (at height 64), one at its end; it returns the second's HTML
// path.
func samplePage(t *testing.T, dir string) string {
	t.Helper()
	res := sampleReports(t, dir)
	return res.Files[1]
}

// sampleReports makes the reports of samplePage and returns the second.
func sampleReports(t *testing.T, dir string) *Result {
	t.Helper()
	clock := newFakeClock(reportTime.Add(-24 * time.Hour))
	var r *Reporter
	newSample(t, func(s *sample) {
		var err error
		r, err = NewReporter(s.store, nil, Config{Dir: dir, Protocols: []rules.Protocol{s.protocol}, Clock: clock,
			ExplorerURL: testExplorer}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(context.Background(), Chain{}); err != nil {
			t.Fatal(err)
		}
	})
	clock.Advance(24 * time.Hour)
	res, err := r.Run(context.Background(), Chain{Following: true, NodeHeight: 123, TipHeight: 120, Reorgs: 4, DeepestReorg: 2, BlocksPerSecond: 830.4})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// testExplorer is the block explorer the sample report links to.
const testExplorer = "https://explorer.example/en/boxes/{box}"

// TestHTMLIsSelfContained parses the page and checks its structure: a
// doctype, a head with a viewport and the style, a body with the charts,
// no script, and nothing to fetch (no URL at all).
func TestHTMLIsSelfContained(t *testing.T) {
	page, err := os.ReadFile(samplePage(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, page, true)
	for _, want := range []string{"@media print", "@media (max-width", "not conserved", "emission_amount", "unclassified",
		"bad_mint", "unbalanced", html.EscapeString(rules.ReasonMissingDataInput.Sentence())} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the page does not mention %q", want)
		}
	}
}

// TestHTMLOfAnEmptyStore renders a store with nothing in it.
func TestHTMLOfAnEmptyStore(t *testing.T) {
	r := build(&db.ReportData{Empty: true}, input{now: reportTime, protocols: []rules.Protocol{{Name: "demo", AsyncSupply: supply}}})
	page, err := renderHTML(r, "")
	if err != nil {
		t.Fatal(err)
	}
	checkPage(t, page, false)
}

// checkPage checks that page is one well-formed, self-contained page: it
// fetches nothing, and links only to its own anchors, the auditor's
// explanations of boxes (../boxes/ID) and the test's block explorer.
func checkPage(t *testing.T, page []byte, charts bool) {
	t.Helper()
	explorer := strings.TrimSuffix(testExplorer, BoxPlaceholder)
	outside := bytes.Count(page, []byte("http://")) + bytes.Count(page, []byte("https://"))
	if n := bytes.Count(page, []byte(`href="`+explorer)); outside != n {
		t.Errorf("the page names %d URLs, %d of them links to the block explorer", outside, n)
	}
	for _, bad := range []string{"url(", "@import", "javascript:"} {
		if i := bytes.Index(page, []byte(bad)); i >= 0 {
			t.Errorf("the page holds %q: …%s…", bad, page[max(0, i-40):min(len(page), i+40)])
		}
	}
	link := regexp.MustCompile(`^(#[a-z0-9-]+|\.\./boxes/[0-9a-f]{64}|` + regexp.QuoteMeta(explorer) + `[0-9a-f]{64})$`)
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) {
		t.Error("no doctype")
	}
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var (
		doctype, viewport, style, title bool
		svgs, tables                    int
		heads, bodies                   int
	)
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.DoctypeNode:
			doctype = strings.EqualFold(n.Data, "html")
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Script, atom.Iframe, atom.Object, atom.Embed, atom.Img, atom.Link, atom.Base, atom.Form:
				t.Errorf("the page has a <%s>", n.Data)
			case atom.Head:
				heads++
			case atom.Body:
				bodies++
			case atom.Style:
				style = n.Parent.DataAtom == atom.Head
			case atom.Title:
				title = n.FirstChild != nil && strings.TrimSpace(n.FirstChild.Data) != ""
			case atom.Meta:
				if attr(n, "name") == "viewport" && strings.Contains(attr(n, "content"), "width=device-width") {
					viewport = true
				}
			case atom.Svg:
				svgs++
				if attr(n, "viewbox") == "" {
					t.Error("an svg without a viewBox")
				}
			case atom.Table:
				tables++
			}
			if n.Data == "svg" && n.Namespace == "svg" && n.DataAtom == 0 {
				svgs++
			}
			for _, a := range n.Attr {
				k := strings.ToLower(a.Key)
				if k == "href" && n.DataAtom == atom.A && link.MatchString(a.Val) {
					continue
				}
				if k == "src" || k == "href" || k == "srcset" || k == "action" || strings.HasPrefix(k, "on") ||
					strings.Contains(strings.ToLower(a.Val), "data:") {
					t.Errorf("<%s> has %s=%q", n.Data, a.Key, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if !doctype || !viewport || !style || !title || heads != 1 || bodies != 1 {
		t.Errorf("doctype %t, viewport %t, style in head %t, title %t, %d heads, %d bodies", doctype, viewport, style, title, heads, bodies)
	}
	if charts && svgs == 0 || tables == 0 {
		t.Errorf("%d charts, %d tables", svgs, tables)
	}
	// The tokenizer must see every tag closed as opened: a template slip
	// (an unclosed <td>, a stray </div>) shows as a mismatch.
	checkNesting(t, page)
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, key) {
			return a.Val
		}
	}
	return ""
}

// voidElements have no end tag.
var voidElements = map[string]bool{"meta": true, "br": true, "hr": true, "img": true, "input": true, "link": true}

// checkNesting checks that the page's tags nest: each end tag closes the
// last open element.
func checkNesting(t *testing.T, page []byte) {
	t.Helper()
	z := html.NewTokenizer(bytes.NewReader(page))
	var stack []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			if len(stack) > 0 {
				t.Errorf("unclosed elements at the end: %v", stack)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !voidElements[string(name)] {
				stack = append(stack, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(stack) == 0 || stack[len(stack)-1] != string(name) {
				t.Fatalf("</%s> closes %v", name, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// TestWriteSampleReport writes the sample report into
// $AUDITOR_REPORT_SAMPLE_DIR, for scripts/screenshot-report.sh; without it
// the test skips.
func TestWriteSampleReport(t *testing.T) {
	dir := os.Getenv("AUDITOR_REPORT_SAMPLE_DIR")
	if dir == "" {
		t.Skip("AUDITOR_REPORT_SAMPLE_DIR is not set (scripts/screenshot-report.sh sets it)")
	}
	t.Log(samplePage(t, dir))
}

// TestScreenshotScript runs scripts/screenshot-report.sh on the sample
// report when a Chromium is installed.
func TestScreenshotScript(t *testing.T) {
	browser := ""
	for _, b := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if _, err := exec.LookPath(b); err == nil {
			browser = b
			break
		}
	}
	if browser == "" {
		t.Skip("no chromium, chromium-browser or google-chrome on PATH: the screenshots are not taken")
	}
	if testing.Short() {
		t.Skip("-short: no screenshots")
	}
	out := t.TempDir()
	page := samplePage(t, out)
	cmd := exec.Command("bash", "../scripts/screenshot-report.sh", page, out)
	cmd.Env = append(os.Environ(), "CHROMIUM="+browser)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("screenshot-report.sh: %v\n%s", err, b)
	}
	for _, name := range []string{"report-phone.png", "report-desktop.png"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 10_000 {
			t.Errorf("%s: %d bytes, not a screenshot of a page", name, len(b))
		}
	}
}
