package address_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo/address"
	"github.com/async-emission/auditor/internal/fixtures"
	"golang.org/x/crypto/blake2b"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// checkTree checks that tree encodes to want on net as kind, and that want
// parses back to an address paying to tree.
func checkTree(t *testing.T, tree []byte, net address.Network, kind address.Kind, want string) {
	t.Helper()
	a := address.FromErgoTree(tree, net)
	if a.Kind != kind || a.Network != net {
		t.Errorf("FromErgoTree(%x…) is %v %v, want %v %v", tree[:min(len(tree), 8)], a.Network, a.Kind, net, kind)
	}
	if got := address.Encode(tree, net); got != want {
		t.Errorf("Encode(%x) = %s, want %s", tree, got, want)
	}
	p, err := address.Parse(want)
	if err != nil {
		t.Fatalf("Parse(%s): %v", want, err)
	}
	if p.Network != net || p.Kind != kind {
		t.Errorf("Parse(%s) is %v %v, want %v %v", want, p.Network, p.Kind, net, kind)
	}
	if got := p.ErgoTree(); !bytes.Equal(got, tree) {
		t.Errorf("Parse(%s).ErgoTree() = %x, want %x", want, got, tree)
	}
	if got := p.String(); got != want {
		t.Errorf("Parse(%s).String() = %s", want, got)
	}
}

// p2shTree builds the sigmastate 6 Pay2SHAddress tree around hash by hand,
// from the opcodes (see the comment in address.go).
func p2shTree(t testing.TB, hash []byte) []byte {
	return append(append(unhex(t, "00ea02d193b4cbe4e37e0e040004300e18"), hash...), 0xd4, 0x08, 0x7e)
}

const (
	pkG   = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798" // the generator G
	pk10G = "03a0434d9e47f3c86235477c7b1ae6ae5d3442d49b1943c2b752a68e2a47e247c7" // 10·G
	// The miner fee contract, as in Fleet's FEE_CONTRACT.
	feeTree = "1005040004000e36100204a00b08cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798ea02d192a39a8cc7a701730073011001020402d19683030193a38cc7b2a57300000193c2b2a57301007473027303830108cdeeac93b1a57304"
)

