package db

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/internal/testfs"
)

// TestConcurrentOpensOfANewFile: two stores opening one new file at once
// both succeed (the switch to WAL may find the file busy).
func TestConcurrentOpensOfANewFile(t *testing.T) {
	for i := range 100 {
		path := filepath.Join(t.TempDir(), "auditor.db")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(context.Background(), path, zerolog.Nop())
				if err == nil {
					s.Close()
				}
				errs[j] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("pair %d: %v", i, err)
			}
		}
	}
}

// TestCheckWritable: a database file SQLite can only read (here a
// read-only mount of the file alone) opens, but CheckWritable says so,
// naming the file; a writable one passes and is left unchanged.
func TestCheckWritable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "auditor.db")
	s, err := Open(ctx, path, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckWritable(ctx); err != nil {
		t.Fatalf("a new database: %v", err)
	}
	var tables int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'write_check'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the check left a table behind (%d, %v)", tables, err)
	}
	s.Close()

	testfs.ReadOnlyBind(t, path)
	s, err = Open(ctx, path, zerolog.Nop())
	if err != nil {
		t.Fatalf("a read-only file opens read-only: %v", err)
	}
	defer s.Close()
	err = s.CheckWritable(ctx)
	t.Logf("read-only file: %v", err)
	if !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "readonly") {
		t.Fatalf("read-only file: %v, want ErrStorage naming %s and saying it is read-only", err, path)
	}
}
