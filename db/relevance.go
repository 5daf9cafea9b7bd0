package db

import (
	"context"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
)

// Judge decides, inside ConnectBlock's transaction, what the store keeps of
// a block and what it concludes about it: the rules engine
// (*rules.Engine), or KeepAll or a Filter, which keep boxes and conclude
// nothing. It reads the chain before the block through st and must not
// call the store otherwise.
type Judge interface {
	JudgeBlock(ctx context.Context, st rules.State, b *ergo.FullBlock) (*rules.Judgement, error)
}

// KeepAll keeps every box and judges none.
type KeepAll struct{}

// KeepBox returns true.
func (KeepAll) KeepBox(*ergo.Box) bool { return true }

// JudgeBlock keeps every output.
func (k KeepAll) JudgeBlock(_ context.Context, _ rules.State, b *ergo.FullBlock) (*rules.Judgement, error) {
	return keepOnly(b, k.KeepBox), nil
}

// Filter keeps a box that holds any of its tokens or whose ErgoTree has any
// of its templates (a template hash in either convention, PROTOCOL.md §2),
// and judges none: the [watch] section of the configuration. The zero
// Filter, and a nil *Filter, keep nothing.
type Filter struct {
	tokens    map[ergo.Digest]struct{}
	templates map[rules.Template]struct{}
	blake2b   bool // some template is blake2b256: a tree's costs a second hash
}

// NewFilter returns a Filter for the given token ids and templates.
func NewFilter(tokens []ergo.Digest, templates []rules.Template) *Filter {
	f := &Filter{}
	if len(tokens) > 0 {
		f.tokens = make(map[ergo.Digest]struct{}, len(tokens))
		for _, t := range tokens {
			f.tokens[t] = struct{}{}
		}
	}
	if len(templates) > 0 {
		f.templates = make(map[rules.Template]struct{}, len(templates))
		for _, t := range templates {
			f.templates[t] = struct{}{}
			f.blake2b = f.blake2b || t.Convention == rules.Blake2b256
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
	if !f.blake2b {
		h, err := sigma.TemplateHashOf(b.ErgoTree)
		_, ok := f.templates[rules.SHA256Template(h)]
		return err == nil && ok
	}
	h, err := rules.HashTemplate(b.ErgoTree)
	if err != nil {
		return false
	}
	_, sha := f.templates[h.In(rules.SHA256)]
	_, blake := f.templates[h.In(rules.Blake2b256)]
	return sha || blake
}

// JudgeBlock keeps the outputs KeepBox keeps.
func (f *Filter) JudgeBlock(_ context.Context, _ rules.State, b *ergo.FullBlock) (*rules.Judgement, error) {
	return keepOnly(b, f.KeepBox), nil
}

// keepOnly is a judgement that keeps the outputs keep keeps and concludes
// nothing.
func keepOnly(b *ergo.FullBlock, keep func(*ergo.Box) bool) *rules.Judgement {
	j := &rules.Judgement{Keep: make([][]bool, len(b.Transactions))}
	for i := range b.Transactions {
		outs := b.Transactions[i].Outputs
		for k := range outs {
			if keep(&outs[k]) {
				if j.Keep[i] == nil {
					j.Keep[i] = make([]bool, len(outs))
				}
				j.Keep[i][k] = true
			}
		}
	}
	return j
}
