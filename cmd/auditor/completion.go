package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/async-emission/auditor/devnet"
)

const completionSynopsis = `bash|zsh|fish

Prints a completion script for the shell: commands, each command's flags,
and the values of the flags that have few (--network, --log-level, …) or
name files and directories.

  bash:  source <(auditor completion bash)     # or save it in /etc/bash_completion.d/auditor
  zsh:   auditor completion zsh > "${fpath[1]}/_auditor"
  fish:  auditor completion fish > ~/.config/fish/completions/auditor.fish`

func runCompletion(e *env, args []string) error {
	fs := newFlagSet(e, "completion", completionSynopsis)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return badInput{fmt.Errorf("name one shell: bash, zsh or fish")}
	}
	cmds, err := describeCommands()
	if err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "bash":
		return writeBash(e.stdout, cmds)
	case "zsh":
		return writeZsh(e.stdout, cmds)
	case "fish":
		return writeFish(e.stdout, cmds)
	}
	return badInput{fmt.Errorf("%q: the shells are bash, zsh and fish", fs.Arg(0))}
}

// described is a command as completion knows it.
type described struct {
	name, summary string
	flags         []describedFlag
	args          completeKind // what its arguments are
}

type describedFlag struct {
	name, usage string
	boolean     bool
	value       completeKind
	words       []string // with value == completeWords
}

// completeKind is what a word completes to.
type completeKind int

const (
	completeNothing completeKind = iota
	completeFiles
	completeDirs
	completeWords
	completeCommands
)

// flagValues says how the values of the flags that have a known form
// complete; other flags' values complete to nothing.
var flagValues = map[string]describedFlag{
	"config":     {value: completeFiles},
	"data-dir":   {value: completeDirs},
	"out":        {value: completeDirs},
	"network":    {value: completeWords, words: []string{"mainnet", "testnet", "devnet"}},
	"log-level":  {value: completeWords, words: logLevels},
	"log-format": {value: completeWords, words: logFormats},
	"scenario":   {value: completeWords, words: []string{devnet.AsyncEmissionScenario}},
}

// commandArgs says what each command's arguments are.
var commandArgs = map[string]describedFlag{
	"inspect":    {value: completeFiles},
	"help":       {value: completeCommands},
	"completion": {value: completeWords, words: []string{"bash", "zsh", "fish"}},
}

// describeCommands learns every command's flags from the command itself:
// it runs with an environment that takes its flag set and stops it.
func describeCommands() ([]described, error) {
	var out []described
	for _, c := range commands() {
		d := described{name: c.name, summary: c.summary, args: commandArgs[c.name].value}
		if c.run != nil {
			var fs *flagSet
			if err := c.run(&env{stdout: io.Discard, stderr: io.Discard, describe: func(f *flagSet) { fs = f }}, nil); err != errDescribed || fs == nil {
				return nil, fmt.Errorf("command %s did not describe its flags: %v", c.name, err)
			}
			fs.VisitAll(func(f *flag.Flag) {
				df := flagValues[f.Name]
				_, usage := flag.UnquoteUsage(f)
				df.name, df.usage = f.Name, firstLine(usage)
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
					df.boolean = true
				}
				d.flags = append(d.flags, df)
			})
		}
		out = append(out, d)
	}
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func commandNames(cmds []described) string {
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	return strings.Join(names, " ")
}

