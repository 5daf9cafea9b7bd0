package sigma

import (
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strconv"
)

// This file renders constants as JSON; the rules are listed in the package
// documentation.

// MarshalJSON renders the constant as {"type": "<ErgoScript type>",
// "value": <value>}.
func (c Constant) MarshalJSON() ([]byte, error) {
	if c.Type == nil {
		return nil, writeErr("constant", "no type")
	}
	buf := []byte(`{"type":`)
	buf = appendJSONString(buf, c.Type.String())
	buf = append(buf, `,"value":`...)
	buf, err := appendValueJSON(buf, c.Type, c.Value, 0)
	if err != nil {
		return nil, err
	}
	return append(buf, '}'), nil
}

// MarshalJSON renders the box in the node's format, with values and amounts
// as decimal strings and each register as a {"type", "value"} object. A
// register that does not decode is rendered as {"serializedValue": hex,
// "error": message}. The receiver is a value so that boxes marshal whether
// or not they are addressed through a pointer.
func (b Box) MarshalJSON() ([]byte, error) {
	return appendBoxJSON(nil, &b, 0)
}

func appendBoxJSON(buf []byte, b *Box, depth int) ([]byte, error) {
	id := b.ID()
	buf = append(buf, `{"boxId":`...)
	buf = appendHex(buf, id[:])
	buf = append(buf, `,"value":`...)
	buf = appendDecimal(buf, b.Value)
	buf = append(buf, `,"ergoTree":`...)
	buf = appendHex(buf, b.ErgoTree)
	buf = append(buf, `,"creationHeight":`...)
	buf = strconv.AppendUint(buf, uint64(b.CreationHeight), 10)
	buf = append(buf, `,"assets":[`...)
	for i, t := range b.Tokens {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"tokenId":`...)
		buf = appendHex(buf, t.ID[:])
		buf = append(buf, `,"amount":`...)
		buf = appendDecimal(buf, t.Amount)
		buf = append(buf, '}')
	}
	buf = append(buf, `],"additionalRegisters":{`...)
	for i, raw := range b.Registers {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `"R`...)
		buf = strconv.AppendInt(buf, int64(firstRegister+i), 10)
		buf = append(buf, `":`...)
		c, err := DecodeRegisterValue(raw)
		if err == nil {
			var rendered []byte
			rendered, err = appendConstantJSON(buf, c, depth+1)
			if err == nil {
				buf = rendered
				continue
			}
		}
		buf = append(buf, `{"serializedValue":`...)
		buf = appendHex(buf, raw)
		buf = append(buf, `,"error":`...)
		buf = appendJSONString(buf, err.Error())
		buf = append(buf, '}')
	}
	buf = append(buf, `},"transactionId":`...)
	buf = appendHex(buf, b.TxID[:])
	buf = append(buf, `,"index":`...)
	buf = strconv.AppendUint(buf, uint64(b.Index), 10)
	return append(buf, '}'), nil
}

func appendConstantJSON(buf []byte, c Constant, depth int) ([]byte, error) {
	buf = append(buf, `{"type":`...)
	buf = appendJSONString(buf, typeString(c.Type))
	buf = append(buf, `,"value":`...)
	buf, err := appendValueJSON(buf, c.Type, c.Value, depth)
	if err != nil {
		return nil, err
	}
	return append(buf, '}'), nil
}

// appendValueJSON renders v, a value of type t.
func appendValueJSON(buf []byte, t Type, v Value, depth int) ([]byte, error) {
	if depth >= maxTypeDepth {
		return nil, writeErr("JSON", "value nested deeper than %d", maxTypeDepth)
	}
	switch t := t.(type) {
	case PrimType:
		return appendPrimJSON(buf, t, v, depth)
	case *CollType:
		if t == nil {
			break
		}
		switch t.Elem {
		case TByte:
			b, ok := v.([]byte)
			if !ok {
				return nil, mismatch(t, v)
			}
			return appendHex(buf, b), nil
		case TBoolean:
			bits, ok := v.([]bool)
			if !ok {
				return nil, mismatch(t, v)
			}
			buf = append(buf, '[')
			for i, b := range bits {
				if i > 0 {
					buf = append(buf, ',')
				}
				buf = strconv.AppendBool(buf, b)
			}
			return append(buf, ']'), nil
		}
		items, ok := v.([]Value)
		if !ok {
			return nil, mismatch(t, v)
		}
		return appendArrayJSON(buf, items, func(int) Type { return t.Elem }, depth)
	case *OptionType:
		if t == nil {
			break
		}
		o, ok := v.(Option)
		if !ok {
			return nil, mismatch(t, v)
		}
		if !o.Defined {
			return append(buf, "null"...), nil
		}
		return appendValueJSON(buf, t.Elem, o.Value, depth+1)
	case *TupleType:
		if t == nil {
			break
		}
		items, ok := asValues(v)
		if !ok || len(items) != len(t.Items) {
			return nil, mismatch(t, v)
		}
		return appendArrayJSON(buf, items, func(i int) Type { return t.Items[i] }, depth)
	}
	return nil, writeErr("JSON", "type %s has no values", typeString(t))
}

