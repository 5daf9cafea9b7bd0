package rules

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/async-emission/auditor/ergo"
)

// Class is the role a protocol-relevant box plays (PROTOCOL.md §3).
type Class string

const (
	ClassState       Class = "state"       // holds the state NFT
	ClassFunnel      Class = "funnel"      // holds participant tokens; hands them out at bootstraps
	ClassEmission    Class = "emission"    // the User Async Emission contract
	ClassEmitted     Class = "emitted"     // holds async tokens that left an emission box
	ClassParticipant Class = "participant" // holds a participant token and is none of the above
)

// DefaultAsyncSupply is the supply minted at a bootstrap: i64::MAX.
const DefaultAsyncSupply = math.MaxInt64

// Protocol is one watched deployment of the pattern: the configuration's
// [[protocol]] section, parsed and validated.
type Protocol struct {
	Name               string
	ParticipantTokenID ergo.Digest
	StateNFTID         ergo.Digest
	EmissionTemplate   Template
	FunnelTemplate     *Template // nil: any funnel contract
	EmittedTemplate    *Template // nil: emitted boxes are recognised by their tokens only (or their actions' templates)
	AsyncSupply        uint64
	// EmissionRequires are the requirements of the emitted boxes that
	// belong to no action.
	EmissionRequires []Requirement
	// Actions are the kinds of async action of a protocol whose actions
	// build on each other (the action tree): an emitted box at an action's
	// EmittedTemplate is judged against that action's requirements.
	Actions     []Action
	StartHeight uint32
}

// Action is a kind of async action (PROTOCOL.md §2, [[protocol.action]]):
// its results are the emitted boxes at EmittedTemplate, and each must meet
// Requires.
type Action struct {
	Name            string
	EmittedTemplate Template
	Requires        []Requirement
}

// NamesEmittedTemplates reports whether the protocol has emitted
// templates: the protocol-level one, or its actions'.
func (p *Protocol) NamesEmittedTemplates() bool {
	return p.EmittedTemplate != nil || len(p.Actions) > 0
}

// HasEmittedTemplate reports whether k has one of the protocol's emitted
// templates.
func (p *Protocol) HasEmittedTemplate(k *Known) bool {
	return p.EmittedTemplate != nil && p.EmittedTemplate.matches(k) || p.ActionOf(k) != nil
}

// ActionOf returns the action whose results have k's template, nil when it
// is no action's.
func (p *Protocol) ActionOf(k *Known) *Action {
	for i := range p.Actions {
		if p.Actions[i].EmittedTemplate.matches(k) {
			return &p.Actions[i]
		}
	}
	return nil
}

// Templates lists the templates the protocol names, each with its key:
// emission_template, funnel_template, emitted_template, then its actions'.
func (p *Protocol) Templates() []KeyedTemplate {
	out := []KeyedTemplate{{"emission_template", p.EmissionTemplate}}
	if p.FunnelTemplate != nil {
		out = append(out, KeyedTemplate{"funnel_template", *p.FunnelTemplate})
	}
	if p.EmittedTemplate != nil {
		out = append(out, KeyedTemplate{"emitted_template", *p.EmittedTemplate})
	}
	for k, a := range p.Actions {
		out = append(out, KeyedTemplate{fmt.Sprintf("action[%d].emitted_template", k), a.EmittedTemplate})
	}
	return out
}

// KeyedTemplate is a template a protocol names, with its key.
type KeyedTemplate struct {
	Key      string
	Template Template
}

// UsesBlake2b reports whether the protocol names a template in the
// blake2b256 convention.
func (p *Protocol) UsesBlake2b() bool {
	for _, t := range p.Templates() {
		if t.Template.Convention == Blake2b256 {
			return true
		}
	}
	return false
}

// Requirement is a data-input an emission transaction must have: a box of
// Class (for ClassEmitted, of Action when it is set: a result of that
// kind), and, when EmittedRegister is set, whose register DataInputRegister
// equals the emitted box's EmittedRegister ("emitted during this epoch").
type Requirement struct {
	Class             Class
	EmittedRegister   int    // 4…9, or 0 for no register equality
	DataInputRegister int    // 4…9, set exactly when EmittedRegister is
	Action            string // with ClassEmitted: the action the result read must be of; "" for any or none
}

