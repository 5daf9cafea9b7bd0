package sigma

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/async-emission/auditor/ergo/wire"
	"golang.org/x/crypto/blake2b"
)

// Points of secp256k1: the generator G, 2G and 3G.
const (
	hexG  = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
	hexG2 = "02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"
	hexG3 = "02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9"
)

var zeroDigest = strings.Repeat("00", 33)

func TestConstantVectors(t *testing.T) {
	// Each constant is canonical: it re-serializes to the same bytes.
	cases := []struct{ hex, json string }{
		{"0101", `{"type":"Boolean","value":true}`},
		{"0100", `{"type":"Boolean","value":false}`},
		{"02ff", `{"type":"Byte","value":-1}`},
		{"0303", `{"type":"Short","value":-2}`},
		{"0480897a", `{"type":"Int","value":1000000}`},
		{"0480808080f8ffffffff01", `{"type":"Int","value":1073741824}`}, // 2^30 takes 10 bytes
		{"05feffffffffffffffff01", `{"type":"Long","value":"9223372036854775807"}`},
		{"060101", `{"type":"BigInt","value":"1"}`},
		{"0601ff", `{"type":"BigInt","value":"-1"}`},
		{"06020080", `{"type":"BigInt","value":"128"}`},
		{"0602ff7f", `{"type":"BigInt","value":"-129"}`},
		{"090100", `{"type":"UnsignedBigInt","value":"0"}`},
		{"0901ff", `{"type":"UnsignedBigInt","value":"255"}`},
		{"07" + hexG, `{"type":"GroupElement","value":"` + hexG + `"}`},
		{"07" + strings.Repeat("00", 33), `{"type":"GroupElement","value":"` + strings.Repeat("00", 33) + `"}`},
		{"08cd" + hexG, `{"type":"SigmaProp","value":{"op":"proveDlog","h":"` + hexG + `"}}`},
		{"08d3", `{"type":"SigmaProp","value":{"op":"true"}}`},
		{"08d2", `{"type":"SigmaProp","value":{"op":"false"}}`},
		{"08ce" + hexG + hexG2 + hexG3 + hexG,
			`{"type":"SigmaProp","value":{"op":"proveDHTuple","g":"` + hexG + `","h":"` + hexG2 + `","u":"` + hexG3 + `","v":"` + hexG + `"}}`},
		{"089602cd" + hexG + "9702cd" + hexG2 + "d3",
			`{"type":"SigmaProp","value":{"op":"and","args":[{"op":"proveDlog","h":"` + hexG + `"},{"op":"or","args":[{"op":"proveDlog","h":"` + hexG2 + `"},{"op":"true"}]}]}}`},
		{"08980203cd" + hexG + "cd" + hexG2 + "cd" + hexG3,
			`{"type":"SigmaProp","value":{"op":"atLeast","k":2,"args":[{"op":"proveDlog","h":"` + hexG + `"},{"op":"proveDlog","h":"` + hexG2 + `"},{"op":"proveDlog","h":"` + hexG3 + `"}]}}`},
		{"64" + zeroDigest + "072000",
			`{"type":"AvlTree","value":{"digest":"` + zeroDigest + `","insertAllowed":true,"updateAllowed":true,"removeAllowed":true,"keyLength":32,"valueLength":null}}`},
		{"64" + zeroDigest + "02200108",
			`{"type":"AvlTree","value":{"digest":"` + zeroDigest + `","insertAllowed":false,"updateAllowed":true,"removeAllowed":false,"keyLength":32,"valueLength":8}}`},
		{"0d0305", `{"type":"Coll[Boolean]","value":[true,false,true]}`},
		{"0d00", `{"type":"Coll[Boolean]","value":[]}`},
		{"0e03010203", `{"type":"Coll[Byte]","value":"010203"}`},
		{"11020204", `{"type":"Coll[Long]","value":["1","2"]}`},
		{"1a02010100", `{"type":"Coll[Coll[Byte]]","value":["01",""]}`},
		{"280104", `{"type":"Option[Int]","value":2}`},
		{"2800", `{"type":"Option[Int]","value":null}`},
		{"0c2802010400", `{"type":"Coll[Option[Int]]","value":[2,null]}`},
		{"62", `{"type":"Unit","value":{}}`},
		{"0c6200", `{"type":"Coll[Unit]","value":[]}`},
		{"400e020201ff", `{"type":"(Int, Coll[Byte])","value":[1,"01ff"]}`},
		{"5980a5e8deb161c0c9d1aeb261", `{"type":"(Long, Long)","value":["1673123400000","1673207100000"]}`},
		{"6603616263", `{"type":"String","value":"abc"}`},
		{"6005040502010e0204000103aabbcc", `{"type":"(Int, Long, Byte, Boolean, Coll[Byte])","value":[1,"2",0,true,"aabbcc"]}`},
	}
	for _, c := range cases {
		b := mustHex(t, c.hex)
		k, err := ParseConstant(b)
		if err != nil {
			t.Errorf("%s: %v", abbrev(c.hex), err)
			continue
		}
		js, err := k.MarshalJSON()
		if err != nil || string(js) != c.json {
			t.Errorf("%s: JSON\n got %s (%v)\nwant %s", abbrev(c.hex), js, err, c.json)
		}
		if got, err := k.Bytes(); err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: written as %x (%v)", abbrev(c.hex), got, err)
		}
	}
}