func appendArrayJSON(buf []byte, items []Value, typeOf func(int) Type, depth int) ([]byte, error) {
	buf = append(buf, '[')
	for i, it := range items {
		if i > 0 {
			buf = append(buf, ',')
		}
		var err error
		if buf, err = appendValueJSON(buf, typeOf(i), it, depth+1); err != nil {
			return nil, err
		}
	}
	return append(buf, ']'), nil
}

func appendPrimJSON(buf []byte, t PrimType, v Value, depth int) ([]byte, error) {
	switch t {
	case TBoolean:
		if b, ok := v.(bool); ok {
			return strconv.AppendBool(buf, b), nil
		}
	case TByte:
		if b, ok := v.(int8); ok {
			return strconv.AppendInt(buf, int64(b), 10), nil
		}
	case TShort:
		if s, ok := v.(int16); ok {
			return strconv.AppendInt(buf, int64(s), 10), nil
		}
	case TInt:
		if i, ok := v.(int32); ok {
			return strconv.AppendInt(buf, int64(i), 10), nil
		}
	case TLong:
		if l, ok := v.(int64); ok {
			buf = append(buf, '"')
			buf = strconv.AppendInt(buf, l, 10)
			return append(buf, '"'), nil
		}
	case TBigInt, TUnsignedBigInt:
		if b, ok := v.(*big.Int); ok && b != nil {
			buf = append(buf, '"')
			buf = b.Append(buf, 10)
			return append(buf, '"'), nil
		}
	case TGroupElement:
		if g, ok := v.(GroupElement); ok {
			return appendHex(buf, g[:]), nil
		}
	case TSigmaProp:
		if sb, ok := v.(SigmaBoolean); ok {
			return appendSigmaJSON(buf, sb, depth)
		}
	case TAvlTree:
		if a, ok := v.(AvlTree); ok {
			return appendAvlTreeJSON(buf, &a), nil
		}
	case TBox:
		if b, ok := v.(*Box); ok && b != nil {
			return appendBoxJSON(buf, b, depth)
		}
	case THeader:
		if h, ok := v.(*Header); ok && h != nil {
			return appendHeaderJSON(buf, h), nil
		}
	case TString:
		if s, ok := v.(string); ok {
			return appendJSONString(buf, s), nil
		}
	case TUnit:
		if _, ok := v.(Unit); ok {
			return append(buf, "{}"...), nil
		}
	default:
		return nil, writeErr("JSON", "type %s has no values", t)
	}
	return nil, mismatch(t, v)
}

// appendSigmaJSON renders a sigma proposition as {"op": ..., ...}.
func appendSigmaJSON(buf []byte, sb SigmaBoolean, depth int) ([]byte, error) {
	if depth >= maxTypeDepth {
		return nil, writeErr("JSON", "sigma proposition nested deeper than %d", maxTypeDepth)
	}
	children := func(buf []byte, cs []SigmaBoolean) ([]byte, error) {
		buf = append(buf, `,"args":[`...)
		for i, c := range cs {
			if i > 0 {
				buf = append(buf, ',')
			}
			var err error
			if buf, err = appendSigmaJSON(buf, c, depth+1); err != nil {
				return nil, err
			}
		}
		return append(buf, "]}"...), nil
	}
	switch sb := sb.(type) {
	case TrivialProp:
		if sb {
			return append(buf, `{"op":"true"}`...), nil
		}
		return append(buf, `{"op":"false"}`...), nil
	case ProveDlog:
		buf = append(buf, `{"op":"proveDlog","h":`...)
		buf = appendHex(buf, sb.H[:])
		return append(buf, '}'), nil
	case ProveDHTuple:
		buf = append(buf, `{"op":"proveDHTuple","g":`...)
		buf = appendHex(buf, sb.G[:])
		buf = append(buf, `,"h":`...)
		buf = appendHex(buf, sb.H[:])
		buf = append(buf, `,"u":`...)
		buf = appendHex(buf, sb.U[:])
		buf = append(buf, `,"v":`...)
		buf = appendHex(buf, sb.V[:])
		return append(buf, '}'), nil
	case CAnd:
		return children(append(buf, `{"op":"and"`...), sb.Children)
	case COr:
		return children(append(buf, `{"op":"or"`...), sb.Children)
	case CThreshold:
		buf = append(buf, `{"op":"atLeast","k":`...)
		buf = strconv.AppendUint(buf, uint64(sb.K), 10)
		return children(buf, sb.Children)
	}
	return nil, writeErr("JSON", "%T is not a SigmaBoolean", sb)
}

