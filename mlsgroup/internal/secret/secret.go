// Package secret holds key material in a type that cannot leak by accident:
// it never prints, has no == (the zero-length array makes it incomparable,
// because == on secrets would not be constant-time), and compares in
// constant time.
package secret

import (
	"crypto/subtle"
	"fmt"
)

// Secret is a byte string of key material. The zero value is the empty
// secret.
type Secret struct {
	_ [0]func() // incomparable
	b []byte
}

// New wraps b, taking ownership of it: the caller must not modify b
// afterwards.
func New(b []byte) Secret { return Secret{b: b} }

// Bytes returns the key material. The slice is shared: the caller must not
// modify it, and must not let it reach logs or error strings.
func (s Secret) Bytes() []byte { return s.b }

// Len is the length of the key material in bytes.
func (s Secret) Len() int { return len(s.b) }

// IsZero reports whether s holds no key material.
func (s Secret) IsZero() bool { return len(s.b) == 0 }

// Equal compares two secrets in constant time.
func (s Secret) Equal(o Secret) bool { return subtle.ConstantTimeCompare(s.b, o.b) == 1 }

// Wipe overwrites the key material with zeros and empties s. Copies made by
// Bytes are not reached; Go's garbage collector may also have moved the
// bytes, so Wipe narrows, not closes, the window in which they sit in memory.
func (s *Secret) Wipe() {
	clear(s.b)
	s.b = nil
}

// String never shows the key material.
func (s Secret) String() string { return "secret.Secret(REDACTED)" }

// GoString never shows the key material.
func (s Secret) GoString() string { return s.String() }

// Format makes every fmt verb print the redacted form, so %x and %v cannot
// leak the bytes either.
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }
