// Package suite implements the cipher suites of RFC 9420 §5.1 and §17.1 and
// the labelled operations built on them (§5.1.2, §5.1.3, §5.2, §8, §9).
//
// Besides the seven suites of §17.1 it has one post-quantum hybrid suite,
// code point 83 (0x0053), MLS_256_XWING_AES256GCM_SHA512_Ed25519, as
// draft-ietf-mls-pq-ciphersuites assigns it and ts-mls 1.6.4 implements it:
// KEM X-Wing (ML-KEM-768 + X25519, the MLKEM768-X25519 of
// draft-ietf-hpke-pq), HKDF-SHA512, AES-256-GCM, SHA-512 and Ed25519. Its
// HPKE private key is X-Wing's 32-byte seed; DeriveKeyPair is that draft's
// SHAKE256 LabeledDerive, which takes input keying material of any length,
// so MLS's Nh-byte (64-byte) node secrets feed it directly.
//
// Keys cross this package's API as their serialized byte strings, the form
// MLS puts on the wire and in test vectors:
//
//   - HPKE keys are RFC 9180's SerializePublicKey / SerializePrivateKey
//     output (§7.1.1, §7.1.2). An X25519 private key may be given clamped or
//     not; the one DeriveKeyPair returns is clamped, as RFC 9180 §7.1.2 asks.
//   - Ed25519 and Ed448 private keys are RFC 8032 seeds (32 and 57 bytes),
//     public keys RFC 8032 encodings.
//   - ECDSA private keys are the fixed-length big-endian scalar of SEC 1
//     §2.3.6 (32, 48 or 66 bytes), public keys the uncompressed SEC 1 point
//     (verification also takes the compressed point, which ts-mls 1.6.4
//     sends).
//
// Lengths are checked strictly: a P-521 private key must be 66 bytes, so
// callers holding a 65-byte key (as some interop vectors do) must left-pad
// it with a zero byte first.
//
// HPKE encryption and ECDSA signing draw their randomness from the operating
// system (crypto/rand), because Go's crypto/hpke and crypto/ecdsa ignore any
// reader they are given; key generation reads the caller's io.Reader, so
// MLS-level randomness stays injectable.
package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// ID is a cipher suite code point (RFC 9420 §17.1).
type ID uint16

// The cipher suites of RFC 9420 §17.1.
const (
	MLS128DHKEMX25519AES128GCMSHA256Ed25519        ID = 0x0001
	MLS128DHKEMP256AES128GCMSHA256P256             ID = 0x0002
	MLS128DHKEMX25519CHACHA20POLY1305SHA256Ed25519 ID = 0x0003
	MLS256DHKEMX448AES256GCMSHA512Ed448            ID = 0x0004
	MLS256DHKEMP521AES256GCMSHA512P521             ID = 0x0005
	MLS256DHKEMX448CHACHA20POLY1305SHA512Ed448     ID = 0x0006
	MLS256DHKEMP384AES256GCMSHA384P384             ID = 0x0007

	// MLS256XWINGAES256GCMSHA512Ed25519 is the post-quantum hybrid suite
	// of draft-ietf-mls-pq-ciphersuites (see the package doc).
	MLS256XWINGAES256GCMSHA512Ed25519 ID = 0x0053
)

// Errors.
var (
	ErrUnsupported      = errors.New("suite: unsupported cipher suite")
	ErrInvalidSignature = errors.New("suite: invalid signature")
	ErrDecrypt          = errors.New("suite: decryption failed")
	// ErrInvalidKey covers key material (including AEAD nonces) of the wrong
	// length or outside its valid range.
	ErrInvalidKey = errors.New("suite: invalid key")
)

// labelPrefix is prepended to every label of §5.1.2, §5.1.3 and §8.
const labelPrefix = "MLS 1.0 "

// Suite is one cipher suite. It is immutable and safe for concurrent use.
type Suite struct {
	id      ID
	newHash func() hash.Hash
	nh      int
	aead    aeadScheme
	kem     kemScheme
	sig     signatureScheme
}

// aeadScheme is the AEAD of a suite (§5.1, RFC 9180 §7.3).
type aeadScheme struct {
	nk, nn int
	new    func(key []byte) (cipher.AEAD, error)
}

func newAESGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

var (
	aes128GCM        = aeadScheme{nk: 16, nn: 12, new: newAESGCM}
	aes256GCM        = aeadScheme{nk: 32, nn: 12, new: newAESGCM}
	chaCha20Poly1305 = aeadScheme{nk: chacha20poly1305.KeySize, nn: chacha20poly1305.NonceSize, new: chacha20poly1305.New}
)

