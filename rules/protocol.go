package rules

import (
	"fmt"
	"math"
	"regexp"

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
	EmissionTemplate   ergo.Digest
	FunnelTemplate     *ergo.Digest // nil: any funnel contract
	EmittedTemplate    *ergo.Digest // nil: emitted boxes are recognised by their tokens only
	AsyncSupply        uint64
	EmissionRequires   []Requirement
	StartHeight        uint32
}

// Requirement is a data-input an emission transaction must have: a box of
// Class, and, when Register is set, whose register DataInputRegister equals
// the emitted box's EmittedRegister ("emitted during this epoch").
type Requirement struct {
	Class             Class
	EmittedRegister   int // 4…9, or 0 for no register equality
	DataInputRegister int // 4…9, set exactly when EmittedRegister is
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
	StartHeight        *uint32           `toml:"start_height"`
}

// RequirementSpec is a [[protocol.emission_requires]] entry as written.
type RequirementSpec struct {
	Class             string `toml:"class"`
	EmittedRegister   string `toml:"emitted_register"`
	DataInputRegister string `toml:"data_input_register"`
}

// KeyError is a problem with one key of one protocol section.
type KeyError struct {
	Protocol string // the protocol's name, or its position when it has none
	Key      string
	Msg      string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("protocol %s: %s: %s", e.Protocol, e.Key, e.Msg)
}

var nameRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// ParseProtocols validates every section and returns the protocols, or all
// the problems found (each a *KeyError naming the protocol and the key).
func ParseProtocols(specs []ProtocolSpec) ([]Protocol, []error) {
	var errs []error
	out := make([]Protocol, 0, len(specs))
	names := map[string]bool{}
	for i, s := range specs {
		label := s.Name
		if !nameRE.MatchString(s.Name) {
			label = fmt.Sprintf("#%d", i+1)
		}
		bad := func(key, format string, args ...any) {
			errs = append(errs, &KeyError{Protocol: label, Key: key, Msg: fmt.Sprintf(format, args...)})
		}
		p := Protocol{Name: s.Name, AsyncSupply: DefaultAsyncSupply, StartHeight: 1}
		switch {
		case s.Name == "":
			bad("name", "required (it names the protocol in event subjects)")
		case !nameRE.MatchString(s.Name):
			bad("name", "%q may hold only a-z, 0-9, '_' and '-' (it is part of event subjects)", s.Name)
		case names[s.Name]:
			bad("name", "%q names two protocols", s.Name)
		}
		names[s.Name] = true
		digest := func(key, v string, required bool) *ergo.Digest {
			if v == "" {
				if required {
					bad(key, "required: 32 bytes of hex")
				}
				return nil
			}
			d, err := ergo.ParseDigest(v)
			if err != nil {
				bad(key, "%q is not 32 bytes of hex", v)
				return nil
			}
			return &d
		}
		if d := digest("participant_token_id", s.ParticipantTokenID, true); d != nil {
			p.ParticipantTokenID = *d
		}
		if d := digest("state_nft_id", s.StateNFTID, true); d != nil {
			p.StateNFTID = *d
		}
		if d := digest("emission_template", s.EmissionTemplate, true); d != nil {
			p.EmissionTemplate = *d
		}
		p.FunnelTemplate = digest("funnel_template", s.FunnelTemplate, false)
		p.EmittedTemplate = digest("emitted_template", s.EmittedTemplate, false)
		if p.ParticipantTokenID == p.StateNFTID && s.ParticipantTokenID != "" {
			bad("state_nft_id", "is the participant token id; the state NFT must be another token")
		}
		if s.AsyncSupply != nil {
			if *s.AsyncSupply == 0 || *s.AsyncSupply > math.MaxInt64 {
				bad("async_supply", "%d is not 1 to 9223372036854775807", *s.AsyncSupply)
			}
			p.AsyncSupply = *s.AsyncSupply
		}
		if s.StartHeight != nil {
			if *s.StartHeight == 0 {
				bad("start_height", "heights start at 1")
			}
			p.StartHeight = *s.StartHeight
		}
		for j, r := range s.EmissionRequires {
			key := fmt.Sprintf("emission_requires[%d]", j)
			req := Requirement{Class: Class(r.Class)}
			switch req.Class {
			case ClassState, ClassEmitted, ClassEmission:
			case "":
				bad(key+".class", "required: state, emitted or emission")
			default:
				bad(key+".class", "%q is not state, emitted or emission", r.Class)
			}
			var ok bool
			if req.EmittedRegister, ok = register(r.EmittedRegister); !ok {
				bad(key+".emitted_register", "%q is not a register R4 to R9", r.EmittedRegister)
			}
			if req.DataInputRegister, ok = register(r.DataInputRegister); !ok {
				bad(key+".data_input_register", "%q is not a register R4 to R9", r.DataInputRegister)
			}
			if (r.EmittedRegister == "") != (r.DataInputRegister == "") {
				bad(key, "emitted_register and data_input_register go together: a register equality needs both sides")
			}
			p.EmissionRequires = append(p.EmissionRequires, req)
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
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