// ProtocolSpec is a [[protocol]] section as written: strings, decoded by
// Parse into a Protocol.
type ProtocolSpec struct {
	Name               string            `toml:"name"`
	ParticipantTokenID string            `toml:"participant_token_id"`
	StateNFTID         string            `toml:"state_nft_id"`
	EmissionTemplate   string            `toml:"emission_template"`
	FunnelTemplate     string            `toml:"funnel_template"`
	EmittedTemplate    string            `toml:"emitted_template"`
	AsyncSupply        *uint64           `toml:"async_supply"`
	EmissionRequires   []RequirementSpec `toml:"emission_requires"`
	Actions            []ActionSpec      `toml:"action"`
	StartHeight        *uint32           `toml:"start_height"`
}

// ActionSpec is a [[protocol.action]] section as written.
type ActionSpec struct {
	Name            string            `toml:"name"`
	EmittedTemplate string            `toml:"emitted_template"`
	Requires        []RequirementSpec `toml:"requires"`
}

// RequirementSpec is a [[protocol.emission_requires]] or
// [[protocol.action.requires]] entry as written.
type RequirementSpec struct {
	Class             string `toml:"class"`
	EmittedRegister   string `toml:"emitted_register"`
	DataInputRegister string `toml:"data_input_register"`
	Action            string `toml:"action"`
}

// KeyError is a problem with one key of one protocol section.
type KeyError struct {
	Protocol string // the protocol's name, or its position when it has none
	Index    int    // the section's position among the [[protocol]] sections, from 0
	Key      string
	Msg      string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("protocol %s: %s: %s", e.Protocol, e.Key, e.Msg)
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// ParseProtocols validates every section and returns the protocols, or all
// the problems found (each a *KeyError naming the protocol and the key). Two
// protocols may not share an emission or emitted template (PROTOCOL.md §2):
// the later one's key is refused, naming both protocols. Templates compare
// within their convention; MixedConventions says when a template shared
// across conventions could go unseen here.
func ParseProtocols(specs []ProtocolSpec) ([]Protocol, []error) {
	var errs []error
	out := make([]Protocol, 0, len(specs))
	names := map[string]bool{}
	owners := map[Template]templateUse{} // the templates of the protocols parsed so far
	for i, s := range specs {
		label := s.Name
		if !nameRE.MatchString(s.Name) {
			label = fmt.Sprintf("#%d", i+1)
		}
		sp := &specParser{label: label, index: i, errs: &errs}
		switch {
		case s.Name == "":
			sp.bad("name", "required (it names the protocol in event subjects)")
		case !nameRE.MatchString(s.Name):
			sp.bad("name", "%q may hold only a-z, 0-9, '_' and '-' (it is part of event subjects)", s.Name)
		case names[s.Name]:
			sp.bad("name", "%q names two protocols", s.Name)
		}
		names[s.Name] = true
		p := sp.protocol(s)
		uses := sp.templates(i, s)
		for _, u := range uses {
			if other, ok := owners[u.template]; ok && other.index != i {
				sp.bad(u.key, "%s is also the %s of protocol %s ([[protocol]] #%d): a box at it would be judged by both protocols",
					u.template, other.key, other.protocol, other.index+1)
			}
		}
		for _, u := range uses {
			if _, ok := owners[u.template]; !ok {
				owners[u.template] = u
			}
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// specParser decodes one [[protocol]] section, collecting its problems.
type specParser struct {
	label string // the protocol's name, or its position when it has none
	index int
	errs  *[]error
}

func (sp *specParser) bad(key, format string, args ...any) {
	*sp.errs = append(*sp.errs, &KeyError{Protocol: sp.label, Index: sp.index, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// digest decodes a 32-byte hex key; nil when it is unset or bad.
func (sp *specParser) digest(key, v string, required bool) *ergo.Digest {
	if v == "" {
		if required {
			sp.bad(key, "required: 32 bytes of hex")
		}
		return nil
	}
	d, err := ergo.ParseDigest(v)
	if err != nil {
		sp.bad(key, "%q is not 32 bytes of hex", v)
		return nil
	}
	return &d
}

// template decodes a template-hash key (ParseTemplate); nil when it is
// unset or bad.
func (sp *specParser) template(key, v string, required bool) *Template {
	if v == "" {
		if required {
			sp.bad(key, "required: a template hash, 32 bytes of hex (sha256), or sha256:<hex> or blake2b256:<hex>")
		}
		return nil
	}
	t, err := ParseTemplate(v)
	if err != nil {
		sp.bad(key, "%v", err)
		return nil
	}
	return &t
}

// protocol decodes the section's keys, its actions included.
func (sp *specParser) protocol(s ProtocolSpec) Protocol {
	p := Protocol{Name: s.Name, AsyncSupply: DefaultAsyncSupply, StartHeight: 1}
	if d := sp.digest("participant_token_id", s.ParticipantTokenID, true); d != nil {
		p.ParticipantTokenID = *d
	}
	if d := sp.digest("state_nft_id", s.StateNFTID, true); d != nil {
		p.StateNFTID = *d
	}
	if t := sp.template("emission_template", s.EmissionTemplate, true); t != nil {
		p.EmissionTemplate = *t
	}
	p.FunnelTemplate = sp.template("funnel_template", s.FunnelTemplate, false)
	p.EmittedTemplate = sp.template("emitted_template", s.EmittedTemplate, false)
	if p.ParticipantTokenID == p.StateNFTID && s.ParticipantTokenID != "" {
		sp.bad("state_nft_id", "is the participant token id; the state NFT must be another token")
	}
	if s.AsyncSupply != nil {
		if *s.AsyncSupply == 0 || *s.AsyncSupply > math.MaxInt64 {
			sp.bad("async_supply", "%d is not 1 to 9223372036854775807", *s.AsyncSupply)
		}
		p.AsyncSupply = *s.AsyncSupply
	}
	if s.StartHeight != nil {
		if *s.StartHeight == 0 {
			sp.bad("start_height", "heights start at 1")
		}
		p.StartHeight = *s.StartHeight
	}
	actions := map[string]bool{}
	for k, a := range s.Actions {
		key := fmt.Sprintf("action[%d]", k)
		switch {
		case a.Name == "":
			sp.bad(key+".name", "required (it names the action's results in verdicts and events)")
		case !nameRE.MatchString(a.Name):
			sp.bad(key+".name", "%q may hold only a-z, 0-9, '_' and '-'", a.Name)
		case actions[a.Name]:
			sp.bad(key+".name", "%q names two actions", a.Name)
		}
		actions[a.Name] = true
		act := Action{Name: a.Name}
		if t := sp.template(key+".emitted_template", a.EmittedTemplate, true); t != nil {
			act.EmittedTemplate = *t
		}
		p.Actions = append(p.Actions, act)
	}
	p.EmissionRequires = sp.requirements("emission_requires", s.EmissionRequires, actions)
	for k, a := range s.Actions {
		p.Actions[k].Requires = sp.requirements(fmt.Sprintf("action[%d].requires", k), a.Requires, actions)
	}
	sp.leaves(&p)
	return p
}

// requirements decodes the entries of key, whose action names must be
// among actions.
func (sp *specParser) requirements(key string, rs []RequirementSpec, actions map[string]bool) []Requirement {
	var out []Requirement
	for j, r := range rs {
		key := fmt.Sprintf("%s[%d]", key, j)
		req := Requirement{Class: Class(r.Class), Action: r.Action}
		switch req.Class {
		case ClassState, ClassEmitted, ClassEmission:
		case "":
			sp.bad(key+".class", "required: state, emitted or emission")
		default:
			sp.bad(key+".class", "%q is not state, emitted or emission", r.Class)
		}
		var ok bool
		if req.EmittedRegister, ok = register(r.EmittedRegister); !ok {
			sp.bad(key+".emitted_register", "%q is not a register R4 to R9", r.EmittedRegister)
		}
		if req.DataInputRegister, ok = register(r.DataInputRegister); !ok {
			sp.bad(key+".data_input_register", "%q is not a register R4 to R9", r.DataInputRegister)
		}
		if (r.EmittedRegister == "") != (r.DataInputRegister == "") {
			sp.bad(key, "emitted_register and data_input_register go together: a register equality needs both sides")
		}
		switch {
		case r.Action == "":
		case req.Class != ClassEmitted:
			sp.bad(key+".action", "only a requirement of class emitted reads a result of an action")
		case !actions[r.Action]:
			sp.bad(key+".action", "%q is no [[protocol.action]] of this protocol", r.Action)
		}
		out = append(out, req)
	}
	return out
}

// leaves refuses requirements that no valid result can ever meet: actions
// that require, directly or not, results of each other with no leaf (an
// action that needs no result) under them (PROTOCOL.md §2). A result can be
// valid once every requirement of its kind can be met: state and emission
// always can; emitted of an action once that action's results can be
// valid; emitted of no named action once any kind's can. Results of no
// action are a kind too, unless the protocol's actions leave them no
// template.
func (sp *specParser) leaves(p *Protocol) {
	n := len(p.Actions)
	sets := make([][]Requirement, n+1) // the actions', then the protocol-level one
	for k, a := range p.Actions {
		sets[k] = a.Requires
	}
	sets[n] = p.EmissionRequires
	noAction := p.EmittedTemplate != nil || n == 0
	index := map[string]int{}
	for k, a := range p.Actions {
		index[a.Name] = k
	}
	possible := make([]bool, n+1)
	canMeet := func(r Requirement) bool {
		if r.Class != ClassEmitted {
			return true
		}
		if r.Action == "" {
			return slices.Contains(possible, true)
		}
		k, ok := index[r.Action]
		return !ok || possible[k] // an unknown name is refused already
	}
	for changed := true; changed; {
		changed = false
		for k, set := range sets {
			if !possible[k] && (k < n || noAction) && !slices.ContainsFunc(set, func(r Requirement) bool { return !canMeet(r) }) {
				possible[k], changed = true, true
			}
		}
	}
	var never []string
	for k, a := range p.Actions {
		if !possible[k] {
			never = append(never, fmt.Sprintf("%q", a.Name))
		}
	}
	for k, set := range sets {
		if possible[k] || k == n && !noAction {
			continue
		}
		j := slices.IndexFunc(set, func(r Requirement) bool { return !canMeet(r) })
		key := fmt.Sprintf("action[%d].requires[%d]", k, j)
		if k == n {
			key = fmt.Sprintf("emission_requires[%d]", j)
		}
		what := "a result"
		if set[j].Action != "" {
			what = fmt.Sprintf("a result of action %q", set[j].Action)
		}
		sp.bad(key, "requires %s, which can never be valid: the requirements form a cycle with no leaf "+
			"(no valid first result of actions %s can exist)", what, strings.Join(never, ", "))
	}
}

// templateUse is a template a protocol judges boxes by, and its key.
type templateUse struct {
	index         int // of the protocol's section
	protocol, key string
	template      Template
}

// templates lists the section's emission and emitted templates (those that
// decode) with their keys, refusing one used twice within it. Templates
// compare within a convention (a bare key is sha256:): the same template
// named once by its sha256 and once by its blake2b256 hash cannot be seen
// here (see Engine).
func (sp *specParser) templates(index int, s ProtocolSpec) []templateUse {
	var uses []templateUse
	add := func(key, v string) {
		if t, err := ParseTemplate(v); err == nil {
			uses = append(uses, templateUse{index, sp.label, key, t})
		}
	}
	add("emission_template", s.EmissionTemplate)
	add("emitted_template", s.EmittedTemplate)
	for k, a := range s.Actions {
		add(fmt.Sprintf("action[%d].emitted_template", k), a.EmittedTemplate)
	}
	var out []templateUse
	for _, u := range uses {
		if k := slices.IndexFunc(out, func(o templateUse) bool { return o.template == u.template }); k >= 0 {
			sp.bad(u.key, "is the same template as %s: the emission template and each emitted template must be its own", out[k].key)
			continue
		}
		out = append(out, u)
	}
	return out
}

// MixedConventions reports whether the protocols name emission or emitted
// templates in both conventions: then two of them may share a template
// that the hashes do not show (one names it by sha256, the other by
// blake2b256), which the Engine finds only when it meets a box at it.
func MixedConventions(ps []Protocol) bool {
	var seen [2]bool
	for i := range ps {
		for _, t := range ps[i].Templates() {
			if t.Key != "funnel_template" {
				seen[t.Template.Convention] = true
			}
		}
	}
	return seen[SHA256] && seen[Blake2b256]
}

// register parses "R4" … "R9" (or "" for none, as 0).
func register(s string) (int, bool) {
	if s == "" {
		return 0, true
	}
	if len(s) == 2 && s[0] == 'R' && s[1] >= '4' && s[1] <= '9' {
		return int(s[1] - '0'), true
	}
	return 0, false
}
