package rules

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"golang.org/x/crypto/blake2b"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// Convention is one of the two template-hash conventions of PROTOCOL.md
// §2: the hash of an ErgoTree's template (the tree without its segregated
// constants) by sha256, as the explorer computes it, or by blake2b256, as
// the node's own index does (node 6.x /blockchain/box/byTemplateHash).
type Convention uint8

const (
	// SHA256 is sha256(template): the explorer's convention, the one the
	// store keeps (boxes.template_hash) and a bare hex key's.
	SHA256 Convention = iota
	// Blake2b256 is blake2b256(template): the node's index.
	Blake2b256
)

// The prefixes a configuration key may carry.
const (
	prefixSHA256     = "sha256"
	prefixBlake2b256 = "blake2b256"
)

// String is the convention's name, as a key's prefix writes it.
func (c Convention) String() string {
	if c == Blake2b256 {
		return prefixBlake2b256
	}
	return prefixSHA256
}

// Template is a template hash and the convention it is in.
type Template struct {
	Convention Convention
	Hash       ergo.Digest
}

// SHA256Template is the sha256 template hash h.
func SHA256Template(h ergo.Digest) Template { return Template{SHA256, h} }

// String writes the hash with its convention, as a key may:
// "sha256:<hex>" or "blake2b256:<hex>".
func (t Template) String() string { return t.Convention.String() + ":" + t.Hash.String() }

// ParseTemplate reads a template hash as a configuration key holds it:
// "sha256:<64 hex>", "blake2b256:<64 hex>", or bare hex, which is sha256.
func ParseTemplate(s string) (Template, error) {
	t := Template{Convention: SHA256}
	if name, hash, ok := strings.Cut(s, ":"); ok {
		switch name {
		case prefixSHA256:
		case prefixBlake2b256:
			t.Convention = Blake2b256
		default:
			return t, fmt.Errorf("%q is not a template hash: the prefix %q is neither %s: nor %s:", s, name, prefixSHA256, prefixBlake2b256)
		}
		s = hash
	}
	d, err := ergo.ParseDigest(s)
	if err != nil {
		return t, fmt.Errorf("%q is not 32 bytes of hex, bare (sha256) or after %s: or %s:", s, prefixSHA256, prefixBlake2b256)
	}
	t.Hash = d
	return t, nil
}

// matches reports whether k's template is t; false when k's template is
// not known in t's convention.
func (t Template) matches(k *Known) bool {
	if t.Convention == Blake2b256 {
		return k.HasBlake2b && k.TemplateBlake2b == t.Hash
	}
	return k.HasTemplate && k.Template == t.Hash
}

// TemplateHashes is a tree's template hash in both conventions.
type TemplateHashes struct {
	SHA256     ergo.Digest `json:"sha256"`
	Blake2b256 ergo.Digest `json:"blake2b256"`
}

// HashTemplate returns the template hashes of a tree; an error for a tree
// whose header or constants do not parse (it has no template).
func HashTemplate(tree []byte) (TemplateHashes, error) {
	t, err := sigma.TemplateOf(tree)
	if err != nil {
		return TemplateHashes{}, err
	}
	return TemplateHashes{SHA256: sha256.Sum256(t), Blake2b256: blake2b.Sum256(t)}, nil
}

// In returns the hash in convention c.
func (h TemplateHashes) In(c Convention) Template {
	if c == Blake2b256 {
		return Template{Blake2b256, h.Blake2b256}
	}
	return Template{SHA256, h.SHA256}
}

// String writes both hashes with their conventions.
func (h TemplateHashes) String() string {
	return h.In(SHA256).String() + " " + h.In(Blake2b256).String()
}