func TestVectorsSigmastate(t *testing.T) {
	// ScorexFoundation/sigmastate-interpreter,
	// sc/shared/src/test/scala/org/ergoplatform/ErgoAddressSpecification.scala,
	// "fromProposition() should properly distinct all types of addresses"
	// (testnet encoder; pk = G, pk10 = 10·G) and "derivation from private
	// key" (mainnet).
	t.Run("P2PK testnet", func(t *testing.T) {
		checkTree(t, unhex(t, "0008cd"+pkG), address.Testnet, address.P2PK, "3WwXpssaZwcNzaGMv3AgxBdTPJQBt5gCmqBsg3DykQ39bYdhJBsN")
	})
	t.Run("P2SH testnet", func(t *testing.T) {
		// Pay2SHAddress(pk): the hash of the serialized proposition
		// (08 cd ‖ pk, without the tree header).
		sum := blake2b.Sum256(unhex(t, "08cd"+pkG))
		checkTree(t, p2shTree(t, sum[:24]), address.Testnet, address.P2SH, "qETVgcEctaXurNbFRgGUcZEGg4EKa8R4a5UNHY7")
	})
	t.Run("P2S testnet, tree version 0", func(t *testing.T) {
		// ErgoTree.fromProposition(v0 header, SigmaAnd(pk, pk10)): header 10
		// (constant segregation), 2 constants, SigmaAnd of placeholders 0, 1.
		tree := unhex(t, "1002"+"08cd"+pkG+"08cd"+pk10G+"ea0273007301")
		checkTree(t, tree, address.Testnet, address.P2S,
			"JryiCXrZf5VDetH1PM7rKDX3q4sLF34AdErWJFqG87Hf5ikTDf636b35Nr7goWMdRUKA3ZPxdeqFNbQzBjhnDR9SUMYwDX1tdV8ZuGgXwQPaRVcB9")
	})
	t.Run("P2S testnet, tree version 1", func(t *testing.T) {
		// Header 19 (version 1, size flag, segregation), then the size 0x4d.
		tree := unhex(t, "194d02"+"08cd"+pkG+"08cd"+pk10G+"ea0273007301")
		checkTree(t, tree, address.Testnet, address.P2S,
			"2MzJLjzX6UNfJHSVvioB6seYZ99FpWHB4Ds1gekHPv5KtNmLJUecgRWwvcGEqbt8ZAokUxGvKMuNgMZFzkPPdTGiYzPQoSR55NT5isCidMywgp52LYV")
	})
	t.Run("P2PK mainnet", func(t *testing.T) {
		// w = bb2e6f44…6a69f0; w·G computed outside this repository.
		checkTree(t, unhex(t, "0008cd03f28b3cb2cb88c43b2c8c33c90a2a85568475e143604c3b631924427fff1ddf4f"),
			address.Mainnet, address.P2PK, "9iJd9drp1KR3R7HLi7YmQbB5sJ5HFKZoPb5MxGepamggJs5vDHm")
	})
	t.Run("wrong checksum", func(t *testing.T) {
		for _, s := range []string{
			"JryiCXrZf5VDetH1PM7rKDX3q4sLF34AdErWJFqG87Hf5ikTDf636b35Nr7goWMdRUKA3ZPxdeqFNbQzBjhnDR9SUMYwDX1tdV8ZuGgXwQPaRVcB8",
			"2MzJLjzX6UNfJHSVvioB6seYZ99FpWHB4Ds1gekHPv5KtNmLJUecgRWwvcGEqbt8ZAokUxGvKMuNgMZFzkPPdTGiYzPQoSR55NT5isCidMywgp52LYU",
		} {
			if _, err := address.Parse(s); !errors.Is(err, address.ErrChecksum) {
				t.Errorf("Parse(%s…) = %v, want ErrChecksum", s[:12], err)
			}
		}
	})
	t.Run("address type 4", func(t *testing.T) {
		a := address.Address{Network: address.Testnet, Kind: 4, Content: unhex(t, pkG)}
		if _, err := address.Parse(a.String()); !errors.Is(err, address.ErrKind) {
			t.Errorf("Parse(type 4) = %v, want ErrKind", err)
		}
	})
}

func TestVectorsErgoAddressDoc(t *testing.T) {
	// The examples in the doc comment of ErgoAddress
	// (ScorexFoundation/sigmastate-interpreter, ErgoAddress.scala; also in
	// ergoplatform/sigma-rust ergotree-ir/src/chain/address.rs). No trees
	// are given: each must parse as its kind and re-encode unchanged.
	for _, c := range []struct {
		s    string
		net  address.Network
		kind address.Kind
	}{
		{"3WvsT2Gm4EpsM9Pg18PdY6XyhNNMqXDsvJTbbf6ihLvAmSb7u5RN", address.Testnet, address.P2PK},
		{"rbcrmKEYduUvADj9Ts3dSVSG27h54pgrq5fPuwB", address.Testnet, address.P2SH},
		{"Ms7smJwLGbUAjuWQ", address.Testnet, address.P2S},
		{"9fRAWhdxEsTcdb8PhGNrZfwqa65zfkuYHAMmkQLcic1gdLSV5vA", address.Mainnet, address.P2PK},
		{"8UApt8czfFVuTgQmMwtsRBZ4nfWquNiSwCWUjMg", address.Mainnet, address.P2SH},
		{"4MQyML64GnzMxZgm", address.Mainnet, address.P2S},
		{"BxKBaHkvrTvLZrDcZjcsxsF7aSsrN73ijeFZXtbj4CXZHHcvBtqSxQ", address.Mainnet, address.P2S},
	} {
		a, err := address.Parse(c.s)
		if err != nil {
			t.Errorf("Parse(%s): %v", c.s, err)
			continue
		}
		if a.Network != c.net || a.Kind != c.kind || a.String() != c.s {
			t.Errorf("Parse(%s) = %v %v, re-encoded %s; want %v %v", c.s, a.Network, a.Kind, a, c.net, c.kind)
		}
		if tree := a.ErgoTree(); address.Encode(tree, c.net) != c.s {
			t.Errorf("%s: its tree %x encodes to %s", c.s, tree, address.Encode(tree, c.net))
		}
	}
}

