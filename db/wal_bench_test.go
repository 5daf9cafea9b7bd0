package db

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/async-emission/auditor/ergo/sigma"
)

// BenchmarkWALSettings connects a chain of synthetic 10-transaction blocks
// keeping every box, in transactions of 64 blocks (a catch-up) or of one
// (the tip), under SQLite settings the store could use, and reports the
// process's CPU time and the bytes it wrote to disk per block. "store" is
// the store's settings (WAL, synchronous=NORMAL, a 64 MiB writer cache,
// checkpoints every 8000 pages); "sqlite-cache-and-checkpoint" SQLite's
// own cache and checkpoint interval (2 MB, 1000 pages); "full" fsyncs the
// WAL at every commit, which a power loss would need and a killed process
// does not; "mmap" maps 256 MiB of the file.
//
//	go test -run '^$' -bench WALSettings -benchtime 3000x -count 3 ./db/
func BenchmarkWALSettings(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	token := sigma.Token{ID: id("bench token"), Amount: 1}
	for _, v := range []struct {
		name    string
		pragmas []string
	}{
		{"store", nil},
		{"sqlite-cache-and-checkpoint", []string{"PRAGMA cache_size = -2000", "PRAGMA wal_autocheckpoint = 1000"}},
		{"full", []string{"PRAGMA synchronous = FULL"}},
		{"mmap", []string{"PRAGMA mmap_size = 268435456"}},
	} {
		for _, batch := range []int{64, 1} {
			b.Run(fmt.Sprintf("%s/batch-%d", v.name, batch), func(b *testing.B) {
				chain := syntheticChain(b.N, 10, token)
				s := newStore(b)
				for _, p := range v.pragmas {
					if _, err := s.w.ExecContext(ctx, p); err != nil {
						b.Fatal(err)
					}
				}
				cpu0, io0 := processCPU(b), writtenBytes(b)
				b.ResetTimer()
				for i := 0; i < len(chain); i += batch {
					if err := s.ConnectBlocks(ctx, chain[i:min(i+batch, len(chain))], KeepAll{}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				cpu, written := processCPU(b)-cpu0, writtenBytes(b)-io0
				b.ReportMetric(float64(cpu)/1e3/float64(b.N), "cpu-µs/block")
				b.ReportMetric(float64(written)/float64(b.N)/1024, "KiB-written/block")
				reportBlocks(b, b.N)
			})
		}
	}
}

// processCPU is the process's user and system CPU time so far, in ns.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// writtenBytes is what the process has caused to be written to storage
// (/proc/self/io's write_bytes; 0 where the kernel does not say).
func writtenBytes(b *testing.B) int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	return 0
}
