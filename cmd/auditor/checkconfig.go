package main

import (
	"fmt"

	"github.com/async-emission/auditor/internal/redact"
	"github.com/async-emission/auditor/rules"
)

const checkConfigSynopsis = `--config FILE

Validates a configuration file, as run would read it, and exits: 0 when it
is valid, 2 with every problem (each naming its key, and its line where the
decoder knows it) when it is not. Template hashes are bare hex (sha256),
sha256:<hex> or blake2b256:<hex>; two protocols sharing an emission or
emitted template in one convention are refused, naming both.`

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
	if ps, _ := rules.ParseProtocols(cfg.Protocols); rules.MixedConventions(ps) {
		fmt.Fprintln(e.stdout, "note: the protocols name emission or emitted templates in both conventions (sha256 and blake2b256): "+
			"a template two keys share across conventions does not show in the hashes; the daemon stops, naming both, "+
			"at the first box it meets at such a template. Writing every key in one convention lets check-config refuse it now.")
	}
	return nil
}