func writeBash(w io.Writer, cmds []described) error {
	var b strings.Builder
	b.WriteString(`# bash completion for auditor: source <(auditor completion bash)
_auditor() {
    local cur prev cmd i flags
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    cmd=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
        -*) ;;
        *) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "` + commandNames(cmds) + ` --help --version" -- "$cur"))
        return
    fi
    case "$cmd" in
`)
	for _, c := range cmds {
		fmt.Fprintf(&b, "    %s)\n", c.name)
		var names []string
		var valued []describedFlag
		for _, f := range c.flags {
			names = append(names, "--"+f.name)
			if !f.boolean {
				valued = append(valued, f)
			}
		}
		if len(valued) > 0 {
			b.WriteString("        case \"$prev\" in\n")
			for _, f := range valued {
				fmt.Fprintf(&b, "        --%s | -%s) %s; return ;;\n", f.name, f.name, bashReply(f, cmds))
			}
			b.WriteString("        esac\n")
		}
		fmt.Fprintf(&b, "        flags=%q\n", strings.Join(names, " "))
		fmt.Fprintf(&b, "        if [[ $cur != -* ]]; then %s; return; fi\n", bashReply(commandArgs[c.name], cmds))
		b.WriteString("        ;;\n")
	}
	b.WriteString(`    esac
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}
complete -F _auditor auditor
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func bashReply(f describedFlag, cmds []described) string {
	switch f.value {
	case completeFiles:
		return `COMPREPLY=($(compgen -f -- "$cur"))`
	case completeDirs:
		return `COMPREPLY=($(compgen -d -- "$cur"))`
	case completeWords:
		return fmt.Sprintf(`COMPREPLY=($(compgen -W %q -- "$cur"))`, strings.Join(f.words, " "))
	case completeCommands:
		return fmt.Sprintf(`COMPREPLY=($(compgen -W %q -- "$cur"))`, commandNames(cmds))
	}
	return "COMPREPLY=()"
}

func writeZsh(w io.Writer, cmds []described) error {
	var b strings.Builder
	b.WriteString(`#compdef auditor
# zsh completion for auditor: auditor completion zsh > "${fpath[1]}/_auditor"
_auditor() {
    local -a commands
    commands=(
`)
	for _, c := range cmds {
		fmt.Fprintf(&b, "        %s\n", zshQuote(c.name+":"+c.summary))
	}
	b.WriteString(`    )
    local state
    _arguments -C '(- *)--help[show the commands]' '(- *)--version[print the version]' '1: :->command' '*:: :->arguments'
    case $state in
    command) _describe -t commands 'auditor command' commands ;;
    arguments)
        case $words[1] in
`)
	for _, c := range cmds {
		fmt.Fprintf(&b, "        %s) _arguments", c.name)
		for _, f := range c.flags {
			spec := "--" + f.name
			if !f.boolean {
				spec += "="
			}
			spec += "[" + zshEscape(f.usage) + "]"
			if !f.boolean {
				spec += ":" + f.name + ":" + zshAction(f, cmds)
			}
			b.WriteString(" \\\n            " + zshQuote(spec))
		}
		switch a := commandArgs[c.name]; a.value {
		case completeNothing:
			if c.name == "verify" {
				b.WriteString(" \\\n            ':box id: '")
			}
		default:
			b.WriteString(" \\\n            " + zshQuote("*:argument:"+zshAction(a, cmds)))
		}
		b.WriteString(" ;;\n")
	}
	b.WriteString(`        esac
        ;;
    esac
}
_auditor "$@"
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func zshAction(f describedFlag, cmds []described) string {
	switch f.value {
	case completeFiles:
		return "_files"
	case completeDirs:
		return "_files -/"
	case completeWords:
		return "(" + strings.Join(f.words, " ") + ")"
	case completeCommands:
		return "(" + commandNames(cmds) + ")"
	}
	return " "
}

// zshEscape escapes what _arguments reads in a description.
func zshEscape(s string) string {
	return strings.NewReplacer("[", `\[`, "]", `\]`, ":", `\:`).Replace(s)
}

// zshQuote quotes s in single quotes.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func writeFish(w io.Writer, cmds []described) error {
	var b strings.Builder
	b.WriteString("# fish completion for auditor: auditor completion fish > ~/.config/fish/completions/auditor.fish\n")
	b.WriteString("complete -c auditor -f\n")
	b.WriteString("complete -c auditor -n __fish_use_subcommand -l help -d 'show the commands'\n")
	b.WriteString("complete -c auditor -n __fish_use_subcommand -l version -d 'print the version'\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "complete -c auditor -n __fish_use_subcommand -a %s -d %s\n", c.name, zshQuote(c.summary))
	}
	for _, c := range cmds {
		cond := zshQuote("__fish_seen_subcommand_from " + c.name)
		for _, f := range c.flags {
			fmt.Fprintf(&b, "complete -c auditor -n %s -l %s", cond, f.name)
			if !f.boolean {
				b.WriteString(" " + fishValues(f, cmds))
			}
			fmt.Fprintf(&b, " -d %s\n", zshQuote(f.usage))
		}
		if a := commandArgs[c.name]; a.value != completeNothing {
			fmt.Fprintf(&b, "complete -c auditor -n %s %s\n", cond, strings.TrimPrefix(fishValues(a, cmds), "-x "))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fishValues(f describedFlag, cmds []described) string {
	switch f.value {
	case completeFiles:
		return "-r -F"
	case completeDirs:
		return "-x -a '(__fish_complete_directories)'"
	case completeWords:
		return "-x -a " + zshQuote(strings.Join(f.words, " "))
	case completeCommands:
		names := strings.Fields(commandNames(cmds))
		return "-x -a " + zshQuote(strings.Join(slices.DeleteFunc(names, func(n string) bool { return n == "help" }), " "))
	}
	return "-x"
}
