package db

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"strconv"

	"github.com/rs/zerolog"
)

// applicationID marks an SQLite file as an auditor database ("EAUD"), so
// that Open refuses to migrate some other program's database.
const applicationID = 0x45415544

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one numbered schema step, migrations/NNNN_name.sql, which
// takes the schema from version NNNN-1 to NNNN. Migrations are never edited
// once released; a change is a new file. A file must not BEGIN or COMMIT:
// migrate runs it in a transaction of its own.
type migration struct {
	version int
	name    string
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]{4})_[a-z0-9_]+\.sql$`)

// loadMigrations reads the embedded migrations and checks that they are
// numbered 1, 2, … without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries { // ReadDir sorts by name
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %q is not named NNNN_name.sql", e.Name())
		}
		v, _ := strconv.Atoi(m[1])
		if v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", e.Name(), len(ms)+1)
		}
		text, err := fs.ReadFile(fsys, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(text)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no migrations")
	}
	return ms, nil
}

// SchemaVersion is the schema version this build creates and reads: the
// number of its last migration.
func SchemaVersion() int {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate brings the schema up to date with ms, one transaction per migration, each
// also setting PRAGMA user_version (which SQLite keeps in the file header,
// inside the transaction). It reads the version inside each transaction, so
// two processes opening a new file at once cannot both apply a step.
func migrate(ctx context.Context, db *sql.DB, ms []migration, log zerolog.Logger) (int, error) {
	for {
		version, done, err := migrateStep(ctx, db, ms, log)
		if err != nil {
			return 0, err
		}
		if done {
			return version, nil
		}
	}
}

// migrateStep applies the next migration, if any; done reports that the
// schema was already current.
func migrateStep(ctx context.Context, db *sql.DB, ms []migration, log zerolog.Logger) (version int, done bool, err error) {
	const op = "open: migrate"
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, storageError(ctx, op, "begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	var appID int64
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return 0, false, storageError(ctx, op, "read user_version", err)
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return 0, false, storageError(ctx, op, "read application_id", err)
	}
	latest := len(ms)
	switch {
	case version == 0:
		var tables int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
			return 0, false, storageError(ctx, op, "read sqlite_schema", err)
		}
		if tables > 0 || (appID != 0 && appID != applicationID) {
			return 0, false, newError(op, ErrSchema, "the file holds another database (application_id %#x, %d schema objects, no schema version)", appID, tables)
		}
	case appID != applicationID:
		return 0, false, newError(op, ErrSchema, "the file holds another database (application_id %#x, user_version %d)", appID, version)
	case version > latest:
		return 0, false, newError(op, ErrSchema, "schema version %d is newer than this build's %d", version, latest)
	case version == latest:
		return version, true, nil
	}

	m := ms[version]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return 0, false, storageError(ctx, op, m.name, err)
	}
	// PRAGMA arguments cannot be bound; both values are integers.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, m.version)); err != nil {
		return 0, false, storageError(ctx, op, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, storageError(ctx, op, m.name+": commit", err)
	}
	log.Info().Str("migration", m.name).Int("schema_version", m.version).Msg("applied schema migration")
	return m.version, false, nil
}
