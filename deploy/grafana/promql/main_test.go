package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestRulesOfTheDashboard: every query of the repository's dashboard
// becomes a rule, with no variable left.
func TestRulesOfTheDashboard(t *testing.T) {
	f, err := os.Open("../auditor.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out bytes.Buffer
	if err := rules(f, &out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if n := strings.Count(text, "- record: dashboard:panel"); n < 20 {
		t.Errorf("%d rules from the dashboard:\n%s", n, text)
	}
	if strings.Contains(text, "$") {
		t.Errorf("a variable is left:\n%s", text)
	}
	for _, want := range []string{`offset 5m`, `[5m]`, `instance=~\".+\"`} {
		if !strings.Contains(text, want) {
			t.Errorf("no %s in:\n%s", want, text)
		}
	}
}

func TestRulesRefusesWhatIsNoDashboard(t *testing.T) {
	for in, want := range map[string]string{
		`{"panels": [`:   "not a dashboard",
		`[1, 2]`:         "not a dashboard",
		`{"panels": []}`: "no query",
		`{"panels": [{"id": 3, "title": "x", "targets": [{"refId": "B"}]}]}`:                             `panel 3 "x": query B has no expression`,
		`{"panels": [{"type": "row", "panels": [{"id": 4, "targets": [{"refId": "A", "expr": " "}]}]}]}`: "panel 4",
	} {
		err := rules(strings.NewReader(in), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", in, err, want)
		}
	}
}

func FuzzRules(f *testing.F) {
	f.Add([]byte(`{"panels": [{"id": 1, "targets": [{"refId": "A", "expr": "rate(x{a=~\"$a\"}[$__rate_interval])"}]}]}`))
	f.Add([]byte(`{"panels": [{"type": "row", "panels": [{"id": 2, "targets": [{"refId": "A", "expr": "up"}]}]}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		if err := rules(bytes.NewReader(in), &out); err == nil && !strings.HasPrefix(out.String(), "# The PromQL") {
			t.Fatalf("no error and no rules file: %q", out.String())
		}
	})
}
