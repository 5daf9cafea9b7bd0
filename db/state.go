package db

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sync"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
)

// blockState is the rules.State ConnectBlock gives its Judge: the stored
// boxes the block spends or reads, read in one go before judging, and the
// lineages, read on demand within the same transaction.
type blockState struct {
	c     *connectTx
	boxes map[ergo.Digest]*rules.Known
}

// Box returns a stored box the block spends or reads.
func (st *blockState) Box(id ergo.Digest) (*rules.Known, bool) {
	k, ok := st.boxes[id]
	return k, ok && k != nil
}

// Lineages returns the last step of every lineage of the tokens. Tokens
// that never had a lineage are left out before asking SQLite, so a block
// of unrelated tokens costs no query.
func (st *blockState) Lineages(ctx context.Context, tokens []ergo.Digest) (map[rules.LineageKey]rules.Lineage, error) {
	out := map[rules.LineageKey]rules.Lineage{}
	tokens = st.c.s.lineageTokens.filter(tokens)
	if len(tokens) == 0 {
		return out, nil
	}
	rows, err := st.c.stmt(st.c.s.stmt.lineages).QueryContext(st.c.ctx, hexList(tokens))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			k             rules.LineageKey
			l             rules.Lineage
			token, box    []byte
			broken, close bool
		)
		if err := rows.Scan(&k.Protocol, &token, &box, &broken, &close); err != nil {
			return nil, err
		}
		if err := scanDigest(token, &k.Token); err != nil {
			return nil, err
		}
		if err := scanDigest(box, &l.Current); err != nil {
			return nil, err
		}
		l.Broken, l.Closed = broken, close
		out[k] = l
	}
	return out, rows.Err()
}

