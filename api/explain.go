package api

import (
	"encoding/hex"
	"slices"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/address"
	"github.com/async-emission/auditor/rules"
)

// Explanation is one stored box explained: the output of `auditor verify
// --json` and of GET /api/v1/boxes/{id}.
type Explanation struct {
	Box      Box       `json:"box"`
	Verdicts []Verdict `json:"verdicts"`
	// Transaction is the transaction that created the box, with the
	// stored boxes it spent and read.
	Transaction Transaction `json:"transaction"`
	Lineage     *Lineage    `json:"lineage,omitempty"`
	// BuiltOn, for a result (an emitted box), are the results its
	// transaction read as data-inputs: what it was built on, each with
	// the emission box that proves it, if that was read too.
	BuiltOn []Basis `json:"built_on"`
	// Dependents, for a result, are the verdicts of the results and state
	// boxes whose transactions read it: what was built on it.
	Dependents []Verdict `json:"dependents"`
}

// Basis is a result another was built on.
type Basis struct {
	Related
	// ProvedBy is the verified emission box of the result's lineage that
	// the transaction read with it; null when it read none (the result is
	// unproved).
	ProvedBy *ergo.Digest `json:"proved_by"`
}

// Box is a stored box.
type Box struct {
	ID             ergo.Digest           `json:"id"`
	Height         uint32                `json:"height"`
	BlockID        ergo.Digest           `json:"block_id"`
	OutputIndex    int                   `json:"output_index"`
	Value          uint64                `json:"value"`
	Address        string                `json:"address,omitempty"`
	TemplateHash   *rules.TemplateHashes `json:"template_hash"` // {"sha256", "blake2b256"}; null for a tree without a template
	CreationHeight uint32                `json:"creation_height"`
	Tokens         []Token               `json:"tokens"`
	Registers      []string              `json:"registers"` // serialized, hex, R4 onwards
	SpentTxID      *ergo.Digest          `json:"spent_tx_id"`
	SpentHeight    uint32                `json:"spent_height,omitempty"`
}

// Token is a token a box holds.
type Token struct {
	ID     ergo.Digest `json:"id"`
	Amount uint64      `json:"amount"`
}

// Verdict is a stored verdict.
type Verdict struct {
	Protocol string       `json:"protocol"`
	Kind     rules.Kind   `json:"kind"`
	Class    rules.Class  `json:"class"`
	Verdict  string       `json:"verdict"`
	Reasons  []Reason     `json:"reasons"`
	BoxID    ergo.Digest  `json:"box_id"`
	TxID     ergo.Digest  `json:"tx_id"`
	Height   uint32       `json:"height"`
	BlockID  ergo.Digest  `json:"block_id"`
	Lineage  *ergo.Digest `json:"lineage"`
	// Action is the action a result is of; absent for none.
	Action string `json:"action,omitempty"`
}

// Reason is a reason code with its sentence.
type Reason struct {
	Code     rules.Reason `json:"code"`
	Sentence string       `json:"sentence"`
}

// Transaction is the transaction that created an explained box.
type Transaction struct {
	ID         ergo.Digest `json:"id"`
	Spent      []Related   `json:"spent"`
	DataInputs []Related   `json:"data_inputs"`
}

// Related is a stored box a transaction spent or read, with its verdicts.
type Related struct {
	BoxID    ergo.Digest `json:"box_id"`
	Position int         `json:"position"`
	Verdicts []Verdict   `json:"verdicts"`
}

// Lineage is the emission lineage of an explained box.
type Lineage struct {
	Protocol string      `json:"protocol"`
	Token    ergo.Digest `json:"async_token_id"`
	Current  ergo.Digest `json:"current_box"`
	Broken   bool        `json:"broken"`
	Closed   bool        `json:"closed"`
	Minted   uint64      `json:"minted"`
	Burnt    uint64      `json:"burnt"`
	// Emissions are the lineage's emission boxes from the bootstrap on.
	Emissions []Verdict `json:"emission_boxes"`
}

