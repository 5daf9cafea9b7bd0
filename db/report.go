package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/async-emission/auditor/ergo"
)

// What a scheduled report reads of the store (the report package makes the
// report): verdict counts, the period's invalid verdicts, the lineages with
// the tokens live boxes hold, and where the participant tokens are. All of
// it comes from one read snapshot, so the numbers agree with each other
// whatever blocks are connected meanwhile. Amounts are big integers: a sum
// of 63-bit amounts can overflow int64 (and SQLite's sum() fails when it
// does), so amounts are added in Go.

// ReportQuery says what ReportData reads.
type ReportQuery struct {
	// Since ends the previous period: the period is the heights above it.
	Since uint32
	// Protocols are swept for the live boxes holding their participant
	// token.
	Protocols []ReportProtocol
	// MaxInvalid bounds the period's invalid verdicts listed (0: no bound);
	// ReportData.InvalidTotal counts them all.
	MaxInvalid int
	// Buckets is the number of height ranges of the histogram, which spans
	// the lowest height with a verdict to the tip (0: no histogram).
	Buckets int
}

// ReportProtocol names a protocol and its participant token.
type ReportProtocol struct {
	Name             string
	ParticipantToken ergo.Digest
}

// ReportData is what ReportData read, from one snapshot.
type ReportData struct {
	Tip     Tip
	Empty   bool      // nothing connected yet: Tip is zero
	TipTime time.Time // the tip header's timestamp; zero when the store does not hold it

	// Counts are the verdicts by protocol, class, kind and verdict, sorted
	// so; Reasons the reason codes (a verdict counts once for each of its
	// codes), sorted by protocol and code.
	Counts  []ReportCount
	Reasons []ReportReasonCount
	// Actions count the verdicts of results by action (PROTOCOL.md §2,
	// [[protocol.action]]), sorted by protocol, action and verdict; results
	// of no action are not among them.
	Actions []ReportActionCount

	// Invalid are the period's invalid verdicts, in chain order, at most
	// ReportQuery.MaxInvalid of InvalidTotal; Values are the values of
	// their boxes, in nanoERG.
	Invalid      []StoredVerdict
	InvalidTotal int64
	Values       map[ergo.Digest]uint64

	// Histogram counts the verdicts of each protocol in height ranges.
	Histogram []HeightCount

	// Lineages are every lineage of the lineage journal, by protocol and
	// token.
	Lineages []LineageRow

	// Holdings are the live boxes holding a participant token of
	// ReportQuery.Protocols, by protocol, then height and box.
	Holdings []Holding
}

// ReportCount is a number of verdicts, all of them and the period's.
type ReportCount struct {
	Protocol, Class, Kind, Verdict string
	All, Period                    int64
}

// ReportReasonCount is how many verdicts carry a reason code, all of them
// and the period's.
type ReportReasonCount struct {
	Protocol, Reason string
	All, Period      int64
}

// ReportActionCount is how many verdicts on results of an action are
// verified or invalid, all of them and the period's.
type ReportActionCount struct {
	Protocol, Action, Verdict string
	All, Period               int64
}

// HeightCount is the verdicts of a protocol made at heights From to To.
type HeightCount struct {
	Protocol          string
	From, To          uint32
	Verified, Invalid int64
}

// LineageRow is a lineage's state (its last journal row) and its sums.
type LineageRow struct {
	Protocol string
	Token    ergo.Digest
	// Current is the current emission box (the last one, spent, once
	// closed); Broken and Closed are the last row's.
	Current        ergo.Digest
	Broken, Closed bool
	// FirstHeight is the height of its first row, LastHeight of its last;
	// Steps counts its rows.
	FirstHeight, LastHeight uint32
	Steps                   int64
	// Minted and Burnt are the sums of the journal's columns.
	Minted, Burnt *big.Int
	// Held is the token held by live stored boxes, in Holders boxes;
	// Balance the part the current box holds when it is live.
	Held, Balance *big.Int
	Holders       int64
}

