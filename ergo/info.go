package ergo

import "math/big"

// NodeInfo is the part of GET /info the auditor uses. Scores and difficulty
// are arbitrary-precision: mainnet scores exceed 64 bits.
type NodeInfo struct {
	Name             string
	AppVersion       string
	Network          string
	FullHeight       uint32 // 0 when the node has no full block yet (JSON null)
	HeadersHeight    uint32
	BestFullHeaderID Digest // zero when the node has no full block yet
	BestHeaderID     Digest
	GenesisBlockID   Digest
	Difficulty       *big.Int
	HeadersScore     *big.Int
	FullBlocksScore  *big.Int
}

type infoJSON struct {
	Name             string `json:"name"`
	AppVersion       string `json:"appVersion"`
	Network          string `json:"network"`
	FullHeight       jNum   `json:"fullHeight"`
	HeadersHeight    jNum   `json:"headersHeight"`
	BestFullHeaderID jHex   `json:"bestFullHeaderId"`
	BestHeaderID     jHex   `json:"bestHeaderId"`
	GenesisBlockID   jHex   `json:"genesisBlockId"`
	Difficulty       jBig   `json:"difficulty"`
	HeadersScore     jBig   `json:"headersScore"`
	FullBlocksScore  jBig   `json:"fullBlocksScore"`
}

// UnmarshalJSON decodes GET /info. Heights and ids are null on a node that
// has not synced anything yet; those decode as zero.
func (n *NodeInfo) UnmarshalJSON(raw []byte) error {
	var j infoJSON
	if err := unmarshal(raw, &j); err != nil {
		return err
	}
	*n = NodeInfo{Name: j.Name, AppVersion: j.AppVersion, Network: j.Network}
	for _, h := range []struct {
		field string
		src   *jNum
		dst   *uint32
	}{{"fullHeight", &j.FullHeight, &n.FullHeight}, {"headersHeight", &j.HeadersHeight, &n.HeadersHeight}} {
		if h.src.set || h.src.err != nil {
			v, err := h.src.uint(h.field, 1<<31-1)
			if err != nil {
				return err
			}
			*h.dst = uint32(v)
		}
	}
	for _, d := range []struct {
		field string
		src   *jHex
		dst   *Digest
	}{{"bestFullHeaderId", &j.BestFullHeaderID, &n.BestFullHeaderID}, {"bestHeaderId", &j.BestHeaderID, &n.BestHeaderID}, {"genesisBlockId", &j.GenesisBlockID, &n.GenesisBlockID}} {
		v, _, err := d.src.optDigest(d.field)
		if err != nil {
			return err
		}
		*d.dst = v
	}
	for _, b := range []struct {
		field string
		src   *jBig
		dst   **big.Int
	}{{"difficulty", &j.Difficulty, &n.Difficulty}, {"headersScore", &j.HeadersScore, &n.HeadersScore}, {"fullBlocksScore", &j.FullBlocksScore, &n.FullBlocksScore}} {
		if b.src.set || b.src.err != nil {
			v, err := b.src.get(b.field)
			if err != nil {
				return err
			}
			*b.dst = v
		}
	}
	return nil
}
