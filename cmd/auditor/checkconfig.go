package main

import (
	"fmt"

	"github.com/async-emission/auditor/internal/redact"
)

const checkConfigSynopsis = `--config FILE

Validates a configuration file, as run would read it, and exits: 0 when it
is valid, 2 with every problem (each naming its key, and its line where the
decoder knows it) when it is not.`

func runCheckConfig(e *env, args []string) error {
	fs := newFlagSet(e, "check-config", checkConfigSynopsis)
	cfgPath := fs.String("config", "", "read the configuration from `FILE` (TOML)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *cfgPath == "" {
		return badInput{fmt.Errorf("--config FILE is required")}
	}
	cfg, err := fs.loadConfig(*cfgPath, nil)
	if err != nil {
		return badInput{err}
	}
	actions := 0
	for _, p := range cfg.Protocols {
		actions += len(p.Actions)
	}
	fmt.Fprintf(e.stdout, "%s: valid (%d protocols with %d actions, node %s, data in %s)\n",
		*cfgPath, len(cfg.Protocols), actions, redact.URL(cfg.Node.URL), cfg.DataDir)
	return nil
}
