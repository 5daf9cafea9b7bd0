package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/rules"
)

// StoredVerdict is a verdict as stored: the rules' verdict and the block
// that made it.
type StoredVerdict struct {
	rules.Verdict
	BlockID ergo.Digest
	Height  uint32
}

// VerdictFilter narrows Verdicts; the zero filter lists every verdict.
type VerdictFilter struct {
	Protocol    string // "" for every protocol
	FromHeight  uint32 // inclusive; 0 for no bound
	ToHeight    uint32 // inclusive; 0 for no bound
	InvalidOnly bool
}

const verdictColumns = `box_id, protocol, kind, class, reasons, lineage, tx_id, tx_index, block_id, height, action`

// verdictColumnsOf is verdictColumns of the verdicts table named alias.
func verdictColumnsOf(alias string) string {
	cols := strings.Split(verdictColumns, ", ")
	for i := range cols {
		cols[i] = alias + "." + cols[i]
	}
	return strings.Join(cols, ", ")
}

// Verdicts lists the stored verdicts the filter selects, in block order
// (height, then transaction, then box).
func (s *Store) Verdicts(ctx context.Context, f VerdictFilter) ([]StoredVerdict, error) {
	to := int64(f.ToHeight)
	if f.ToHeight == 0 {
		to = 1 << 40
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+verdictColumns+` FROM verdicts
		WHERE (?1 = '' OR protocol = ?1) AND height BETWEEN ?2 AND ?3 AND (?4 = 0 OR verdict = 'invalid')
		ORDER BY height, tx_index, kind, box_id, protocol`, f.Protocol, int64(f.FromHeight), to, f.InvalidOnly)
	if err != nil {
		return nil, storageError(ctx, "list verdicts", "", err)
	}
	out, err := scanVerdicts(rows)
	if err != nil {
		return nil, storageError(ctx, "list verdicts", "", err)
	}
	return out, nil
}

