package main

import (
	"encoding/json"
	"fmt"

	"github.com/async-emission/auditor/internal/version"
)

const versionSynopsis = `[--json]

Prints the build: the module version (a tag when installed with
'go install …@vX.Y.Z', "(devel)" when built from a checkout), the commit
and its time, and the Go version. 'auditor --version' is the same.`

func runVersion(e *env, args []string) error {
	fs := newFlagSet(e, "version", versionSynopsis)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	info := version.Get()
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	_, err := fmt.Fprintln(e.stdout, info)
	return err
}
