package redact

import (
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:9053":                    "http://127.0.0.1:9053",
		"http://user:s3cret@node:9053/prefix":      "http://user:xxxxx@node:9053/prefix",
		"https://user:p%40ss@node":                 "https://user:xxxxx@node",
		"nats://t0ken@nats1:4222":                  "nats://xxxxx@nats1:4222",
		"nats://u:pw@nats1:4222":                   "nats://u:xxxxx@nats1:4222",
		"http://user:pa ss@node:9053/x":            "http://xxxxx@node:9053/x", // does not parse
		"http://us er:pa@ss@node:99999999999/x?y@": "http://xxxxx@",
		"http://user:pa/ss@node:9053":              "http://xxxxx@node:9053",
		"http://node:9053/a@b":                     "http://node:9053/a@b",
		"not a url":                                "not a url",
		"":                                         "",
	} {
		got := URL(in)
		if got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
		for _, secret := range []string{"s3cret", "p%40ss", "t0ken", "pw@", "pa ss"} {
			if strings.Contains(in, secret) && strings.Contains(got, secret) {
				t.Errorf("URL(%q) = %q keeps %q", in, got, secret)
			}
		}
	}
	if got := URLs([]string{"nats://a:b@h:1", "tls://h2:2"}); got != "nats://a:xxxxx@h:1,tls://h2:2" {
		t.Errorf("URLs: %q", got)
	}
}

// FuzzURL: a URL built with a password (or a token as its user) does not
// keep its credential once redacted. Where the URL parser finds user
// information, the redacted URL parses to the same URL with the password
// (or the user name standing alone, a token) replaced by Hidden; where it
// does not, everything before the last @ after the scheme is hidden.
func FuzzURL(f *testing.F) {
	f.Add("http", "ops", "s3cret", "node:9053", "/api")
	f.Add("nats", "", "t0ken!", "n1:4222", "")
	f.Add("http", "a b", "p@ss:/?#", "[::1]:80", "/x?y@z")
	f.Fuzz(func(t *testing.T, scheme, user, secret, host, rest string) {
		in := scheme + "://" + user + ":" + secret + "@" + host + rest
		if user == "" {
			in = scheme + "://" + secret + "@" + host + rest // a token
		}
		out := URL(in)
		if u, err := url.Parse(in); err == nil && u.User != nil {
			ou, err := url.Parse(out)
			if err != nil || ou.User == nil || ou.Host != u.Host || ou.Path != u.Path || ou.RawQuery != u.RawQuery || ou.Fragment != u.Fragment {
				t.Fatalf("URL(%q) = %q (%v): not the same URL", in, out, err)
			}
			if _, ok := u.User.Password(); ok {
				if op, _ := ou.User.Password(); op != Hidden || ou.User.Username() != u.User.Username() {
					t.Fatalf("URL(%q) = %q: the password is not hidden", in, out)
				}
			} else if ou.User.Username() != Hidden {
				t.Fatalf("URL(%q) = %q: the token is not hidden", in, out)
			}
			return
		}
		i := strings.Index(in, "://") + 3
		k := strings.LastIndex(in[i:], "@")
		if k < 0 {
			t.Fatalf("%q has no @ after its scheme", in)
		}
		if safe := in[:i] + Hidden + in[i+k:]; out != safe && out != in {
			t.Fatalf("URL(%q) = %q, want %q or the input (no user information)", in, out, safe)
		}
		if out == in {
			if u, err := url.Parse(in); err != nil || u.User != nil || u.Host == "" {
				t.Fatalf("URL(%q) kept it whole, but it may hold a credential", in)
			}
		}
	})
}
