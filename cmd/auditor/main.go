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
	}
}

func main() {
	os.Exit(run(os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}))
}

func run(args []string, e *env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr)
		if len(args) == 0 {
			return exitBadInput
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(e, args[1:])
		var bad badInput
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
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
	fmt.Fprintf(e.stderr, "auditor: unknown command %q\n\n", args[0])
	usage(e.stderr)
	return exitBadInput
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: auditor <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'auditor <command> -h' for a command's flags.")
}

// newFlagSet returns a FlagSet that reports errors to e.stderr and returns
// them instead of exiting.
func newFlagSet(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: auditor %s %s\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; the flag package reports a bad flag itself.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errReported, err)
	}
	return nil
}