func scanVerdicts(rows *sql.Rows) ([]StoredVerdict, error) {
	defer rows.Close()
	var out []StoredVerdict
	for rows.Next() {
		var (
			v                StoredVerdict
			box, tx, block   []byte
			lineage          []byte
			kind, class, why string
			action           sql.NullString
		)
		if err := rows.Scan(&box, &v.Protocol, &kind, &class, &why, &lineage, &tx, &v.TxIndex, &block, &v.Height, &action); err != nil {
			return nil, err
		}
		v.Kind, v.Class, v.Action = rules.Kind(kind), rules.Class(class), action.String
		if err := errors.Join(scanDigest(box, &v.BoxID), scanDigest(tx, &v.TxID), scanDigest(block, &v.BlockID)); err != nil {
			return nil, err
		}
		if lineage != nil {
			v.Lineage = new(ergo.Digest)
			if err := scanDigest(lineage, v.Lineage); err != nil {
				return nil, err
			}
		}
		if err := json.Unmarshal([]byte(why), &v.Reasons); err != nil {
			return nil, corrupt("verdict on box %x: reasons %q: %v", box, why, err)
		}
		if len(v.Reasons) == 0 {
			v.Reasons = nil
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// VerdictCount is how many verdicts of a protocol and class are verified or
// invalid; with Reason set, how many invalid ones carry that code.
type VerdictCount struct {
	Protocol string
	Class    rules.Class
	Verdict  string       // "verified" or "invalid"
	Reason   rules.Reason // "" for a count of verdicts
	Count    int64
}

// VerdictCounts counts the verdicts as Status does, without reading the
// rest of the store (for metrics).
func (s *Store) VerdictCounts(ctx context.Context) ([]VerdictCount, error) {
	out, err := verdictCounts(ctx, s.r)
	if err != nil {
		return nil, storageError(ctx, "count the verdicts", "", err)
	}
	return out, nil
}

// verdictCounts counts the verdicts by protocol, class and verdict, then
// the invalid ones by reason code.
func verdictCounts(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]VerdictCount, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT protocol, class, verdict, '', count(*) FROM verdicts GROUP BY protocol, class, verdict
		UNION ALL
		SELECT v.protocol, v.class, 'invalid', r.value, count(*) FROM verdicts v, json_each(v.reasons) r
		GROUP BY v.protocol, v.class, r.value
		ORDER BY 1, 2, 4, 3`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []VerdictCount
	for rows.Next() {
		var c VerdictCount
		var class, reason string
		if err := rows.Scan(&c.Protocol, &class, &c.Verdict, &reason, &c.Count); err != nil {
			return nil, err
		}
		c.Class, c.Reason = rules.Class(class), rules.Reason(reason)
		out = append(out, c)
	}
	return out, rows.Err()
}

// StoredBox is a stored box with where it was created and spent.
type StoredBox struct {
	ID             ergo.Digest
	TxID           ergo.Digest
	BlockID        ergo.Digest
	Height         uint32
	OutputIndex    int
	Value          uint64
	ErgoTree       []byte
	Template       *ergo.Digest
	CreationHeight uint32
	Tokens         []TokenAmount
	Registers      [][]byte
	SpentTxID      *ergo.Digest
	SpentHeight    uint32
}

// TokenAmount is a token a box holds.
type TokenAmount struct {
	ID     ergo.Digest
	Amount uint64
}

// Explanation is everything the store knows of one box's verdicts: the box,
// its verdicts, the stored boxes its transaction spent and read, and its
// lineage back to the bootstrap.
type Explanation struct {
	Box      StoredBox
	Verdicts []StoredVerdict
	// Spent and Read are the stored boxes the creating transaction spent
	// and read as data-inputs, each with its verdicts.
	Spent, Read []Related
	// Lineage lists the created verdicts of the emission boxes of the
	// box's lineage, from the bootstrap on; State is its last step.
	Lineage []StoredVerdict
	State   *LineageState
	// Dependents, for an emitted box (a result), are the created verdicts
	// of the results and state boxes made by the transactions that read it
	// as a data-input: what was built on it, in chain order. (What a result
	// was built on is among Read.)
	Dependents []StoredVerdict
}

// Related is a box a transaction spent or read, with its verdicts.
type Related struct {
	BoxID    ergo.Digest
	Position int // the input or data-input position, for Read; the output index of its creation, for Spent
	Verdicts []StoredVerdict
}

// LineageState is a lineage's last step.
type LineageState struct {
	Protocol string
	Token    ergo.Digest
	rules.Lineage
	Minted, Burnt uint64 // all steps' totals
	Height        uint32 // of the last step
}

// Explain returns what the store knows of box id; ok is false when it
// holds no such box.
func (s *Store) Explain(ctx context.Context, id ergo.Digest) (ex *Explanation, ok bool, err error) {
	op := fmt.Sprintf("explain box %s", id)
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, false, storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	ex = &Explanation{}
	b, ok, err := readBox(ctx, tx, id)
	if err != nil || !ok {
		return nil, false, storageErrorOrNil(ctx, op, "read box", err)
	}
	ex.Box = *b
	verdictsOf := func(box ergo.Digest) ([]StoredVerdict, error) {
		rows, err := tx.QueryContext(ctx, `SELECT `+verdictColumns+` FROM verdicts WHERE box_id = ? ORDER BY protocol, kind`, box[:])
		if err != nil {
			return nil, err
		}
		return scanVerdicts(rows)
	}
	if ex.Verdicts, err = verdictsOf(id); err != nil {
		return nil, false, storageError(ctx, op, "read verdicts", err)
	}
	related := func(query string) ([]Related, error) {
		rows, err := tx.QueryContext(ctx, query, b.TxID[:])
		if err != nil {
			return nil, err
		}
		var out []Related
		for rows.Next() {
			var r Related
			var box []byte
			if err := rows.Scan(&box, &r.Position); err != nil {
				rows.Close()
				return nil, err
			}
			if err := scanDigest(box, &r.BoxID); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for i := range out {
			if out[i].Verdicts, err = verdictsOf(out[i].BoxID); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	if ex.Spent, err = related(`SELECT id, output_index FROM boxes WHERE spent_tx_id = ? ORDER BY id`); err != nil {
		return nil, false, storageError(ctx, op, "read spent boxes", err)
	}
	if ex.Read, err = related(`SELECT box_id, position FROM data_input_reads WHERE tx_id = ? ORDER BY position`); err != nil {
		return nil, false, storageError(ctx, op, "read data-inputs", err)
	}
	if slices.ContainsFunc(ex.Verdicts, func(v StoredVerdict) bool { return v.Class == rules.ClassEmitted }) {
		rows, err := tx.QueryContext(ctx, `SELECT `+verdictColumnsOf("v")+` FROM boxes b JOIN verdicts v ON v.box_id = b.id
			WHERE b.tx_id IN (SELECT tx_id FROM data_input_reads WHERE box_id = ?)
			AND v.kind = 'created' AND v.class IN ('emitted', 'state')
			ORDER BY v.height, v.tx_index, b.output_index, v.protocol`, id[:])
		if err != nil {
			return nil, false, storageError(ctx, op, "read dependents", err)
		}
		if ex.Dependents, err = scanVerdicts(rows); err != nil {
			return nil, false, storageError(ctx, op, "read dependents", err)
		}
	}
	var token *ergo.Digest
	var protocol string
	for _, v := range ex.Verdicts {
		if v.Lineage != nil {
			token, protocol = v.Lineage, v.Protocol
			break
		}
	}
	if token != nil {
		rows, err := tx.QueryContext(ctx, `SELECT `+verdictColumns+` FROM verdicts
			WHERE lineage = ? AND protocol = ? AND class = 'emission' AND kind = 'created' ORDER BY height, tx_index`, token[:], protocol)
		if err != nil {
			return nil, false, storageError(ctx, op, "read lineage", err)
		}
		if ex.Lineage, err = scanVerdicts(rows); err != nil {
			return nil, false, storageError(ctx, op, "read lineage", err)
		}
		st := &LineageState{Protocol: protocol, Token: *token}
		var box []byte
		var minted, burnt int64
		err = tx.QueryRowContext(ctx, `SELECT current_box, broken, closed, height,
			(SELECT coalesce(sum(minted), 0) FROM lineage_steps WHERE token_id = ?1 AND protocol = ?2),
			(SELECT coalesce(sum(burnt), 0) FROM lineage_steps WHERE token_id = ?1 AND protocol = ?2)
			FROM lineage_steps WHERE token_id = ?1 AND protocol = ?2 ORDER BY height DESC, step DESC LIMIT 1`,
			token[:], protocol).Scan(&box, &st.Broken, &st.Closed, &st.Height, &minted, &burnt)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			st = nil
		case err != nil:
			return nil, false, storageError(ctx, op, "read lineage state", err)
		default:
			if err := scanDigest(box, &st.Current); err != nil {
				return nil, false, storageError(ctx, op, "read lineage state", err)
			}
			st.Minted, st.Burnt = uint64(minted), uint64(burnt)
		}
		ex.State = st
	}
	return ex, true, nil
}

// storageErrorOrNil is storageError, or nil for a nil err.
func storageErrorOrNil(ctx context.Context, op, detail string, err error) error {
	if err == nil {
		return nil
	}
	return storageError(ctx, op, detail, err)
}

// readBox reads one stored box with its tokens.
func readBox(ctx context.Context, tx *sql.Tx, id ergo.Digest) (*StoredBox, bool, error) {
	b := &StoredBox{ID: id}
	var (
		txID, block, tmpl, spent []byte
		value                    int64
		spentHeight              sql.NullInt64
		regs                     [6][]byte
	)
	err := tx.QueryRowContext(ctx, `SELECT tx_id, block_id, height, output_index, value, ergo_tree, template_hash,
		creation_height, r4, r5, r6, r7, r8, r9, spent_tx_id, spent_height FROM boxes WHERE id = ?`, id[:]).Scan(
		&txID, &block, &b.Height, &b.OutputIndex, &value, &b.ErgoTree, &tmpl, &b.CreationHeight,
		&regs[0], &regs[1], &regs[2], &regs[3], &regs[4], &regs[5], &spent, &spentHeight)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	b.Value = uint64(value)
	if err := errors.Join(scanDigest(txID, &b.TxID), scanDigest(block, &b.BlockID)); err != nil {
		return nil, false, err
	}
	if tmpl != nil {
		b.Template = new(ergo.Digest)
		if err := scanDigest(tmpl, b.Template); err != nil {
			return nil, false, err
		}
	}
	if spent != nil {
		b.SpentTxID = new(ergo.Digest)
		if err := scanDigest(spent, b.SpentTxID); err != nil {
			return nil, false, err
		}
		b.SpentHeight = uint32(spentHeight.Int64)
	}
	for _, r := range regs {
		if r == nil {
			break
		}
		b.Registers = append(b.Registers, r)
	}
	rows, err := tx.QueryContext(ctx, `SELECT token_id, amount FROM box_tokens WHERE box_id = ? ORDER BY position`, id[:])
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var t TokenAmount
		var tok []byte
		var amount int64
		if err := rows.Scan(&tok, &amount); err != nil {
			return nil, false, err
		}
		if err := scanDigest(tok, &t.ID); err != nil {
			return nil, false, err
		}
		t.Amount = uint64(amount)
		b.Tokens = append(b.Tokens, t)
	}
	return b, true, rows.Err()
}