// Explain returns the JSON form of the store's explanation of a box.
// Lists are empty, never null.
func Explain(ex *db.Explanation) Explanation {
	var out Explanation
	b := &ex.Box
	out.Box = Box{ID: b.ID, Height: b.Height, BlockID: b.BlockID, OutputIndex: b.OutputIndex, Value: b.Value,
		Address: address.Encode(b.ErgoTree, address.Mainnet), CreationHeight: b.CreationHeight,
		Tokens: []Token{}, Registers: []string{}, SpentTxID: b.SpentTxID, SpentHeight: b.SpentHeight}
	if h, err := rules.HashTemplate(b.ErgoTree); err == nil {
		out.Box.TemplateHash = &h
	}
	for _, t := range b.Tokens {
		out.Box.Tokens = append(out.Box.Tokens, Token(t))
	}
	for _, r := range b.Registers {
		out.Box.Registers = append(out.Box.Registers, hex.EncodeToString(r))
	}
	out.Verdicts = verdicts(ex.Verdicts)
	out.Transaction.ID = b.TxID
	out.Transaction.Spent = relateds(ex.Spent)
	out.Transaction.DataInputs = relateds(ex.Read)
	if st := ex.State; st != nil {
		out.Lineage = &Lineage{Protocol: st.Protocol, Token: st.Token, Current: st.Current, Broken: st.Broken,
			Closed: st.Closed, Minted: st.Minted, Burnt: st.Burnt, Emissions: verdicts(ex.Lineage)}
	}
	out.BuiltOn, out.Dependents = []Basis{}, verdicts(ex.Dependents)
	if slices.ContainsFunc(ex.Verdicts, func(v db.StoredVerdict) bool { return v.Class == rules.ClassEmitted }) {
		out.BuiltOn = builtOn(ex.Read)
	}
	return out
}

// builtOn picks, among the data-inputs read, the results, each with the
// verified emission box of its lineage read with it.
func builtOn(read []db.Related) []Basis {
	out := []Basis{}
	for _, r := range read {
		i := slices.IndexFunc(r.Verdicts, func(v db.StoredVerdict) bool {
			return v.Class == rules.ClassEmitted && v.Kind == rules.KindCreated
		})
		if i < 0 {
			continue
		}
		result := r.Verdicts[i]
		b := Basis{Related: Related{BoxID: r.BoxID, Position: r.Position, Verdicts: verdicts(r.Verdicts)}}
		for _, e := range read {
			if slices.ContainsFunc(e.Verdicts, func(v db.StoredVerdict) bool {
				return v.Class == rules.ClassEmission && v.Kind == rules.KindCreated && v.Valid() && v.Protocol == result.Protocol &&
					v.Lineage != nil && result.Lineage != nil && *v.Lineage == *result.Lineage
			}) {
				b.ProvedBy = &e.BoxID
				break
			}
		}
		out = append(out, b)
	}
	return out
}

func verdicts(vs []db.StoredVerdict) []Verdict {
	out := []Verdict{}
	for _, v := range vs {
		j := Verdict{Protocol: v.Protocol, Kind: v.Kind, Class: v.Class, Verdict: v.Status(), Reasons: []Reason{},
			BoxID: v.BoxID, TxID: v.TxID, Height: v.Height, BlockID: v.BlockID, Lineage: v.Lineage, Action: v.Action}
		for _, r := range v.Reasons {
			j.Reasons = append(j.Reasons, Reason{r, r.Sentence()})
		}
		out = append(out, j)
	}
	return out
}

func relateds(rs []db.Related) []Related {
	out := []Related{}
	for _, r := range rs {
		out = append(out, Related{BoxID: r.BoxID, Position: r.Position, Verdicts: verdicts(r.Verdicts)})
	}
	return out
}
