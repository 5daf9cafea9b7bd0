package autolykos_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/async-emission/auditor/ergo/autolykos"
	"github.com/async-emission/auditor/internal/fixtures"
	"golang.org/x/crypto/blake2b"
)

func TestN(t *testing.T) {
	// Vectors from the "calcN test vectors" property of
	// ergo-core/src/test/scala/org/ergoplatform/mining/AutolykosPowSchemeSpec.scala.
	for _, c := range []struct {
		version uint8
		height  uint32
		want    uint32
	}{
		{1, 700000, autolykos.NBase},
		{1, 100000, autolykos.NBase},
		{1, 70000000, autolykos.NBase},
		{2, 500000, autolykos.NBase},
		{2, 600000, autolykos.NBase},
		{2, 600 * 1024, 70464240},
		{2, 650 * 1024, 73987410},
		{2, 700000, 73987410},
		{2, 788400, 81571035},
		{2, 1051200, 104107290},
		{2, 4198400, 2143944600},
		{2, 41984000, 2143944600},
		// Boundaries around the vectors.
		{2, 0, 1 << 26},
		{2, 614399, 1 << 26},
		{3, 614400, 70464240},
		{4, 614400 + 51199, 70464240},
		{4, 614400 + 51200, 73987410},
		{4, 4198399, 2041852050}, // the 71st and last increase is at 4198400
		{4, ^uint32(0), 2143944600},
	} {
		if got := autolykos.N(c.version, c.height); got != c.want {
			t.Errorf("N(%d, %d) = %d, want %d", c.version, c.height, got, c.want)
		}
	}

	// Monotone, growing only at period boundaries, frozen from IncreaseEnd.
	prev := autolykos.N(2, 0)
	for h := uint32(0); h <= autolykos.IncreaseEnd+3*autolykos.IncreasePeriod; h += 1024 {
		n := autolykos.N(2, h)
		if n < prev {
			t.Fatalf("N(2, %d) = %d < N at a lower height (%d)", h, n, prev)
		}
		growing := h >= autolykos.IncreaseStart && h <= autolykos.IncreaseEnd && (h-autolykos.IncreaseStart)%autolykos.IncreasePeriod == 0
		if n != prev && !growing {
			t.Fatalf("N(2, %d) changed from %d to %d off a period boundary", h, prev, n)
		}
		if h >= autolykos.IncreaseEnd && n != 2143944600 {
			t.Fatalf("N(2, %d) = %d past IncreaseEnd", h, n)
		}
		prev = n
	}
}

// powVectors is headers/pow_vectors_from_ergo_tests.json.
type powVectors struct {
	Valid struct {
		Header   jsonHeader `json:"header"`
		Expected struct {
			Msg    hexBytes `json:"msg_blake2b256_of_header_without_pow"`
			N      uint32   `json:"N"`
			Hit    hexBytes `json:"hit"`
			Target decimal  `json:"target_b_decimal"`
			Valid  bool     `json:"valid"`
		} `json:"expected"`
	} `json:"valid_synthetic_614400"`
	Invalid struct {
		Header   jsonHeader `json:"header"`
		Expected struct {
			Valid bool `json:"valid"`
		} `json:"expected"`
	} `json:"invalid_testnet_2870"`
}

