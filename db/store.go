package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3" // also registers the "sqlite3" driver
	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/ergo"
)

// journalMode connects db and returns the file's journal mode. Connecting
// switches a new file to WAL, which takes an exclusive lock; SQLite does
// not wait on that lock (its busy handler is not called there), so two
// processes opening a new file at once may see SQLITE_BUSY at once. The
// connection is retried then, for up to busyTimeoutMS.
func journalMode(ctx context.Context, db *sql.DB) (string, error) {
	deadline := time.Now().Add(busyTimeoutMS * time.Millisecond)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || (se.Code != sqlite3.ErrBusy && se.Code != sqlite3.ErrLocked) || time.Now().After(deadline) {
			return mode, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(delay):
		}
	}
}

// busyTimeoutMS is how long a connection waits for a lock held by another
// (a reader during a checkpoint, another process) before failing.
const busyTimeoutMS = 5000

// maxReaders bounds the read-only connections.
const maxReaders = 4

// The writer's cache and checkpoints, chosen by BenchmarkWALSettings
// (3,000 blocks of 10 transactions, every box kept, 64 blocks a
// transaction): a 64 MiB page cache instead of SQLite's 2 MB keeps the
// indexes in memory as the store grows (CPU per block −25 %), and a
// checkpoint every 8,000 WAL pages (32 MiB) instead of 1,000 writes the
// hot pages back less often (bytes written per block −23 %). After a
// checkpoint the WAL file is truncated to walSizeLimit. Memory-mapped reads
// (mmap_size) would save another 17 % of CPU in that benchmark, but turn
// an I/O error into SIGBUS, which SQLite cannot report: not used.
//
// Both pools keep the statements they run in a cache of stmtCacheSize per
// connection (go-sqlite3's _stmt_cache_size): an ad-hoc query — an outbox
// insert, the relay's reads — is compiled once per connection, not at every
// call (preparing the outbox insert was 5 % of a publishing auditor's CPU).
const (
	stmtCacheSize      = 64
	writerCacheKiB     = 64 << 10
	walCheckpointPages = 8000
	walSizeLimit       = 64 << 20
)

// writerDriver is the driver of the writer's connection: each connection
// it opens checkpoints the WAL every walCheckpointPages pages (a setting
// of the connection, which the DSN cannot carry).
const writerDriver = "sqlite3-auditor-writer"

func init() {
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec(fmt.Sprintf("PRAGMA wal_autocheckpoint = %d; PRAGMA journal_size_limit = %d", walCheckpointPages, walSizeLimit), nil)
		return err
	}})
}

// Store is the scanner's SQLite database. It is safe for concurrent use:
// writes go through one connection and are serialized; reads (Tip,
// MainChainID, Status) use a separate pool of read-only connections, which
// in WAL mode see the last committed block without waiting for a write.
type Store struct {
	log  zerolog.Logger
	path string
	w    *sql.DB // the writer: one connection, transactions BEGIN IMMEDIATE
	r    *sql.DB // readers: query_only connections
	stmt writeStmts

	lineageTokens tokenSet // see blockState.Lineages
	events        events   // see SetEvents
}

// Tip is the block the store has connected last, or after a disconnect its
// parent.
type Tip struct {
	Height uint32
	ID     ergo.Digest
}

// Open opens the database file at path, creating it if needed, and applies
// the schema migrations it lacks. The file uses WAL journaling with
// synchronous=NORMAL (a committed block survives a crash of the process; a
// power loss may lose the last blocks, which the scanner connects again;
// synchronous=FULL, which would keep them, fsyncs at every commit: +20 %
// time per block at the tip in BenchmarkWALSettings here, more on a slow
// disk), and enforces foreign keys. A file with a schema newer than this build, or
// that is not an auditor database, is refused with ErrSchema.
func Open(ctx context.Context, path string, log zerolog.Logger) (*Store, error) {
	const op = "open"
	if path == "" {
		return nil, newError(op, ErrStorage, "no database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrStorage, Detail: path, Err: err}
	}
	s := &Store{log: log, path: abs}
	ok := false
	defer func() {
		if !ok {
			s.closeDBs()
		}
	}()

	s.w, err = sql.Open(writerDriver, dsn(abs,
		"_txlock=immediate", "_journal_mode=WAL", "_synchronous=NORMAL", "_foreign_keys=on",
		fmt.Sprintf("_cache_size=-%d", writerCacheKiB), fmt.Sprintf("_stmt_cache_size=%d", stmtCacheSize)))
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrStorage, Detail: abs, Err: err}
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1) // keep the connection, and its prepared statements
	mode, err := journalMode(ctx, s.w)
	if err != nil {
		return nil, storageError(ctx, op, abs, err)
	}
	if mode != "wal" {
		return nil, newError(op, ErrStorage, "%s: journal mode is %q, WAL is required", abs, mode)
	}

	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrSchema, Detail: "embedded migrations", Err: err}
	}
	version, err := migrate(ctx, s.w, ms, s.log)
	if err != nil {
		return nil, err
	}
	if err := s.stmt.prepare(ctx, s.w); err != nil {
		return nil, storageError(ctx, op, "prepare statements", err)
	}

	s.r, err = sql.Open("sqlite3", dsn(abs, "_query_only=on", fmt.Sprintf("_stmt_cache_size=%d", stmtCacheSize)))
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrStorage, Detail: abs, Err: err}
	}
	s.r.SetMaxOpenConns(maxReaders)
	s.r.SetMaxIdleConns(maxReaders)

	if err := s.lineageTokens.load(ctx, s.w); err != nil {
		return nil, storageError(ctx, op, "read lineage tokens", err)
	}

	tip, hasTip, err := s.Tip(ctx)
	if err != nil {
		return nil, err
	}
	ev := s.log.Info().Str("path", abs).Int("schema_version", version)
	if hasTip {
		ev = ev.Uint32("tip_height", tip.Height).Stringer("tip_id", tip.ID)
	}
	ev.Msg("opened store")
	ok = true
	return s, nil
}

