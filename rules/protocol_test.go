package rules

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo"
)

const (
	tokenHex = "0cd8c9f416e5b1ca9f986a7f10a84191dfb85941619e49e53c0dc30ebf83324b"
	nftHex   = "6af4507f7fb6100d9315b1a0c24562a3a4fe00b5fa425497ecb6dcee6b059d95"
	treeHex  = "682db8df7a2a5aab16bfb90542fb796fa56d99ff056883b9293834ac0543c0f2"
)

// hexOf is a template hash of its own for name.
func hexOf(name string) string { return id(name).String() }

// knownAt is a box whose sha256 template hash is h.
func knownAt(h ergo.Digest) *Known { return &Known{Template: h, HasTemplate: true} }

func goodSpec() ProtocolSpec {
	return ProtocolSpec{Name: "demo", ParticipantTokenID: tokenHex, StateNFTID: nftHex, EmissionTemplate: treeHex}
}

func TestParseProtocolDefaultsAndFields(t *testing.T) {
	s := goodSpec()
	s.EmittedTemplate = hexOf("emitted")
	s.EmissionRequires = []RequirementSpec{{Class: "state", EmittedRegister: "R4", DataInputRegister: "R5"}, {Class: "emission"}}
	ps, errs := ParseProtocols([]ProtocolSpec{s})
	if errs != nil {
		t.Fatal(errs)
	}
	p := ps[0]
	if p.AsyncSupply != math.MaxInt64 || p.StartHeight != 1 || p.FunnelTemplate != nil || p.EmittedTemplate == nil {
		t.Fatalf("defaults %+v", p)
	}
	if p.ParticipantTokenID.String() != tokenHex || p.StateNFTID.String() != nftHex || p.EmissionTemplate.String() != "sha256:"+treeHex {
		t.Fatalf("ids %+v", p)
	}
	want := []Requirement{{Class: ClassState, EmittedRegister: 4, DataInputRegister: 5}, {Class: ClassEmission}}
	if len(p.EmissionRequires) != 2 || p.EmissionRequires[0] != want[0] || p.EmissionRequires[1] != want[1] {
		t.Fatalf("requirements %+v", p.EmissionRequires)
	}
}

func TestParseProtocolErrorsNameProtocolAndKey(t *testing.T) {
	zero, big := uint64(0), uint64(math.MaxInt64)+1
	noHeight := uint32(0)
	cases := []struct {
		name     string
		edit     func(*ProtocolSpec)
		protocol string
		key      string
	}{
		{"missing name", func(s *ProtocolSpec) { s.Name = "" }, "#1", "name"},
		{"name with capitals", func(s *ProtocolSpec) { s.Name = "Demo" }, "#1", "name"},
		{"name with a dot", func(s *ProtocolSpec) { s.Name = "a.b" }, "#1", "name"},
		{"short token id", func(s *ProtocolSpec) { s.ParticipantTokenID = "0cd8" }, "demo", "participant_token_id"},
		{"token id not hex", func(s *ProtocolSpec) { s.ParticipantTokenID = strings.Repeat("z", 64) }, "demo", "participant_token_id"},
		{"missing state nft", func(s *ProtocolSpec) { s.StateNFTID = "" }, "demo", "state_nft_id"},
		{"nft is the participant token", func(s *ProtocolSpec) { s.StateNFTID = tokenHex }, "demo", "state_nft_id"},
		{"missing emission template", func(s *ProtocolSpec) { s.EmissionTemplate = "" }, "demo", "emission_template"},
		{"bad funnel template", func(s *ProtocolSpec) { s.FunnelTemplate = "abc" }, "demo", "funnel_template"},
		{"bad emitted template", func(s *ProtocolSpec) { s.EmittedTemplate = "abc" }, "demo", "emitted_template"},
		{"zero supply", func(s *ProtocolSpec) { s.AsyncSupply = &zero }, "demo", "async_supply"},
		{"supply beyond Long", func(s *ProtocolSpec) { s.AsyncSupply = &big }, "demo", "async_supply"},
		{"height 0", func(s *ProtocolSpec) { s.StartHeight = &noHeight }, "demo", "start_height"},
		{"unknown class", func(s *ProtocolSpec) { s.EmissionRequires = []RequirementSpec{{Class: "oracle"}} }, "demo", "emission_requires[0].class"},
		{"participant class", func(s *ProtocolSpec) { s.EmissionRequires = []RequirementSpec{{Class: "participant"}} }, "demo", "emission_requires[0].class"},
		{"missing class", func(s *ProtocolSpec) { s.EmissionRequires = []RequirementSpec{{}} }, "demo", "emission_requires[0].class"},
		{"register R3", func(s *ProtocolSpec) {
			s.EmissionRequires = []RequirementSpec{{Class: "state", EmittedRegister: "R3", DataInputRegister: "R4"}}
		}, "demo", "emission_requires[0].emitted_register"},
		{"register R10", func(s *ProtocolSpec) {
			s.EmissionRequires = []RequirementSpec{{Class: "state", EmittedRegister: "R4", DataInputRegister: "R10"}}
		}, "demo", "emission_requires[0].data_input_register"},
		{"one-sided equality", func(s *ProtocolSpec) {
			s.EmissionRequires = []RequirementSpec{{Class: "state", DataInputRegister: "R4"}}
		}, "demo", "emission_requires[0]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := goodSpec()
			c.edit(&s)
			ps, errs := ParseProtocols([]ProtocolSpec{s})
			if ps != nil || len(errs) == 0 {
				t.Fatal("accepted")
			}
			var ke *KeyError
			if !errors.As(errs[0], &ke) || ke.Protocol != c.protocol || ke.Key != c.key {
				t.Fatalf("got %v, want protocol %s key %s", errs, c.protocol, c.key)
			}
		})
	}
}

