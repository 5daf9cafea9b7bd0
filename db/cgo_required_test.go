package db

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBuildWithoutCgoNamesTheCompiler: without cgo the build fails, and its
// first error says that a C compiler is needed (not "undefined:
// sqlite3.Error").
func TestBuildWithoutCgoNamesTheCompiler(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command to build with: %v", err)
	}
	cmd := exec.Command(gobin, "build", "-o", os.DevNull, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("the store built without cgo")
	}
	var first string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, ".go:") {
			first = line
			break
		}
	}
	if !strings.Contains(first, "undefined: the_auditor_needs_cgo_and_a_C_compiler") {
		t.Fatalf("first error %q; output:\n%s", first, out)
	}
}