// CheckWritable makes sure the database can be written, as the scanner
// will write it. SQLite opens a file it may not write (by its mode, or on a
// read-only mount) read-only without a word, so that the first block would
// be the first to fail; a daemon calls this at start instead. It writes in
// a transaction that it rolls back: the file is left as it was. Errors wrap
// ErrStorage and name the file.
func (s *Store) CheckWritable(ctx context.Context) error {
	const op = "check the database is writable"
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		return storageError(ctx, op, s.path, err)
	}
	defer tx.Rollback() //nolint:errcheck // nothing to keep
	if _, err := tx.ExecContext(ctx, `CREATE TABLE main.write_check (x)`); err != nil {
		return storageError(ctx, op, s.path, err)
	}
	return nil
}

// dsn builds the go-sqlite3 data source name for a file: a file: URI, so
// that a path holding '?' or '#' stays a path, followed by the driver's
// connection parameters.
func dsn(abs string, params ...string) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(abs))
	return "file:" + escaped + "?" + strings.Join(append(params, fmt.Sprintf("_busy_timeout=%d", busyTimeoutMS)), "&")
}

// Close closes the database. The writer closes last, so that SQLite
// checkpoints the WAL into the database file.
func (s *Store) Close() error {
	if _, err := s.w.Exec("PRAGMA optimize"); err != nil {
		s.log.Warn().Err(err).Msg("PRAGMA optimize failed")
	}
	if err := s.closeDBs(); err != nil {
		return &Error{Op: "close", Kind: ErrStorage, Err: err}
	}
	s.log.Info().Str("path", s.path).Msg("closed store")
	return nil
}

func (s *Store) closeDBs() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close()) // also closes the prepared statements
	}
	return errors.Join(errs...)
}

// Tip returns the tip; ok is false when the store is empty.
func (s *Store) Tip(ctx context.Context) (tip Tip, ok bool, err error) {
	tip, ok, err = readTip(ctx, s.r)
	if err != nil {
		return Tip{}, false, storageError(ctx, "read tip", "", err)
	}
	return tip, ok, nil
}

// MainChainID returns the id of the connected block at height; ok is false
// when no connected block has that height.
func (s *Store) MainChainID(ctx context.Context, height uint32) (id ergo.Digest, ok bool, err error) {
	var b []byte
	err = s.r.QueryRowContext(ctx, `SELECT id FROM headers WHERE height = ? AND main_chain = 1`, height).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return id, false, nil
	}
	if err != nil {
		return id, false, storageError(ctx, fmt.Sprintf("main chain id at height %d", height), "", err)
	}
	if err := scanDigest(b, &id); err != nil {
		return id, false, storageError(ctx, fmt.Sprintf("main chain id at height %d", height), "", err)
	}
	return id, true, nil
}

// queryer is what readTip needs of a pool or a transaction.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readTip(ctx context.Context, q queryer) (tip Tip, ok bool, err error) {
	var id []byte
	err = q.QueryRowContext(ctx, `SELECT height, id FROM tip WHERE singleton = 0`).Scan(&tip.Height, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return Tip{}, false, nil
	}
	if err != nil {
		return Tip{}, false, err
	}
	if err := scanDigest(id, &tip.ID); err != nil {
		return Tip{}, false, err
	}
	return tip, true, nil
}

// scanDigest copies a 32-byte id read from the database.
func scanDigest(b []byte, d *ergo.Digest) error {
	if len(b) != len(d) {
		return corrupt("an id of %d bytes", len(b))
	}
	copy(d[:], b)
	return nil
}
