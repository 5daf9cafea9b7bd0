package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/async-emission/auditor/api"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

const verifySynopsis = `[--config FILE | --data-dir DIR] [--json] BOXID

Explains one stored box: its class (and, for a result, its action) and
verdict for each protocol, the reason codes with their sentences, the
transaction that created it with the boxes it spent and read as
data-inputs, and its emission lineage back to the bootstrap. For a result
(an emitted box) it also shows the results it was built on, with their
verdicts and whether their emission boxes were read to prove them, and the
results and state updates built on it. Exit status: 0 when every verdict on the box is "verified", 1
when one is "invalid" or the store holds no such box, 2 on bad input.`

func runVerify(e *env, args []string) error {
	fs := newFlagSet(e, "verify", verifySynopsis)
	cfgPath := fs.String("config", "", "read the configuration from `FILE` (TOML)")
	dataDir := fs.String("data-dir", "", "keep the database in `DIR`; overrides data_dir")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return badInput{fmt.Errorf("want one box id, got %d arguments", fs.NArg())}
	}
	id, err := ergo.ParseDigest(fs.Arg(0))
	if err != nil {
		return badInput{fmt.Errorf("box id %q: %w", fs.Arg(0), err)}
	}
	ctx := context.Background()
	store, err := openExistingStore(ctx, fs, *cfgPath, *dataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	ex, ok, err := store.Explain(ctx, id)
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(e.stdout, "box %s is not stored: no watched protocol found it relevant, or it is above the scanned tip\n", id)
		return errFailed
	}
	out := api.Explain(ex)
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		printExplanation(e.stdout, &out)
	}
	for _, v := range ex.Verdicts {
		if !v.Valid() {
			return errFailed
		}
	}
	return nil
}

// printExplanation writes the explanation for people.
func printExplanation(w io.Writer, ex *api.Explanation) {
	b := &ex.Box
	fmt.Fprintf(w, "box %s\n  created at height %d by transaction %s (output %d)\n", b.ID, b.Height, ex.Transaction.ID, b.OutputIndex)
	if b.SpentTxID != nil {
		fmt.Fprintf(w, "  spent at height %d by transaction %s\n", b.SpentHeight, *b.SpentTxID)
	}
	fmt.Fprintf(w, "  value %d nanoERG", b.Value)
	if b.Address != "" {
		fmt.Fprintf(w, ", address %s", b.Address)
	}
	fmt.Fprintln(w)
	if b.TemplateHash != nil {
		fmt.Fprintf(w, "  template %s\n", b.TemplateHash)
	}
	for _, t := range b.Tokens {
		fmt.Fprintf(w, "  token %s × %d\n", t.ID, t.Amount)
	}
	if len(ex.Verdicts) == 0 {
		fmt.Fprintln(w, "no verdict: the box is stored but of no protocol class")
	}
	for _, v := range ex.Verdicts {
		fmt.Fprintf(w, "%s\n", verdictLine(&v))
		for _, r := range v.Reasons {
			fmt.Fprintf(w, "    %s: %s\n", r.Code, r.Sentence)
		}
	}
	related := func(title string, rs []api.Related) {
		if len(rs) == 0 {
			return
		}
		fmt.Fprintln(w, title)
		for _, r := range rs {
			var vs []string
			for _, v := range r.Verdicts {
				vs = append(vs, fmt.Sprintf("%s %s %s", v.Protocol, classActionOf(v.Class, v.Action), v.Verdict))
			}
			if len(vs) == 0 {
				vs = []string{"no class"}
			}
			fmt.Fprintf(w, "  #%d %s  %s\n", r.Position, r.BoxID, strings.Join(vs, "; "))
		}
	}
	related("its transaction spent (stored boxes):", ex.Transaction.Spent)
	related("its transaction read as data-inputs (stored boxes):", ex.Transaction.DataInputs)
	if len(ex.BuiltOn) > 0 {
		fmt.Fprintln(w, "built on the results:")
		for _, b := range ex.BuiltOn {
			proof := "unproved: its emission box was not read with it"
			if b.ProvedBy != nil {
				proof = fmt.Sprintf("proved by emission box %s", *b.ProvedBy)
			}
			for _, v := range b.Verdicts {
				fmt.Fprintf(w, "  %s  %s %s: %s; %s\n", b.BoxID, v.Protocol, classActionOf(v.Class, v.Action), verdictSummary(&v), proof)
			}
		}
	}
	if len(ex.Dependents) > 0 {
		fmt.Fprintln(w, "built on it:")
		for _, v := range ex.Dependents {
			fmt.Fprintf(w, "  %s  %s %s at %d: %s\n", v.BoxID, v.Protocol, classActionOf(v.Class, v.Action), v.Height, verdictSummary(&v))
		}
	}
	if l := ex.Lineage; l != nil {
		state := "open"
		switch {
		case l.Closed && l.Broken:
			state = "closed, broken"
		case l.Closed:
			state = "closed"
		case l.Broken:
			state = "broken"
		}
		fmt.Fprintf(w, "lineage of async token %s (%s): %s, minted %d, burnt %d, current box %s\n",
			l.Token, l.Protocol, state, l.Minted, l.Burnt, l.Current)
		for i, v := range l.Emissions {
			step := "continued"
			if i == 0 {
				step = "bootstrap"
			}
			fmt.Fprintf(w, "  %-9s %s at %d: %s\n", step, v.BoxID, v.Height, verdictSummary(&v))
		}
	}
}

func verdictLine(v *api.Verdict) string {
	what := "verdict"
	if v.Kind == rules.KindSpent {
		what = "verdict on its spend"
	}
	return fmt.Sprintf("%s (%s, %s, at height %d): %s", what, v.Protocol, classActionOf(v.Class, v.Action), v.Height, verdictSummary(v))
}

// classActionOf is a verdict's class, with its action when it has one:
// "emitted/settle".
func classActionOf(class rules.Class, action string) string {
	if action == "" {
		return string(class)
	}
	return string(class) + "/" + action
}

func verdictSummary(v *api.Verdict) string {
	if len(v.Reasons) == 0 {
		return v.Verdict
	}
	codes := make([]string, len(v.Reasons))
	for i, r := range v.Reasons {
		codes[i] = string(r.Code)
	}
	return v.Verdict + " " + strings.Join(codes, ", ")
}
