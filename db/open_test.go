package db

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rs/zerolog"
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