func TestConstantNonCanonical(t *testing.T) {
	// The reader is as lenient as the reference one; the writer produces the
	// canonical form.
	cases := []struct{ in, canonical string }{
		{"0102", "0101"},       // any non-zero byte is true
		{"280204", "280104"},   // any non-zero option flag is Some
		{"0d03ff", "0d0307"},   // padding bits are ignored
		{"048000", "0400"},     // redundant VLQ group
		{"06020001", "060101"}, // BigInt with a redundant sign byte
		{"09020001", "090101"}, // UnsignedBigInt with a leading zero
		{"0900", "090100"},     // UnsignedBigInt 0 as no bytes
		{"64" + zeroDigest + "ff2000", "64" + zeroDigest + "072000"},         // unused flag bits
		{"0700" + strings.Repeat("ff", 32), "07" + strings.Repeat("00", 33)}, // identity with garbage
		{"0c0203010203", "0e03010203"},                                       // Coll[Byte] in long form
	}
	for _, c := range cases {
		k, err := ParseConstant(mustHex(t, c.in))
		if err != nil {
			t.Errorf("%s: %v", abbrev(c.in), err)
			continue
		}
		if got, err := k.Bytes(); err != nil || hex.EncodeToString(got) != c.canonical {
			t.Errorf("%s: written as %x (%v), want %s", abbrev(c.in), got, err, abbrev(c.canonical))
		}
	}
}

func TestConstantInvalid(t *testing.T) {
	deepType := strings.Repeat("24", 150) + "04"
	deepData := strings.Repeat("01", 150) + "02"
	cases := []struct {
		name, hex string
		want      error
	}{
		{"empty", "", wire.ErrTruncated},
		{"type 0", "00", ErrUnknownType},
		{"BigInt of no bytes", "0600", wire.ErrInvalid},
		{"BigInt of 33 bytes", "0621" + strings.Repeat("01", 33), wire.ErrInvalid},
		{"UnsignedBigInt of 33 bytes", "0921" + strings.Repeat("01", 33), wire.ErrInvalid},
		{"x beyond the field", "0702" + strings.Repeat("ff", 32), ErrInvalidPoint},
		{"x not on the curve", "0702" + strings.Repeat("00", 31) + "05", ErrInvalidPoint},
		{"uncompressed prefix", "0704" + hexG[2:], ErrInvalidPoint},
		{"short point", "0702", wire.ErrTruncated},
		{"zero-width collection", "0c6203", wire.ErrInvalid},
		{"nested zero-width collection", "0c6002626203", wire.ErrInvalid},
		{"Coll[Byte] longer than the input", "0effff03010203", wire.ErrTruncated},
		{"collection length over 65535", "0e808004", wire.ErrInvalid},
		{"Coll[Long] longer than the input", "11ffff030102", wire.ErrTruncated},
		{"threshold k > n", "08980302cd" + hexG + "cd" + hexG, wire.ErrInvalid},
		{"unknown sigma opcode", "08ff", ErrUnknownOpcode},
		{"Any has no data", "61", ErrNotSerializable},
		{"Context has no data", "65", ErrNotSerializable},
		{"function has no data", "7001040500", ErrNotSerializable},
		{"type variable has no data", "670154", ErrNotSerializable},
		{"trailing bytes", "010100", wire.ErrInvalid},
		{"data nested too deep", deepType + deepData, ErrDepth},
		{"truncated Long", "0580", wire.ErrTruncated},
		{"Int VLQ overflow", "04" + strings.Repeat("ff", 10) + "01", wire.ErrOverflow},
	}
	for _, c := range cases {
		_, err := ParseConstant(mustHex(t, c.hex))
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		}
	}
}

