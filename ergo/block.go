package ergo

import (
	"errors"
)

// FullBlock is a block as the node serves it from GET /blocks/{id}: the
// header and the sections it commits to.
type FullBlock struct {
	Header       Header
	Transactions []Transaction
	// TransactionsHeaderID is the header id the blockTransactions section
	// names; it must be the header's.
	TransactionsHeaderID Digest
	Extension            Extension
	ADProofs             *ADProofs // nil when the node did not include them
}

// Extension is the block's key-value section.
type Extension struct {
	HeaderID  Digest
	Digest    Digest // the root as given; meaningful only when HasDigest
	HasDigest bool
	Fields    []ExtensionField
}

// ExtensionField is one extension entry: a 2-byte key and a value of at most
// 64 bytes.
type ExtensionField struct {
	Key   [2]byte
	Value []byte
}

// MaxExtensionValue is the largest extension field value.
const MaxExtensionValue = 64

// ADProofs are the authenticated-dictionary proofs of a block's state change.
type ADProofs struct {
	HeaderID   Digest
	ProofBytes []byte
}

// Verify re-derives everything the block states about itself and returns
// every discrepancy found (joined; nil when the block verifies): the header
// id, stated difficulty and section ids; the proof of work (v2+; a version 1
// block's PoW is not checked); each transaction id, each output's link and
// box id; the transactions root; the extension root; the AD proofs digest;
// and the header id each section names. Each error is an *Error whose Field
// locates it in the node's JSON.
func (b *FullBlock) Verify() error {
	var errs []error
	h := &b.Header
	if err := h.CheckIDs(); err != nil {
		errs = append(errs, within("header", err))
	}
	if _, err := h.CheckPoW(); err != nil {
		errs = append(errs, within("header", err))
	}
	if err := b.VerifyBody(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// VerifyBody is Verify without the header's own checks (its id, stated
// values and proof of work): for a block whose header was verified on its
// own and is known to be this one (by its id, which commits to every field).
// It re-derives each transaction id, each output's link and box id, the
// transactions root, the extension root, the AD proofs digest and the
// header id each section names, and returns every discrepancy found.
func (b *FullBlock) VerifyBody() error {
	var errs []error
	add := func(field string, err error) {
		if err != nil {
			errs = append(errs, within(field, err))
		}
	}
	h := &b.Header
	headerID := h.ComputeID()

	ids := make([]Digest, len(b.Transactions))
	for i := range b.Transactions {
		tx := &b.Transactions[i]
		ids[i] = tx.ComputeID()
		if err := tx.checkIDs(ids[i]); err != nil {
			add(index("blockTransactions.transactions", i), err)
		}
	}
	if root := transactionsRoot(h.Version, b.Transactions, ids); root != h.TransactionsRoot {
		add("header", errorf(ErrRootMismatch, "transactionsRoot", "header states %s, transactions give %s", h.TransactionsRoot, root))
	}
	if b.TransactionsHeaderID != headerID {
		add("blockTransactions", errorf(ErrLink, "headerId", "names %s, the header is %s", b.TransactionsHeaderID, headerID))
	}
	add("extension", b.Extension.check(h, headerID))
	if p := b.ADProofs; p != nil {
		if root := Hash(p.ProofBytes); root != h.ADProofsRoot {
			add("adProofs", errorf(ErrRootMismatch, "proofBytes", "hash to %s, the header states %s", root, h.ADProofsRoot))
		}
		if p.HeaderID != headerID {
			add("adProofs", errorf(ErrLink, "headerId", "names %s, the header is %s", p.HeaderID, headerID))
		}
	}
	return errors.Join(errs...)
}

// CheckTransactionsRoot compares the header's transactions root with the one
// derived from the transactions.
func (b *FullBlock) CheckTransactionsRoot() error {
	if root := TransactionsRoot(b.Header.Version, b.Transactions); root != b.Header.TransactionsRoot {
		return errorf(ErrRootMismatch, "header.transactionsRoot", "header states %s, transactions give %s", b.Header.TransactionsRoot, root)
	}
	return nil
}

// CheckExtensionRoot compares the header's extension root (and the
// extension's stated digest) with the one derived from the fields.
func (b *FullBlock) CheckExtensionRoot() error {
	root := ExtensionRoot(b.Extension.Fields)
	if root != b.Header.ExtensionRoot {
		return errorf(ErrRootMismatch, "header.extensionHash", "header states %s, extension fields give %s", b.Header.ExtensionRoot, root)
	}
	if b.Extension.HasDigest && b.Extension.Digest != root {
		return errorf(ErrRootMismatch, "extension.digest", "states %s, fields give %s", b.Extension.Digest, root)
	}
	return nil
}

func (e *Extension) check(h *Header, headerID Digest) error {
	root := ExtensionRoot(e.Fields)
	if root != h.ExtensionRoot {
		return errorf(ErrRootMismatch, "fields", "give root %s, the header states %s", root, h.ExtensionRoot)
	}
	if e.HasDigest && e.Digest != root {
		return errorf(ErrRootMismatch, "digest", "states %s, fields give %s", e.Digest, root)
	}
	if e.HeaderID != headerID {
		return errorf(ErrLink, "headerId", "names %s, the header is %s", e.HeaderID, headerID)
	}
	return nil
}

type blockJSON struct {
	Header            *headerJSON    `json:"header"`
	BlockTransactions *blockTxsJSON  `json:"blockTransactions"`
	Extension         *extensionJSON `json:"extension"`
	ADProofs          *adProofsJSON  `json:"adProofs"`
}

type blockTxsJSON struct {
	HeaderID     jHex     `json:"headerId"`
	Transactions []txJSON `json:"transactions"`
}

type extensionJSON struct {
	HeaderID jHex     `json:"headerId"`
	Digest   jHex     `json:"digest"`
	Fields   [][]jHex `json:"fields"`
}

type adProofsJSON struct {
	HeaderID   jHex `json:"headerId"`
	ProofBytes jHex `json:"proofBytes"`
}

func (j *blockJSON) block(b *FullBlock) error {
	if j.Header == nil {
		return errorf(ErrMissingField, "header", "required")
	}
	if err := j.Header.header(&b.Header); err != nil {
		return within("header", err)
	}
	if j.BlockTransactions == nil {
		return errorf(ErrMissingField, "blockTransactions", "required")
	}
	bt := j.BlockTransactions
	var err error
	if b.TransactionsHeaderID, err = bt.HeaderID.digest("blockTransactions.headerId"); err != nil {
		return err
	}
	if bt.Transactions == nil {
		return errorf(ErrMissingField, "blockTransactions.transactions", "required")
	}
	b.Transactions = make([]Transaction, len(bt.Transactions))
	for i := range bt.Transactions {
		if err := bt.Transactions[i].transaction(&b.Transactions[i]); err != nil {
			return within(index("blockTransactions.transactions", i), err)
		}
	}
	if j.Extension == nil {
		return errorf(ErrMissingField, "extension", "required")
	}
	if err := j.Extension.extension(&b.Extension); err != nil {
		return within("extension", err)
	}
	if j.ADProofs != nil {
		p := &ADProofs{}
		if p.HeaderID, err = j.ADProofs.HeaderID.digest("adProofs.headerId"); err != nil {
			return err
		}
		if p.ProofBytes, err = j.ADProofs.ProofBytes.bytes("adProofs.proofBytes"); err != nil {
			return err
		}
		b.ADProofs = p
	}
	return nil
}

func (j *extensionJSON) extension(e *Extension) error {
	var err error
	if e.HeaderID, err = j.HeaderID.digest("headerId"); err != nil {
		return err
	}
	if e.Digest, e.HasDigest, err = j.Digest.optDigest("digest"); err != nil {
		return err
	}
	if j.Fields == nil {
		return errorf(ErrMissingField, "fields", "required")
	}
	e.Fields = make([]ExtensionField, len(j.Fields))
	for i, kv := range j.Fields {
		if err := extensionField(&e.Fields[i], kv); err != nil {
			return within(index("fields", i), err) // the path is built only for an error
		}
	}
	return nil
}

// extensionField decodes one [key, value] pair; error paths are relative
// to it.
func extensionField(f *ExtensionField, kv []jHex) error {
	if len(kv) != 2 {
		return errorf(ErrExtension, "", "a field is a [key, value] pair, got %d elements", len(kv))
	}
	if err := kv[0].fixed("[0]", f.Key[:]); err != nil {
		return err
	}
	var err error
	if f.Value, err = kv[1].bytes("[1]"); err != nil {
		return err
	}
	if len(f.Value) > MaxExtensionValue {
		return errorf(ErrLength, "[1]", "%d bytes, at most %d", len(f.Value), MaxExtensionValue)
	}
	return nil
}

// UnmarshalJSON decodes a full block in the node's format. Errors are
// *Error values that name the offending field.
func (b *FullBlock) UnmarshalJSON(raw []byte) error {
	var j blockJSON
	if err := unmarshal(raw, &j); err != nil {
		return err
	}
	*b = FullBlock{}
	return j.block(b)
}

// DecodeBlock decodes a full block from the node's JSON.
func DecodeBlock(data []byte) (*FullBlock, error) {
	b := &FullBlock{}
	return b, b.UnmarshalJSON(data)
}
