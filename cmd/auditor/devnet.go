package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/devnet"
)

const devnetSynopsis = `[--seed N] [--blocks N] [--txs-per-block N] [--block-time D]
       [--reorg-every K --reorg-depth D [--reorg-same-txs]] [--listen ADDR [--listen-any]]
       [--scenario async-emission [--forgery-rate F] [--print-config]]

Serves a simulated Ergo node: the node's REST API subset the auditor
follows (GET /info, /blocks/at/{height}, /blocks/{id}, /blocks/{id}/header,
/blocks/chainSlice; POST /blocks/headerIds), over a chain generated from
the seed whose ids, Merkle roots and proofs of work all verify. One seed
gives one chain, whatever the block time and reorgs.

With --block-time 0 the whole chain is visible at once; otherwise one more
block shows every --block-time, and with --reorg-every K each height that is
a multiple of K first shows on a competing branch --reorg-depth blocks deep,
which the next block reorganizes away; with --reorg-same-txs the branch
holds the same transactions as the final chain (as a node's mempool puts
them into the new branch), under other headers.

With --scenario async-emission the chain also carries deployments of two
async-emission protocols: "demo", with its users' bootstraps, async
actions, closes and state updates, and "tree", whose users' actions build
on each other's results (an action tree); --forgery-rate of the protocol
actions (0 to 1) are replaced by planted forgeries and mistakes.
--print-config prints the [[protocol]] sections of the auditor's
configuration that watch the deployments, and exits without serving.

Prints "serving http://ADDR" on standard output once the chain is ready (the
API answers 503 while it is generated), logs to standard error, and stops
on SIGINT or SIGTERM. ADDR must be a loopback address unless --listen-any
is given.`

func runDevnet(e *env, args []string) error { return devnetCommand(context.Background(), e, args) }

