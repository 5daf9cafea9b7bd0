package report

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// A report is a pair of files, report-<time>.json and report-<time>.html,
// <time> being its UTC time to the second (20261124T030000Z), with -N
// appended when a report of the same second is there already.

const stampLayout = "20060102T150405Z"

var fileName = regexp.MustCompile(`^report-([0-9]{8}T[0-9]{6}Z)(?:-([0-9]+))?\.(json|html)$`)

// stem is a report's file name without its extension.
type stem struct {
	name string
	at   time.Time
	n    int
}

// newStem returns the first stem of time t that dir has no file of.
func newStem(dir string, t time.Time) (string, error) {
	base := "report-" + t.UTC().Format(stampLayout)
	for n := 0; n < 1000; n++ {
		name := base
		if n > 0 {
			name = fmt.Sprintf("%s-%d", base, n)
		}
		free := true
		for _, ext := range []string{".json", ".html"} {
			if _, err := os.Lstat(filepath.Join(dir, name+ext)); err == nil {
				free = false
			} else if !errors.Is(err, fs.ErrNotExist) {
				return "", err
			}
		}
		if free {
			return name, nil
		}
	}
	return "", fmt.Errorf("report: a thousand reports of %s in %s", base, dir)
}

// writeFile writes data to path atomically: a temporary file in the same
// directory, synced, then renamed over path.
func writeFile(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// reportStems lists the report stems in dir, newest first. Files not named
// as reports are not listed.
func reportStems(dir string) ([]stem, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []stem
	for _, e := range entries {
		m := fileName.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			continue
		}
		at, err := time.Parse(stampLayout, m[1])
		if err != nil {
			continue // a name of the shape with an impossible date is not one of ours
		}
		n := 0
		if m[2] != "" {
			n, _ = strconv.Atoi(m[2])
		}
		name := e.Name()[:len(e.Name())-len(m[3])-1]
		if !seen[name] {
			seen[name] = true
			out = append(out, stem{name: name, at: at, n: n})
		}
	}
	slices.SortFunc(out, func(a, b stem) int {
		return cmp.Or(b.at.Compare(a.at), cmp.Compare(b.n, a.n))
	})
	return out, nil
}

// prune keeps the newest keep reports in dir and deletes the files of the
// others; keep 0 keeps every report. It returns the files it deleted.
func prune(dir string, keep int) ([]string, error) {
	if keep <= 0 {
		return nil, nil
	}
	stems, err := reportStems(dir)
	if err != nil || len(stems) <= keep {
		return nil, err
	}
	var deleted []string
	var errs []error
	for _, s := range stems[keep:] {
		for _, ext := range []string{".json", ".html"} {
			p := filepath.Join(dir, s.name+ext)
			switch err := os.Remove(p); {
			case err == nil:
				deleted = append(deleted, p)
			case !errors.Is(err, fs.ErrNotExist):
				errs = append(errs, err)
			}
		}
	}
	return deleted, errors.Join(errs...)
}