func appendAvlTreeJSON(buf []byte, a *AvlTree) []byte {
	buf = append(buf, `{"digest":`...)
	buf = appendHex(buf, a.Digest[:])
	buf = append(buf, `,"insertAllowed":`...)
	buf = strconv.AppendBool(buf, a.InsertAllowed)
	buf = append(buf, `,"updateAllowed":`...)
	buf = strconv.AppendBool(buf, a.UpdateAllowed)
	buf = append(buf, `,"removeAllowed":`...)
	buf = strconv.AppendBool(buf, a.RemoveAllowed)
	buf = append(buf, `,"keyLength":`...)
	buf = strconv.AppendUint(buf, uint64(a.KeyLength), 10)
	buf = append(buf, `,"valueLength":`...)
	if a.ValueLength == nil {
		buf = append(buf, "null"...)
	} else {
		buf = strconv.AppendUint(buf, uint64(*a.ValueLength), 10)
	}
	return append(buf, '}')
}

func appendHeaderJSON(buf []byte, h *Header) []byte {
	id := h.ID()
	buf = append(buf, `{"id":`...)
	buf = appendHex(buf, id[:])
	buf = append(buf, `,"version":`...)
	buf = strconv.AppendUint(buf, uint64(h.Version), 10)
	for _, f := range []struct {
		name string
		b    []byte
	}{
		{"parentId", h.ParentID[:]}, {"adProofsRoot", h.ADProofsRoot[:]},
		{"transactionsRoot", h.TransactionsRoot[:]}, {"stateRoot", h.StateRoot[:]},
	} {
		buf = append(buf, `,"`+f.name+`":`...)
		buf = appendHex(buf, f.b)
	}
	buf = append(buf, `,"timestamp":`...)
	buf = strconv.AppendUint(buf, h.Timestamp, 10)
	buf = append(buf, `,"extensionHash":`...)
	buf = appendHex(buf, h.ExtensionRoot[:])
	buf = append(buf, `,"nBits":`...)
	buf = strconv.AppendUint(buf, uint64(h.NBits), 10)
	buf = append(buf, `,"height":`...)
	buf = strconv.AppendUint(buf, uint64(h.Height), 10)
	buf = append(buf, `,"votes":`...)
	buf = appendHex(buf, h.Votes[:])
	buf = append(buf, `,"unparsedBytes":`...)
	buf = appendHex(buf, h.UnparsedBytes)
	buf = append(buf, `,"powSolutions":{"pk":`...)
	buf = appendHex(buf, h.MinerPK[:])
	buf = append(buf, `,"w":`...)
	buf = appendHex(buf, h.W[:])
	buf = append(buf, `,"n":`...)
	buf = appendHex(buf, h.Nonce[:])
	buf = append(buf, `,"d":"`...)
	if h.D != nil {
		buf = h.D.Append(buf, 10)
	} else {
		buf = append(buf, '0')
	}
	return append(buf, `"}}`...)
}

func appendHex(buf, b []byte) []byte {
	buf = append(buf, '"')
	buf = hex.AppendEncode(buf, b)
	return append(buf, '"')
}

func appendDecimal(buf []byte, v uint64) []byte {
	buf = append(buf, '"')
	buf = strconv.AppendUint(buf, v, 10)
	return append(buf, '"')
}

func appendJSONString(buf []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(buf, b...)
}