func TestConstantDepthLimit(t *testing.T) {
	// A constant in a register is at level 1 and its data at level 2, so
	// 108 nested options (levels 2 to 109) and an Int (110) are the deepest
	// value the reference reads.
	ok := strings.Repeat("24", 108) + "04" + strings.Repeat("01", 108) + "02"
	if _, err := ParseConstant(mustHex(t, ok)); err != nil {
		t.Errorf("108 nested options: %v", err)
	}
	tooDeep := strings.Repeat("24", 109) + "04" + strings.Repeat("01", 109) + "02"
	if _, err := ParseConstant(mustHex(t, tooDeep)); !errors.Is(err, ErrDepth) {
		t.Errorf("109 nested options: %v, want ErrDepth", err)
	}
	// Empty options nest without data depth.
	shallow := strings.Repeat("24", 2000) + "04" + "00"
	if _, err := ParseConstant(mustHex(t, shallow)); err != nil {
		t.Errorf("deep type, shallow value: %v", err)
	}
}

func TestReadValueBoundsAllocation(t *testing.T) {
	// A length prefix of 65535 on a short input must fail before the
	// collection is allocated.
	in := mustHex(t, "11ffff03")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseConstant(in); err == nil {
			t.Fatal("no error")
		}
	})
	if allocs > 8 {
		t.Errorf("%v allocations for a 4-byte input", allocs)
	}
}

func TestWriteValueErrors(t *testing.T) {
	huge := new(big.Int).Lsh(big.NewInt(1), 255)
	cases := []struct {
		name string
		typ  Type
		v    Value
	}{
		{"int64 as Int", TInt, int64(1)},
		{"BigInt of 2^255", TBigInt, huge},
		{"nil BigInt", TBigInt, (*big.Int)(nil)},
		{"negative UnsignedBigInt", TUnsignedBigInt, big.NewInt(-1)},
		{"UnsignedBigInt of 2^256", TUnsignedBigInt, new(big.Int).Lsh(huge, 1)},
		{"Unit collection", CollOf(TUnit), []Value{Unit{}}},
		{"tuple arity", TupleOf(TInt, TInt), Tuple{int32(1)}},
		{"option", OptionOf(TInt), int32(1)},
		{"threshold", TSigmaProp, CThreshold{K: 2, Children: []SigmaBoolean{TrivialProp(true)}}},
		{"sigma type", TSigmaProp, 1},
		{"Any", TAny, 1},
		{"nil type", nil, 1},
		{"long Coll[Byte]", CollOf(TByte), make([]byte, 65536)},
		{"nil box", TBox, (*Box)(nil)},
	}
	for _, c := range cases {
		if err := WriteValue(wire.NewWriter(nil), c.typ, c.v); !errors.Is(err, ErrNotSerializable) {
			t.Errorf("%s: %v, want ErrNotSerializable", c.name, err)
		}
	}
}

func TestWriteValueBuildsRegisters(t *testing.T) {
	// Registers built from Go values, as a simulated chain would build them.
	v := big.NewInt(-1234567)
	vl := uint32(8)
	cases := []struct {
		c    Constant
		want string
	}{
		{Constant{TLong, int64(-1)}, "0501"},
		{Constant{CollOf(TByte), []byte{1, 2}}, "0e020102"},
		{Constant{TupleOf(CollOf(TByte), TLong), Tuple{[]byte{}, int64(1)}}, "4d0e0002"},
		{Constant{CollOf(CollOf(TByte)), []Value{[]byte{0xaa}}}, "1a0101aa"},
		{Constant{OptionOf(TInt), Some(int32(-1))}, "280101"},
		{Constant{OptionOf(TInt), Option{}}, "2800"},
		{Constant{TBigInt, v}, "0603ed2979"},
		{Constant{TSigmaProp, ProveDlog{H: Generator()}}, "08cd" + hexG},
		{Constant{TAvlTree, AvlTree{InsertAllowed: true, KeyLength: 32, ValueLength: &vl}}, "64" + zeroDigest + "01200108"},
		{Constant{CollOf(TBoolean), []bool{true, true, false, false, false, false, false, false, true}}, "0d090301"},
	}
	for _, c := range cases {
		got, err := c.c.Bytes()
		if err != nil || hex.EncodeToString(got) != c.want {
			t.Errorf("%s: %x (%v), want %s", c.c.Type, got, err, c.want)
			continue
		}
		back, err := ParseConstant(got)
		if err != nil || !TypeEqual(back.Type, c.c.Type) {
			t.Errorf("%s: read back as %v (%v)", c.c.Type, back.Type, err)
		}
	}
}