func TestPowVectorsFromErgoTests(t *testing.T) {
	var v powVectors
	fixtures.JSON(t, &v, "headers", "pow_vectors_from_ergo_tests.json")

	t.Run("valid_synthetic_614400", func(t *testing.T) {
		h, want := &v.Valid.Header, &v.Valid.Expected
		var msg [32]byte
		copy(msg[:], want.Msg)
		// The test helper must agree with the msg the Ergo test asserts
		// (its header id is not blake2b256 of its bytes, so v2Pow's id
		// check does not apply to this synthetic header).
		if got := blake2b.Sum256(h.bytesWithoutPow(t)); got != msg {
			t.Errorf("helper msg %x, want %x", got, msg)
		}
		var nonce [8]byte
		copy(nonce[:], h.PowSolutions.N)

		n := autolykos.N(h.Version, h.Height)
		if n != want.N {
			t.Errorf("N = %d, want %d", n, want.N)
		}
		hit := autolykos.Hit(msg, nonce, h.Height, n)
		if wantHit := new(big.Int).SetBytes(want.Hit); hit.Cmp(wantHit) != 0 {
			t.Errorf("hit = %x, want %x", hit, wantHit)
		}
		target, err := autolykos.Target(h.NBits)
		if err != nil || target.Cmp(&want.Target.Int) != 0 {
			t.Errorf("Target(%d) = %v, %v; want %v", h.NBits, target, err, &want.Target.Int)
		}
		if err := autolykos.Verify(msg, nonce, h.Version, h.Height, h.NBits); (err == nil) != want.Valid {
			t.Errorf("Verify = %v, want valid=%v", err, want.Valid)
		}
	})

	t.Run("invalid_testnet_2870", func(t *testing.T) {
		h := &v.Invalid.Header
		msg, nonce := h.v2Pow(t) // checks the helper against the header id
		err := autolykos.Verify(msg, nonce, h.Version, h.Height, h.NBits)
		if v.Invalid.Expected.Valid || !errors.Is(err, autolykos.ErrPowInvalid) {
			t.Fatalf("Verify = %v, want ErrPowInvalid", err)
		}
		var pe *autolykos.Error
		if !errors.As(err, &pe) || pe.Hit == nil || pe.Target == nil || pe.Hit.Cmp(pe.Target) < 0 {
			t.Fatalf("error %#v does not carry a hit at or above the target", err)
		}
		for _, part := range []string{"2870", pe.Hit.Text(16), pe.Target.Text(16)} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("message %q does not contain %q", err, part)
			}
		}
	})
}

// TestRawMainnetHeaders verifies the PoW of every serialized v2+ header in
// headers/bytes_mainnet_*.json, and checks that a flipped nonce bit fails.
func TestRawMainnetHeaders(t *testing.T) {
	files := fixtures.Glob(t, filepath.Join("headers", "bytes_mainnet_*.json"))
	if len(files) == 0 {
		t.Fatal("no headers/bytes_mainnet_*.json fixtures")
	}
	var verified, v1 int
	for _, file := range files {
		var hs []rawHeader
		fixtures.JSON(t, &hs, "headers", filepath.Base(file))
		for _, h := range hs {
			if id := blake2b.Sum256(h.Bytes); hex.EncodeToString(id[:]) != h.ID {
				t.Fatalf("%s height %d: id %x, want %s", filepath.Base(file), h.Height, id, h.ID)
			}
			p := h.parse(t)
			if p.height != h.Height {
				t.Errorf("%s: height in bytes %d, in fixture %d", filepath.Base(file), p.height, h.Height)
			}
			if h.HeaderWithoutPow != nil && !bytes.Equal(p.without, h.HeaderWithoutPow) {
				t.Errorf("%s height %d: bytes without PoW differ from headerWithoutPow", filepath.Base(file), h.Height)
			}
			if p.version == 1 {
				if err := autolykos.Verify([32]byte{}, [8]byte{}, p.version, p.height, p.nBits); !errors.Is(err, autolykos.ErrV1Unchecked) {
					t.Errorf("height %d (v1): Verify = %v, want ErrV1Unchecked", h.Height, err)
				}
				v1++
				continue
			}
			// The PoW part of a v2 header is pk (33) ‖ nonce (8).
			if len(p.without) != len(h.Bytes)-41 {
				t.Fatalf("height %d: %d bytes without PoW of %d", h.Height, len(p.without), len(h.Bytes))
			}
			msg := blake2b.Sum256(p.without)
			if err := autolykos.Verify(msg, p.nonce, p.version, p.height, p.nBits); err != nil {
				t.Errorf("%s height %d: %v", filepath.Base(file), h.Height, err)
			}
			bad := p.nonce
			bad[7] ^= 1
			if err := autolykos.Verify(msg, bad, p.version, p.height, p.nBits); !errors.Is(err, autolykos.ErrPowInvalid) {
				t.Errorf("height %d with a flipped nonce bit: Verify = %v, want ErrPowInvalid", h.Height, err)
			}
			verified++
		}
	}
	t.Logf("verified the PoW of %d raw v2+ mainnet headers; %d v1 headers reported unchecked", verified, v1)
	if verified < 27 {
		t.Errorf("only %d raw v2+ headers verified, the fixtures hold 27", verified)
	}
}