func TestParseProtocolsReportsEveryProblemAndDuplicates(t *testing.T) {
	a, b := goodSpec(), goodSpec()
	b.ParticipantTokenID, b.EmissionTemplate = "x", hexOf("another emission contract")
	_, errs := ParseProtocols([]ProtocolSpec{a, b})
	var keys []string
	for _, err := range errs {
		var ke *KeyError
		if errors.As(err, &ke) {
			keys = append(keys, ke.Key)
		}
	}
	if strings.Join(keys, ",") != "name,participant_token_id" {
		t.Fatalf("problems %v, want the duplicate name and the bad token of the second protocol", errs)
	}
}

// treeSpec is a protocol whose actions build on each other: two leaves on
// the state, one built on a leaf's result, one built on that and on any
// result.
func treeSpec() ProtocolSpec {
	s := goodSpec()
	s.Name = "tree"
	state := RequirementSpec{Class: "state", EmittedRegister: "R4", DataInputRegister: "R4"}
	s.Actions = []ActionSpec{
		{Name: "observe", EmittedTemplate: hexOf("observe"), Requires: []RequirementSpec{state}},
		{Name: "quote", EmittedTemplate: hexOf("quote"), Requires: []RequirementSpec{state}},
		{Name: "aggregate", EmittedTemplate: hexOf("aggregate"), Requires: []RequirementSpec{
			state, {Class: "emitted", Action: "observe", EmittedRegister: "R4", DataInputRegister: "R4"}}},
		{Name: "settle", EmittedTemplate: hexOf("settle"), Requires: []RequirementSpec{
			{Class: "emitted", Action: "aggregate"}, {Class: "emitted"}, {Class: "emission"}}},
	}
	return s
}

func TestParseProtocolActions(t *testing.T) {
	ps, errs := ParseProtocols([]ProtocolSpec{treeSpec()})
	if errs != nil {
		t.Fatal(errs)
	}
	p := ps[0]
	if len(p.Actions) != 4 || p.EmittedTemplate != nil || len(p.EmissionRequires) != 0 {
		t.Fatalf("parsed %+v", p)
	}
	agg := p.Actions[2]
	want := []Requirement{{Class: ClassState, EmittedRegister: 4, DataInputRegister: 4},
		{Class: ClassEmitted, EmittedRegister: 4, DataInputRegister: 4, Action: "observe"}}
	if agg.Name != "aggregate" || agg.EmittedTemplate.Hash.String() != hexOf("aggregate") || !slices.Equal(agg.Requires, want) {
		t.Fatalf("action %+v", agg)
	}
	if a := p.ActionOf(knownAt(id("settle"))); a == nil || a.Name != "settle" || p.ActionOf(knownAt(id("emitted"))) != nil {
		t.Fatalf("Action by template: %+v", a)
	}
	if !p.NamesEmittedTemplates() || !p.HasEmittedTemplate(knownAt(id("quote"))) || p.HasEmittedTemplate(knownAt(id("emitted"))) {
		t.Fatal("the emitted templates are not the actions'")
	}
	withLevel := treeSpec()
	withLevel.EmittedTemplate = hexOf("emitted")
	ps, errs = ParseProtocols([]ProtocolSpec{withLevel})
	if errs != nil || !ps[0].HasEmittedTemplate(knownAt(id("emitted"))) || !ps[0].HasEmittedTemplate(knownAt(id("settle"))) {
		t.Fatalf("with a protocol-level emitted_template: %v %v", ps, errs)
	}
}

