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
// alone, which may be a token (nats://token@host), is replaced whole. An @
// after the host (in the path, the query or the fragment) is left alone. A
// string with an @ that parses neither way (a password holding / or #,
// say) loses everything from its scheme to its last @: too much rather
// than a secret.
func URL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err == nil && u.User != nil:
		if _, hasPassword := u.User.Password(); hasPassword {
			return u.Redacted()
		}
		u.User = url.User(Hidden)
		return u.String()
	case !strings.Contains(s, "@"):
		return s
	}
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	if err == nil && u.Host != "" && strings.HasPrefix(rest, u.Host) {
		return s // the @ is in the path, query or fragment: no user information
	}
	if k := strings.LastIndex(rest, "@"); k >= 0 {
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