func TestVectorsFleet(t *testing.T) {
	// fleet-sdk/fleet, packages/core/src/tests/testVectors/ergoAddressesTestVectors.ts.
	t.Run("ergoTsTestVectors", func(t *testing.T) {
		checkTree(t, unhex(t, "0008cd0278011ec0cf5feb92d61adb51dcb75876627ace6fd9446ab4cabc5313ab7b39a7"),
			address.Mainnet, address.P2PK, "9fRusAarL1KkrWQVsxSRVYnvWxaAT2A96cKtNn9tvPh5XUyCisr")
		checkTree(t, unhex(t, "0008cd026dc059d64a50d0dbf07755c2c4a4e557e3df8afa7141868b3ab200643d437ee7"),
			address.Mainnet, address.P2PK, "9fMPy1XY3GW4T6t3LjYofqmzER6x9cV21n5UVJTWmma4Y9mAW6c")
		checkTree(t, unhex(t, "101004020e36100204a00b08cd0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798ea02d192a39a8cc7a7017300730110010204020404040004c0fd4f05808c82f5f6030580b8c9e5ae040580f882ad16040204c0944004c0f407040004000580f882ad16d19683030191a38cc7a7019683020193c2b2a57300007473017302830108cdeeac93a38cc7b2a573030001978302019683040193b1a5730493c2a7c2b2a573050093958fa3730673079973089c73097e9a730a9d99a3730b730c0599c1a7c1b2a5730d00938cc7b2a5730e0001a390c1a7730f"),
			address.Mainnet, address.P2S, "2Z4YBkDsDvQj8BX7xiySFewjitqp2ge9c99jfes2whbtKitZTxdBYqbrVZUvZvKv6aqn9by4kp3LE1c26LCyosFnVnm6b6U1JYvWpYmL2ZnixJbXLjWAWuBThV1D6dLpqZJYQHYDznJCk49g5TUiS4q8khpag2aNmHwREV7JSsypHdHLgJT7MGaw51aJfNubyzSKxZ4AJXFS27EfXwyCLzW1K6GVqwkJtCoPvrcLqmqwacAWJPkmh78nke9H4oT88XmSbRt2n9aWZjosiZCafZ4osUDxmZcc5QVEeTWn8drSraY3eFKe8Mu9MSCcVU")
		checkTree(t, unhex(t, feeTree), address.Mainnet, address.P2S,
			"2iHkR7CWvD1R4j1yZg5bkeDRQavjAaVPeTDFGGLZduHyfWMuYpmhHocX8GJoaieTx78FntzJbCBVL6rf96ocJoZdmWBL2fci7NqWgAirppPQmZ7fN9V6z13Ay6brPriBKYqLp1bT2Fk4FkFLCfdPpe")
		checkTree(t, unhex(t, feeTree), address.Testnet, address.P2S,
			"Bf1X9JgQTUtgntaer91B24n6kP8L2kqEiQqNf1z97BKo9UbnW3WRP9VXu8BXd1LsYCiYbHJEdWKxkF5YNx5n7m31wsDjbEuB3B13ZMDVBWkepGmWfGa71otpFViHDCuvbw1uNicAQnfuWfnj8fbCa4")
		for _, s := range []string{"9gsLq5a12nJe33nKtjMe7NPY7o8CQAtjS9amDgALbebv1wmRXrv", "9gU3czAt9q4fQPRWBriBbpfLbRP7JrXRmB7kowtwdyw66PMRmaY",
			"3WxxVQqxoVSWEKG5B73eNttBX51ZZ6WXLW7fiVDgCFhzRK8R4gmk", "88dhgzEuTXaSLUWK1Ro8mB5xfhwP4y8osUycdBV16EBgycjcBebwd2He7QGiXC1qiSM1KZ6bAcpE2iCv"} {
			if a, err := address.Parse(s); err != nil || a.String() != s {
				t.Errorf("Parse(%s) = %v, %v", s, a, err)
			}
		}
		for _, s := range []string{"9fRusAarL1KkrWQVsxSRVYnvWxaAT2A96cKtNn9tvPh5XUyCiss", "9fRusAarL1KkrWQVsxSRVYnvWxaAT2A96c"} {
			if _, err := address.Parse(s); err == nil {
				t.Errorf("Parse(%s) accepted an invalid address", s)
			}
		}
	})
	t.Run("publicKeyTestVectors", func(t *testing.T) {
		for _, c := range []struct{ pk, s string }{ // the first five
			{"038d39af8c37583609ff51c6a577efe60684119da2fbd0d75f9c72372886a58a63", "9hY16vzHmmfyVBwKeFGHvb2bMFsG94A1u7To1QWtUokACyFVENQ"},
			{"02200a1c1b8fa17ec82de54bcaef96f23d7b34196c0410f6f578abdbf163b14b25", "9emAvMvreC9QEGHLV9pupwmteHuJt62qvkH6HnPjUESgQRotfaC"},
			{"02f4e68cc26759e7b6dc63505c3427b2d565ab839e7f80306b2ce9d1c7def94cfa", "9gNvAv97W71Wm33GoXgSQBFJxinFubKvE6wh2dEhFTSgYEe783j"},
			{"02fd223c95ba74d48d04a8ecb5e86eda30df4e22f46aacc299f59230a9f8e93366", "9gSYUbWtusShcjVPQR4NbPcavCTcce2z38iZgxwZaxWmMt7zLDE"},
			{"025fb675cfd8a58210d6b7dbb56d02c3b5fd37431fa50f600e21d0977e4c32f6c4", "9fFDNKVyC6LLyRGZY8pJh964oKz7RPFMhTmRgVjSvNm96iDSBcg"},
		} {
			checkTree(t, unhex(t, "0008cd"+c.pk), address.Mainnet, address.P2PK, c.s)
		}
	})
	t.Run("p2shTestVectors (sigmastate 5 trees)", func(t *testing.T) {
		// Fleet writes the sigmastate 5 P2SH script, which reads context
		// variable 1. The address bytes agree with ours (same hash); the
		// tree does not, so FromErgoTree reports such a tree as P2S, as the
		// sigmastate 6 node does.
		for _, c := range []struct{ s, tree string }{
			{"8sZ2fVu5VUQKEmWt4xRRDBYzuw5aevhhziPBDGB", "00ea02d193b4cbe4e3010e040004300e18fd53c43ebbc8b5c53f2ccf270d1bc22740eb3855463f5faed40801"},
			{"7g5LhysK7mxX8xmZdPLtFE42wwxGFjpp8VofStb", "00ea02d193b4cbe4e3010e040004300e1888dc65bcf63bb55e6c2bfe03b1f2b14eef7d4fe0fa32d8e8d40801"},
			{"8UApt8czfFVuTgQmMwtsRBZ4nfWquNiSwCWUjMg", "00ea02d193b4cbe4e3010e040004300e18d62151f990f191c102a6fe995b89ed3d0f343a96f13789a3d40801"},
		} {
			v5 := unhex(t, c.tree)
			hash := v5[17:41]
			a, err := address.Parse(c.s)
			if err != nil || a.Kind != address.P2SH || a.Network != address.Mainnet || !bytes.Equal(a.Content, hash) {
				t.Errorf("Parse(%s) = %v %v %x, %v; want mainnet P2SH %x", c.s, a.Network, a.Kind, a.Content, err, hash)
			}
			checkTree(t, p2shTree(t, hash), address.Mainnet, address.P2SH, c.s)
			if got := address.FromErgoTree(v5, address.Mainnet); got.Kind != address.P2S || !bytes.Equal(got.ErgoTree(), v5) {
				t.Errorf("FromErgoTree(sigmastate 5 P2SH tree) = %v %x, want P2S of the tree", got.Kind, got.Content)
			}
		}
	})
}

