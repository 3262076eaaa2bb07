package suite

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha512"
	"fmt"

	circlhpke "github.com/cloudflare/circl/hpke"
	circlkem "github.com/cloudflare/circl/kem"
)

// kemScheme is the HPKE side of a suite (RFC 9180 base mode), on serialized
// keys. Decryption failures wrap ErrDecrypt, unusable keys ErrInvalidKey.
type kemScheme interface {
	seedSize() int
	deriveKeyPair(ikm []byte) (priv, pub []byte, err error)
	publicKey(priv []byte) ([]byte, error)
	seal(pub, info, plaintext []byte) (enc, ct []byte, err error)
	open(priv, enc, info, ct []byte) ([]byte, error)
}

// stdHPKE uses crypto/hpke, which covers every KEM of §17.1 except X448,
// and X-Wing.
type stdHPKE struct {
	kem  hpke.KEM
	kdf  hpke.KDF
	aead hpke.AEAD
	nsk  int
}

var (
	kemX25519AES128GCM        = stdHPKE{hpke.DHKEM(ecdh.X25519()), hpke.HKDFSHA256(), hpke.AES128GCM(), 32}
	kemX25519ChaCha20Poly1305 = stdHPKE{hpke.DHKEM(ecdh.X25519()), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), 32}
	kemP256                   = stdHPKE{hpke.DHKEM(ecdh.P256()), hpke.HKDFSHA256(), hpke.AES128GCM(), 32}
	kemP384                   = stdHPKE{hpke.DHKEM(ecdh.P384()), hpke.HKDFSHA384(), hpke.AES256GCM(), 48}
	kemP521                   = stdHPKE{hpke.DHKEM(ecdh.P521()), hpke.HKDFSHA512(), hpke.AES256GCM(), 66}
	// X-Wing's private key is a 32-byte seed from which both halves are
	// expanded (draft-ietf-hpke-pq), so Nsk is 32.
	kemXWingAES256GCM = stdHPKE{hpke.MLKEM768X25519(), hpke.HKDFSHA512(), hpke.AES256GCM(), 32}
)

func (k stdHPKE) seedSize() int { return k.nsk }

func (k stdHPKE) deriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	sk, err := k.kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE DeriveKeyPair: %w", err)
	}
	priv, err = sk.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE SerializePrivateKey: %w", err)
	}
	return priv, sk.PublicKey().Bytes(), nil
}

func (k stdHPKE) privateKey(priv []byte) (hpke.PrivateKey, error) {
	sk, err := k.kem.NewPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE private key (%d bytes)", ErrInvalidKey, len(priv))
	}
	return sk, nil
}

func (k stdHPKE) publicKey(priv []byte) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	return sk.PublicKey().Bytes(), nil
}

func (k stdHPKE) seal(pub, info, plaintext []byte) (enc, ct []byte, err error) {
	pk, err := k.kem.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	enc, sender, err := hpke.NewSender(pk, k.kdf, k.aead, info)
	if err != nil {
		// Encap fails only on a public key whose DH output is degenerate.
		return nil, nil, fmt.Errorf("%w: HPKE encapsulation: %v", ErrInvalidKey, err)
	}
	ct, err = sender.Seal(nil, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

func (k stdHPKE) open(priv, enc, info, ct []byte) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	r, err := hpke.NewRecipient(enc, sk, k.kdf, k.aead, info)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE decapsulation of kem_output", ErrDecrypt)
	}
	pt, err := r.Open(nil, ct)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE open", ErrDecrypt)
	}
	return pt, nil
}

// circlHPKE is DHKEM(X448, HKDF-SHA512), which crypto/hpke lacks (its KEM
// interface is sealed, so X448 cannot be plugged in there).
type circlHPKE struct {
	suite  circlhpke.Suite
	scheme circlkem.Scheme
}

const (
	x448KEMID = 0x0021 // RFC 9180 §7.1
	x448Nsk   = 56
)

var (
	kemX448AES256GCM        = newCirclHPKE(circlhpke.AEAD_AES256GCM)
	kemX448ChaCha20Poly1305 = newCirclHPKE(circlhpke.AEAD_ChaCha20Poly1305)
)

func newCirclHPKE(aead circlhpke.AEAD) circlHPKE {
	return circlHPKE{
		suite:  circlhpke.NewSuite(circlhpke.KEM_X448_HKDF_SHA512, circlhpke.KDF_HKDF_SHA512, aead),
		scheme: circlhpke.KEM_X448_HKDF_SHA512.Scheme(),
	}
}

func (k circlHPKE) seedSize() int { return x448Nsk }

// deriveKeyPair is RFC 9180 §7.1.3's DeriveKeyPair for X448. circl's own
// DeriveKeyPair accepts only Nsk-byte seeds, but MLS derives node keys from
// Nh = 64-byte secrets, so the two labelled HKDF steps are spelt out here
// (the X25519/X448 branch: no rejection sampling, the expanded bytes are the
// private key).
func (k circlHPKE) deriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	suiteID := []byte{'K', 'E', 'M', x448KEMID >> 8, x448KEMID & 0xff}
	prk, err := hkdf.Extract(sha512.New, hpkeLabel(suiteID, "dkp_prk", ikm), nil)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE DeriveKeyPair: %w", err)
	}
	info := append([]byte{0, x448Nsk}, hpkeLabel(suiteID, "sk", nil)...)
	sk, err := hkdf.Expand(sha512.New, prk, string(info), x448Nsk)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE DeriveKeyPair: %w", err)
	}
	pub, err = k.publicKey(sk)
	if err != nil {
		return nil, nil, err
	}
	return sk, pub, nil
}

// hpkeLabel is the "HPKE-v1" || suite_id || label || value string of RFC 9180
// §4's LabeledExtract and LabeledExpand.
func hpkeLabel(suiteID []byte, label string, value []byte) []byte {
	out := append([]byte("HPKE-v1"), suiteID...)
	out = append(out, label...)
	return append(out, value...)
}

func (k circlHPKE) privateKey(priv []byte) (circlkem.PrivateKey, error) {
	sk, err := k.scheme.UnmarshalBinaryPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE private key (%d bytes)", ErrInvalidKey, len(priv))
	}
	return sk, nil
}

func (k circlHPKE) publicKey(priv []byte) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	pub, err := sk.Public().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	return pub, nil
}

func (k circlHPKE) seal(pub, info, plaintext []byte) (enc, ct []byte, err error) {
	pk, err := k.scheme.UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE public key: %v", ErrInvalidKey, err)
	}
	sender, err := k.suite.NewSender(pk, info)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE sender: %w", err)
	}
	enc, sealer, err := sender.Setup(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: HPKE encapsulation: %v", ErrInvalidKey, err)
	}
	ct, err = sealer.Seal(plaintext, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

func (k circlHPKE) open(priv, enc, info, ct []byte) ([]byte, error) {
	sk, err := k.privateKey(priv)
	if err != nil {
		return nil, err
	}
	receiver, err := k.suite.NewReceiver(sk, info)
	if err != nil {
		return nil, fmt.Errorf("suite: HPKE receiver: %w", err)
	}
	opener, err := receiver.Setup(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE decapsulation of kem_output", ErrDecrypt)
	}
	pt, err := opener.Open(ct, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE open", ErrDecrypt)
	}
	return pt, nil
}
