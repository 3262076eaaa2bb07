package mls

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Errors. Decoding failures wrap wire.ErrMalformed instead (see wire.Errorf)
// and name the struct and field that failed.
var (
	// ErrInvalidValue means a structure cannot be encoded: a union whose
	// selector is unknown or whose matching field is nil.
	ErrInvalidValue = errors.New("mls: value cannot be encoded")
	// ErrDuplicateExtension means an extension list holds two extensions of
	// one type, which §13 forbids.
	ErrDuplicateExtension = errors.New("mls: duplicate extension type")
)

// invalidf reports, through b, that a value cannot be encoded.
func invalidf(b *cryptobyte.Builder, format string, args ...any) {
	b.SetError(fmt.Errorf("%w: "+format, append([]any{ErrInvalidValue}, args...)...))
}

// marshal runs f on a fresh builder: the shape of the to-be-signed and
// to-be-hashed helpers, which return bytes rather than append to a builder.
func marshal(f func(b *cryptobyte.Builder)) ([]byte, error) {
	var b cryptobyte.Builder
	f(&b)
	return b.Bytes()
}

// codec is a pointer to T that encodes and decodes T; it lets the generic
// vector helpers below work on []T without a slice of pointers.
type codec[T any] interface {
	*T
	wire.Marshaler
	wire.Unmarshaler
}

// addVector appends xs as a T<V>.
func addVector[T any, P codec[T]](b *cryptobyte.Builder, xs []T) {
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range xs {
			P(&xs[i]).Marshal(b)
		}
	})
}

// readVector reads a T<V>. The slice grows one decoded element at a time,
// so its size is bounded by the input, never by a length field.
func readVector[T any, P codec[T]](s *cryptobyte.String, out *[]T, field string) error {
	var body cryptobyte.String
	if !wire.ReadVector(s, &body) {
		return wire.Errorf("%s", field)
	}
	var xs []T
	for !body.Empty() {
		var x T
		if err := P(&x).Unmarshal(&body); err != nil {
			return err
		}
		xs = append(xs, x)
	}
	*out = xs
	return nil
}

// readOpaque reads an opaque<V> copied out of s.
func readOpaque(s *cryptobyte.String, out *[]byte, field string) error {
	if !wire.ReadOpaqueCopy(s, out) {
		return wire.Errorf("%s", field)
	}
	return nil
}

// addUint16s appends a uint16<V> of any uint16-based enum.
func addUint16s[T ~uint16](b *cryptobyte.Builder, xs []T) {
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for _, x := range xs {
			b.AddUint16(uint16(x))
		}
	})
}

// readUint16s reads a uint16<V>. Unknown values are kept: the lists that use
// it (capabilities, required capabilities) exist to name values the reader
// may not know.
func readUint16s[T ~uint16](s *cryptobyte.String, out *[]T, field string) error {
	var body cryptobyte.String
	if !wire.ReadVector(s, &body) || len(body)%2 != 0 {
		return wire.Errorf("%s", field)
	}
	var xs []T
	for !body.Empty() {
		var v uint16
		body.ReadUint16(&v)
		xs = append(xs, T(v))
	}
	*out = xs
	return nil
}

// addUint32s appends a uint32<V>.
func addUint32s(b *cryptobyte.Builder, xs []uint32) {
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for _, x := range xs {
			b.AddUint32(x)
		}
	})
}

// readUint32s reads a uint32<V>.
func readUint32s(s *cryptobyte.String, out *[]uint32, field string) error {
	var body cryptobyte.String
	if !wire.ReadVector(s, &body) || len(body)%4 != 0 {
		return wire.Errorf("%s", field)
	}
	var xs []uint32
	for !body.Empty() {
		var v uint32
		body.ReadUint32(&v)
		xs = append(xs, v)
	}
	*out = xs
	return nil
}

// readOptional reads the presence byte of an optional<T> (§2.1.3).
func readOptional(s *cryptobyte.String, present *bool, field string) error {
	if !wire.ReadOptional(s, present) {
		return wire.Errorf("%s", field)
	}
	return nil
}