// fixtureBox is any fixture object that has both an address and a tree.
type fixtureBox struct {
	Address  string `json:"address"`
	ErgoTree string `json:"ergoTree"`
}

// walkBoxes calls fn for every JSON object of a fixture file that has
// string fields "address" and "ergoTree", at any depth.
func walkBoxes(t *testing.T, rel string, fn func(fixtureBox)) {
	t.Helper()
	var v any
	if err := json.Unmarshal(fixtures.Read(t, rel), &v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			addr, ok1 := v["address"].(string)
			tree, ok2 := v["ergoTree"].(string)
			if ok1 && ok2 {
				fn(fixtureBox{addr, tree})
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
}

func TestFixtureAddresses(t *testing.T) {
	checked, rejected := 0, 0
	for _, rel := range fixtures.Files(t) {
		if !strings.HasSuffix(rel, ".json") {
			continue
		}
		negative := strings.HasPrefix(path.Base(rel), "NEGATIVE_")
		walkBoxes(t, rel, func(b fixtureBox) {
			tree := unhex(t, b.ErgoTree)
			if negative {
				// Deliberately corrupted boxes: where the tree was altered,
				// the address must not match it any more.
				a, err := address.Parse(b.Address)
				if err != nil {
					t.Errorf("%s: Parse(%s): %v", rel, b.Address, err)
					return
				}
				if !bytes.Equal(a.ErgoTree(), tree) {
					if address.Encode(tree, address.Mainnet) == b.Address {
						t.Errorf("%s: corrupted tree %x still encodes to %s", rel, tree, b.Address)
					}
					rejected++
				}
				return
			}
			a, err := address.Parse(b.Address)
			if err != nil {
				t.Errorf("%s: Parse(%s): %v", rel, b.Address, err)
				return
			}
			checkTree(t, tree, a.Network, a.Kind, b.Address)
			checked++
		})
	}
	t.Logf("checked %d fixture addresses against their ergoTree; %d corrupted trees rejected", checked, rejected)
	if checked == 0 || rejected == 0 {
		t.Errorf("expected fixture boxes with addresses (checked %d, corrupted %d)", checked, rejected)
	}
}

func TestParseRejects(t *testing.T) {
	valid := "9fRAWhdxEsTcdb8PhGNrZfwqa65zfkuYHAMmkQLcic1gdLSV5vA"
	withPrefix := func(prefix byte, content []byte) string {
		return address.Address{Network: address.Network(prefix & 0xf0), Kind: address.Kind(prefix & 0x0f), Content: content}.String()
	}
	pk := unhex(t, pkG)
	for _, c := range []struct {
		name string
		s    string
		want error
	}{
		{"empty", "", address.ErrLength},
		{"one character", "2", address.ErrLength},
		{"prefix and checksum only", withPrefix(0x03, nil), address.ErrLength},
		{"four bytes", "3EFU7m", address.ErrLength},
		{"too long", strings.Repeat("2", 5602), address.ErrLength},
		{"0 is not Base58", valid[:10] + "0" + valid[11:], address.ErrBase58},
		{"O is not Base58", valid[:10] + "O" + valid[11:], address.ErrBase58},
		{"l is not Base58", "l" + valid[1:], address.ErrBase58},
		{"non-ASCII", valid[:20] + "é" + valid[21:], address.ErrBase58},
		{"space", " " + valid, address.ErrBase58},
		{"last character changed", valid[:len(valid)-1] + "B", address.ErrChecksum},
		{"character dropped", valid[:len(valid)-1], address.ErrChecksum},
		{"character changed", valid[:5] + "X" + valid[6:], address.ErrChecksum},
		{"network 0x20", withPrefix(0x21, pk), address.ErrNetwork},
		{"network 0xf0", withPrefix(0xf3, []byte{1}), address.ErrNetwork},
		{"kind 0", withPrefix(0x00, pk), address.ErrKind},
		{"kind 4", withPrefix(0x04, pk), address.ErrKind},
		{"testnet kind 0x0f", withPrefix(0x1f, pk), address.ErrKind},
		{"P2PK of 32 bytes", withPrefix(0x01, pk[1:]), address.ErrLength},
		{"P2PK of 34 bytes", withPrefix(0x01, append(bytes.Clone(pk), 0)), address.ErrLength},
		{"P2PK uncompressed prefix", withPrefix(0x01, append([]byte{4}, pk[1:]...)), address.ErrPublicKey},
		{"P2PK x not on the curve", withPrefix(0x01, append([]byte{2}, make([]byte, 32)...)), address.ErrPublicKey},
		{"P2PK x above the field", withPrefix(0x01, unhex(t, "02"+strings.Repeat("ff", 32))), address.ErrPublicKey},
		{"P2PK non-canonical infinity", withPrefix(0x01, append(make([]byte, 32), 1)), address.ErrPublicKey},
		{"P2SH of 23 bytes", withPrefix(0x02, make([]byte, 23)), address.ErrLength},
		{"P2SH of 32 bytes", withPrefix(0x12, make([]byte, 32)), address.ErrLength},
		{"P2S over 4096 bytes", withPrefix(0x03, make([]byte, 4097)), address.ErrLength},
	} {
		a, err := address.Parse(c.s)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: Parse = %v, %v; want %v", c.name, a, err, c.want)
			continue
		}
		var ae *address.Error
		if !errors.As(err, &ae) || ae.Kind != c.want {
			t.Errorf("%s: error %#v is not an *address.Error of kind %v", c.name, err, c.want)
		}
	}

	// The point at infinity (33 zero bytes) is a valid key, and P2S at the
	// size limit is a valid address.
	for _, a := range []address.Address{
		{Network: address.Mainnet, Kind: address.P2PK, Content: make([]byte, 33)},
		{Network: address.Testnet, Kind: address.P2S, Content: bytes.Repeat([]byte{0xff}, address.MaxTreeSize)},
	} {
		if p, err := address.Parse(a.String()); err != nil || !bytes.Equal(p.Content, a.Content) {
			t.Errorf("Parse(%v %v of %d bytes) = %v", a.Network, a.Kind, len(a.Content), err)
		}
	}
}

func TestFromErgoTreeShapes(t *testing.T) {
	pk := unhex(t, pkG)
	hash := bytes.Repeat([]byte{0xab}, 24)
	p2sh := p2shTree(t, hash)
	for _, c := range []struct {
		name string
		tree []byte
		kind address.Kind
	}{
		{"P2PK", unhex(t, "0008cd"+pkG), address.P2PK},
		{"P2PK of infinity", append(unhex(t, "0008cd"), make([]byte, 33)...), address.P2PK},
		{"P2PK tree with a trailing byte", append(unhex(t, "0008cd"+pkG), 0), address.P2S},
		{"P2PK tree one byte short", unhex(t, "0008cd"+pkG)[:35], address.P2S},
		{"P2PK tree with header 08", append(unhex(t, "0808cd"), pk...), address.P2S},
		{"P2PK tree with an invalid key", append(unhex(t, "0008cd05"), pk[1:]...), address.P2S},
		{"P2SH", p2sh, address.P2SH},
		{"P2SH with tree version 1", append([]byte{0x09, byte(len(p2sh) - 1)}, p2sh[1:]...), address.P2S},
		{"P2SH with a trailing byte", append(bytes.Clone(p2sh), 0), address.P2S},
		{"P2SH reading variable 1", bytes.ReplaceAll(bytes.Clone(p2sh), []byte{0x7e}, []byte{0x01}), address.P2S},
		{"empty", nil, address.P2S},
		{"true", unhex(t, "00d1"), address.P2S},
	} {
		a := address.FromErgoTree(c.tree, address.Mainnet)
		if a.Kind != c.kind {
			t.Errorf("%s: kind %v, want %v", c.name, a.Kind, c.kind)
		}
		if len(c.tree) > 0 && !bytes.Equal(a.ErgoTree(), c.tree) {
			t.Errorf("%s: ErgoTree() = %x, want %x", c.name, a.ErgoTree(), c.tree)
		}
	}

	// Content never aliases the caller's tree.
	tree := unhex(t, "0008cd"+pkG)
	a := address.FromErgoTree(tree, address.Mainnet)
	tree[5] ^= 0xff
	if !bytes.Equal(a.Content, pk) {
		t.Error("FromErgoTree content aliases its argument")
	}

	// Invalid addresses have no tree.
	for _, a := range []address.Address{
		{},
		{Network: address.Mainnet, Kind: address.P2PK, Content: pk[:32]},
		{Network: address.Mainnet, Kind: address.P2SH, Content: pk},
		{Network: address.Mainnet, Kind: address.P2S},
		{Network: 0x20, Kind: address.P2S, Content: []byte{1}},
		{Network: address.Mainnet, Kind: 9, Content: []byte{1}},
	} {
		if tree := a.ErgoTree(); tree != nil {
			t.Errorf("%+v.ErgoTree() = %x, want nil", a, tree)
		}
		if err := a.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil", a)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{address.Mainnet.String(), "mainnet"},
		{address.Testnet.String(), "testnet"},
		{address.Network(0x20).String(), "network(0x20)"},
		{address.P2PK.String(), "P2PK"},
		{address.P2SH.String(), "P2SH"},
		{address.P2S.String(), "P2S"},
		{address.Kind(7).String(), "kind(0x07)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "1", "2", "3EFU7m", "9fRAWhdxEsTcdb8PhGNrZfwqa65zfkuYHAMmkQLcic1gdLSV5vA",
		"3WvsT2Gm4EpsM9Pg18PdY6XyhNNMqXDsvJTbbf6ihLvAmSb7u5RN", "rbcrmKEYduUvADj9Ts3dSVSG27h54pgrq5fPuwB",
		"8UApt8czfFVuTgQmMwtsRBZ4nfWquNiSwCWUjMg", "4MQyML64GnzMxZgm", "Ms7smJwLGbUAjuWQ",
		"9fRusAarL1KkrWQVsxSRVYnvWxaAT2A96cKtNn9tvPh5XUyCiss", "111111", "zzzzzzzzzzzz", "0OIl",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := address.Parse(s)
		if err != nil {
			var ae *address.Error
			if !errors.As(err, &ae) {
				t.Fatalf("Parse(%q) error %v is not an *address.Error", s, err)
			}
			return
		}
		if got := a.String(); got != s {
			t.Fatalf("Parse(%q) re-encodes to %q", s, got)
		}
		if a.Validate() != nil {
			t.Fatalf("Parse(%q) returned an address that fails Validate: %v", s, a.Validate())
		}
		tree := a.ErgoTree()
		if len(tree) == 0 {
			t.Fatalf("Parse(%q) has no tree", s)
		}
		// The tree's own address is this one, except for a P2S address of a
		// tree that has a P2PK or P2SH shape.
		if b := address.FromErgoTree(tree, a.Network); b.Kind == a.Kind && b.String() != s {
			t.Fatalf("tree %x of %q encodes to %q", tree, s, b)
		}
	})
}

func FuzzFromErgoTree(f *testing.F) {
	f.Add(unhex(f, "0008cd"+pkG))
	f.Add(unhex(f, "00ea02d193b4cbe4e37e0e040004300e18"+strings.Repeat("ab", 24)+"d4087e"))
	f.Add(unhex(f, feeTree))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, tree []byte) {
		if len(tree) > address.MaxTreeSize+1 {
			t.Skip("no box holds a tree this large; Base58 is quadratic in it")
		}
		for _, net := range []address.Network{address.Mainnet, address.Testnet} {
			a := address.FromErgoTree(tree, net)
			s := a.String()
			if len(tree) == 0 || len(tree) > address.MaxTreeSize {
				if _, err := address.Parse(s); err == nil {
					t.Fatalf("address of a %d-byte tree parses", len(tree))
				}
				continue
			}
			if got := a.ErgoTree(); !bytes.Equal(got, tree) {
				t.Fatalf("FromErgoTree(%x).ErgoTree() = %x", tree, got)
			}
			p, err := address.Parse(s)
			if err != nil || p.Kind != a.Kind || p.Network != net || !bytes.Equal(p.Content, a.Content) {
				t.Fatalf("Parse(Encode(%x)) = %+v, %v; want %+v", tree, p, err, a)
			}
		}
	})
}

func BenchmarkEncodeP2PK(b *testing.B) {
	tree := unhex(b, "0008cd"+pkG)
	b.ReportAllocs()
	for b.Loop() {
		address.Encode(tree, address.Mainnet)
	}
}

func BenchmarkEncodeP2S(b *testing.B) {
	tree := unhex(b, feeTree)
	b.ReportAllocs()
	for b.Loop() {
		address.Encode(tree, address.Mainnet)
	}
}

func BenchmarkParseP2PK(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := address.Parse("9fRAWhdxEsTcdb8PhGNrZfwqa65zfkuYHAMmkQLcic1gdLSV5vA"); err != nil {
			b.Fatal(err)
		}
	}
}
