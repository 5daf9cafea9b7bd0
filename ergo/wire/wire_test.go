package wire

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

func TestVLQVectors(t *testing.T) {
	// Vectors from the protobuf and scorex-util VLQ test suites.
	cases := []struct {
		enc []byte
		v   uint64
	}{
		{[]byte{0x00}, 0},
		{[]byte{0x7f}, 127},
		{[]byte{0xa2, 0x74}, 14882},
		{[]byte{0xbe, 0xf7, 0x92, 0x84, 0x0b}, 2961488830},
		{[]byte{0x80, 0xe6, 0xeb, 0x9c, 0xc3, 0xc9, 0xa4, 0x49}, 41256202580718336},
		{[]byte{0x9b, 0xa8, 0xf9, 0xc2, 0xbb, 0xd6, 0x80, 0x85, 0xa6, 0x01}, 11964378330978735131},
	}
	for _, c := range cases {
		w := NewWriter(nil)
		w.U64(c.v)
		if !bytes.Equal(w.Bytes(), c.enc) {
			t.Errorf("U64(%d) = %x, want %x", c.v, w.Bytes(), c.enc)
		}
		got, err := NewReader(c.enc).U64("v")
		if err != nil || got != c.v {
			t.Errorf("read %x = %d, %v; want %d", c.enc, got, err, c.v)
		}
	}
}

func TestZigZagMatchesScala(t *testing.T) {
	// The Scala writer sign-extends the 32-bit ZigZag value: Ints of
	// magnitude >= 2^30 take 10 bytes.
	for _, c := range []struct {
		v    int32
		size int
	}{{0, 1}, {-1, 1}, {1, 1}, {-64, 1}, {64, 2}, {0x3FFFFFFF, 5}, {-0x40000000, 5}, {0x40000000, 10}, {math.MaxInt32, 10}, {math.MinInt32, 10}} {
		w := NewWriter(nil)
		w.I32(c.v)
		if w.Len() != c.size {
			t.Errorf("I32(%d) took %d bytes (%x), want %d", c.v, w.Len(), w.Bytes(), c.size)
		}
		got, err := NewReader(w.Bytes()).I32("v")
		if err != nil || got != c.v {
			t.Errorf("I32 round trip %d: got %d, %v", c.v, got, err)
		}
	}
	for _, v := range []int64{0, -1, 1, math.MaxInt64, math.MinInt64, -1 << 40} {
		w := NewWriter(nil)
		w.I64(v)
		if got, err := NewReader(w.Bytes()).I64("v"); err != nil || got != v {
			t.Errorf("I64 round trip %d: got %d, %v", v, got, err)
		}
	}
	for _, v := range []int16{0, -1, math.MaxInt16, math.MinInt16} {
		w := NewWriter(nil)
		w.I16(v)
		if got, err := NewReader(w.Bytes()).I16("v"); err != nil || got != v {
			t.Errorf("I16 round trip %d: got %d, %v", v, got, err)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		read func(*Reader) error
		want ErrorKind
	}{
		{"empty byte", nil, func(r *Reader) error { _, err := r.Byte("b"); return err }, ErrTruncated},
		{"unterminated VLQ", []byte{0x80, 0x80}, func(r *Reader) error { _, err := r.U64("v"); return err }, ErrTruncated},
		{"VLQ beyond 64 bits", bytes.Repeat([]byte{0xff}, 11), func(r *Reader) error { _, err := r.U64("v"); return err }, ErrOverflow},
		{"10th byte overflows", append(bytes.Repeat([]byte{0xff}, 9), 0x02), func(r *Reader) error { _, err := r.U64("v"); return err }, ErrOverflow},
		{"U16 overflow", []byte{0x80, 0x80, 0x04}, func(r *Reader) error { _, err := r.U16("v"); return err }, ErrOverflow},
		{"U32 overflow", []byte{0x80, 0x80, 0x80, 0x80, 0x10}, func(r *Reader) error { _, err := r.U32("v"); return err }, ErrOverflow},
		{"I16 overflow", []byte{0x80, 0x80, 0x04}, func(r *Reader) error { _, err := r.I16("v"); return err }, ErrOverflow},
		{"short fixed", []byte{1, 2}, func(r *Reader) error { _, err := r.Fixed(3, "f"); return err }, ErrTruncated},
		{"count above limit", []byte{0x05}, func(r *Reader) error { _, err := r.Count(4, 0, "n"); return err }, ErrInvalid},
		{"count larger than input", []byte{0x05, 0, 0}, func(r *Reader) error { _, err := r.Count(100, 1, "n"); return err }, ErrTruncated},
		{"trailing bytes", []byte{0x01}, func(r *Reader) error { return r.Done("x") }, ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := NewReader(c.in)
			err := c.read(r)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("error %T is not a *wire.Error", err)
			}
		})
	}
}

func TestRedundantVLQGroupsAccepted(t *testing.T) {
	// Consensus (Scala) accepts 0x81 0x00 as 1; so do we.
	if v, err := NewReader([]byte{0x81, 0x00}).U64("v"); err != nil || v != 1 {
		t.Fatalf("got %d, %v", v, err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0x81, 0x00, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		for r.Len() > 0 {
			before := r.Pos()
			v, err := r.U64("v")
			if err != nil {
				if r.Pos() != before {
					t.Fatalf("failed read moved the position")
				}
				return
			}
			w := NewWriter(nil)
			w.U64(v)
			if got, _ := NewReader(w.Bytes()).U64("v"); got != v {
				t.Fatalf("round trip %d -> %d", v, got)
			}
		}
	})
}
