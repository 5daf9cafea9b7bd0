package report

import (
	"math/big"

	"github.com/async-emission/auditor/db"
	"github.com/async-emission/auditor/rules"
)

// conservation sweeps the stored state of protocol p for PROTOCOL.md §5,
// as the auditor reads it:
//
//   - every lineage: what live stored boxes hold of its async token, plus
//     what its journal records as burnt, equals async_supply. The sweep
//     tells the two ways this fails apart: the bootstrap minted another
//     amount (bad_mint: minted ≠ async_supply), and tokens appeared or
//     vanished since (unbalanced: held + burnt ≠ minted). A lineage passes
//     when neither holds, which is exactly held + burnt = minted =
//     async_supply.
//
//     §5's sum (current emission balance + tokens in emitted boxes +
//     tokens recorded as escaped or burnt) is read so that every unit
//     counts once, where it is now. Held is every live stored box holding
//     the token: the current emission box, the emitted boxes (§3 makes
//     every box holding a known lineage's token, other than an emission
//     box, one), and an emission box the token was locked into without
//     its lineage (emission.orphan_token), which the letter of §5 leaves
//     out but whose tokens neither appeared nor vanished. Tokens recorded
//     as escaped are not added again: an escape moves them into outputs,
//     held like any box, and adding them would report a surplus of exactly
//     what escaped on every escaped lineage, which the emission.escaped
//     verdict already reports. Burnt is the journal's: the rules record a
//     burn in every transaction that spends a stored box holding the token
//     and outputs less of it (rules/tx.go, conclude), the burning of
//     emitted boxes long after their emission included. So an escaped
//     lineage, or one whose bootstrap leaked supply into another output,
//     is balanced; the rules' verdicts report those.
//
//   - every live unit of participant token is in a box the protocol
//     classified funnel or participant, or in a live emission box holding
//     exactly one. Every other box holding some is listed: unclassified,
//     of another class (state, emitted), or an emission box holding more
//     than one.
//
// Amounts are added as big integers: they are 63-bit each and their sums
// need not fit.
func conservation(d *db.ReportData, p *rules.Protocol, supply *big.Int) Conservation {
	c := Conservation{FailingLineages: []LineageFailure{}}
	for _, l := range d.Lineages {
		if l.Protocol != p.Name {
			continue
		}
		c.LineagesChecked++
		var problems []string
		if l.Minted.Cmp(supply) != 0 {
			problems = append(problems, ProblemBadMint)
		}
		total := new(big.Int).Add(l.Held, l.Burnt)
		if total.Cmp(l.Minted) != 0 {
			problems = append(problems, ProblemUnbalanced)
		}
		if problems == nil {
			continue
		}
		c.FailingLineages = append(c.FailingLineages, LineageFailure{
			TokenID: l.Token, HolderBox: l.Current, Problems: problems,
			Minted: amount(l.Minted), Held: amount(l.Held), Burnt: amount(l.Burnt),
			Difference: amount(total.Sub(total, supply)),
			Broken:     l.Broken, Closed: l.Closed,
		})
	}
	c.Participant = participantSweep(d, p)
	c.OK = len(c.FailingLineages) == 0 && len(c.Participant.MisplacedList) == 0
	return c
}

func participantSweep(d *db.ReportData, p *rules.Protocol) ParticipantSweep {
	var live, funnel, emission, participant, misplaced big.Int
	s := ParticipantSweep{MisplacedList: []MisplacedBox{}}
	one := big.NewInt(1)
	for _, h := range d.Holdings {
		if h.Protocol != p.Name {
			continue
		}
		s.Boxes++
		live.Add(&live, h.Amount)
		problem := ""
		switch rules.Class(h.Class) {
		case rules.ClassFunnel:
			funnel.Add(&funnel, h.Amount)
		case rules.ClassParticipant:
			participant.Add(&participant, h.Amount)
		case rules.ClassEmission:
			if h.Amount.Cmp(one) == 0 {
				emission.Add(&emission, h.Amount)
			} else {
				problem = MisplacedEmissionAmount
			}
		case "":
			problem = MisplacedUnclassified
		default:
			problem = MisplacedClass
		}
		if problem == "" {
			continue
		}
		misplaced.Add(&misplaced, h.Amount)
		s.MisplacedList = append(s.MisplacedList, MisplacedBox{
			BoxID: h.BoxID, Height: h.Height, Value: amount(new(big.Int).SetUint64(h.Value)), Amount: amount(h.Amount),
			Class: h.Class, Verdict: h.Verdict, Problem: problem,
		})
	}
	s.Live, s.InFunnel, s.InEmission = amount(&live), amount(&funnel), amount(&emission)
	s.InParticipant, s.Misplaced = amount(&participant), amount(&misplaced)
	return s
}
