package version

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.25.1", Main: debug.Module{Path: "github.com/async-emission/auditor", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	info := fromBuildInfo(bi)
	want := Info{Version: "v1.2.0", Revision: "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d", Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Modified: true, GoVersion: "go1.25.1"}
	if info != want {
		t.Fatalf("got %+v, want %+v", info, want)
	}
	if s := info.String(); s != "auditor v1.2.0 (commit 1a2b3c4d5e6f+modified, 2026-12-01T10:00:00Z) go1.25.1" {
		t.Fatalf("String %q", s)
	}
	if s := fromBuildInfo(&debug.BuildInfo{GoVersion: "go1.25.1"}).String(); s != "auditor (devel) go1.25.1" {
		t.Fatalf("no module version: %q", s)
	}
}

// TestGetReadsTheBinary: the running binary (this test's) has build info.
func TestGetReadsTheBinary(t *testing.T) {
	if info := Get(); info.GoVersion != runtime.Version() || info.Version == "" {
		t.Fatalf("Get() = %+v, running %s", info, runtime.Version())
	}
}