// Holding is a live box holding a participant token.
type Holding struct {
	Protocol string
	BoxID    ergo.Digest
	Height   uint32
	Value    uint64 // nanoERG
	Amount   *big.Int
	// Class is the class the protocol's created verdict gave the box, ""
	// when it has none; Verdict that verdict.
	Class, Verdict string
}

// ReportData reads what a report needs, from one read snapshot.
func (s *Store) ReportData(ctx context.Context, q ReportQuery) (*ReportData, error) {
	return s.reportData(ctx, "report data", q, true)
}

// ConservationData reads what the conservation sweep alone needs, from one
// read snapshot: the tip, the lineages and the live boxes holding the
// protocols' participant tokens (ReportData without the verdict counts,
// the invalid verdicts and the histogram).
func (s *Store) ConservationData(ctx context.Context, protocols []ReportProtocol) (*ReportData, error) {
	return s.reportData(ctx, "conservation data", ReportQuery{Protocols: protocols}, false)
}

// reportData reads a report's data; all false reads the conservation
// sweep's part only.
func (s *Store) reportData(ctx context.Context, op string, q ReportQuery, all bool) (*ReportData, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	d := &ReportData{}
	tip, ok, err := readTip(ctx, tx)
	if err != nil {
		return nil, storageError(ctx, op, "read tip", err)
	}
	d.Tip, d.Empty = tip, !ok
	if ok {
		var ts int64
		err := tx.QueryRowContext(ctx, `SELECT timestamp FROM headers WHERE id = ?`, tip.ID[:]).Scan(&ts)
		switch {
		case err == nil:
			d.TipTime = time.UnixMilli(ts).UTC()
		case !errors.Is(err, sql.ErrNoRows): // a store started above a disconnected block has no tip header
			return nil, storageError(ctx, op, "read tip header", err)
		}
	}
	r := reportReader{ctx: ctx, tx: tx, q: q, d: d}
	for _, step := range []struct {
		what  string
		read  func() error
		sweep bool // a step of the conservation sweep
	}{
		{"count verdicts", r.counts, false},
		{"count reasons", r.reasons, false},
		{"count verdicts by action", r.actions, false},
		{"list invalid verdicts", r.invalid, false},
		{"histogram", r.histogram, false},
		{"read lineages", r.lineages, true},
		{"read participant tokens", r.holdings, true},
	} {
		if !all && !step.sweep {
			continue
		}
		if err := step.read(); err != nil {
			return nil, storageError(ctx, op, step.what, err)
		}
	}
	return d, nil
}

// reportReader runs ReportData's queries in its transaction.
type reportReader struct {
	ctx context.Context
	tx  *sql.Tx
	q   ReportQuery
	d   *ReportData
}

// each runs query and calls f for every row.
func (r *reportReader) each(query string, args []any, f func(*sql.Rows) error) error {
	rows, err := r.tx.QueryContext(r.ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := f(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (r *reportReader) counts() error {
	return r.each(`SELECT protocol, class, kind, verdict, count(*), sum(height > ?) FROM verdicts
		GROUP BY protocol, class, kind, verdict ORDER BY protocol, class, kind, verdict`,
		[]any{r.q.Since}, func(rows *sql.Rows) error {
			var c ReportCount
			if err := rows.Scan(&c.Protocol, &c.Class, &c.Kind, &c.Verdict, &c.All, &c.Period); err != nil {
				return err
			}
			r.d.Counts = append(r.d.Counts, c)
			return nil
		})
}

func (r *reportReader) reasons() error {
	return r.each(`SELECT v.protocol, j.value, count(*), sum(v.height > ?) FROM verdicts v, json_each(v.reasons) j
		GROUP BY v.protocol, j.value ORDER BY v.protocol, j.value`,
		[]any{r.q.Since}, func(rows *sql.Rows) error {
			var c ReportReasonCount
			if err := rows.Scan(&c.Protocol, &c.Reason, &c.All, &c.Period); err != nil {
				return err
			}
			r.d.Reasons = append(r.d.Reasons, c)
			return nil
		})
}

func (r *reportReader) actions() error {
	return r.each(`SELECT protocol, action, verdict, count(*), sum(height > ?) FROM verdicts WHERE action IS NOT NULL
		GROUP BY protocol, action, verdict ORDER BY protocol, action, verdict`,
		[]any{r.q.Since}, func(rows *sql.Rows) error {
			var c ReportActionCount
			if err := rows.Scan(&c.Protocol, &c.Action, &c.Verdict, &c.All, &c.Period); err != nil {
				return err
			}
			r.d.Actions = append(r.d.Actions, c)
			return nil
		})
}

func (r *reportReader) invalid() error {
	err := r.tx.QueryRowContext(r.ctx, `SELECT count(*) FROM verdicts WHERE verdict = 'invalid' AND height > ?`,
		r.q.Since).Scan(&r.d.InvalidTotal)
	if err != nil {
		return err
	}
	limit := int64(-1) // SQLite: no limit
	if r.q.MaxInvalid > 0 {
		limit = int64(r.q.MaxInvalid)
	}
	rows, err := r.tx.QueryContext(r.ctx, `SELECT `+verdictColumns+` FROM verdicts
		WHERE verdict = 'invalid' AND height > ? ORDER BY height, tx_index, kind, box_id, protocol LIMIT ?`,
		r.q.Since, limit)
	if err != nil {
		return err
	}
	if r.d.Invalid, err = scanVerdicts(rows); err != nil {
		return err
	}
	r.d.Values = map[ergo.Digest]uint64{}
	return r.each(`SELECT DISTINCT b.id, b.value FROM verdicts v JOIN boxes b ON b.id = v.box_id
		WHERE v.verdict = 'invalid' AND v.height > ?`, []any{r.q.Since}, func(rows *sql.Rows) error {
		var (
			box   []byte
			value int64
			id    ergo.Digest
		)
		if err := rows.Scan(&box, &value); err != nil {
			return err
		}
		if err := scanDigest(box, &id); err != nil {
			return err
		}
		r.d.Values[id] = uint64(value)
		return nil
	})
}

// histogram counts verdicts in q.Buckets equal height ranges from the
// lowest height with a verdict to the tip (the last range may end above
// the tip).
func (r *reportReader) histogram() error {
	if r.q.Buckets <= 0 {
		return nil
	}
	var low sql.NullInt64
	if err := r.tx.QueryRowContext(r.ctx, `SELECT min(height) FROM verdicts`).Scan(&low); err != nil {
		return err
	}
	if !low.Valid {
		return nil
	}
	from := uint32(low.Int64)
	to := max(r.d.Tip.Height, from)
	width := (to - from + uint32(r.q.Buckets)) / uint32(r.q.Buckets) // ceil((to-from+1)/buckets)
	n := int((to-from)/width) + 1
	type key struct {
		protocol string
		bucket   int
	}
	cells := map[key]*HeightCount{}
	var protocols []string
	err := r.each(`SELECT protocol, (height - ?) / ?, verdict, count(*) FROM verdicts
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, []any{from, width}, func(rows *sql.Rows) error {
		var (
			k       key
			verdict string
			count   int64
		)
		if err := rows.Scan(&k.protocol, &k.bucket, &verdict, &count); err != nil {
			return err
		}
		if k.bucket < 0 || k.bucket >= n {
			return corrupt("a verdict above the tip, in height range %d of %d", k.bucket, n)
		}
		if len(protocols) == 0 || protocols[len(protocols)-1] != k.protocol {
			protocols = append(protocols, k.protocol)
		}
		c := cells[k]
		if c == nil {
			c = &HeightCount{}
			cells[k] = c
		}
		if verdict == "invalid" {
			c.Invalid += count
		} else {
			c.Verified += count
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range protocols {
		for b := range n {
			c := HeightCount{Protocol: p, From: from + uint32(b)*width, To: from + uint32(b+1)*width - 1}
			if got := cells[key{p, b}]; got != nil {
				c.Verified, c.Invalid = got.Verified, got.Invalid
			}
			r.d.Histogram = append(r.d.Histogram, c)
		}
	}
	return nil
}

// lineages folds the journal into each lineage's state and sums, then adds
// what live boxes hold of each lineage's token.
func (r *reportReader) lineages() error {
	var cur *LineageRow
	err := r.each(`SELECT protocol, token_id, height, current_box, broken, closed, minted, burnt
		FROM lineage_steps ORDER BY protocol, token_id, height, step`, nil, func(rows *sql.Rows) error {
		var (
			protocol       string
			token, box     []byte
			height         uint32
			broken, closed bool
			minted, burnt  int64
			t              ergo.Digest
		)
		if err := rows.Scan(&protocol, &token, &height, &box, &broken, &closed, &minted, &burnt); err != nil {
			return err
		}
		if err := scanDigest(token, &t); err != nil {
			return err
		}
		if cur == nil || cur.Protocol != protocol || cur.Token != t {
			r.d.Lineages = append(r.d.Lineages, LineageRow{
				Protocol: protocol, Token: t, FirstHeight: height,
				Minted: new(big.Int), Burnt: new(big.Int), Held: new(big.Int), Balance: new(big.Int),
			})
			cur = &r.d.Lineages[len(r.d.Lineages)-1]
		}
		if err := scanDigest(box, &cur.Current); err != nil {
			return err
		}
		cur.Broken, cur.Closed, cur.LastHeight = broken, closed, height
		cur.Steps++
		cur.Minted.Add(cur.Minted, big.NewInt(minted))
		cur.Burnt.Add(cur.Burnt, big.NewInt(burnt))
		return nil
	})
	if err != nil || len(r.d.Lineages) == 0 {
		return err
	}
	byToken := map[ergo.Digest][]*LineageRow{} // a token may have a lineage in more than one protocol
	for i := range r.d.Lineages {
		l := &r.d.Lineages[i]
		byToken[l.Token] = append(byToken[l.Token], l)
	}
	return r.each(`SELECT t.token_id, t.box_id, t.amount FROM box_tokens t JOIN boxes b ON b.id = t.box_id
		WHERE b.spent_tx_id IS NULL AND t.token_id IN (SELECT token_id FROM lineage_steps)
		ORDER BY t.token_id, t.box_id`, nil, func(rows *sql.Rows) error {
		var (
			token, box []byte
			amount     int64
			t, b       ergo.Digest
		)
		if err := rows.Scan(&token, &box, &amount); err != nil {
			return err
		}
		if err := scanDigest(token, &t); err != nil {
			return err
		}
		if err := scanDigest(box, &b); err != nil {
			return err
		}
		for _, l := range byToken[t] {
			l.Held.Add(l.Held, big.NewInt(amount))
			l.Holders++ // a box listing the token twice counts twice; Ergo boxes do not
			if b == l.Current && !l.Closed {
				l.Balance.Add(l.Balance, big.NewInt(amount))
			}
		}
		return nil
	})
}

// holdings lists, for each protocol, the live boxes holding its
// participant token, with the class its created verdict gave them.
func (r *reportReader) holdings() error {
	for _, p := range r.q.Protocols {
		var last *Holding
		err := r.each(`SELECT b.id, b.height, b.value, t.amount, coalesce(v.class, ''), coalesce(v.verdict, '')
			FROM box_tokens t JOIN boxes b ON b.id = t.box_id
			LEFT JOIN verdicts v ON v.box_id = b.id AND v.protocol = ? AND v.kind = 'created'
			WHERE t.token_id = ? AND b.spent_tx_id IS NULL
			ORDER BY b.height, b.id`, []any{p.Name, p.ParticipantToken[:]}, func(rows *sql.Rows) error {
			var (
				h      = Holding{Protocol: p.Name}
				box    []byte
				amount int64
			)
			var value int64
			if err := rows.Scan(&box, &h.Height, &value, &amount, &h.Class, &h.Verdict); err != nil {
				return err
			}
			if err := scanDigest(box, &h.BoxID); err != nil {
				return err
			}
			if last != nil && last.BoxID == h.BoxID { // the token listed twice in one box
				last.Amount.Add(last.Amount, big.NewInt(amount))
				return nil
			}
			h.Amount, h.Value = big.NewInt(amount), uint64(value)
			r.d.Holdings = append(r.d.Holdings, h)
			last = &r.d.Holdings[len(r.d.Holdings)-1]
			return nil
		})
		if err != nil {
			return fmt.Errorf("protocol %s: %w", p.Name, err)
		}
	}
	return nil
}

// ErrInvalidReport: RecordReport was given a record it cannot store.
const ErrInvalidReport = ErrorKind("report cannot be recorded")

// ReportStatus is how a report run ended.
type ReportStatus string

// The statuses of a report.
const (
	ReportOK          ReportStatus = "ok"          // written, recorded
	ReportInterrupted ReportStatus = "interrupted" // stopped by a shutdown before it was written
	ReportFailed      ReportStatus = "failed"      // it could not be made (see Error)
)

// ReportRecord is one row of the reports table.
type ReportRecord struct {
	ID   int64 // assigned by RecordReport
	Time time.Time
	// The period: heights FromHeight to ToHeight, made between FromTime
	// (the previous ok report's time; zero for the first) and ToTime.
	FromHeight, ToHeight uint32
	FromTime, ToTime     time.Time
	JSONPath, HTMLPath   string
	Summary              json.RawMessage // a JSON value; null when empty
	Status               ReportStatus
	Error                string
}

// RecordReport stores rec and returns its id. It is history, not chain
// state: it does not touch the tip and the state digest does not cover it.
func (s *Store) RecordReport(ctx context.Context, rec ReportRecord) (int64, error) {
	const op = "record report"
	switch rec.Status {
	case ReportOK, ReportInterrupted, ReportFailed:
	default:
		return 0, newError(op, ErrInvalidReport, "status %q is not ok, interrupted or failed", rec.Status)
	}
	summary := rec.Summary
	if len(summary) == 0 {
		summary = json.RawMessage("null")
	}
	from := max(rec.FromHeight, 1)
	var fromTime any // NULL
	if !rec.FromTime.IsZero() {
		fromTime = rec.FromTime.UnixMilli()
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO reports (time, from_height, to_height, from_time, to_time,
		json_path, html_path, summary, status, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		rec.Time.UnixMilli(), from, rec.ToHeight, fromTime, rec.ToTime.UnixMilli(),
		rec.JSONPath, rec.HTMLPath, string(summary), string(rec.Status), rec.Error)
	if err != nil {
		return 0, storageError(ctx, op, "", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, storageError(ctx, op, "row id", err)
	}
	return id, nil
}

// LastReport returns the newest report with status ok; ok is false when
// there is none.
func (s *Store) LastReport(ctx context.Context) (rec ReportRecord, ok bool, err error) {
	const op = "last report"
	var (
		at, toTime int64
		fromTime   sql.NullInt64
		summary    string
		status     string
	)
	err = s.r.QueryRowContext(ctx, `SELECT id, time, from_height, to_height, from_time, to_time,
		json_path, html_path, summary, status, error FROM reports WHERE status = 'ok'
		ORDER BY time DESC, id DESC LIMIT 1`).Scan(&rec.ID, &at, &rec.FromHeight, &rec.ToHeight, &fromTime, &toTime,
		&rec.JSONPath, &rec.HTMLPath, &summary, &status, &rec.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return ReportRecord{}, false, nil
	}
	if err != nil {
		return ReportRecord{}, false, storageError(ctx, op, "", err)
	}
	rec.Time, rec.ToTime = time.UnixMilli(at).UTC(), time.UnixMilli(toTime).UTC()
	if fromTime.Valid {
		rec.FromTime = time.UnixMilli(fromTime.Int64).UTC()
	}
	rec.Summary, rec.Status = json.RawMessage(summary), ReportStatus(status)
	return rec, true, nil
}