// jsonHeaders reads the fixtures with node-format JSON headers: arrays
// of headers, and blocks holding one.
func jsonHeaders(t *testing.T) map[string][]jsonHeader {
	t.Helper()
	out := map[string][]jsonHeader{}
	for _, pattern := range []string{"headers/chainslice_*.json", "headers/lastHeaders_*.json"} {
		for _, file := range fixtures.Glob(t, pattern) {
			var hs []jsonHeader
			fixtures.JSON(t, &hs, "headers", filepath.Base(file))
			out[filepath.Base(file)] = hs
		}
	}
	for _, file := range fixtures.Glob(t, "blocks/mainnet_*.json") {
		var b struct {
			Header jsonHeader `json:"header"`
		}
		fixtures.JSON(t, &b, "blocks", filepath.Base(file))
		out[filepath.Base(file)] = []jsonHeader{b.Header}
	}
	if len(out) == 0 {
		t.Fatal("no JSON header fixtures")
	}
	return out
}

// TestJSONMainnetHeaders verifies the PoW of the v2+ headers given as node
// JSON, serialized by the test helper (checked against each header id).
func TestJSONMainnetHeaders(t *testing.T) {
	var verified, v1 int
	for file, hs := range jsonHeaders(t) {
		for _, h := range hs {
			if h.Version == 1 {
				if err := autolykos.Verify([32]byte{}, [8]byte{}, 1, h.Height, h.NBits); !errors.Is(err, autolykos.ErrV1Unchecked) {
					t.Errorf("%s height %d: Verify = %v, want ErrV1Unchecked", file, h.Height, err)
				}
				v1++
				continue
			}
			msg, nonce := h.v2Pow(t)
			if err := autolykos.Verify(msg, nonce, h.Version, h.Height, h.NBits); err != nil {
				t.Errorf("%s height %d: %v", file, h.Height, err)
			}
			verified++
		}
	}
	t.Logf("verified the PoW of %d JSON v2+ mainnet headers; %d v1 headers reported unchecked", verified, v1)
}

func TestDecodeCompactBitsMainnet(t *testing.T) {
	checked := 0
	for file, hs := range jsonHeaders(t) {
		for _, h := range hs {
			d, err := autolykos.DecodeCompactBits(h.NBits)
			if err != nil || d.Cmp(&h.Difficulty.Int) != 0 {
				t.Errorf("%s height %d: DecodeCompactBits(%d) = %v, %v; want %v", file, h.Height, h.NBits, d, err, &h.Difficulty.Int)
				continue
			}
			if got := autolykos.EncodeCompactBits(&h.Difficulty.Int); got != h.NBits {
				t.Errorf("%s height %d: EncodeCompactBits(%v) = %d, want %d", file, h.Height, &h.Difficulty.Int, got, h.NBits)
			}
			checked++
		}
	}
	var v powVectors
	fixtures.JSON(t, &v, "headers", "pow_vectors_from_ergo_tests.json")
	for _, h := range []jsonHeader{v.Valid.Header, v.Invalid.Header} {
		if d, err := autolykos.DecodeCompactBits(h.NBits); err != nil || d.Cmp(&h.Difficulty.Int) != 0 {
			t.Errorf("vector height %d: DecodeCompactBits(%d) = %v, %v; want %v", h.Height, h.NBits, d, err, &h.Difficulty.Int)
		}
		if got := autolykos.EncodeCompactBits(&h.Difficulty.Int); got != h.NBits {
			t.Errorf("vector height %d: EncodeCompactBits = %d, want %d", h.Height, got, h.NBits)
		}
		checked++
	}
	t.Logf("checked nBits against difficulty for %d headers", checked)
}

