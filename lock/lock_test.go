//go:build unix

package lock_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/async-emission/auditor/internal/testfs"
	"github.com/async-emission/auditor/lock"
)

// helperEnv makes the test binary a process that locks the directory it
// names, says "locked" and waits to be killed.
const helperEnv = "LOCK_TEST_HOLD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperEnv); dir != "" {
		l, err := lock.Acquire(dir, "test.lock")
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		fmt.Println("locked", l.Path())
		select {}
	}
	os.Exit(m.Run())
}

// TestSecondAcquireRefused: a directory held is refused at once to a second
// Acquire, with an error naming the directory and the holder; once
// released it can be taken again.
func TestSecondAcquireRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "new") // created by Acquire
	l, err := lock.Acquire(dir, "test.lock")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "test.lock"))
	if err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(os.Getpid()) {
		t.Fatalf("the lock file holds %q (%v), want this process's id %d", b, err, os.Getpid())
	}
	start := time.Now()
	_, err = lock.Acquire(dir, "test.lock")
	var le *lock.Error
	if !errors.Is(err, lock.ErrHeld) || !errors.As(err, &le) || le.PID != os.Getpid() || le.Dir != dir {
		t.Fatalf("second Acquire: %v (%+v), want ErrHeld naming %s and process %d", err, le, dir, os.Getpid())
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("message %q does not name the directory and the process", msg)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("the refusal took %s: it must not wait", time.Since(start))
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := lock.Acquire(dir, "test.lock")
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l2.Release()
}

// TestKilledHolderReleases: a process that holds the directory refuses it
// to others; SIGKILLed, it releases it with no clean-up of its own.
func TestKilledHolderReleases(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "locked") {
		t.Fatalf("the holder said %q (%v)", line, err)
	}
	_, err = lock.Acquire(dir, "test.lock")
	var le *lock.Error
	if !errors.As(err, &le) || le.Kind != lock.ErrHeld || le.PID != cmd.Process.Pid {
		t.Fatalf("held by process %d: %v", cmd.Process.Pid, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := lock.Acquire(dir, "test.lock")
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	l.Release()
}

// TestUnwritable: a directory that cannot be written is ErrUnwritable with
// the system's reason: a path below a file, and a read-only mount.
func TestUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Acquire(filepath.Join(file, "data"), "test.lock"); !errors.Is(err, lock.ErrUnwritable) || !errors.Is(err, syscall.ENOTDIR) {
		t.Fatalf("below a file: %v", err)
	}
	t.Run("read-only mount", func(t *testing.T) {
		ro := testfs.Tmpfs(t, 1<<20, true)
		for _, dir := range []string{ro, filepath.Join(ro, "data")} {
			_, err := lock.Acquire(dir, "test.lock")
			if !errors.Is(err, lock.ErrUnwritable) || !errors.Is(err, syscall.EROFS) || !strings.Contains(err.Error(), "read-only file system") {
				t.Fatalf("%s: %v, want ErrUnwritable saying read-only file system", dir, err)
			}
		}
	})
}
