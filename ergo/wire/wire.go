// Package wire reads and writes the primitive encodings of Ergo's binary
// serialization: unsigned VLQ (LEB128) integers, ZigZag-encoded signed
// integers, single bytes and fixed-length byte strings.
//
// A Reader never panics and never allocates more than the input it holds:
// every read is bounds-checked and reports a *Error that carries the byte
// offset and wraps one of the ErrorKind values, so callers test failures
// with errors.Is.
package wire

import "fmt"

// ErrorKind identifies a class of decoding failure. Use errors.Is to test for
// one; the *Error returned by a Reader wraps exactly one ErrorKind.
type ErrorKind string

// Error implements error so that an ErrorKind can be the target of errors.Is.
func (k ErrorKind) Error() string { return string(k) }

const (
	// ErrTruncated: the input ended before the value being read.
	ErrTruncated = ErrorKind("truncated input")
	// ErrOverflow: a VLQ integer does not fit the width being read.
	ErrOverflow = ErrorKind("integer overflow")
	// ErrInvalid: a value is well-formed but not allowed where it stands
	// (an unknown type code, a length above its limit, ...). Packages that
	// build on wire use it for their own semantic checks.
	ErrInvalid = ErrorKind("invalid value")
)

// Error is a decoding failure at a byte offset of the input.
type Error struct {
	Kind   ErrorKind
	Offset int    // offset of the first byte of the value that failed
	What   string // what was being read, e.g. "box value"
	Detail string // optional extra context
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("%s at byte %d", e.Kind, e.Offset)
	if e.What != "" {
		msg = fmt.Sprintf("%s: %s", e.What, msg)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap lets errors.Is match the Kind.
func (e *Error) Unwrap() error { return e.Kind }

// Reader decodes values from a byte slice. The zero value reads nothing.
type Reader struct {
	buf []byte
	pos int
}

// NewReader returns a Reader positioned at the start of b. The Reader keeps
// b; slices it returns alias it.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Pos is the offset of the next byte to read.
func (r *Reader) Pos() int { return r.pos }

// Len is the number of unread bytes.
func (r *Reader) Len() int { return len(r.buf) - r.pos }

// Bytes returns the whole input the Reader was created with.
func (r *Reader) Bytes() []byte { return r.buf }

// Since returns the bytes read since offset start (start <= Pos()).
func (r *Reader) Since(start int) []byte { return r.buf[start:r.pos:r.pos] }

// Errorf builds an *Error of the given kind at offset off.
func Errorf(kind ErrorKind, off int, what, format string, args ...any) *Error {
	return &Error{Kind: kind, Offset: off, What: what, Detail: fmt.Sprintf(format, args...)}
}

// Fail builds an *Error of the given kind at the Reader's current offset.
func (r *Reader) Fail(kind ErrorKind, what, format string, args ...any) *Error {
	return Errorf(kind, r.pos, what, format, args...)
}

// Byte reads one byte.
func (r *Reader) Byte(what string) (byte, error) {
	if r.pos >= len(r.buf) {
		return 0, &Error{Kind: ErrTruncated, Offset: r.pos, What: what}
	}
	b := r.buf[r.pos]
	r.pos++
	return b, nil
}

// Fixed reads exactly n bytes and returns them without copying.
func (r *Reader) Fixed(n int, what string) ([]byte, error) {
	if n < 0 || n > r.Len() {
		return nil, &Error{Kind: ErrTruncated, Offset: r.pos, What: what,
			Detail: fmt.Sprintf("need %d bytes, have %d", n, r.Len())}
	}
	b := r.buf[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return b, nil
}

// Skip advances past n bytes.
func (r *Reader) Skip(n int, what string) error {
	_, err := r.Fixed(n, what)
	return err
}

// Digest32 reads a 32-byte id.
func (r *Reader) Digest32(what string) (d [32]byte, err error) {
	b, err := r.Fixed(32, what)
	if err == nil {
		copy(d[:], b)
	}
	return d, err
}

// uvarint reads an unsigned VLQ of at most bits significant bits.
func (r *Reader) uvarint(bits uint, what string) (uint64, error) {
	start := r.pos
	var x uint64
	var shift uint
	for {
		if r.pos >= len(r.buf) {
			r.pos = start
			return 0, &Error{Kind: ErrTruncated, Offset: start, What: what}
		}
		b := r.buf[r.pos]
		r.pos++
		if shift >= 64 || (shift > 0 && shift+7 > 64 && b>>(64-shift) != 0) {
			r.pos = start
			return 0, &Error{Kind: ErrOverflow, Offset: start, What: what}
		}
		x |= uint64(b&0x7f) << shift
		if b < 0x80 {
			// Redundant high zero groups are accepted, as the Scala
			// reader that consensus runs accepts them.
			break
		}
		shift += 7
	}
	if bits < 64 && x>>bits != 0 {
		r.pos = start
		return 0, &Error{Kind: ErrOverflow, Offset: start, What: what,
			Detail: fmt.Sprintf("%d does not fit in %d bits", x, bits)}
	}
	return x, nil
}

// U64 reads an unsigned VLQ integer (Scala putULong).
func (r *Reader) U64(what string) (uint64, error) { return r.uvarint(64, what) }

// U32 reads an unsigned VLQ integer of at most 32 bits (putUInt).
func (r *Reader) U32(what string) (uint32, error) {
	v, err := r.uvarint(32, what)
	return uint32(v), err
}

// U16 reads an unsigned VLQ integer of at most 16 bits (putUShort).
func (r *Reader) U16(what string) (uint16, error) {
	v, err := r.uvarint(16, what)
	return uint16(v), err
}

// I64 reads a ZigZag-encoded VLQ signed 64-bit integer (putLong).
func (r *Reader) I64(what string) (int64, error) {
	v, err := r.uvarint(64, what)
	return unzigzag(v), err
}

// I32 reads a ZigZag-encoded VLQ signed 32-bit integer (putInt). Like the
// Scala reader it reads a full 64-bit VLQ and keeps the low 32 bits: the
// Scala writer sign-extends the 32-bit ZigZag value, so an Int whose
// magnitude is at least 2^30 arrives as a 10-byte VLQ.
func (r *Reader) I32(what string) (int32, error) {
	v, err := r.uvarint(64, what)
	u := uint32(v)
	return int32(u>>1) ^ -int32(u&1), err
}

// I16 reads a ZigZag-encoded VLQ signed 16-bit integer (putShort), written
// through the 32-bit ZigZag encoding; a value outside the 16-bit range is an
// overflow.
func (r *Reader) I16(what string) (int16, error) {
	start := r.pos
	v, err := r.I32(what)
	if err != nil {
		return 0, err
	}
	if v < -1<<15 || v >= 1<<15 {
		r.pos = start
		return 0, &Error{Kind: ErrOverflow, Offset: start, What: what,
			Detail: fmt.Sprintf("%d does not fit in a Short", v)}
	}
	return int16(v), nil
}

// Count reads a putUShort/putUInt collection length and checks that at
// least min(n, …)*minElemSize bytes remain, so that a hostile length cannot
// make a caller allocate more than the input could describe. minElemSize may
// be 0 for elements that can be empty (the count is then only bounded by max).
func (r *Reader) Count(max uint64, minElemSize int, what string) (int, error) {
	start := r.pos
	n, err := r.uvarint(32, what)
	if err != nil {
		return 0, err
	}
	if n > max {
		r.pos = start
		return 0, &Error{Kind: ErrInvalid, Offset: start, What: what,
			Detail: fmt.Sprintf("count %d exceeds the limit %d", n, max)}
	}
	if minElemSize > 0 && n*uint64(minElemSize) > uint64(r.Len()) {
		r.pos = start
		return 0, &Error{Kind: ErrTruncated, Offset: start, What: what,
			Detail: fmt.Sprintf("%d elements cannot fit in the %d bytes left", n, r.Len())}
	}
	return int(n), nil
}

// Done reports an error if unread bytes remain.
func (r *Reader) Done(what string) error {
	if r.Len() != 0 {
		return &Error{Kind: ErrInvalid, Offset: r.pos, What: what,
			Detail: fmt.Sprintf("%d trailing bytes", r.Len())}
	}
	return nil
}

func unzigzag(v uint64) int64 { return int64(v>>1) ^ -int64(v&1) }

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

// Writer appends encoded values to a byte slice. The zero value is ready.
type Writer struct {
	buf []byte
}

// NewWriter returns a Writer that appends to buf[:0] (pass nil, or a buffer
// to reuse).
func NewWriter(buf []byte) *Writer { return &Writer{buf: buf[:0]} }

// Bytes returns what was written. It aliases the Writer's buffer.
func (w *Writer) Bytes() []byte { return w.buf }

// Len is the number of bytes written.
func (w *Writer) Len() int { return len(w.buf) }

// Reset discards what was written, keeping the buffer.
func (w *Writer) Reset() { w.buf = w.buf[:0] }

// Byte appends one byte.
func (w *Writer) Byte(b byte) { w.buf = append(w.buf, b) }

// Write appends b verbatim.
func (w *Writer) Write(b []byte) { w.buf = append(w.buf, b...) }

// U64 appends an unsigned VLQ integer.
func (w *Writer) U64(v uint64) {
	for v >= 0x80 {
		w.buf = append(w.buf, byte(v)|0x80)
		v >>= 7
	}
	w.buf = append(w.buf, byte(v))
}

// U32 appends an unsigned VLQ integer (putUInt).
func (w *Writer) U32(v uint32) { w.U64(uint64(v)) }

// U16 appends an unsigned VLQ integer (putUShort).
func (w *Writer) U16(v uint16) { w.U64(uint64(v)) }

// I64 appends a ZigZag VLQ signed integer (putLong).
func (w *Writer) I64(v int64) { w.U64(zigzag(v)) }

// I32 appends a ZigZag VLQ signed integer (putInt) exactly as the Scala
// writer does: the 32-bit ZigZag value is a signed Int that is sign-extended
// to 64 bits before the VLQ, so for |v| >= 2^30 it takes 10 bytes.
func (w *Writer) I32(v int32) { w.U64(uint64(int64((v << 1) ^ (v >> 31)))) }

// I16 appends a ZigZag VLQ signed integer (putShort).
func (w *Writer) I16(v int16) { w.I32(int32(v)) }