func TestCompactBits(t *testing.T) {
	for _, c := range []struct {
		nBits uint32
		want  string // for big.Int.SetString(want, 0); "" for ErrDifficulty
	}{
		{0x01010000, "1"},
		{0x02400000, "16384"},
		{0x04123456, "0x12345600"},
		{0x05123456, "0x1234560000"},
		{0x0600c0de, "0xc0de000000"}, // the sign bit forces a leading 00 byte
		{0x01123456, "18"},           // size 1 keeps only the first mantissa byte
		{0x02123456, "4660"},         // size 2 keeps two
		{0x03123456, "1193046"},      //
		{0x00000000, ""},             // zero
		{0x00123456, ""},             // size 0: zero
		{0x03000000, ""},             // zero mantissa
		{0x05c0de00, ""},             // -0x40de000000
		{0x01800000, ""},             // negative zero
		{0x01fe0000, ""},             // -0x7e
		{0xff7fffff, "0x7fffff" + strings.Repeat("00", 252)},
	} {
		d, err := autolykos.DecodeCompactBits(c.nBits)
		if c.want == "" {
			if !errors.Is(err, autolykos.ErrDifficulty) || d != nil {
				t.Errorf("DecodeCompactBits(%#08x) = %v, %v; want ErrDifficulty", c.nBits, d, err)
			}
			continue
		}
		want, _ := new(big.Int).SetString(c.want, 0)
		if err != nil || d.Cmp(want) != 0 {
			t.Errorf("DecodeCompactBits(%#08x) = %v, %v; want %v", c.nBits, d, err, want)
		}
	}

	for _, c := range []struct {
		d    *big.Int
		want uint32
	}{
		{nil, 0},
		{big.NewInt(0), 0},
		{big.NewInt(1), 0x01010000},
		{big.NewInt(0x80), 0x02008000},
		{big.NewInt(0x12345678), 0x04123456}, // truncated, not rounded
		{big.NewInt(-0x1234), 0x02923400},    // sign bit
		{new(big.Int).Lsh(big.NewInt(1), 2030), 0xfe400000},
		{new(big.Int).Lsh(big.NewInt(1), 2038), 0xff400000}, // the largest power of 2 that fits
		{new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 2039), big.NewInt(1)), 0xff7fffff}, // truncated to the largest encodable value
		{new(big.Int).Lsh(big.NewInt(1), 2039), 0},                                           // too large
	} {
		if got := autolykos.EncodeCompactBits(c.d); got != c.want {
			t.Errorf("EncodeCompactBits(%v) = %#08x, want %#08x", c.d, got, c.want)
		}
	}
}

func TestTarget(t *testing.T) {
	q, _ := new(big.Int).SetString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)
	if got, err := autolykos.Target(0x01010000); err != nil || got.Cmp(q) != 0 {
		t.Errorf("Target(difficulty 1) = %v, %v; want q", got, err)
	}
	if _, err := autolykos.Target(0x01800000); !errors.Is(err, autolykos.ErrDifficulty) {
		t.Errorf("Target(negative zero) error = %v, want ErrDifficulty", err)
	}
	// A difficulty above q leaves a zero target, which nothing is below.
	if got, err := autolykos.Target(0x21010000); err != nil || got.Sign() != 0 {
		t.Errorf("Target(2^256) = %v, %v; want 0", got, err)
	}
	if err := autolykos.Verify([32]byte{}, [8]byte{}, 2, 1, 0x21010000); !errors.Is(err, autolykos.ErrPowInvalid) {
		t.Errorf("Verify with a zero target = %v, want ErrPowInvalid", err)
	}
	if err := autolykos.Verify([32]byte{}, [8]byte{}, 2, 1, 0); !errors.Is(err, autolykos.ErrDifficulty) {
		t.Errorf("Verify with nBits 0 = %v, want ErrDifficulty", err)
	}
}

