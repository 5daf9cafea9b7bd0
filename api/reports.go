package api

import (
	"io/fs"
	"net/http"
	"path"
	"strings"
)

// reportsHandler serves dir under /reports/. http.Dir keeps every path
// inside dir; names that start with a dot (the report writer's temporary
// files among them) are neither served nor listed.
func reportsHandler(dir string) http.Handler {
	if dir == "" {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "no reports directory", http.StatusNotFound)
		})
	}
	files := http.FileServer(hideDotFiles{http.Dir(dir)})
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

// hideDotFiles is a file system without the names that start with a dot.
type hideDotFiles struct{ fs http.FileSystem }

func (h hideDotFiles) Open(name string) (http.File, error) {
	for _, part := range strings.Split(name, "/") {
		if strings.HasPrefix(part, ".") {
			return nil, fs.ErrNotExist
		}
	}
	f, err := h.fs.Open(name)
	if err != nil {
		return nil, err
	}
	return dotlessDir{f}, nil
}

// dotlessDir lists a directory without the names that start with a dot.
// It has no ReadDir, so http.FileServer lists with Readdir.
type dotlessDir struct{ http.File }

func (d dotlessDir) Readdir(n int) ([]fs.FileInfo, error) {
	infos, err := d.File.Readdir(n)
	out := infos[:0]
	for _, fi := range infos {
		if !strings.HasPrefix(fi.Name(), ".") {
			out = append(out, fi)
		}
	}
	return out, err
}
