package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/async-emission/auditor/ergo"
	"github.com/async-emission/auditor/ergo/address"
	"github.com/async-emission/auditor/ergo/sigma"
	"github.com/async-emission/auditor/rules"
)

const inspectSynopsis = `[--testnet] [FILE...]

Reads Ergo node JSON (a box, a transaction, a header, a full block, an array
of these, or JSON Lines of them) from each FILE, or from standard input when
no FILE or "-" is given, and prints one JSON line per header, block,
transaction and box with the ids it re-derived. Exit status: 0 when
everything verifies, 1 when anything does not, 2 when the input cannot be
read.`

func runInspect(e *env, args []string) error {
	fs := newFlagSet(e, "inspect", inspectSynopsis)
	testnet := fs.Bool("testnet", false, "render addresses for testnet instead of mainnet")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	in := &inspector{out: json.NewEncoder(e.stdout), network: address.Mainnet}
	if *testnet {
		in.network = address.Testnet
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	var unreadable error
	for _, name := range files {
		if err := in.file(e, name); err != nil {
			fmt.Fprintf(e.stderr, "auditor inspect: %v\n", err)
			unreadable = err
		}
	}
	switch {
	case unreadable != nil:
		return errReported
	case in.failed:
		return errFailed
	}
	return nil
}

type inspector struct {
	out     *json.Encoder
	network address.Network
	failed  bool // something did not verify
}

// file inspects every value in one input. An error means (part of) the
// input could not be read; it names the file and the item or byte offset.
func (in *inspector) file(e *env, name string) error {
	var r io.Reader = e.stdin
	label := "<stdin>"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r, label = f, name
	}
	dec := json.NewDecoder(r)
	var firstErr error
	for item := 0; ; item++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			return firstErr
		} else if err != nil {
			var syn *json.SyntaxError
			if errors.As(err, &syn) {
				return fmt.Errorf("%s: at byte %d: %v", label, syn.Offset, err)
			}
			return fmt.Errorf("%s: %v", label, err)
		}
		raw = bytes.TrimSpace(raw)
		values := []json.RawMessage{raw}
		path := fmt.Sprintf("value %d", item+1)
		if len(raw) > 0 && raw[0] == '[' {
			values = nil
			if err := json.Unmarshal(raw, &values); err != nil {
				return fmt.Errorf("%s: %s: %v", label, path, err)
			}
		}
		for i, v := range values {
			where := path
			if len(values) > 1 || raw[0] == '[' {
				where = fmt.Sprintf("%s, element %d", path, i)
			}
			if err := in.value(v); err != nil {
				err = fmt.Errorf("%s: %s: %v", label, where, err)
				fmt.Fprintf(e.stderr, "auditor inspect: %v\n", err)
				if firstErr == nil {
					firstErr = errors.New("input could not be read")
				}
			}
		}
	}
}

// kindOf tells a box, transaction, header or full block apart by its keys.
func kindOf(raw json.RawMessage) string {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil {
		return ""
	}
	has := func(k string) bool { _, ok := keys[k]; return ok }
	switch {
	case has("header") && has("blockTransactions"):
		return "block"
	case has("inputs") && has("outputs"):
		return "transaction"
	case has("powSolutions") || has("nBits"):
		return "header"
	case has("ergoTree"):
		return "box"
	}
	return ""
}

func (in *inspector) value(raw json.RawMessage) error {
	switch kindOf(raw) {
	case "block":
		var b ergo.FullBlock
		if err := json.Unmarshal(raw, &b); err != nil {
			return err
		}
		in.block(&b)
	case "transaction":
		var tx ergo.Transaction
		if err := json.Unmarshal(raw, &tx); err != nil {
			return err
		}
		in.transaction(&tx)
	case "header":
		var h ergo.Header
		if err := json.Unmarshal(raw, &h); err != nil {
			return err
		}
		in.header(&h)
	case "box":
		var b ergo.Box
		if err := json.Unmarshal(raw, &b); err != nil {
			return err
		}
		in.box(&b, nil)
	default:
		return errors.New("not a box, transaction, header or full block (expected an object with ergoTree, inputs/outputs, powSolutions, or header/blockTransactions)")
	}
	return nil
}

func (in *inspector) emit(v any) {
	// Encoding our own line types cannot fail.
	_ = in.out.Encode(v)
}

// errStrings lists the messages of errs, one per problem: errors.Join puts
// each joined error on its own line.
func errStrings(errs ...error) []string {
	var out []string
	for _, err := range errs {
		if err != nil {
			out = append(out, strings.Split(err.Error(), "\n")...)
		}
	}
	return out
}

type blockLine struct {
	Kind               string      `json:"kind"`
	ID                 ergo.Digest `json:"id"`
	Height             uint32      `json:"height"`
	TransactionsRootOK bool        `json:"transactionsRootOk"`
	ExtensionRootOK    bool        `json:"extensionRootOk"`
	OK                 bool        `json:"ok"`
	Errors             []string    `json:"errors,omitempty"`
}