// readState reads the stored boxes the block's inputs spend and its data
// inputs read, with their tokens and roles: one query for the ids (nearly
// every input of the chain spends a box the store does not keep, and this
// way those cost no statement each), two more when some are stored. Only
// boxes created below the block count: a backfilled block's own outputs
// may be stored already. With trees, each box gets its blake2b256
// template hash too (rules.Engine.UsesBlake2b).
func (c *connectTx) readState(txs []ergo.Transaction, trees bool) (*blockState, error) {
	st := &blockState{c: c, boxes: map[ergo.Digest]*rules.Known{}}
	var ids []ergo.Digest
	for i := range txs {
		for j := range txs[i].Inputs {
			ids = append(ids, txs[i].Inputs[j].BoxID)
		}
		ids = append(ids, txs[i].DataInputs...)
	}
	if len(ids) == 0 {
		return st, nil
	}
	lookup := c.s.stmt.lookup
	if trees {
		lookup = c.s.stmt.lookupTrees
	}
	err := c.query(lookup, func(rows *sql.Rows) error {
		var (
			id, tmpl, tree []byte
			regs           [sigma.MaxRegisters][]byte
		)
		dest := []any{&id, &tmpl, &regs[0], &regs[1], &regs[2], &regs[3], &regs[4], &regs[5]}
		if trees {
			dest = append(dest, &tree)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		k := &rules.Known{}
		if err := scanDigest(id, &k.ID); err != nil {
			return err
		}
		if tmpl != nil {
			if err := scanDigest(tmpl, &k.Template); err != nil {
				return err
			}
			k.HasTemplate = true
		}
		if trees {
			k.SetTemplates(tree)
		}
		for _, r := range regs {
			if r == nil {
				break
			}
			k.Registers = append(k.Registers, r)
		}
		st.boxes[k.ID] = k
		return nil
	}, hexList(ids), c.height)
	if err != nil || len(st.boxes) == 0 {
		return st, err
	}
	found := hexList(keys(st.boxes))
	err = c.query(c.s.stmt.lookupTokens, func(rows *sql.Rows) error {
		var (
			box, token []byte
			amount     int64
			id         ergo.Digest
			t          sigma.Token
		)
		if err := rows.Scan(&box, &token, &amount); err != nil {
			return err
		}
		if err := scanDigest(box, &id); err != nil {
			return err
		}
		if err := scanDigest(token, (*ergo.Digest)(&t.ID)); err != nil {
			return err
		}
		t.Amount = uint64(amount)
		k := st.boxes[id]
		k.Tokens = append(k.Tokens, t)
		return nil
	}, found)
	if err != nil {
		return nil, err
	}
	err = c.query(c.s.stmt.lookupRoles, func(rows *sql.Rows) error {
		var (
			box             []byte
			protocol, class string
			verdict         string
			id              ergo.Digest
		)
		if err := rows.Scan(&box, &protocol, &class, &verdict); err != nil {
			return err
		}
		if err := scanDigest(box, &id); err != nil {
			return err
		}
		k := st.boxes[id]
		k.Roles = append(k.Roles, rules.Role{Protocol: protocol, Class: rules.Class(class), Invalid: verdict == rules.StatusInvalid})
		return nil
	}, found)
	return st, err
}

// query runs a prepared statement of the writer within the transaction and
// calls each for every row.
func (c *connectTx) query(st *sql.Stmt, each func(*sql.Rows) error, args ...any) error {
	rows, err := c.stmt(st).QueryContext(c.ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// conclude stores the judgement's verdicts and lineage steps.
func (c *connectTx) conclude(ctx context.Context, j *rules.Judgement) error {
	putVerdict, putStep := c.stmt(c.s.stmt.putVerdict), c.stmt(c.s.stmt.putStep)
	for i := range j.Verdicts {
		v := &j.Verdicts[i]
		reasons, err := reasonsJSON(v.Reasons)
		if err != nil {
			return storageError(ctx, c.op, fmt.Sprintf("verdict on box %s", v.BoxID), err)
		}
		var lineage, action any // NULL
		if v.Lineage != nil {
			lineage = v.Lineage[:]
		}
		if v.Action != "" {
			action = v.Action
		}
		_, err = putVerdict.ExecContext(c.ctx, v.BoxID[:], v.Protocol, string(v.Kind), string(v.Class), v.Status(),
			reasons, lineage, v.TxID[:], v.TxIndex, c.block[:], c.height, action)
		if err != nil {
			return storageError(ctx, c.op, fmt.Sprintf("%s verdict of protocol %s on box %s", v.Kind, v.Protocol, v.BoxID), err)
		}
		c.stats.verdicts++
	}
	// A step's number is its place among its protocol's steps in the
	// block, whichever other protocols judged the block with it.
	steps := map[string]int{}
	for n := range j.Steps {
		s := &j.Steps[n]
		if s.Minted > math.MaxInt64 || s.Burnt > math.MaxInt64 {
			return newError(c.op, ErrInvalidBlock, "lineage %s: an amount overflows 63 bits", s.Token)
		}
		step := steps[s.Protocol]
		steps[s.Protocol]++
		_, err := putStep.ExecContext(c.ctx, s.Token[:], s.Protocol, c.height, step, c.block[:], s.TxID[:], s.Current[:],
			s.Broken, s.Closed, int64(s.Minted), int64(s.Burnt))
		if err != nil {
			return storageError(ctx, c.op, fmt.Sprintf("step of lineage %s", s.Token), err)
		}
	}
	return nil
}

// reasonsJSON is the reasons column: a JSON array, [] for none.
func reasonsJSON(rs []rules.Reason) (string, error) {
	if rs == nil {
		rs = []rules.Reason{}
	}
	b, err := json.Marshal(rs)
	return string(b), err
}

// hexList is a JSON array of hex ids, which json_each and unhex turn into a
// set.
func hexList(ids []ergo.Digest) []byte {
	list := make([]byte, 0, 2+len(ids)*67)
	list = append(list, '[')
	for i := range ids {
		if i > 0 {
			list = append(list, ',')
		}
		list = append(list, '"')
		list = hex.AppendEncode(list, ids[i][:])
		list = append(list, '"')
	}
	return append(list, ']')
}

func keys[V any](m map[ergo.Digest]V) []ergo.Digest {
	out := make([]ergo.Digest, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// tokenSet is every token that ever had a lineage in the store: a superset
// of the lineages on the main chain (a disconnect does not shrink it), so
// that Lineages asks SQLite only about tokens that may have one.
type tokenSet struct {
	mu sync.RWMutex
	m  map[ergo.Digest]struct{}
}

func (t *tokenSet) load(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT token_id FROM lineage_steps`)
	if err != nil {
		return err
	}
	defer rows.Close()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m = map[ergo.Digest]struct{}{}
	for rows.Next() {
		var b []byte
		var id ergo.Digest
		if err := rows.Scan(&b); err != nil {
			return err
		}
		if err := scanDigest(b, &id); err != nil {
			return err
		}
		t.m[id] = struct{}{}
	}
	return rows.Err()
}

func (t *tokenSet) add(steps []rules.Step) {
	if len(steps) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[ergo.Digest]struct{}{}
	}
	for i := range steps {
		t.m[steps[i].Token] = struct{}{}
	}
}

func (t *tokenSet) filter(tokens []ergo.Digest) []ergo.Digest {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []ergo.Digest
	for _, tok := range tokens {
		if _, ok := t.m[tok]; ok {
			out = append(out, tok)
		}
	}
	return out
}