// suites is the table of RFC 9420 §17.1 plus the X-Wing suite, indexed by
// ID: a sparse array keeps Lookup a bounds check and an index.
var suites = [...]*Suite{
	MLS128DHKEMX25519AES128GCMSHA256Ed25519: {
		id: MLS128DHKEMX25519AES128GCMSHA256Ed25519, newHash: sha256.New, nh: sha256.Size,
		aead: aes128GCM, kem: kemX25519AES128GCM, sig: ed25519Scheme{},
	},
	MLS128DHKEMP256AES128GCMSHA256P256: {
		id: MLS128DHKEMP256AES128GCMSHA256P256, newHash: sha256.New, nh: sha256.Size,
		aead: aes128GCM, kem: kemP256, sig: ecdsaP256,
	},
	MLS128DHKEMX25519CHACHA20POLY1305SHA256Ed25519: {
		id: MLS128DHKEMX25519CHACHA20POLY1305SHA256Ed25519, newHash: sha256.New, nh: sha256.Size,
		aead: chaCha20Poly1305, kem: kemX25519ChaCha20Poly1305, sig: ed25519Scheme{},
	},
	MLS256DHKEMX448AES256GCMSHA512Ed448: {
		id: MLS256DHKEMX448AES256GCMSHA512Ed448, newHash: sha512.New, nh: sha512.Size,
		aead: aes256GCM, kem: kemX448AES256GCM, sig: ed448Scheme{},
	},
	MLS256DHKEMP521AES256GCMSHA512P521: {
		id: MLS256DHKEMP521AES256GCMSHA512P521, newHash: sha512.New, nh: sha512.Size,
		aead: aes256GCM, kem: kemP521, sig: ecdsaP521,
	},
	MLS256DHKEMX448CHACHA20POLY1305SHA512Ed448: {
		id: MLS256DHKEMX448CHACHA20POLY1305SHA512Ed448, newHash: sha512.New, nh: sha512.Size,
		aead: chaCha20Poly1305, kem: kemX448ChaCha20Poly1305, sig: ed448Scheme{},
	},
	MLS256DHKEMP384AES256GCMSHA384P384: {
		id: MLS256DHKEMP384AES256GCMSHA384P384, newHash: sha512.New384, nh: sha512.Size384,
		aead: aes256GCM, kem: kemP384, sig: ecdsaP384,
	},
	MLS256XWINGAES256GCMSHA512Ed25519: {
		id: MLS256XWINGAES256GCMSHA512Ed25519, newHash: sha512.New, nh: sha512.Size,
		aead: aes256GCM, kem: kemXWingAES256GCM, sig: ed25519Scheme{},
	},
}

// IDs lists every supported suite in ascending order, for capabilities
// (§7.2) that must name them all.
func IDs() []ID {
	var ids []ID
	for id, s := range suites {
		if s != nil {
			ids = append(ids, ID(id))
		}
	}
	return ids
}

// Lookup returns the suite for id, or an error wrapping ErrUnsupported.
func Lookup(id ID) (*Suite, error) {
	if int(id) >= len(suites) || suites[id] == nil {
		return nil, fmt.Errorf("%w: 0x%04x", ErrUnsupported, uint16(id))
	}
	return suites[id], nil
}

// ID is the suite's code point.
func (s *Suite) ID() ID { return s.id }

// Nh is the hash output length (also the KDF.Nh of §5.1).
func (s *Suite) Nh() int { return s.nh }

// Hash is the suite's hash function.
func (s *Suite) Hash(data []byte) []byte {
	h := s.newHash()
	h.Write(data)
	return h.Sum(nil)
}

// Extract is KDF.Extract (HKDF-Extract).
func (s *Suite) Extract(salt, ikm []byte) []byte {
	prk, err := hkdf.Extract(s.newHash, ikm, salt)
	if err != nil {
		// Only FIPS 140-only mode refuses, and these suites' hashes are
		// approved; a failure here is a broken environment, not bad input.
		panic("suite: HKDF-Extract: " + err.Error())
	}
	return prk
}

// Expand is KDF.Expand (HKDF-Expand). It panics if length exceeds 255·Nh,
// the HKDF limit: MLS never asks for that much, so it is a programming error.
func (s *Suite) Expand(prk, info []byte, length int) []byte {
	out, err := hkdf.Expand(s.newHash, prk, string(info), length)
	if err != nil {
		panic("suite: HKDF-Expand: " + err.Error())
	}
	return out
}

