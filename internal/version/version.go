// Package version says which build of the auditor is running, from what
// the Go toolchain recorded in the binary: the module's version (a tag
// when installed with `go install …@v1.2.3`, "(devel)" when built from a
// checkout), the VCS revision and its time, and the Go version.
package version

import (
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// Info is one build.
type Info struct {
	Version   string    `json:"version"`            // module version, or "(devel)"
	Revision  string    `json:"revision,omitempty"` // VCS commit, when built from a checkout
	Time      time.Time `json:"time,omitzero"`      // the commit's time
	Modified  bool      `json:"modified"`           // the checkout had uncommitted changes
	GoVersion string    `json:"go_version"`
}

// Get returns the running binary's build.
var Get = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "unknown", GoVersion: "unknown"}
	}
	return fromBuildInfo(bi)
})

func fromBuildInfo(bi *debug.BuildInfo) Info {
	info := Info{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if info.Version == "" {
		info.Version = "(devel)" // a test binary has no main module version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the build on one line: "auditor v1.2.0 (commit 1a2b3c4d5e6f,
// 2026-12-01T10:00:00Z) go1.25.0", with "+modified" after a commit built
// with uncommitted changes.
func (i Info) String() string {
	s := "auditor " + i.Version
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if i.Modified {
			rev += "+modified"
		}
		s += " (commit " + rev
		if !i.Time.IsZero() {
			s += ", " + i.Time.UTC().Format(time.RFC3339)
		}
		s += ")"
	}
	return fmt.Sprintf("%s %s", s, i.GoVersion)
}
