package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/async-emission/auditor/publish"
	"github.com/async-emission/auditor/rules"
)

const tailSynopsis = `[--config FILE] [--nats URL] [--subject S] [--json]

Prints the auditor's events as they arrive, one line each: time, subject,
verdict, class, box, reason codes and height; with --json, each event's
JSON as published. It subscribes to <nats.subject_prefix>.> unless
--subject says otherwise, on the servers of --nats (a comma-separated
list), else nats.url, else the embedded server's nats.listen address
(nats://127.0.0.1:4222 by default). It prints only events published while
it runs, and stops on Ctrl-C.`

func runTail(e *env, args []string) error {
	fs := newFlagSet(e, "tail", tailSynopsis)
	cfgPath := fs.String("config", "", "read the configuration from `FILE` (TOML)")
	natsURL := fs.String("nats", "", "the NATS servers at `URLS`, comma-separated; overrides nats.url")
	subject := fs.String("subject", "", "subject to subscribe to (default <nats.subject_prefix>.>)")
	asJSON := fs.Bool("json", false, "print each event's JSON as published")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return badInput{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	cfg, err := fs.loadConfig(*cfgPath, nil)
	if err != nil {
		return badInput{err}
	}
	urls, err := tailURLs(cfg, *natsURL)
	if err != nil {
		return err
	}
	subj := *subject
	if subj == "" {
		subj = cfg.NATS.SubjectPrefix + ".>"
	}
	log := newLogger(cfg.Log, e.stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return tail(ctx, tailOptions{Conn: connConfig(cfg.NATS, urls), Subject: subj, JSON: *asJSON}, e.stdout, log)
}

// tailOptions configures tail.
type tailOptions struct {
	Conn    publish.ConnConfig
	Subject string
	JSON    bool
	ready   func() // called once subscribed (tests)
}

// tail prints the events on o.Subject to w until ctx is done (then it
// returns nil).
func tail(ctx context.Context, o tailOptions, w io.Writer, log zerolog.Logger) error {
	nc, err := publish.Connect(ctx, o.Conn, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w (is the auditor running?)", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(o.Subject)
	if err == nil {
		// The server has the subscription once it answers a ping.
		fctx, cancel := context.WithTimeout(ctx, publish.DefaultConnectTimeout)
		err = nc.FlushWithContext(fctx)
		cancel()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return badInput{fmt.Errorf("subscribe to %q: %w", o.Subject, err)}
	}
	log.Debug().Str("subject", o.Subject).Msg("waiting for events")
	if o.ready != nil {
		o.ready()
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("receive on %q: %w", o.Subject, err)
		}
		var line string
		if o.JSON {
			line = strings.TrimRight(string(m.Data), "\r\n")
		} else {
			line = formatEvent(m.Subject, m.Data)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
}

// formatEvent renders an event in one line for people.
func formatEvent(subject string, payload []byte) string {
	ev, err := publish.DecodeEvent(payload)
	if err != nil {
		return fmt.Sprintf("%-24s  %s  undecodable: %v", "-", subject, err)
	}
	head := fmt.Sprintf("%-24s  %s", ev.Time, subject)
	var body string
	switch ev.Type {
	case publish.TypeVerdict:
		var d *publish.VerdictData
		if d, err = ev.Verdict(); err == nil {
			body = fmt.Sprintf("%s %s  box %s  %s  height %d", d.Verdict, classActionOf(rules.Class(d.Class), d.Action), short(d.Box.ID.String()), reasonCodes(d.Reasons), d.Height)
		}
	case publish.TypeRetracted:
		var d *publish.RetractionData
		if d, err = ev.Retraction(); err == nil {
			body = fmt.Sprintf("retracted %s  box %s  (was %s: %s)  height %d", classActionOf(rules.Class(d.Class), d.Action), short(d.Box.ID.String()), d.Verdict, reasonCodes(d.Reasons), d.Height)
		}
	case publish.TypeRollback:
		var d *publish.RollbackData
		if d, err = ev.Rollback(); err == nil {
			body = fmt.Sprintf("rollback  block %s  height %d  depth %d to fork %s at %d", short(d.Block.ID.String()), d.Block.Height, d.Depth, short(d.ForkID.String()), d.ForkHeight)
		}
	case publish.TypeReportReady:
		var d *publish.ReportData
		if d, err = ev.Report(); err == nil {
			name := d.Name
			if name == "" {
				name = "-"
			}
			body = fmt.Sprintf("report %s  files %s", name, strings.Join(d.Files, ", "))
		}
	default:
		body = fmt.Sprintf("%s  id %s", ev.Type, ev.ID)
	}
	if err != nil {
		body = fmt.Sprintf("%s  id %s  undecodable data: %v", ev.Type, ev.ID, err)
	}
	return printable(head + "  " + body)
}

// printable escapes what would let an event's text act on the terminal or
// split its line: control characters, line and paragraph separators, and
// the bidirectional overrides, as \x0a or \u2028.
func printable(s string) string {
	clean := func(r rune) bool {
		return r == utf8.RuneError || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
			(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
	}
	if !strings.ContainsFunc(s, clean) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
			} else {
				b.WriteRune(r)
			}
		case clean(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case clean(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// reasonCodes joins the codes, or "-" for none.
func reasonCodes(rs []publish.ReasonData) string {
	if len(rs) == 0 {
		return "-"
	}
	codes := make([]string, len(rs))
	for i, r := range rs {
		codes[i] = r.Code
	}
	return strings.Join(codes, ",")
}

// short abbreviates a 64-hex id as its first 8 and last 4 characters.
func short(id string) string {
	if len(id) <= 16 {
		return id
	}
	return id[:8] + "…" + id[len(id)-4:]
}
