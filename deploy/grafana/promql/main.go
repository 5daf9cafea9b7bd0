// Command promql prints every PromQL query of a Grafana dashboard as a
// recording rule of a Prometheus rules file, with the dashboard's
// variables replaced by values, so that `promtool check rules` parses
// each one (deploy/check.sh):
//
//	go run ./deploy/grafana/promql deploy/grafana/auditor.json > queries.yml
//
// A dashboard that is not JSON, or a query without an expression, is an
// error naming the panel.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// dashboard is what promql reads of a dashboard: its panels, with the
// panels of collapsed rows, and their queries.
type dashboard struct {
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int      `json:"id"`
	Title   string   `json:"title"`
	Type    string   `json:"type"`
	Targets []target `json:"targets"`
	Panels  []panel  `json:"panels"` // a collapsed row's
}

type target struct {
	RefID string `json:"refId"`
	Expr  string `json:"expr"`
}

// Grafana's interval variables, and the dashboard's own variables.
var (
	intervalVar = regexp.MustCompile(`\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}`)
	otherVar    = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)
)

// substitute replaces the variables of expr: an interval by 5m, any other
// by a regular expression matching every value (the dashboard uses them
// in =~ matchers).
func substitute(expr string) string {
	expr = intervalVar.ReplaceAllString(expr, "5m")
	return otherVar.ReplaceAllString(expr, ".+")
}

// rules writes the rules file of the dashboard read from r.
func rules(r io.Reader, w io.Writer) error {
	var d dashboard
	dec := json.NewDecoder(r)
	if err := dec.Decode(&d); err != nil {
		return fmt.Errorf("not a dashboard: %w", err)
	}
	var b strings.Builder
	b.WriteString("# The PromQL queries of a Grafana dashboard, as recording rules for promtool.\ngroups:\n  - name: dashboard\n    rules:\n")
	n := 0
	var walk func(ps []panel) error
	walk = func(ps []panel) error {
		for _, p := range ps {
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("panel %d %q: query %s has no expression", p.ID, p.Title, t.RefID)
				}
				expr, err := json.Marshal(substitute(t.Expr)) // a JSON string is a YAML double-quoted scalar
				if err != nil {
					return err
				}
				fmt.Fprintf(&b, "      # panel %d %q, query %s\n      - record: dashboard:panel%d:%s\n        expr: %s\n",
					p.ID, p.Title, t.RefID, p.ID, strings.ToLower(t.RefID), expr)
				n++
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("the dashboard has no query")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: promql DASHBOARD.json")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "promql:", err)
		os.Exit(2)
	}
	defer f.Close()
	if err := rules(f, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "promql: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
