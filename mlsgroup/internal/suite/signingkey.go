package suite

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/cloudflare/circl/sign/ed448"
)

// SigningKey is a signature private key parsed once for many signatures.
// SignWithLabel re-parses its key bytes on every call, which for Ed25519
// means re-deriving the expanded key from the seed (a scalar base
// multiplication, about a third of the cost of a signature); a member that
// signs every message it sends keeps a SigningKey instead.
type SigningKey struct {
	s    *Suite
	sign func(msg []byte) ([]byte, error)
}

// NewSigningKey parses priv (serialized as for SignWithLabel).
func (s *Suite) NewSigningKey(priv []byte) (*SigningKey, error) {
	k := &SigningKey{s: s}
	switch sch := s.sig.(type) {
	case ed25519Scheme:
		key, err := sch.key(priv)
		if err != nil {
			return nil, err
		}
		k.sign = func(msg []byte) ([]byte, error) { return ed25519.Sign(key, msg), nil }
	case ed448Scheme:
		key, err := sch.key(priv)
		if err != nil {
			return nil, err
		}
		k.sign = func(msg []byte) ([]byte, error) { return ed448.Sign(key, msg, ""), nil }
	case ecdsaScheme:
		key, err := sch.key(priv)
		if err != nil {
			return nil, err
		}
		k.sign = func(msg []byte) ([]byte, error) {
			sig, err := ecdsa.SignASN1(rand.Reader, key, sch.digest(msg))
			if err != nil {
				return nil, fmt.Errorf("suite: %s signing: %w", sch.name, err)
			}
			return sig, nil
		}
	default:
		return nil, fmt.Errorf("%w: no signing key type for this suite", ErrUnsupported)
	}
	return k, nil
}

// SignWithLabel is §5.1.2's SignWithLabel with the parsed key.
func (k *SigningKey) SignWithLabel(label string, content []byte) ([]byte, error) {
	tbs, err := labelled([]byte(labelPrefix+label), content).Bytes()
	if err != nil {
		return nil, fmt.Errorf("suite: encoding SignContent: %w", err)
	}
	return k.sign(tbs)
}

// CanonicalSignatureKey returns the form of a signature public key that
// identifies it: verification accepts an ECDSA key compressed or not (see
// parsePublicKey), so a check that no two members share a key (§7.3) must
// compare points, not encodings. For other schemes, and for bytes that do
// not parse, it returns pub itself.
func (s *Suite) CanonicalSignatureKey(pub []byte) []byte {
	e, ok := s.sig.(ecdsaScheme)
	if !ok {
		return pub
	}
	k, err := e.parsePublicKey(pub)
	if err != nil {
		return pub
	}
	b, err := k.Bytes()
	if err != nil {
		return pub
	}
	return b
}
