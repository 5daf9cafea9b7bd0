package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/async-emission/auditor/consensus"
	"github.com/async-emission/auditor/ergo"
)

// HeaderRecord is what the store keeps of a header for the consensus rules.
type HeaderRecord struct {
	ID        ergo.Digest
	ParentID  ergo.Digest
	Height    uint32
	Timestamp uint64 // milliseconds since the Unix epoch
	Version   uint8
	NBits     uint32
	// Known is false for a connected header stored before the store kept
	// version and nBits (both zero then).
	Known bool
	// Work is the cumulative work of a connected header (see
	// migrations/0005_consensus.sql); nil for a context header and for a
	// connected one stored before works were.
	Work *big.Int
	// Block is true for the header of a connected block, false for a
	// context header.
	Block bool
}

// Summary is the record as the rules read it.
func (r *HeaderRecord) Summary() consensus.Summary {
	return consensus.Summary{Height: r.Height, Timestamp: r.Timestamp, NBits: r.NBits, Version: r.Version}
}

// RecordOf returns the record of a header whose id is id.
func RecordOf(h *ergo.Header, id ergo.Digest) HeaderRecord {
	return HeaderRecord{ID: id, ParentID: h.ParentID, Height: h.Height, Timestamp: h.Timestamp,
		Version: h.Version, NBits: h.NBits, Known: true}
}

// MainChainHeader returns the header at height on the chain the store
// follows: the connected block's, else the context header's (below the
// first block, or up to a checkpoint); ok is false when it holds neither.
func (s *Store) MainChainHeader(ctx context.Context, height uint32) (r HeaderRecord, ok bool, err error) {
	op := fmt.Sprintf("main chain header at height %d", height)
	row := s.r.QueryRowContext(ctx, `SELECT id, parent_id, height, timestamp, version, n_bits, work, 1 FROM headers
		WHERE height = ? AND main_chain = 1`, height)
	if r, ok, err = scanHeaderRecord(row); err != nil || ok {
		if err != nil {
			err = storageError(ctx, op, "", err)
		}
		return r, ok, err
	}
	row = s.r.QueryRowContext(ctx, `SELECT id, parent_id, height, timestamp, version, n_bits, NULL, 0 FROM context_headers
		WHERE height = ?`, height)
	if r, ok, err = scanHeaderRecord(row); err != nil {
		err = storageError(ctx, op, "", err)
	}
	return r, ok, err
}

// LowestHeader returns the lowest header the store holds on its chain,
// context headers included; ok is false when it holds none.
func (s *Store) LowestHeader(ctx context.Context) (r HeaderRecord, ok bool, err error) {
	row := s.r.QueryRowContext(ctx, `SELECT id, parent_id, height, timestamp, version, n_bits, work, block FROM (
		SELECT id, parent_id, height, timestamp, version, n_bits, work, 1 AS block FROM headers WHERE main_chain = 1
		UNION ALL SELECT id, parent_id, height, timestamp, version, n_bits, NULL, 0 FROM context_headers)
		ORDER BY height LIMIT 1`)
	if r, ok, err = scanHeaderRecord(row); err != nil {
		err = storageError(ctx, "lowest header", "", err)
	}
	return r, ok, err
}

// FirstBlock returns the header of the lowest connected block on the main
// chain; ok is false when none is connected.
func (s *Store) FirstBlock(ctx context.Context) (r HeaderRecord, ok bool, err error) {
	row := s.r.QueryRowContext(ctx, `SELECT id, parent_id, height, timestamp, version, n_bits, work, 1 FROM headers
		WHERE main_chain = 1 ORDER BY height LIMIT 1`)
	if r, ok, err = scanHeaderRecord(row); err != nil {
		err = storageError(ctx, "first block", "", err)
	}
	return r, ok, err
}

// scanHeaderRecord scans id, parent_id, height, timestamp, version,
// n_bits, work and whether it is a block's header, then extra.
func scanHeaderRecord(row *sql.Row, extra ...any) (HeaderRecord, bool, error) {
	var (
		r                HeaderRecord
		id, parent, work []byte
		ts               int64
		version, nBits   sql.NullInt64
	)
	err := row.Scan(append([]any{&id, &parent, &r.Height, &ts, &version, &nBits, &work, &r.Block}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := scanDigest(id, &r.ID); err != nil {
		return r, false, err
	}
	if err := scanDigest(parent, &r.ParentID); err != nil {
		return r, false, err
	}
	r.Timestamp = uint64(ts)
	if version.Valid && nBits.Valid {
		r.Version, r.NBits, r.Known = uint8(version.Int64), uint32(nBits.Int64), true
	}
	if work != nil {
		w, err := consensus.DecodeWork(work)
		if err != nil {
			return r, false, corrupt("header %s: %v", r.ID, err)
		}
		r.Work = w
	}
	return r, true, nil
}

// PutContextHeaders stores headers the scanner checked without their
// blocks (see migrations/0005_consensus.sql), all in one transaction. A
// header stored already is left as it is; another header at the height of
// a stored one is ErrConflict, as is a context header that contradicts a
// connected block at its height.
func (s *Store) PutContextHeaders(ctx context.Context, hs []HeaderRecord) error {
	const op = "store context headers"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, h := range hs {
		var have ergo.Digest
		if !h.Known {
			return newError(op, ErrInvalidBlock, "header %s at height %d without its version and nBits", h.ID, h.Height)
		}
		var b []byte
		err := tx.QueryRowContext(ctx, `SELECT id FROM context_headers WHERE height = ?
			UNION ALL SELECT id FROM headers WHERE height = ? AND main_chain = 1`, h.Height, h.Height).Scan(&b)
		if err == nil {
			err = scanDigest(b, &have)
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return storageError(ctx, op, "", err)
		case have != h.ID:
			return newError(op, ErrConflict, "header %s at height %d: the store holds %x there", h.ID, h.Height, have)
		default:
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO context_headers (id, height, parent_id, timestamp, version, n_bits)
			VALUES (?, ?, ?, ?, ?, ?)`, h.ID[:], h.Height, h.ParentID[:], int64(h.Timestamp), h.Version, h.NBits); err != nil {
			return storageError(ctx, op, fmt.Sprintf("header %s at height %d", h.ID, h.Height), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return storageError(ctx, op, "commit", err)
	}
	return nil
}

// FillHeaders sets version, nBits and cumulative work on connected headers
// stored before the store kept them (their ids must match; Work may be
// nil). A header that has them already is left as it is.
func (s *Store) FillHeaders(ctx context.Context, hs []HeaderRecord) error {
	const op = "fill headers"
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	for _, h := range hs {
		var work any
		if h.Work != nil {
			b, err := consensus.EncodeWork(h.Work)
			if err != nil {
				return newError(op, ErrInvalidBlock, "header %s: %v", h.ID, err)
			}
			work = b
		}
		if _, err := tx.ExecContext(ctx, `UPDATE headers SET version = ?, n_bits = ?, work = ?
			WHERE id = ? AND height = ? AND version IS NULL`, h.Version, h.NBits, work, h.ID[:], h.Height); err != nil {
			return storageError(ctx, op, fmt.Sprintf("header %s", h.ID), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return storageError(ctx, op, "commit", err)
	}
	return nil
}

// TrustKind says where a trust root came from.
type TrustKind string

const (
	TrustCheckpoint TrustKind = "checkpoint"  // scan.checkpoint
	TrustFirstBlock TrustKind = "first_block" // no checkpoint: the first block connected
	TrustUpgrade    TrustKind = "upgrade"     // a store written before the header rules: where they were first checked
)

// TrustRoot is the header the auditor's checks derive from.
type TrustRoot struct {
	Height  uint32
	ID      ergo.Digest
	Kind    TrustKind
	Network string
	SetAt   time.Time
}

// TrustRoot returns the store's trust root; ok is false before one is set.
func (s *Store) TrustRoot(ctx context.Context) (t TrustRoot, ok bool, err error) {
	if t, ok, err = readTrustRoot(ctx, s.r); err != nil {
		err = storageError(ctx, "read trust root", "", err)
	}
	return t, ok, err
}

func readTrustRoot(ctx context.Context, q queryer) (t TrustRoot, ok bool, err error) {
	var id []byte
	var at int64
	err = q.QueryRowContext(ctx, `SELECT height, id, kind, network, set_at FROM trust_root WHERE singleton = 0`).
		Scan(&t.Height, &id, &t.Kind, &t.Network, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return TrustRoot{}, false, nil
	}
	if err == nil {
		err = scanDigest(id, &t.ID)
	}
	if err != nil {
		return TrustRoot{}, false, err
	}
	t.SetAt = time.UnixMilli(at).UTC()
	return t, true, nil
}

// SetTrustRoot records the trust root. A store has one for its life:
// setting another is ErrConflict (setting the same one again is not).
func (s *Store) SetTrustRoot(ctx context.Context, t TrustRoot) error {
	const op = "set trust root"
	old, ok, err := s.TrustRoot(ctx)
	switch {
	case err != nil:
		return err
	case ok && (old.Height != t.Height || old.ID != t.ID || old.Kind != t.Kind || old.Network != t.Network):
		return newError(op, ErrConflict, "the store's trust root is %s %s at height %d on %s", old.Kind, old.ID, old.Height, old.Network)
	case ok:
		return nil
	}
	if t.SetAt.IsZero() {
		t.SetAt = time.Now()
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO trust_root (singleton, height, id, kind, network, set_at) VALUES (0, ?, ?, ?, ?, ?)`,
		t.Height, t.ID[:], string(t.Kind), t.Network, t.SetAt.UnixMilli()); err != nil {
		return storageError(ctx, op, "", err)
	}
	return nil
}
