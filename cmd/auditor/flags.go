package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/rs/zerolog"
)

// flagSet is a subcommand's flags: the standard library's, parsed wherever
// they stand among the arguments (`verify BOXID --json`), with help on
// stdout when asked for and errors on stderr, and the flags every command
// has (--log-level, --log-format).
type flagSet struct {
	*flag.FlagSet
	e         *env
	name      string
	synopsis  string
	logLevel  string // "" when not given
	logFormat string
}

// newFlagSet returns the flag set of the subcommand name; synopsis is its
// usage line after "auditor name", and may go on with a description.
func newFlagSet(e *env, name, synopsis string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), e: e, name: name, synopsis: synopsis}
	fs.StringVar(&fs.logLevel, "log-level", "", "log at `LEVEL`: trace, debug, info, warn or error (overrides log.level)")
	fs.StringVar(&fs.logFormat, "log-format", "", "log in `FORMAT`: auto, json or console (overrides log.format)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: auditor %s %s\n\nFlags:\n", name, synopsis)
		fs.printDefaults(w)
	}
	return fs
}

// printDefaults lists the flags as they are written, with two dashes:
// "--config FILE", then the usage and the default.
func (fs *flagSet) printDefaults(w io.Writer) {
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if kind != "" {
			line += " " + kind
		}
		fmt.Fprintf(w, "%s\n        %s", line, strings.ReplaceAll(usage, "\n", "\n        "))
		if def := f.DefValue; def != "" && def != "false" && def != "0" {
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintln(w)
	})
}

// errDescribed is what parse returns when the environment only wanted the
// flags described (for completion): the command must stop there.
var errDescribed = errors.New("flags described")

// parseFlags parses args, flags and arguments in any order ("--" ends the
// flags); fs.Args() are then the arguments. -h and --help print the usage
// on stdout and return flag.ErrHelp; a bad flag is reported on stderr
// with the usage, and errReported returned.
func parseFlags(fs *flagSet, args []string) error {
	if fs.e.describe != nil {
		fs.e.describe(fs)
		return errDescribed
	}
	var out bytes.Buffer
	fs.SetOutput(&out)
	var positional []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			io.Copy(fs.e.stdout, &out) //nolint:errcheck // help on a closed stdout has nowhere to go
			return err
		}
		if err != nil {
			io.Copy(fs.e.stderr, &out) //nolint:errcheck // as above, on stderr
			return fmt.Errorf("%w: %v", errReported, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	// Leave the arguments where fs.Args() finds them.
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return fmt.Errorf("%w: %v", errReported, err)
	}
	if err := fs.checkLog(); err != nil {
		fmt.Fprintf(fs.e.stderr, "auditor %s: %v\n", fs.name, err)
		return errReported
	}
	return nil
}

// checkLog refuses a --log-level or --log-format the logger would not know.
func (fs *flagSet) checkLog() error {
	if fs.logLevel != "" {
		if _, err := zerolog.ParseLevel(fs.logLevel); err != nil || !slices.Contains(logLevels, fs.logLevel) {
			return fmt.Errorf("--log-level %q is not one of %s", fs.logLevel, strings.Join(logLevels, ", "))
		}
	}
	if fs.logFormat != "" && !slices.Contains(logFormats, fs.logFormat) {
		return fmt.Errorf("--log-format %q is not one of %s", fs.logFormat, strings.Join(logFormats, ", "))
	}
	return nil
}

var (
	logLevels  = []string{"trace", "debug", "info", "warn", "error"}
	logFormats = []string{"auto", "json", "console"}
)

// applyLog sets the log flags given over cfg (a configuration's [log]).
func (fs *flagSet) applyLog(cfg *LogConfig) {
	if fs.logLevel != "" {
		cfg.Level = fs.logLevel
	}
	if fs.logFormat != "" {
		cfg.Format = fs.logFormat
	}
}

// logger returns the command's logger on stderr: def with the log flags
// given applied.
func (fs *flagSet) logger(def LogConfig) zerolog.Logger {
	fs.applyLog(&def)
	return newLogger(def, fs.e.stderr)
}

// given reports whether the command line set the flag.
func (fs *flagSet) given(name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// loadConfig loads the configuration (loadConfig) with the command line's
// overrides, the log flags among them.
func (fs *flagSet) loadConfig(path string, override func(*Config)) (Config, error) {
	return loadConfig(path, func(c *Config) {
		fs.applyLog(&c.Log)
		if override != nil {
			override(c)
		}
	})
}

// quietLogger is the logger of a one-shot command, whose output is what
// it prints: warnings and errors only, unless --log-level says otherwise.
// cfg is the configuration's [log] with the flags applied.
func (fs *flagSet) quietLogger(cfg LogConfig) zerolog.Logger {
	if fs.logLevel == "" {
		cfg.Level = "warn"
	}
	return newLogger(cfg, fs.e.stderr)
}
