//go:build linux

// Package testfs mounts small real file systems for tests that need a
// disk to fill up or to be read-only: a tmpfs of a given size, mounted on
// a test's temporary directory and unmounted when the test ends.
//
// Mounting needs root, or a user and mount namespace of one's own: as a
// user, run the tests with `unshare -Urm go test ...`. Without either the
// tests that need it are skipped, saying so.
package testfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size bytes (rounded up to pages) on a new
// directory and returns it; readOnly mounts it read-only. It is unmounted
// when the test ends. The test is skipped when mounting is not permitted.
func Tmpfs(t testing.TB, size int64, readOnly bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var flags uintptr = syscall.MS_NOSUID | syscall.MS_NODEV
	if readOnly {
		flags |= syscall.MS_RDONLY
	}
	mount(t, "tmpfs", dir, "tmpfs", flags, fmt.Sprintf("size=%d,mode=0755", size))
	return dir
}

// ReadOnlyBind makes the file or directory at path read-only in place (a
// read-only bind mount of it over itself) until the test ends; the
// directory holding it stays writable. The test is skipped when mounting
// is not permitted.
func ReadOnlyBind(t testing.TB, path string) {
	t.Helper()
	mount(t, path, path, "", syscall.MS_BIND, "")
	if err := syscall.Mount("", path, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount %s read-only: %v", path, err)
	}
}

// mount mounts source on target until the test ends (unmounted lazily: a
// file a failed test left open must not keep it mounted), or skips the
// test when mounting is not permitted.
func mount(t testing.TB, source, target, fstype string, flags uintptr, data string) {
	t.Helper()
	err := syscall.Mount(source, target, fstype, flags, data)
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
		t.Skipf("cannot mount on %s (%v): run as root, or as a user with `unshare -Urm go test ...`", target, err)
	}
	if err != nil {
		t.Fatalf("mount %s on %s: %v", source, target, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", target, err)
		}
	})
}

// Fill writes a file at path until the file system is full (ENOSPC) and
// returns how many bytes it wrote. Remove the file to free the space.
func Fill(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for len(buf) > 0 {
		w, err := f.Write(buf)
		n += int64(w)
		switch {
		case errors.Is(err, syscall.ENOSPC):
			buf = buf[:len(buf)/2] // the last pages, in smaller writes
		case err != nil:
			t.Fatal(err)
		}
	}
	return n
}