// devnetCommand is the devnet command, stopped by ctx as by a signal.
func devnetCommand(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet(e, "devnet", devnetSynopsis)
	var cfg devnet.Config
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the chain")
	fs.IntVar(&cfg.Blocks, "blocks", 1000, "length of the final chain")
	fs.IntVar(&cfg.TxsPerBlock, "txs-per-block", devnet.DefaultTxsPerBlock, "about this many transactions in a block")
	fs.DurationVar(&cfg.BlockTime, "block-time", 0, "show one more block this often (0: the whole chain at once)")
	fs.IntVar(&cfg.ReorgEvery, "reorg-every", 0, "show each height that is a multiple of this on a competing branch first (needs --block-time)")
	fs.IntVar(&cfg.ReorgDepth, "reorg-depth", 0, "how many blocks a competing branch replaces")
	fs.BoolVar(&cfg.ReorgReinclude, "reorg-same-txs", false, "competing branches re-include the final chain's transactions (other headers, same bodies)")
	cacheMiB := fs.Int64("cache-mb", devnet.DefaultCacheBytes>>20, "MiB of rendered blocks kept in memory")
	listen := fs.String("listen", "127.0.0.1:9053", "address to serve on")
	listenAny := fs.Bool("listen-any", false, "allow a --listen address that is not a loopback one")
	scenario := fs.String("scenario", "", "add a protocol to the chain: "+devnet.AsyncEmissionScenario)
	forgeryRate := fs.Float64("forgery-rate", devnet.DefaultForgeryRate, "with --scenario, the fraction of protocol actions that are forgeries or mistakes")
	printConfig := fs.Bool("print-config", false, "with --scenario, print the [[protocol]] configuration that watches it, and exit")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	switch *scenario {
	case devnet.AsyncEmissionScenario:
		cfg.Scenario = &devnet.AsyncEmission{ForgeryRate: *forgeryRate}
	case "":
		for _, f := range []string{"forgery-rate", "print-config"} {
			if fs.given(f) {
				return badInput{fmt.Errorf("--%s needs --scenario %s", f, devnet.AsyncEmissionScenario)}
			}
		}
	default:
		return badInput{fmt.Errorf("--scenario %q is not %s", *scenario, devnet.AsyncEmissionScenario)}
	}
	if *cacheMiB < 1 || *cacheMiB > 1<<20 {
		return badInput{fmt.Errorf("--cache-mb %d is not in 1 … %d", *cacheMiB, 1<<20)}
	}
	cfg.CacheBytes = *cacheMiB << 20
	if err := checkListen(*listen, *listenAny); err != nil {
		return badInput{err}
	}
	if err := cfg.Validate(); err != nil {
		return badInput{devnetFlagErrors(err)}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *printConfig {
		ps, err := devnet.ProtocolConfigsOf(ctx, cfg)
		if err != nil {
			return err
		}
		_, err = io.WriteString(e.stdout, devnetScanTOML+devnet.ProtocolsTOML(ps))
		return err
	}
	return serveDevnet(ctx, e, cfg, *listen, fs.logger(LogConfig{Level: "info", Format: "auto"}))
}

// devnetScanTOML is the part of a configuration that follows the devnet:
// its consensus rules.
const devnetScanTOML = "[scan]\n# The devnet's chain obeys the devnet's consensus rules.\nnetwork = \"devnet\"\n\n"

// serveDevnet listens, serves 503 while the chain is generated, then the
// devnet, until ctx is done (nil) or serving fails.
func serveDevnet(ctx context.Context, e *env, cfg devnet.Config, addr string, log zerolog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	var handler handlerSwitch
	handler.set(devnet.Unavailable("the devnet is generating its chain"))
	served := make(chan error, 1)
	go func() {
		served <- devnet.Serve(ctx, ln, &handler, log)
		cancel() // the devnet has no one to serve any more
	}()

	d, err := devnet.NewContext(ctx, cfg, log)
	if err != nil {
		cancel()
		serr := <-served
		if errors.Is(err, context.Canceled) {
			log.Info().Msg("stopped before the chain was ready")
			return serr
		}
		return errors.Join(err, serr)
	}
	handler.set(d.Handler())
	height, tip := d.Tip()
	log.Info().Int64("seed", cfg.Seed).Int("blocks", cfg.Blocks).Uint32("visible", height).Str("tip", tip.String()).Msg("devnet ready")
	fmt.Fprintf(e.stdout, "serving http://%s\n", ln.Addr())
	runErr := d.Run(ctx) // returns nil once ctx is done
	cancel()
	return errors.Join(runErr, <-served)
}

// handlerSwitch serves whichever handler was set last.
type handlerSwitch struct{ h atomic.Pointer[http.Handler] }

func (s *handlerSwitch) set(h http.Handler) { s.h.Store(&h) }

func (s *handlerSwitch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// checkListen refuses an address other hosts could reach (a non-loopback
// IP, a host name other than localhost, or no host: every interface)
// unless any is set.
func checkListen(addr string, any bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %v", addr, err)
	}
	if any || host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("--listen %q is not a loopback address: other hosts could reach the devnet; pass --listen-any to allow it", addr)
}

// devnetFlagErrors names the flags behind devnet.Config's field errors.
func devnetFlagErrors(err error) error {
	flags := map[string]string{
		"Blocks": "--blocks", "TxsPerBlock": "--txs-per-block", "BlockTime": "--block-time",
		"ReorgEvery": "--reorg-every", "ReorgDepth": "--reorg-depth", "ReorgReinclude": "--reorg-same-txs", "CacheBytes": "--cache-mb",
		"Scenario.ForgeryRate": "--forgery-rate",
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var msgs []string
	for _, e := range errs {
		var ce *devnet.ConfigError
		if errors.As(e, &ce) && flags[ce.Field] != "" {
			msgs = append(msgs, flags[ce.Field]+": "+ce.Msg)
		} else {
			msgs = append(msgs, e.Error())
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}
