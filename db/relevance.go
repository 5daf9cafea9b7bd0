package db

import (
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
)

// Relevance decides which transaction outputs the store keeps. ConnectBlock
// calls KeepBox once per output, in block order, inside its transaction, so
// it must be quick and must not call the store.
type Relevance interface {
	KeepBox(b *ergo.Box) bool
}

// KeepAll keeps every box.
type KeepAll struct{}

// KeepBox returns true.
func (KeepAll) KeepBox(*ergo.Box) bool { return true }

// Filter is the Relevance built from configuration: it keeps a box that
// holds any of its tokens or whose ErgoTree has any of its template hashes
// (sha256 of the tree without its segregated constants, as ergo/sigma's
// TemplateHash computes it). The zero Filter, and a nil *Filter, keep
// nothing.
type Filter struct {
	tokens    map[ergo.Digest]struct{}
	templates map[ergo.Digest]struct{}
}

// NewFilter returns a Filter for the given token ids and template hashes.
func NewFilter(tokens, templates []ergo.Digest) *Filter {
	f := &Filter{}
	if len(tokens) > 0 {
		f.tokens = make(map[ergo.Digest]struct{}, len(tokens))
		for _, t := range tokens {
			f.tokens[t] = struct{}{}
		}
	}
	if len(templates) > 0 {
		f.templates = make(map[ergo.Digest]struct{}, len(templates))
		for _, t := range templates {
			f.templates[t] = struct{}{}
		}
	}
	return f
}

// KeepBox reports whether b holds one of the tokens or has one of the
// templates. A tree whose header or constants cannot be parsed matches no
// template.
func (f *Filter) KeepBox(b *ergo.Box) bool {
	if f == nil {
		return false
	}
	for i := range b.Tokens {
		if _, ok := f.tokens[b.Tokens[i].ID]; ok {
			return true
		}
	}
	if len(f.templates) == 0 {
		return false
	}
	h, err := sigma.TemplateHashOf(b.ErgoTree)
	if err != nil {
		return false
	}
	_, ok := f.templates[h]
	return ok
}
