// Package wire is the TLS presentation language codec of RFC 9420 §2.1, on
// top of golang.org/x/crypto/cryptobyte.
//
// MLS replaces TLS's fixed-width vector length prefixes with a variable-length
// integer (§2.1.2). Decoding is strict: a length that is not minimally encoded,
// a vector that overruns its input and bytes left over after a top-level value
// are all errors, so every byte string has at most one decoding and
// decode-then-encode gives back the input exactly.
package wire

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// MaxVarint is the largest value a §2.1.2 variable-length integer can hold.
const MaxVarint = 1<<30 - 1

// Errors returned by Unmarshal and the decoders built on it.
var (
	// ErrMalformed means the input does not decode as the expected structure:
	// truncated, a non-minimal or reserved length prefix, an unknown enum
	// value where none is allowed, and the like.
	ErrMalformed = errors.New("wire: malformed encoding")
	// ErrTrailingData means a complete value decoded but input remained.
	ErrTrailingData = errors.New("wire: trailing data after value")
	// ErrTooLong means a value is longer than a varint length can express.
	ErrTooLong = errors.New("wire: vector longer than 2^30-1 bytes")
)

// Marshaler is a structure that appends its encoding to a builder. Errors
// are reported through b.SetError, so they surface from b.Bytes().
type Marshaler interface {
	Marshal(b *cryptobyte.Builder)
}

// Unmarshaler is a structure that consumes its encoding from the front of s.
// It returns an error wrapping ErrMalformed when s does not start with a
// valid encoding; the state of s is then unspecified.
type Unmarshaler interface {
	Unmarshal(s *cryptobyte.String) error
}

// Marshal encodes m.
func Marshal(m Marshaler) ([]byte, error) {
	var b cryptobyte.Builder
	m.Marshal(&b)
	return b.Bytes()
}

// Unmarshal decodes data into u and rejects trailing bytes.
func Unmarshal(data []byte, u Unmarshaler) error {
	s := cryptobyte.String(data)
	if err := u.Unmarshal(&s); err != nil {
		return err
	}
	if !s.Empty() {
		return fmt.Errorf("%w (%d bytes)", ErrTrailingData, len(s))
	}
	return nil
}

// Errorf returns an error that wraps ErrMalformed and says which field
// failed, in the style "wire: malformed encoding: KeyPackage.init_key".
func Errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// AddVarint appends n as a §2.1.2 variable-length integer in its shortest
// form. Values above MaxVarint set an error on b.
func AddVarint(b *cryptobyte.Builder, n uint64) {
	switch {
	case n < 1<<6:
		b.AddUint8(uint8(n))
	case n < 1<<14:
		b.AddUint16(uint16(n) | 0x4000)
	case n <= MaxVarint:
		b.AddUint32(uint32(n) | 0x8000_0000)
	default:
		b.SetError(ErrTooLong)
	}
}

// ReadVarint reads a §2.1.2 variable-length integer, rejecting the reserved
// 0b11 prefix and any encoding longer than needed.
func ReadVarint(s *cryptobyte.String, out *uint32) bool {
	if len(*s) == 0 {
		return false
	}
	switch (*s)[0] >> 6 {
	case 0:
		var v uint8
		if !s.ReadUint8(&v) {
			return false
		}
		*out = uint32(v)
		return true
	case 1:
		var v uint16
		if !s.ReadUint16(&v) {
			return false
		}
		v &= 0x3fff
		if v < 1<<6 {
			return false
		}
		*out = uint32(v)
		return true
	case 2:
		var v uint32
		if !s.ReadUint32(&v) {
			return false
		}
		v &= 0x3fff_ffff
		if v < 1<<14 {
			return false
		}
		*out = v
		return true
	default:
		return false
	}
}

// AddOpaque appends v as opaque<V>: a varint length, then the bytes.
func AddOpaque(b *cryptobyte.Builder, v []byte) {
	AddVarint(b, uint64(len(v)))
	b.AddBytes(v)
}

// ReadOpaque reads an opaque<V>. The result aliases s; copy it if it must
// outlive the input buffer.
func ReadOpaque(s *cryptobyte.String, out *[]byte) bool {
	var body cryptobyte.String
	if !ReadVector(s, &body) {
		return false
	}
	*out = []byte(body)
	return true
}

// ReadOpaqueCopy is ReadOpaque with the result copied out of s. Decoders of
// long-lived structures use it so that they never pin, or are changed by
// later writes to, the caller's buffer.
func ReadOpaqueCopy(s *cryptobyte.String, out *[]byte) bool {
	var v []byte
	if !ReadOpaque(s, &v) {
		return false
	}
	*out = append([]byte{}, v...)
	return true
}

// AddVector appends a T<V> whose elements f writes: the body is built
// first, then prefixed with its varint length.
func AddVector(b *cryptobyte.Builder, f cryptobyte.BuilderContinuation) {
	var child cryptobyte.Builder
	f(&child)
	body, err := child.Bytes()
	if err != nil {
		b.SetError(err)
		return
	}
	AddOpaque(b, body)
}

// ReadVector reads the body of a T<V> into out, which the caller then
// decodes element by element until it is empty.
func ReadVector(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint32
	if !ReadVarint(s, &n) {
		return false
	}
	return s.ReadBytes((*[]byte)(out), int(n))
}

// AddBool appends a TLS boolean (one byte, 0 or 1).
func AddBool(b *cryptobyte.Builder, v bool) {
	if v {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// ReadBool reads a TLS boolean, rejecting values other than 0 and 1.
func ReadBool(s *cryptobyte.String, out *bool) bool {
	var v uint8
	if !s.ReadUint8(&v) || v > 1 {
		return false
	}
	*out = v == 1
	return true
}

// ReadOptional reads the presence byte of optional<T> (§2.1.3). The caller
// decodes T when present is true.
func ReadOptional(s *cryptobyte.String, present *bool) bool {
	return ReadBool(s, present)
}
