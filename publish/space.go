package publish

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// SpaceError is an ErrNoSpace: JetStream may store Need bytes in Dir, more
// than 3/4 of the Free bytes its file system has plus the Used bytes the
// store holds already.
type SpaceError struct {
	Dir              string
	Need, Free, Used int64
}

// Fits is the most a store in Dir may be given.
func (e *SpaceError) Fits() int64 { return (e.Free + e.Used) / 4 * 3 }

func (e *SpaceError) Error() string {
	return fmt.Sprintf("publish: %s: the stream may grow to %s, but the file system of %s has %s free and the store holds %s: at most %s fits (3/4 of the two, the headroom nats-server keeps)",
		ErrNoSpace, Bytes(e.Need), e.Dir, Bytes(e.Free), Bytes(e.Used), Bytes(e.Fits()))
}

// Unwrap makes the error an ErrNoSpace.
func (e *SpaceError) Unwrap() error { return ErrNoSpace }

// checkSpace fails with a *SpaceError when need bytes do not fit the store
// in dir (see SpaceError).
func checkSpace(dir string, need int64) error {
	free, err := FreeSpace(dir)
	if err != nil {
		return newError(ErrServer, "measure the free space of "+dir, err)
	}
	used := dirSize(dir)
	if e := (&SpaceError{Dir: dir, Need: need, Free: free, Used: used}); need > e.Fits() {
		return e
	}
	return nil
}

// FreeSpace is what an unprivileged process may still write on the file
// system of path.
func FreeSpace(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// dirSize is the size of the regular files below dir (what cannot be read
// counts nothing).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error { //nolint:errcheck // best effort
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Bytes renders a size for people: 1.0 GiB, 512 MiB, 900 B.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