// ExpandWithLabel is §8's ExpandWithLabel, with "MLS 1.0 " prefixed to label.
// It panics if length does not fit KDFLabel's uint16 or HKDF's limit.
func (s *Suite) ExpandWithLabel(secret []byte, label string, context []byte, length int) []byte {
	if length < 0 || length > 0xffff {
		panic(fmt.Sprintf("suite: ExpandWithLabel length %d does not fit a uint16", length))
	}
	// KDFLabel is built in place, as the string HKDF takes: this runs
	// several times per message (§9.1, §6.3.2), so it is one allocation.
	var info strings.Builder
	info.Grow(2 + 4 + 4 + len(labelPrefix) + len(label) + len(context))
	info.Write([]byte{byte(length >> 8), byte(length)})
	writeVarint(&info, len(labelPrefix)+len(label))
	info.WriteString(labelPrefix)
	info.WriteString(label)
	writeVarint(&info, len(context))
	info.Write(context)
	out, err := hkdf.Expand(s.newHash, secret, info.String(), length)
	if err != nil {
		panic("suite: HKDF-Expand: " + err.Error())
	}
	return out
}

// writeVarint writes the §2.1.2 variable-length encoding of n, as
// wire.AddVarint does, for the KDFLabel ExpandWithLabel builds as a
// string. MLS lengths of labels and contexts fit its 30 bits.
func writeVarint(w *strings.Builder, n int) {
	switch {
	case n < 1<<6:
		w.WriteByte(byte(n))
	case n < 1<<14:
		w.Write([]byte{byte(n>>8) | 0x40, byte(n)})
	case n < 1<<30:
		w.Write([]byte{byte(n>>24) | 0x80, byte(n >> 16), byte(n >> 8), byte(n)})
	default:
		panic(fmt.Sprintf("suite: KDFLabel field of %d bytes", n))
	}
}

// DeriveSecret is §8's DeriveSecret: ExpandWithLabel(secret, label, "", Nh).
func (s *Suite) DeriveSecret(secret []byte, label string) []byte {
	return s.ExpandWithLabel(secret, label, nil, s.nh)
}

// DeriveTreeSecret is §9's DeriveTreeSecret: the generation is the context,
// as a big-endian uint32.
func (s *Suite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) []byte {
	ctx := [4]byte{byte(generation >> 24), byte(generation >> 16), byte(generation >> 8), byte(generation)}
	return s.ExpandWithLabel(secret, label, ctx[:], length)
}

// MAC is the suite's MAC (HMAC with its hash), used for membership and
// confirmation tags (§6.2, §8.1).
func (s *Suite) MAC(key, data []byte) []byte {
	m := hmac.New(s.newHash, key)
	m.Write(data)
	return m.Sum(nil)
}

// RefHash is §5.2's RefHash(label, value). Unlike the other labelled
// operations, the label is used as given: callers pass the full
// "MLS 1.0 ..." string.
func (s *Suite) RefHash(label string, value []byte) []byte {
	return s.Hash(mustBytes(labelled([]byte(label), value), "RefHashInput"))
}

// AEADKeySize is AEAD.Nk.
func (s *Suite) AEADKeySize() int { return s.aead.nk }

// AEADNonceSize is AEAD.Nn.
func (s *Suite) AEADNonceSize() int { return s.aead.nn }

func (s *Suite) newAEAD(key, nonce []byte) (cipher.AEAD, error) {
	if len(key) != s.aead.nk {
		return nil, fmt.Errorf("%w: AEAD key is %d bytes, want %d", ErrInvalidKey, len(key), s.aead.nk)
	}
	if len(nonce) != s.aead.nn {
		return nil, fmt.Errorf("%w: AEAD nonce is %d bytes, want %d", ErrInvalidKey, len(nonce), s.aead.nn)
	}
	a, err := s.aead.new(key)
	if err != nil {
		return nil, fmt.Errorf("%w: AEAD key: %v", ErrInvalidKey, err)
	}
	return a, nil
}

// Seal is AEAD.Seal. It appends to nothing: the result is a fresh slice.
func (s *Suite) Seal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	return s.AppendSeal(nil, key, nonce, aad, plaintext)
}

// AEADOverhead is how many bytes AEAD.Seal adds to a plaintext: the tag,
// 16 bytes for every AEAD of §17.1.
const AEADOverhead = 16

// AppendSeal is AEAD.Seal appending to dst, as cipher.AEAD.Seal does: pass
// plaintext[:0] as dst, with AEADOverhead bytes of spare capacity, to
// encrypt in place without allocating.
func (s *Suite) AppendSeal(dst, key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := s.newAEAD(key, nonce)
	if err != nil {
		return nil, err
	}
	return a.Seal(dst, nonce, plaintext, aad), nil
}

