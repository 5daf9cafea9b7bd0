package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/async-emission/auditor/internal/version"
)

// runOut runs the command line in-process and returns its exit code,
// stdout and stderr.
func runOut(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut})
	return code, out.String(), errOut.String()
}

// TestHelpOnStdout: help asked for goes to stdout with exit 0; usage after
// a mistake goes to stderr with exit 2.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		code, out, errOut := runOut(args...)
		if code != exitOK || !strings.Contains(out, "Commands:") || errOut != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	for _, c := range commands() {
		if c.run == nil {
			continue
		}
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}, {c.name, "--help"}} {
			code, out, errOut := runOut(args...)
			if code != exitOK || !strings.HasPrefix(out, "Usage: auditor "+c.name+" ") || errOut != "" {
				t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
			}
			// Every command has the log flags, written with two dashes.
			if !strings.Contains(out, "\n  --log-level LEVEL\n") || !strings.Contains(out, "\n  --log-format FORMAT\n") {
				t.Errorf("%q: no --log-level or --log-format in\n%s", args, out)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Commands:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"status", "--frobnicate"}, "flag provided but not defined: -frobnicate\nUsage: auditor status"},
		{[]string{"status", "--log-level", "loud"}, `--log-level "loud" is not one of trace, debug, info, warn, error`},
		{[]string{"tail", "--log-format", "xml"}, `--log-format "xml" is not one of auto, json, console`},
	} {
		code, out, errOut := runOut(tc.args...)
		if code != exitBadInput || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q on stderr", tc.args, code, out, errOut, tc.want)
		}
	}
}

// TestFlagsAnywhere: flags are parsed before, between and after the
// arguments; "--" ends them.
func TestFlagsAnywhere(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		json     bool
		dir      string
		rest     []string
		logLevel string
	}{
		{[]string{"a", "--json", "b", "--data-dir", "x"}, true, "x", []string{"a", "b"}, ""},
		{[]string{"--data-dir=y", "a", "--log-level", "debug"}, false, "y", []string{"a"}, "debug"},
		{[]string{"a", "--", "--json", "-h"}, false, "", []string{"a", "--json", "-h"}, ""},
		{[]string{"-", "--json"}, true, "", []string{"-"}, ""},
		{nil, false, "", []string{}, ""},
	} {
		fs := newFlagSet(&env{stdout: new(bytes.Buffer), stderr: new(bytes.Buffer)}, "test", "")
		asJSON := fs.Bool("json", false, "")
		dir := fs.String("data-dir", "", "")
		if err := parseFlags(fs, tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if *asJSON != tc.json || *dir != tc.dir || !slices.Equal(fs.Args(), tc.rest) || fs.logLevel != tc.logLevel {
			t.Errorf("%q: json %t, data-dir %q, args %q, log level %q", tc.args, *asJSON, *dir, fs.Args(), fs.logLevel)
		}
	}
	// The same command line, flags first and last: the same answer.
	path := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte("[scan]\nconfirmations = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, before, _ := runOut("check-config", "--config", path)
	code, after, errOut := runOut("check-config", "--config", path, "--log-level", "warn")
	if code != exitOK || before != after || !strings.Contains(after, "valid") {
		t.Errorf("check-config: exit %d, %q vs %q (%s)", code, before, after, errOut)
	}
	if code, _, errOut := runOut("verify", "not-a-box-id", "--json"); code != exitBadInput || !strings.Contains(errOut, `box id "not-a-box-id"`) {
		t.Errorf("verify ID --json: exit %d, %s", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runOut("version")
	_, flagOut, _ := runOut("--version")
	if code != exitOK || out != flagOut || !strings.HasPrefix(out, "auditor ") || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("version: exit %d, %q; --version %q", code, out, flagOut)
	}
	_, out, _ = runOut("version", "--json")
	var info version.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil || info != version.Get() {
		t.Fatalf("version --json: %q (%v), want %+v", out, err, version.Get())
	}
}

// TestCompletion: each shell's script names every command and each
// command's flags; bash's (and zsh's and fish's where they are installed)
// parse, and bash's and fish's complete what they should.
func TestCompletion(t *testing.T) {
	cmds, err := describeCommands()
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != len(commands()) {
		t.Fatalf("%d commands described of %d", len(cmds), len(commands()))
	}
	scripts := map[string]string{}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runOut("completion", shell)
		if code != exitOK {
			t.Fatalf("completion %s: exit %d: %s", shell, code, errOut)
		}
		for _, c := range cmds {
			if !strings.Contains(out, c.name) {
				t.Errorf("completion %s: no command %s", shell, c.name)
			}
			for _, f := range c.flags {
				if want := map[bool]string{true: "-l " + f.name, false: "--" + f.name}[shell == "fish"]; !strings.Contains(out, want) {
					t.Errorf("completion %s: no %s of %s", shell, want, c.name)
				}
			}
		}
		path := filepath.Join(t.TempDir(), "auditor."+shell)
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		scripts[shell] = path
		if sh, err := exec.LookPath(shell); err == nil {
			if out, err := exec.Command(sh, "-n", path).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		} else if shell == "bash" {
			t.Fatalf("no bash: %v", err)
		} else {
			t.Logf("%s is not installed: its script's syntax is not checked", shell)
		}
	}
	bashCases := map[string]string{
		"auditor ve":                      "verify version",
		"auditor verify abc --js":         "--json",
		"auditor run --network ''":        "mainnet testnet devnet",
		"auditor status --log-format j":   "json",
		"auditor help check-":             "check-config check-node",
		"auditor completion f":            "fish",
		"auditor devnet --scenario a":     "async-emission",
		"auditor report --out DIR --data": "--data-dir",
	}
	for line, want := range bashCases {
		script := `source "$1"; eval "COMP_WORDS=($2)"; COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _auditor; echo "${COMPREPLY[*]}"`
		out, err := exec.Command("bash", "-c", script, "bash", scripts["bash"], line).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("bash completes %q to %q (%v), want %q", line, got, err, want)
		}
	}
	if fish, err := exec.LookPath("fish"); err == nil {
		out, err := exec.Command(fish, "-c", `source $argv[1]; complete -C "auditor ve"; complete -C "auditor run --network "`, scripts["fish"]).CombinedOutput()
		for _, want := range []string{"verify\texplain one box", "version\t", "mainnet\t", "devnet\t"} {
			if err != nil || !strings.Contains(string(out), want) {
				t.Errorf("fish completion: %v\n%s\nwant %q", err, out, want)
			}
		}
	}
	if code, _, errOut := runOut("completion", "powershell"); code != exitBadInput || !strings.Contains(errOut, "bash, zsh and fish") {
		t.Errorf("completion powershell: exit %d, %s", code, errOut)
	}
}

// TestDescribeStopsTheCommand: a command asked to describe its flags does
// nothing else (completion relies on it).
func TestDescribeStopsTheCommand(t *testing.T) {
	dir := t.TempDir()
	var described *flagSet
	e := &env{stdout: new(bytes.Buffer), stderr: new(bytes.Buffer), describe: func(fs *flagSet) { described = fs }}
	c, _ := lookup("report")
	if err := c.run(e, []string{"--data-dir", dir}); !errors.Is(err, errDescribed) || described == nil || described.Lookup("out") == nil {
		t.Fatalf("report described: %v, %v", err, described)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("describing report wrote %d files", len(entries))
	}
}
