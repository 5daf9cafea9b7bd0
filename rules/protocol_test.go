package rules

import (
	"errors"
	"math"
	"strings"
	"testing"
)

const (
	tokenHex = "0cd8c9f416e5b1ca9f986a7f10a84191dfb85941619e49e53c0dc30ebf83324b"
	nftHex   = "6af4507f7fb6100d9315b1a0c24562a3a4fe00b5fa425497ecb6dcee6b059d95"
	treeHex  = "682db8df7a2a5aab16bfb90542fb796fa56d99ff056883b9293834ac0543c0f2"
)

func goodSpec() ProtocolSpec {
	return ProtocolSpec{Name: "demo", ParticipantTokenID: tokenHex, StateNFTID: nftHex, EmissionTemplate: treeHex}
}

func TestParseProtocolDefaultsAndFields(t *testing.T) {
	s := goodSpec()
	s.EmittedTemplate = treeHex
	s.EmissionRequires = []RequirementSpec{{Class: "state", EmittedRegister: "R4", DataInputRegister: "R5"}, {Class: "emission"}}
	ps, errs := ParseProtocols([]ProtocolSpec{s})
	if errs != nil {
		t.Fatal(errs)
	}
	p := ps[0]
	if p.AsyncSupply != math.MaxInt64 || p.StartHeight != 1 || p.FunnelTemplate != nil || p.EmittedTemplate == nil {
		t.Fatalf("defaults %+v", p)
	}
	if p.ParticipantTokenID.String() != tokenHex || p.StateNFTID.String() != nftHex || p.EmissionTemplate.String() != treeHex {
		t.Fatalf("ids %+v", p)
	}
	want := []Requirement{{ClassState, 4, 5}, {ClassEmission, 0, 0}}
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
	b.ParticipantTokenID = "x"
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
