package redact

import (
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
		"http://us er:pa@ss@node:99999999999/x?y@": "http://xxxxx@node:99999999999/x?y@",
		"not a url": "not a url",
		"":          "",
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