func TestTwosComplement(t *testing.T) {
	for _, s := range []string{"0", "1", "-1", "127", "128", "-128", "-129", "255", "256", "-32768", "-32769",
		"57896044618658097711785492504343953926634992332820282019728792003956564819967",  // 2^255-1
		"-57896044618658097711785492504343953926634992332820282019728792003956564819968", // -2^255
	} {
		v, _ := new(big.Int).SetString(s, 10)
		enc := toTwosComplement(v)
		if want := javaToByteArray(v); !bytes.Equal(enc, want) {
			t.Errorf("%s: %x, want %x", s, enc, want)
		}
		if back := fromTwosComplement(enc); back.Cmp(v) != 0 {
			t.Errorf("%s: read back as %s", s, back)
		}
	}
}

// javaToByteArray is an independent statement of Java's
// BigInteger.toByteArray: the shortest two's complement that keeps the sign.
func javaToByteArray(v *big.Int) []byte {
	for n := 1; ; n++ {
		lim := new(big.Int).Lsh(big.NewInt(1), uint(8*n-1))
		if v.Cmp(new(big.Int).Neg(lim)) >= 0 && v.Cmp(lim) < 0 {
			m := new(big.Int).Set(v)
			if m.Sign() < 0 {
				m.Add(m, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
			}
			return m.FillBytes(make([]byte, n))
		}
	}
}

func TestOnCurve(t *testing.T) {
	for _, h := range []string{hexG, hexG2, hexG3,
		"0379be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"} { // -G
		var g GroupElement
		copy(g[:], mustHex(t, h))
		if !onCurve(&g) {
			t.Errorf("%s is a point", h)
		}
	}
	for _, x := range []string{"05", "07", "09"} { // x³+7 is not a square
		var g GroupElement
		copy(g[:], mustHex(t, "02"+strings.Repeat("00", 31)+x))
		if onCurve(&g) {
			t.Errorf("%x is not a point", g)
		}
	}
}

func TestFieldArithmeticAgainstBigInt(t *testing.T) {
	p, _ := new(big.Int).SetString("fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f", 16)
	toBig := func(a fieldElem) *big.Int {
		b := make([]byte, 32)
		for i := range 4 {
			for k := range 8 {
				b[31-8*i-k] = byte(a[i] >> (8 * k))
			}
		}
		return new(big.Int).SetBytes(b)
	}
	// A deterministic stream of 256-bit values, including values at and
	// above p.
	seed := blake2bStream()
	for i := range 3000 {
		var raw [32]byte
		copy(raw[:], seed())
		if i%50 == 0 {
			copy(raw[:], bytes.Repeat([]byte{0xff}, 32))
			raw[31] -= byte(i % 7)
		}
		a := feFromBytes(raw[:])
		b := feFromBytes(seed())
		want := new(big.Int).Mul(toBig(a), toBig(b))
		want.Mod(want, p)
		if got := feMul(&a, &b).normalize(); toBig(got).Cmp(want) != 0 {
			t.Fatalf("%x · %x = %x, want %x", toBig(a), toBig(b), toBig(got), want)
		}
		if !a.less(&fieldP) {
			continue
		}
		sq := isSquare(a)
		if want := big.Jacobi(toBig(a), p) >= 0; sq != want {
			t.Fatalf("isSquare(%x) = %v, want %v", toBig(a), sq, want)
		}
	}
}

// blake2bStream returns successive 32-byte blake2b256 hashes of a counter.
func blake2bStream() func() []byte {
	var n uint64
	return func() []byte {
		n++
		h := blake2b.Sum256(binary.LittleEndian.AppendUint64(nil, n))
		return h[:]
	}
}