func (in *inspector) block(b *ergo.FullBlock) {
	verr := b.Verify()
	line := blockLine{
		Kind:               "block",
		ID:                 b.Header.ComputeID(),
		Height:             b.Header.Height,
		TransactionsRootOK: b.CheckTransactionsRoot() == nil,
		ExtensionRootOK:    b.CheckExtensionRoot() == nil,
		OK:                 verr == nil,
		Errors:             errStrings(verr),
	}
	if b.Header.HasID {
		line.ID = b.Header.ID
	}
	in.failed = in.failed || !line.OK
	in.emit(line)
	in.header(&b.Header)
	for i := range b.Transactions {
		in.transaction(&b.Transactions[i])
	}
}

type headerLine struct {
	Kind       string         `json:"kind"`
	ID         *ergo.Digest   `json:"id"`
	ComputedID ergo.Digest    `json:"computedId"`
	Height     uint32         `json:"height"`
	Version    uint8          `json:"version"`
	OK         bool           `json:"ok"`
	PoW        ergo.PoWStatus `json:"pow"`
	Errors     []string       `json:"errors,omitempty"`
}

func (in *inspector) header(h *ergo.Header) {
	idErr := h.CheckIDs()
	pow, powErr := h.CheckPoW()
	line := headerLine{
		Kind:       "header",
		ComputedID: h.ComputeID(),
		Height:     h.Height,
		Version:    h.Version,
		OK:         idErr == nil && powErr == nil,
		PoW:        pow,
		Errors:     errStrings(idErr, powErr),
	}
	if h.HasID {
		line.ID = &h.ID
	}
	in.failed = in.failed || !line.OK
	in.emit(line)
}

type txLine struct {
	Kind       string       `json:"kind"`
	ID         *ergo.Digest `json:"id"`
	ComputedID ergo.Digest  `json:"computedId"`
	OK         bool         `json:"ok"`
	Errors     []string     `json:"errors,omitempty"`
}

func (in *inspector) transaction(tx *ergo.Transaction) {
	computed := tx.ComputeID()
	line := txLine{Kind: "transaction", ComputedID: computed, OK: !tx.HasID || tx.ID == computed}
	if tx.HasID {
		line.ID = &tx.ID
		if !line.OK {
			line.Errors = []string{fmt.Sprintf("id: given %s, computed %s", tx.ID, computed)}
		}
	}
	in.failed = in.failed || !line.OK
	in.emit(line)
	// Outputs must name the transaction as it is known: by its stated id
	// (whose own mismatch is reported once, above), or its derived one.
	known := computed
	if tx.HasID {
		known = tx.ID
	}
	for i := range tx.Outputs {
		in.box(&tx.Outputs[i], &boxContext{txID: known, index: i})
	}
}

// boxContext is where an output stands, so its link can be checked.
type boxContext struct {
	txID  ergo.Digest
	index int
}

type boxLine struct {
	Kind          string                     `json:"kind"`
	BoxID         *ergo.Digest               `json:"boxId"`
	ComputedBoxID ergo.Digest                `json:"computedBoxId"`
	OK            bool                       `json:"ok"`
	Value         string                     `json:"value"`
	TemplateHash  *rules.TemplateHashes      `json:"templateHash"` // {"sha256": hex, "blake2b256": hex}
	Address       string                     `json:"address"`
	Registers     map[string]*sigma.Constant `json:"registers"`
	Errors        []string                   `json:"errors,omitempty"`
}

func (in *inspector) box(b *ergo.Box, at *boxContext) {
	line := boxLine{
		Kind:          "box",
		ComputedBoxID: b.ComputeID(),
		Value:         fmt.Sprint(b.Value),
		Address:       address.Encode(b.ErgoTree, in.network),
		Registers:     map[string]*sigma.Constant{},
	}
	var errs []error
	if b.HasBoxID {
		line.BoxID = &b.BoxID
		errs = append(errs, b.CheckID())
	}
	if at != nil {
		if ergo.Digest(b.TxID) != at.txID {
			errs = append(errs, fmt.Errorf("transactionId: names %s, the box is in %s", ergo.Digest(b.TxID), at.txID))
		}
		if int(b.Index) != at.index {
			errs = append(errs, fmt.Errorf("index: says %d, the box is output %d", b.Index, at.index))
		}
	}
	if _, err := sigma.ParseErgoTree(b.ErgoTree); err != nil {
		errs = append(errs, fmt.Errorf("ergoTree: %w", err))
	} else if h, err := rules.HashTemplate(b.ErgoTree); err != nil {
		errs = append(errs, fmt.Errorf("ergoTree: %w", err))
	} else {
		line.TemplateHash = &h
	}
	for i := range b.Registers {
		name := ergo.RegisterName(4 + i)
		c, err := sigma.ParseConstant(b.Registers[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("additionalRegisters.%s: %w", name, err))
			continue
		}
		line.Registers[name] = &c
	}
	line.Errors = errStrings(errs...)
	line.OK = len(line.Errors) == 0
	in.failed = in.failed || !line.OK
	in.emit(line)
}
