// Command auditor audits Ergo protocols built on the User Async Emission
// pattern. Each subcommand lives in its own file; main only dispatches and
// maps errors to exit codes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// Exit codes shared by the subcommands.
const (
	exitOK       = 0
	exitFailed   = 1 // the command ran and found something wrong (e.g. an id that does not verify)
	exitBadInput = 2 // the command line or the input could not be used
)

// command is one subcommand: it parses its own flags from args and returns
// an error. errFailed exits 1 and errReported exits 2, both silently (the
// command has said why); a badInput exits 2 and any other error 1, each
// printed.
type command struct {
	name    string
	summary string
	run     func(env *env, args []string) error
}

// env is what a subcommand may touch of the process, so tests can run
// commands in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	// describe, when set, receives a command's flags instead of the
	// command running (parseFlags returns errDescribed): completion
	// learns the flags so.
	describe func(*flagSet)
}

var (
	errFailed   = errors.New("verification failed")             // exit 1; the output says what
	errReported = errors.New("input or usage problem reported") // exit 2; stderr says what
)

// badInput marks an error as the input's fault (exit 2).
type badInput struct{ err error }

func (b badInput) Error() string { return b.err.Error() }
func (b badInput) Unwrap() error { return b.err }

func commands() []command {
	return []command{
		{"demo", "watch the auditor audit a simulated chain with forgeries, in one process", runDemo},
		{"run", "follow an Ergo node and store what the configuration watches", runRun},
		{"status", "print the stored chain state, verdict counts and the state digest", runStatus},
		{"verify", "explain one box: its class, verdict, reasons and lineage", runVerify},
		{"check-config", "validate a configuration file and exit", runCheckConfig},
		{"report", "make an audit report now (JSON and HTML) from the stored state", runReport},
		{"rescan", "judge one protocol again from a height (after an upgrade); the next run backfills it", runRescan},
		{"prune", "delete the history of a protocol removed from the configuration", runPrune},
		{"tail", "print the auditor's events from NATS as they arrive", runTail},
		{"inspect", "decode Ergo node JSON and re-derive every id, root and PoW", runInspect},
		{"check-node", "verify a range of a node's chain as the daemon does, storing nothing; report its speed", runCheckNode},
		{"devnet", "serve a simulated Ergo node over a generated chain that verifies", runDevnet},
		{"version", "print the auditor's version, commit and Go version", runVersion},
		{"completion", "print a shell completion script (bash, zsh or fish)", runCompletion},
		{"help", "show the commands, or a command's flags (auditor help CMD)", nil},
	}
}

func main() {
	os.Exit(run(os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}))
}

func run(args []string, e *env) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitBadInput
	}
	switch args[0] {
	case "-h", "-help", "--help":
		usage(e.stdout)
		return exitOK
	case "--version", "-version":
		args[0] = "version"
	case "help":
		if len(args) == 1 {
			usage(e.stdout)
			return exitOK
		}
		if _, ok := lookup(args[1]); !ok || args[1] == "help" {
			fmt.Fprintf(e.stderr, "auditor help: unknown command %q\n\n", args[1])
			usage(e.stderr)
			return exitBadInput
		}
		args = []string{args[1], "--help"}
	}
	c, ok := lookup(args[0])
	if !ok || c.run == nil {
		fmt.Fprintf(e.stderr, "auditor: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return exitBadInput
	}
	err := c.run(e, args[1:])
	var bad badInput
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp), errors.Is(err, errDescribed):
		return exitOK
	case errors.Is(err, errFailed):
		return exitFailed
	case errors.Is(err, errReported):
		return exitBadInput
	case errors.As(err, &bad):
		fmt.Fprintf(e.stderr, "auditor %s: %v\n", c.name, err)
		return exitBadInput
	default:
		fmt.Fprintf(e.stderr, "auditor %s: %v\n", c.name, err)
		return exitFailed
	}
}

// lookup finds a command by name.
func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: auditor <command> [flags] [arguments]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nFlags may come before or after the arguments. Every command takes --log-level and\n--log-format. 'auditor help <command>' shows a command's flags; 'auditor --version'\nthe build.")
}
