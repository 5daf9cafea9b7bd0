package api

import (
	"io/fs"
	"net/http"
	"os"
	"path"
	"strings"
)

// reportsHandler serves dir under /reports/: its regular files and the
// listings of its directories, nothing else. A symbolic link (to a file
// outside or inside dir), a device or a pipe is answered 404 and left out
// of the listings, and the file system underneath is an os.Root, so no
// path, not even one raced in between the checks, leads outside dir. Names
// that start with a dot (the report writer's temporary files among them)
// are neither served nor listed.
func reportsHandler(dir string) http.Handler {
	if dir == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "no reports directory", http.StatusNotFound)
		})
	}
	files := http.FileServer(reportsFS{dir})
	return http.StripPrefix("/reports", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Set from the extension, not from the system's MIME tables;
		// http.Error replaces it for a failure.
		switch strings.ToLower(path.Ext(r.URL.Path)) {
		case ".json":
			w.Header().Set("Content-Type", "application/json")
		case ".html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		files.ServeHTTP(w, r)
	}))
}

// reportsFS is the reports directory as http.FileServer sees it: only
// directories and regular files, reached without following any symbolic
// link, and no name that starts with a dot.
type reportsFS struct{ dir string }

// Open opens name, a slash-separated path that http.FileServer has cleaned
// and rooted at "/".
func (f reportsFS) Open(name string) (http.File, error) {
	rel := strings.Trim(name, "/")
	if rel == "" {
		rel = "."
	}
	for _, part := range strings.Split(rel, "/") {
		if strings.HasPrefix(part, ".") && part != "." {
			return nil, fs.ErrNotExist
		}
	}
	root, err := os.OpenRoot(f.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// Every component, the last one included, must be what it looks like:
	// Lstat does not follow links.
	if rel != "." {
		parts := strings.Split(rel, "/")
		for i := range parts {
			fi, err := root.Lstat(strings.Join(parts[:i+1], "/"))
			if err != nil {
				return nil, err
			}
			if !servable(fi) || (i < len(parts)-1 && !fi.IsDir()) {
				return nil, fs.ErrNotExist
			}
		}
	}
	file, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	fi, err := file.Stat()
	if err != nil || !servable(fi) {
		file.Close()
		if err == nil {
			err = fs.ErrNotExist
		}
		return nil, err
	}
	return reportsDir{file}, nil
}

// servable tells whether a file is served or listed: a directory or a
// regular file.
func servable(fi fs.FileInfo) bool { return fi.IsDir() || fi.Mode().IsRegular() }

// reportsDir lists a directory with only the entries reportsFS serves. It
// holds the file as an http.File, which has no ReadDir, so http.FileServer
// lists with Readdir (all entries at once).
type reportsDir struct{ http.File }

func (d reportsDir) Readdir(n int) ([]fs.FileInfo, error) {
	infos, err := d.File.Readdir(n) // Lstat information: a link is a link
	out := infos[:0]
	for _, fi := range infos {
		if !strings.HasPrefix(fi.Name(), ".") && servable(fi) {
			out = append(out, fi)
		}
	}
	return out, err
}