// TestParseProtocolActionErrors: every problem of an action section, or of
// the tree the sections make, is refused naming the protocol and the key.
func TestParseProtocolActionErrors(t *testing.T) {
	emitted := func(action string) RequirementSpec { return RequirementSpec{Class: "emitted", Action: action} }
	cases := []struct {
		name string
		edit func(*ProtocolSpec)
		keys []string // every key refused, in order
		msg  string   // in the first error
	}{
		{"action without a name", func(s *ProtocolSpec) { s.Actions[1].Name = "" }, []string{"action[1].name"}, "required"},
		{"action name with capitals", func(s *ProtocolSpec) { s.Actions[0].Name = "Observe" },
			// and aggregate's requirement names an action that is gone
			[]string{"action[0].name", "action[2].requires[1].action"}, "a-z"},
		{"duplicate action name", func(s *ProtocolSpec) { s.Actions[1].Name = "observe" }, []string{"action[1].name"}, "names two actions"},
		{"action without a template", func(s *ProtocolSpec) { s.Actions[3].EmittedTemplate = "" }, []string{"action[3].emitted_template"}, "required"},
		{"action template not hex", func(s *ProtocolSpec) { s.Actions[3].EmittedTemplate = "abc" }, []string{"action[3].emitted_template"}, "32 bytes"},
		{"template shared by two actions", func(s *ProtocolSpec) { s.Actions[3].EmittedTemplate = hexOf("quote") },
			[]string{"action[3].emitted_template"}, "same template as action[1].emitted_template"},
		{"action template is the protocol-level one", func(s *ProtocolSpec) { s.EmittedTemplate = hexOf("quote") },
			[]string{"action[1].emitted_template"}, "same template as emitted_template"},
		{"action template is the emission template", func(s *ProtocolSpec) { s.Actions[0].EmittedTemplate = treeHex },
			[]string{"action[0].emitted_template"}, "same template as emission_template"},
		{"requirement of an unknown action", func(s *ProtocolSpec) { s.Actions[2].Requires[1].Action = "observer" },
			[]string{"action[2].requires[1].action"}, `"observer" is no [[protocol.action]]`},
		{"action on a state requirement", func(s *ProtocolSpec) { s.Actions[0].Requires[0].Action = "quote" },
			[]string{"action[0].requires[0].action"}, "only a requirement of class emitted"},
		{"action on an emission_requires entry of unknown action", func(s *ProtocolSpec) {
			s.EmittedTemplate = hexOf("emitted")
			s.EmissionRequires = []RequirementSpec{emitted("nothing")}
		}, []string{"emission_requires[0].action"}, "no [[protocol.action]]"},
		{"bad requirement class in an action", func(s *ProtocolSpec) { s.Actions[1].Requires[0].Class = "oracle" },
			[]string{"action[1].requires[0].class"}, "oracle"},
		{"one-sided register equality in an action", func(s *ProtocolSpec) { s.Actions[1].Requires[0].DataInputRegister = "" },
			[]string{"action[1].requires[0]"}, "go together"},
		{"an action requiring its own results", func(s *ProtocolSpec) {
			s.Actions[0].Requires = append(s.Actions[0].Requires, emitted("observe"))
		}, []string{"action[0].requires[1]", "action[2].requires[1]", "action[3].requires[0]"}, "cycle with no leaf"},
		{"two actions requiring each other", func(s *ProtocolSpec) {
			s.Actions[0].Requires = []RequirementSpec{emitted("quote")}
			s.Actions[1].Requires = []RequirementSpec{emitted("observe")}
		}, []string{"action[0].requires[0]", "action[1].requires[0]", "action[2].requires[1]", "action[3].requires[0]"},
			`actions "observe", "quote", "aggregate", "settle"`},
		{"no leaf for a requirement naming no action", func(s *ProtocolSpec) {
			s.Actions = s.Actions[3:]
			s.Actions[0].Requires = []RequirementSpec{emitted("")}
		}, []string{"action[0].requires[0]"}, "requires a result,"},
		{"results of no action requiring results, with no action", func(s *ProtocolSpec) {
			s.Actions = nil
			s.EmissionRequires = []RequirementSpec{{Class: "state"}, emitted("")}
		}, []string{"emission_requires[1]"}, "cycle with no leaf"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := treeSpec()
			c.edit(&s)
			ps, errs := ParseProtocols([]ProtocolSpec{s})
			if ps != nil || len(errs) == 0 {
				t.Fatal("accepted")
			}
			var keys []string
			for _, err := range errs {
				var ke *KeyError
				if !errors.As(err, &ke) || ke.Protocol != "tree" {
					t.Fatalf("%v is not a KeyError of protocol tree", err)
				}
				keys = append(keys, ke.Key)
			}
			if !slices.Equal(keys, c.keys) || !strings.Contains(errs[0].Error(), c.msg) {
				t.Fatalf("got %v, want keys %v, the first saying %q", errs, c.keys, c.msg)
			}
		})
	}
}

