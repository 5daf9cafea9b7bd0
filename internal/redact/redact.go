// Package redact takes the secrets out of URLs before they are printed or
// logged: a password in http://user:pass@host, a token in nats://token@host.
package redact

import (
	"net/url"
	"strings"
)

// Hidden stands where a secret was.
const Hidden = "xxxxx"

// URL returns s with its user information hidden: a password is replaced
// by Hidden (the user name stays: http://user:xxxxx@host); a user name
// alone, which may be a token (nats://token@host), is replaced whole. A
// string that does not parse as a URL loses whatever stands between its
// scheme and the last @ of its authority.
func URL(s string) string {
	if u, err := url.Parse(s); err == nil {
		if u.User == nil {
			return s
		}
		if _, hasPassword := u.User.Password(); hasPassword {
			return u.Redacted()
		}
		u.User = url.User(Hidden)
		return u.String()
	}
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	authority := rest
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		authority = rest[:j]
	}
	if k := strings.LastIndex(authority, "@"); k >= 0 {
		return prefix + Hidden + rest[k:]
	}
	return s
}

// URLs redacts each URL of a list and joins them with commas.
func URLs(urls []string) string {
	out := make([]string, len(urls))
	for i, s := range urls {
		out[i] = URL(s)
	}
	return strings.Join(out, ",")
}
