package suite

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign/ed448"
)

// signatureScheme is the signature side of a suite (§5.1.2), on serialized
// keys. verify returns nil, an error wrapping ErrInvalidSignature, or one
// wrapping ErrInvalidKey for a public key that does not parse.
type signatureScheme interface {
	generate(rand io.Reader) (priv, pub []byte, err error)
	publicKey(priv []byte) ([]byte, error)
	sign(priv, msg []byte) ([]byte, error)
	verify(pub, msg, sig []byte) error
}

func readSeed(rand io.Reader, n int) ([]byte, error) {
	seed := make([]byte, n)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("suite: reading signature key seed: %w", err)
	}
	return seed, nil
}

// ed25519Scheme keeps the private key as the RFC 8032 seed, which is what
// MLS serializes; Go's 64-byte form (seed || public key) is rebuilt per use.
type ed25519Scheme struct{}

func (ed25519Scheme) generate(rand io.Reader) (priv, pub []byte, err error) {
	seed, err := readSeed(rand, ed25519.SeedSize)
	if err != nil {
		return nil, nil, err
	}
	return seed, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil
}

func (ed25519Scheme) key(priv []byte) (ed25519.PrivateKey, error) {
	if len(priv) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: Ed25519 private key is %d bytes, want %d", ErrInvalidKey, len(priv), ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(priv), nil
}

func (e ed25519Scheme) publicKey(priv []byte) ([]byte, error) {
	k, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	return k.Public().(ed25519.PublicKey), nil
}

func (e ed25519Scheme) sign(priv, msg []byte) ([]byte, error) {
	k, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	return ed25519.Sign(k, msg), nil
}

func (ed25519Scheme) verify(pub, msg, sig []byte) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: Ed25519 public key is %d bytes, want %d", ErrInvalidKey, len(pub), ed25519.PublicKeySize)
	}
	if !ed25519.Verify(pub, msg, sig) {
		return ErrInvalidSignature
	}
	return nil
}

// ed448Scheme is Ed448 (not Ed448ph) with the empty context, like the
// Ed448 of TLS 1.3 that §5.1.2 points to.
type ed448Scheme struct{}

func (ed448Scheme) generate(rand io.Reader) (priv, pub []byte, err error) {
	seed, err := readSeed(rand, ed448.SeedSize)
	if err != nil {
		return nil, nil, err
	}
	return seed, ed448.NewKeyFromSeed(seed).Public().(ed448.PublicKey), nil
}

func (ed448Scheme) key(priv []byte) (ed448.PrivateKey, error) {
	if len(priv) != ed448.SeedSize {
		return nil, fmt.Errorf("%w: Ed448 private key is %d bytes, want %d", ErrInvalidKey, len(priv), ed448.SeedSize)
	}
	return ed448.NewKeyFromSeed(priv), nil
}

func (e ed448Scheme) publicKey(priv []byte) ([]byte, error) {
	k, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	return k.Public().(ed448.PublicKey), nil
}

func (e ed448Scheme) sign(priv, msg []byte) ([]byte, error) {
	k, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	return ed448.Sign(k, msg, ""), nil
}

func (ed448Scheme) verify(pub, msg, sig []byte) error {
	if len(pub) != ed448.PublicKeySize {
		return fmt.Errorf("%w: Ed448 public key is %d bytes, want %d", ErrInvalidKey, len(pub), ed448.PublicKeySize)
	}
	if !ed448.Verify(pub, msg, sig, "") {
		return ErrInvalidSignature
	}
	return nil
}

// ecdsaScheme is ECDSA with DER-encoded signatures (§5.1.2 via RFC 8446).
type ecdsaScheme struct {
	name  string
	curve elliptic.Curve
	hash  crypto.Hash
	// kem turns rand bytes into a scalar: since Go 1.26 ecdsa.GenerateKey
	// ignores its reader, and DHKEM's DeriveKeyPair (RFC 9180 §7.1.3) is a
	// specified, rejection-sampled map from bytes to a uniform scalar on
	// the same curve.
	kem hpke.KEM
	nsk int
}

var (
	ecdsaP256 = ecdsaScheme{"P-256", elliptic.P256(), crypto.SHA256, hpke.DHKEM(ecdh.P256()), 32}
	ecdsaP384 = ecdsaScheme{"P-384", elliptic.P384(), crypto.SHA384, hpke.DHKEM(ecdh.P384()), 48}
	ecdsaP521 = ecdsaScheme{"P-521", elliptic.P521(), crypto.SHA512, hpke.DHKEM(ecdh.P521()), 66}
)

func (e ecdsaScheme) generate(rand io.Reader) (priv, pub []byte, err error) {
	seed, err := readSeed(rand, e.nsk)
	if err != nil {
		return nil, nil, err
	}
	defer clear(seed)
	k, err := e.kem.DeriveKeyPair(seed)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: deriving %s signature key: %w", e.name, err)
	}
	priv, err = k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("suite: deriving %s signature key: %w", e.name, err)
	}
	pub, err = e.publicKey(priv)
	if err != nil {
		return nil, nil, err
	}
	return priv, pub, nil
}

func (e ecdsaScheme) key(priv []byte) (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.ParseRawPrivateKey(e.curve, priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %s private key (%d bytes)", ErrInvalidKey, e.name, len(priv))
	}
	return k, nil
}

func (e ecdsaScheme) publicKey(priv []byte) ([]byte, error) {
	k, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %s public key: %v", ErrInvalidKey, e.name, err)
	}
	return pub, nil
}

func (e ecdsaScheme) digest(msg []byte) []byte {
	h := e.hash.New()
	h.Write(msg)
	return h.Sum(nil)
}

func (e ecdsaScheme) sign(priv, msg []byte) ([]byte, error) {
	k, err := e.key(priv)
	if err != nil {
		return nil, err
	}
	sig, err := ecdsa.SignASN1(rand.Reader, k, e.digest(msg))
	if err != nil {
		return nil, fmt.Errorf("suite: %s signing: %w", e.name, err)
	}
	return sig, nil
}

func (e ecdsaScheme) verify(pub, msg, sig []byte) error {
	k, err := e.parsePublicKey(pub)
	if err != nil {
		return fmt.Errorf("%w: %s public key (%d bytes)", ErrInvalidKey, e.name, len(pub))
	}
	if !ecdsa.VerifyASN1(k, e.digest(msg), sig) {
		return ErrInvalidSignature
	}
	return nil
}

// parsePublicKey parses the uncompressed SEC 1 point that §5.1.2 asks for
// and, when verifying, also a compressed one (SEC 1 §2.3.3): ts-mls 1.6.4
// puts compressed points in its leaves, and the point, hence the key, is
// the same either way. Keys this package makes are always uncompressed.
func (e ecdsaScheme) parsePublicKey(pub []byte) (*ecdsa.PublicKey, error) {
	if len(pub) == 0 || (pub[0] != 2 && pub[0] != 3) {
		return ecdsa.ParseUncompressedPublicKey(e.curve, pub)
	}
	x, y := elliptic.UnmarshalCompressed(e.curve, pub)
	if x == nil {
		return nil, errors.New("invalid compressed point")
	}
	size := (e.curve.Params().BitSize + 7) / 8
	uncompressed := make([]byte, 1+2*size)
	uncompressed[0] = 4
	x.FillBytes(uncompressed[1 : 1+size])
	y.FillBytes(uncompressed[1+size:])
	return ecdsa.ParseUncompressedPublicKey(e.curve, uncompressed)
}