// TestParseProtocolsLeavesThroughAnyResult: a requirement naming no action
// is met by a result of any kind, so an action built on "any result" has a
// leaf when some kind has one; results of no action are such a kind once
// the protocol gives them a template.
func TestParseProtocolsLeavesThroughAnyResult(t *testing.T) {
	s := treeSpec()
	s.Actions = s.Actions[3:] // settle alone: aggregate is gone
	s.Actions[0].Requires = []RequirementSpec{{Class: "emitted"}}
	s.EmittedTemplate = hexOf("emitted")
	s.EmissionRequires = []RequirementSpec{{Class: "state"}}
	if _, errs := ParseProtocols([]ProtocolSpec{s}); errs != nil {
		t.Fatalf("settle built on a result of no action, which needs the state: %v", errs)
	}
	s.EmittedTemplate = ""
	if _, errs := ParseProtocols([]ProtocolSpec{s}); len(errs) != 1 {
		t.Fatalf("without a template for results of no action: %v, want settle refused", errs)
	}
}

// TestParseProtocolsSharedTemplates: two protocols may not share an emission
// template or an emitted one (their actions' included); the later
// protocol's key is refused, naming the earlier protocol and its key.
func TestParseProtocolsSharedTemplates(t *testing.T) {
	cases := []struct {
		name string
		edit func(*ProtocolSpec)
		key  string
		msg  string
	}{
		{"emission template", func(s *ProtocolSpec) {}, "emission_template", "also the emission_template of protocol tree ([[protocol]] #1)"},
		{"an action's template is the other's action's", func(s *ProtocolSpec) {
			s.EmissionTemplate = hexOf("demo emission")
			s.Actions = []ActionSpec{{Name: "watch", EmittedTemplate: hexOf("aggregate")}}
		}, "action[0].emitted_template", "also the action[2].emitted_template of protocol tree"},
		{"the emitted template is the other's action's", func(s *ProtocolSpec) {
			s.EmissionTemplate = hexOf("demo emission")
			s.EmittedTemplate = hexOf("observe")
		}, "emitted_template", "also the action[0].emitted_template of protocol tree"},
		{"the emission template is the other's emitted one", func(s *ProtocolSpec) { s.EmissionTemplate = hexOf("settle") },
			"emission_template", "also the action[3].emitted_template of protocol tree"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			other := goodSpec()
			c.edit(&other)
			ps, errs := ParseProtocols([]ProtocolSpec{treeSpec(), other})
			var ke *KeyError
			if ps != nil || len(errs) != 1 || !errors.As(errs[0], &ke) || ke.Protocol != "demo" || ke.Key != c.key ||
				!strings.Contains(ke.Msg, c.msg) {
				t.Fatalf("got %v, want protocol demo key %s: %q", errs, c.key, c.msg)
			}
		})
	}
	other := goodSpec()
	other.EmissionTemplate = hexOf("demo emission")
	other.EmittedTemplate = hexOf("demo emitted")
	if _, errs := ParseProtocols([]ProtocolSpec{treeSpec(), other}); errs != nil {
		t.Fatalf("templates of their own: %v", errs)
	}
}