// Open is AEAD.Open; authentication failure wraps ErrDecrypt.
func (s *Suite) Open(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := s.newAEAD(key, nonce)
	if err != nil {
		return nil, err
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: AEAD authentication", ErrDecrypt)
	}
	return pt, nil
}

// HPKESeedSize is the number of bytes GenerateKeyPair draws from rand and
// hands to DeriveKeyPair: the KEM's Nsk, the entropy RFC 9180 §7.1.3 asks of
// DeriveKeyPair's input.
func (s *Suite) HPKESeedSize() int { return s.kem.seedSize() }

// DeriveKeyPair is the KEM's DeriveKeyPair(ikm) (RFC 9180 §7.1.3), returning
// the serialized private and public keys.
func (s *Suite) DeriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	return s.kem.deriveKeyPair(ikm)
}

// GenerateKeyPair derives a fresh HPKE key pair from HPKESeedSize bytes of rand.
func (s *Suite) GenerateKeyPair(rand io.Reader) (priv, pub []byte, err error) {
	ikm := make([]byte, s.kem.seedSize())
	if _, err := io.ReadFull(rand, ikm); err != nil {
		return nil, nil, fmt.Errorf("suite: reading HPKE key seed: %w", err)
	}
	defer clear(ikm)
	return s.kem.deriveKeyPair(ikm)
}

// HPKEPublicKey returns the public key of a serialized private key.
func (s *Suite) HPKEPublicKey(priv []byte) ([]byte, error) {
	return s.kem.publicKey(priv)
}

// EncryptWithLabel is §5.1.3's EncryptWithLabel: HPKE base mode SealBase with
// info = EncryptContext{label, context} and empty aad.
func (s *Suite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	info, err := labelled([]byte(labelPrefix+label), context).Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("suite: encoding EncryptContext: %w", err)
	}
	return s.kem.seal(pub, info, plaintext)
}

// DecryptWithLabel is §5.1.3's DecryptWithLabel; failure wraps ErrDecrypt.
func (s *Suite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	info, err := labelled([]byte(labelPrefix+label), context).Bytes()
	if err != nil {
		return nil, fmt.Errorf("suite: encoding EncryptContext: %w", err)
	}
	return s.kem.open(priv, kemOutput, info, ciphertext)
}

// GenerateSignatureKey makes a signature key pair from rand, serialized as
// §5.1.2 says (raw Ed25519/Ed448 keys; ECDSA: the private scalar and the
// uncompressed SEC1 point). The key is a deterministic function of the bytes
// read from rand.
func (s *Suite) GenerateSignatureKey(rand io.Reader) (priv, pub []byte, err error) {
	return s.sig.generate(rand)
}

// SignaturePublicKey returns the public key of a serialized signature
// private key.
func (s *Suite) SignaturePublicKey(priv []byte) ([]byte, error) {
	return s.sig.publicKey(priv)
}

// SignWithLabel is §5.1.2's SignWithLabel.
func (s *Suite) SignWithLabel(priv []byte, label string, content []byte) ([]byte, error) {
	msg, err := labelled([]byte(labelPrefix+label), content).Bytes()
	if err != nil {
		return nil, fmt.Errorf("suite: encoding SignContent: %w", err)
	}
	return s.sig.sign(priv, msg)
}

// VerifyWithLabel is §5.1.2's VerifyWithLabel; a bad signature wraps
// ErrInvalidSignature.
func (s *Suite) VerifyWithLabel(pub []byte, label string, content, signature []byte) error {
	msg, err := labelled([]byte(labelPrefix+label), content).Bytes()
	if err != nil {
		return fmt.Errorf("suite: encoding SignContent: %w", err)
	}
	return s.sig.verify(pub, msg, signature)
}

// labelled builds the struct {opaque label<V>; opaque value<V>} shared by
// SignContent, EncryptContext and RefHashInput.
func labelled(label, value []byte) *cryptobyte.Builder {
	b := cryptobyte.NewBuilder(make([]byte, 0, len(label)+len(value)+8))
	wire.AddOpaque(b, label)
	wire.AddOpaque(b, value)
	return b
}

// mustBytes finishes b for the operations whose API has no error: encoding
// fails only for a field of 2^30 bytes or more, which MLS cannot carry.
func mustBytes(b *cryptobyte.Builder, what string) []byte {
	out, err := b.Bytes()
	if err != nil {
		panic(fmt.Sprintf("suite: encoding %s: %v", what, err))
	}
	return out
}
