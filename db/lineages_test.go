package db

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

// putSteps writes lineage steps straight into the journal (what
// conclude writes for a judgement) and loads the token superset again.
func putSteps(t testing.TB, s *Store, steps []stepRow) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, r := range steps {
		if _, err := tx.ExecContext(ctx, `INSERT INTO lineage_steps (token_id, protocol, height, step, block_id, tx_id,
			current_box, broken, closed, minted, burnt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)`,
			r.token[:], r.protocol, r.height, r.step, idb("block"), idb("tx"), r.box[:], r.broken, r.closed); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.lineageTokens.load(ctx, s.w); err != nil {
		t.Fatal(err)
	}
}

type stepRow struct {
	token          ergo.Digest
	protocol       string
	height, step   int
	box            ergo.Digest
	broken, closed bool
}

// lineagesOf asks the store for the lineages of tokens, as a judgement
// does, within a write transaction.
func lineagesOf(t testing.TB, s *Store, tokens []ergo.Digest) map[rules.LineageKey]rules.Lineage {
	t.Helper()
	ctx := context.Background()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	st := &blockState{c: &connectTx{s: s, tx: tx, ctx: ctx}}
	got, err := st.Lineages(ctx, tokens)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestLineagesAreTheLastSteps checks the lineage query against the
// journal's definition: a lineage's state is its row with the highest
// height, then the highest step, whatever order the rows were written in,
// for every protocol that has one of the token, and nothing for a token
// asked twice, nor for one without a lineage.
func TestLineagesAreTheLastSteps(t *testing.T) {
	s := newStore(t)
	r := rand.New(rand.NewPCG(7, 11))
	protocols := []string{"a", "b", "c-d", "e_f"}
	var tokens []ergo.Digest
	for i := range 40 {
		tokens = append(tokens, id(fmt.Sprintf("token %d", i)))
	}
	want := map[rules.LineageKey]rules.Lineage{}
	last := map[rules.LineageKey][2]int{}
	seen := map[[4]any]bool{}
	var rows []stepRow
	for n := range 3000 {
		row := stepRow{
			token:    tokens[r.IntN(len(tokens)-5)], // the last five have no lineage
			protocol: protocols[r.IntN(len(protocols))],
			height:   1 + r.IntN(300),
			step:     r.IntN(4),
			box:      id(fmt.Sprintf("box %d", n)),
			broken:   r.IntN(2) == 0,
			closed:   r.IntN(3) == 0,
		}
		key := [4]any{row.token, row.protocol, row.height, row.step}
		if seen[key] {
			continue
		}
		seen[key] = true
		rows = append(rows, row)
		k := rules.LineageKey{Protocol: row.protocol, Token: row.token}
		if at, ok := last[k]; !ok || row.height > at[0] || row.height == at[0] && row.step > at[1] {
			last[k] = [2]int{row.height, row.step}
			want[k] = rules.Lineage{Current: row.box, Broken: row.broken, Closed: row.closed}
		}
	}
	putSteps(t, s, rows)

	asked := append(append([]ergo.Digest{}, tokens...), tokens[:10]...)
	got := lineagesOf(t, s, asked)
	if len(got) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("lineages: %d, want %d (equal: %t)", len(got), len(want), reflect.DeepEqual(got, want))
	}
	one := lineagesOf(t, s, tokens[3:4])
	for k, l := range one {
		if k.Token != tokens[3] || want[k] != l {
			t.Errorf("lineage %v: %+v, want %+v", k, l, want[k])
		}
	}
	if len(one) == 0 {
		t.Error("no lineage of a token with steps")
	}
	if none := lineagesOf(t, s, tokens[len(tokens)-5:]); len(none) != 0 {
		t.Errorf("tokens without steps have lineages: %v", none)
	}
}

// BenchmarkLineagesLongHistory reads one lineage's state after steps of
// history: the cost must not grow with the history (it did, when each
// row was checked for a later one).
//
//	go test -run '^$' -bench LineagesLongHistory ./db/
func BenchmarkLineagesLongHistory(b *testing.B) {
	for _, steps := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("steps=%d", steps), func(b *testing.B) {
			s := newStore(b)
			token := id("token")
			rows := make([]stepRow, steps)
			for i := range rows {
				rows[i] = stepRow{token: token, protocol: "p", height: 1 + i/2, step: i % 2, box: id(fmt.Sprint(i))}
			}
			putSteps(b, s, rows)
			tokens := []ergo.Digest{token}
			for b.Loop() {
				if got := lineagesOf(b, s, tokens); len(got) != 1 {
					b.Fatalf("%d lineages", len(got))
				}
			}
		})
	}
}