func TestHitZeroTable(t *testing.T) {
	if got := autolykos.Hit([32]byte{}, [8]byte{}, 1, 0); got != nil {
		t.Errorf("Hit with n = 0 = %v, want nil", got)
	}
	// n = 1 is a legal (degenerate) table: every index is 0.
	if got := autolykos.Hit([32]byte{}, [8]byte{}, 1, 1); got == nil || got.BitLen() > 256 {
		t.Errorf("Hit with n = 1 = %v", got)
	}
}

func TestSolve(t *testing.T) {
	const height = 700000
	easy := autolykos.EncodeCompactBits(big.NewInt(16)) // one try in 16 succeeds
	msg := blake2b.Sum256([]byte("simulated header"))

	for _, version := range []uint8{2, 3, 4} {
		nonce, err := autolykos.Solve(context.Background(), msg, version, height, easy, 1000)
		if err != nil {
			t.Fatalf("Solve v%d: %v", version, err)
		}
		if err := autolykos.Verify(msg, nonce, version, height, easy); err != nil {
			t.Errorf("Verify(Solve v%d) = %v", version, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := autolykos.Solve(ctx, msg, 2, height, easy, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Solve with a cancelled context = %v, want context.Canceled", err)
	}

	// A mainnet difficulty takes ~10^15 tries: Solve must give up on the
	// deadline, and not much later.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := autolykos.Solve(ctx, msg, 2, height, 121307964, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Solve past the deadline = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Solve returned %v after its 50ms deadline", d)
	}

	if _, err := autolykos.Solve(context.Background(), msg, 1, height, easy, 0); !errors.Is(err, autolykos.ErrV1Unchecked) {
		t.Errorf("Solve v1 = %v, want ErrV1Unchecked", err)
	}
	if _, err := autolykos.Solve(context.Background(), msg, 2, height, 0, 0); !errors.Is(err, autolykos.ErrDifficulty) {
		t.Errorf("Solve with nBits 0 = %v, want ErrDifficulty", err)
	}
}

func FuzzDecodeCompactBits(f *testing.F) {
	for _, seed := range []uint32{0, 1, 0x01010000, 0x02400000, 0x0600c0de, 0x05c0de00, 0x01800000,
		0x01123456, 121307964, 118227867, 37748736, 72286528, 0xff7fffff, 0xffffffff, 0x21010000} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, nBits uint32) {
		d, err := autolykos.DecodeCompactBits(nBits)
		if err != nil {
			if d != nil || !errors.Is(err, autolykos.ErrDifficulty) {
				t.Fatalf("DecodeCompactBits(%#08x) = %v, %v", nBits, d, err)
			}
			if _, terr := autolykos.Target(nBits); !errors.Is(terr, autolykos.ErrDifficulty) {
				t.Fatalf("Target(%#08x) error %v, decode error %v", nBits, terr, err)
			}
			return
		}
		if d.Sign() <= 0 {
			t.Fatalf("DecodeCompactBits(%#08x) = %v without error", nBits, d)
		}
		canonical := autolykos.EncodeCompactBits(d)
		back, err := autolykos.DecodeCompactBits(canonical)
		if err != nil || back.Cmp(d) != 0 {
			t.Fatalf("round trip %#08x -> %v -> %#08x -> %v, %v", nBits, d, canonical, back, err)
		}
		if again := autolykos.EncodeCompactBits(back); again != canonical {
			t.Fatalf("EncodeCompactBits not stable: %#08x then %#08x", canonical, again)
		}
		if _, err := autolykos.Target(nBits); err != nil {
			t.Fatalf("Target(%#08x): %v", nBits, err)
		}
		neg := autolykos.EncodeCompactBits(new(big.Int).Neg(d))
		if _, err := autolykos.DecodeCompactBits(neg); !errors.Is(err, autolykos.ErrDifficulty) {
			t.Fatalf("negated %v encoded as %#08x decodes without ErrDifficulty: %v", d, neg, err)
		}
	})
}

func BenchmarkHit(b *testing.B) {
	msg := blake2b.Sum256([]byte("benchmark"))
	n := autolykos.N(2, 1_500_000)
	var nonce [8]byte
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		nonce[7] = byte(i)
		autolykos.Hit(msg, nonce, 1_500_000, n)
	}
}
