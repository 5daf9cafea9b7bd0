package sigma

import (
	"bytes"
	"fmt"

	"github.com/async-emission/auditor/ergo/wire"
	"golang.org/x/crypto/blake2b"
)

// Token is an amount of a token held by a box.
type Token struct {
	ID     [32]byte
	Amount uint64
}

// MaxRegisters is the number of non-mandatory registers, R4 to R9.
const MaxRegisters = 6

// firstRegister is the index of the first non-mandatory register (R4).
const firstRegister = 4

// maxTokens is the most tokens the one-byte token count can hold.
const maxTokens = 255

// BoxCandidate is a box without the reference to the transaction that
// creates it: the content of a transaction output.
type BoxCandidate struct {
	Value uint64
	// ErgoTree is the serialized guarding script, verbatim.
	ErgoTree       []byte
	CreationHeight uint32
	Tokens         []Token
	// Registers holds the serialized values of R4, R5, ... in order,
	// verbatim. Each is a constant, or one of the few expressions the
	// reference accepts in a register (see ReadRegisterValue).
	Registers [][]byte
}

// Box is a box as it exists on chain: a candidate plus the id of the
// transaction that created it and its index among that transaction's
// outputs.
type Box struct {
	BoxCandidate
	TxID  [32]byte
	Index uint16
}

// ReadBoxCandidate reads a box candidate. With tokenIDs nil, token ids are
// read in full (a standalone box); otherwise each token is a VLQ index into
// tokenIDs, the transaction's list of distinct token ids, and an index out
// of range is an error.
func ReadBoxCandidate(r *wire.Reader, tokenIDs [][32]byte) (BoxCandidate, error) {
	c, err := newDecoder(r).readBoxCandidate(tokenIDs)
	if err != nil {
		return BoxCandidate{}, err
	}
	return c, nil
}

// ReadBox reads a standalone box: a candidate with full token ids, then the
// transaction id and the output index.
func ReadBox(r *wire.Reader) (Box, error) {
	b, err := newDecoder(r).readBox()
	if err != nil {
		return Box{}, err
	}
	return b, nil
}

// ParseBox reads a standalone box that must span all of b.
func ParseBox(b []byte) (Box, error) {
	r := wire.NewReader(b)
	box, err := ReadBox(r)
	if err == nil {
		err = r.Done("box")
	}
	if err != nil {
		return Box{}, err
	}
	return box, nil
}

func (d *decoder) readBoxCandidate(tokenIDs [][32]byte) (BoxCandidate, error) {
	r := d.r
	var c BoxCandidate
	var err error
	if c.Value, err = r.U64("box value"); err != nil {
		return c, err
	}
	treeStart := r.Pos()
	if _, err = d.readErgoTree(); err != nil {
		return c, fmt.Errorf("box ErgoTree: %w", err)
	}
	c.ErgoTree = bytes.Clone(r.Since(treeStart))
	if c.CreationHeight, err = readUIntExact(r, "box creation height"); err != nil {
		return c, err
	}
	nTokens, err := r.Byte("box token count")
	if err != nil {
		return c, err
	}
	if nTokens > 0 {
		c.Tokens = make([]Token, nTokens)
	}
	for i := range c.Tokens {
		t := &c.Tokens[i]
		if tokenIDs == nil {
			if t.ID, err = r.Digest32("box token id"); err != nil {
				return c, err
			}
		} else {
			off := r.Pos()
			idx, err := readUIntExact(r, "box token index")
			if err != nil {
				return c, err
			}
			if int(idx) >= len(tokenIDs) {
				return c, invalidAt(off, "box token index", "index %d of %d token ids", idx, len(tokenIDs))
			}
			t.ID = tokenIDs[idx]
		}
		if t.Amount, err = r.U64("box token amount"); err != nil {
			return c, err
		}
	}
	regOff := r.Pos()
	nRegs, err := r.Byte("box register count")
	if err != nil {
		return c, err
	}
	if nRegs > MaxRegisters {
		return c, invalidAt(regOff, "box register count", "%d registers, at most %d (R4 to R9)", nRegs, MaxRegisters)
	}
	if nRegs > 0 {
		c.Registers = make([][]byte, nRegs)
	}
	for i := range c.Registers {
		if c.Registers[i], err = d.readRegisterValue(); err != nil {
			return c, fmt.Errorf("register R%d: %w", firstRegister+i, err)
		}
	}
	return c, nil
}

func (d *decoder) readBox() (Box, error) {
	var b Box
	var err error
	if b.BoxCandidate, err = d.readBoxCandidate(nil); err != nil {
		return b, err
	}
	if b.TxID, err = d.r.Digest32("box transaction id"); err != nil {
		return b, err
	}
	b.Index, err = d.r.U16("box index")
	return b, err
}

// Write appends the candidate's serialization. With tokenIndex nil, token
// ids are written in full (a standalone box); otherwise each token is
// written as its index in tokenIndex, and a token missing from it is an
// error. The ErgoTree and register bytes are written verbatim.
func (c *BoxCandidate) Write(w *wire.Writer, tokenIndex map[[32]byte]uint32) error {
	if len(c.Tokens) > maxTokens {
		return writeErr("box tokens", "%d tokens exceed %d", len(c.Tokens), maxTokens)
	}
	if len(c.Registers) > MaxRegisters {
		return writeErr("box registers", "%d registers exceed %d (R4 to R9)", len(c.Registers), MaxRegisters)
	}
	w.U64(c.Value)
	w.Write(c.ErgoTree)
	w.U32(c.CreationHeight)
	w.Byte(byte(len(c.Tokens)))
	for _, t := range c.Tokens {
		if tokenIndex == nil {
			w.Write(t.ID[:])
		} else {
			idx, ok := tokenIndex[t.ID]
			if !ok {
				return writeErr("box tokens", "token %x is not in the transaction's token list", t.ID)
			}
			w.U32(idx)
		}
		w.U64(t.Amount)
	}
	w.Byte(byte(len(c.Registers)))
	for _, reg := range c.Registers {
		w.Write(reg)
	}
	return nil
}

// Write appends the standalone serialization of the box: the candidate with
// full token ids, the transaction id and the output index.
func (b *Box) Write(w *wire.Writer) error {
	if err := b.BoxCandidate.Write(w, nil); err != nil {
		return err
	}
	w.Write(b.TxID[:])
	w.U16(b.Index)
	return nil
}

// ID returns the box id: blake2b256 of the standalone serialization. A box
// that cannot be serialized (more than 255 tokens or 6 registers) has the
// zero id.
func (b *Box) ID() [32]byte {
	w := wire.NewWriter(make([]byte, 0, 256))
	if err := b.Write(w); err != nil {
		return [32]byte{}
	}
	return blake2b.Sum256(w.Bytes())
}

// Register decodes register Ri, for i from 4 (R4) to 9 (R9). A register
// that holds a constant-like expression rather than a constant (see
// ReadRegisterValue) is reduced to the constant it denotes.
func (c *BoxCandidate) Register(i int) (Constant, error) {
	if i < firstRegister || i >= firstRegister+len(c.Registers) {
		return Constant{}, &Error{Kind: ErrNoRegister, Offset: -1, What: fmt.Sprintf("register R%d", i),
			Detail: fmt.Sprintf("the box has %d non-mandatory registers", len(c.Registers))}
	}
	return DecodeRegisterValue(c.Registers[i-firstRegister])
}

// Tree parses the candidate's ErgoTree.
func (c *BoxCandidate) Tree() (*ErgoTree, error) { return ParseErgoTree(c.ErgoTree) }
