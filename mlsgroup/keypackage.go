package mlsgroup

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// CipherSuite is an MLS cipher suite code point (RFC 9420 §17.1).
type CipherSuite = suite.ID

// The cipher suites of RFC 9420 §17.1, all supported, and the X-Wing
// post-quantum hybrid suite.
const (
	X25519_AES128GCM_SHA256_Ed25519        = suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519
	P256_AES128GCM_SHA256_P256             = suite.MLS128DHKEMP256AES128GCMSHA256P256
	X25519_CHACHA20POLY1305_SHA256_Ed25519 = suite.MLS128DHKEMX25519CHACHA20POLY1305SHA256Ed25519
	X448_AES256GCM_SHA512_Ed448            = suite.MLS256DHKEMX448AES256GCMSHA512Ed448
	P521_AES256GCM_SHA512_P521             = suite.MLS256DHKEMP521AES256GCMSHA512P521
	X448_CHACHA20POLY1305_SHA512_Ed448     = suite.MLS256DHKEMX448CHACHA20POLY1305SHA512Ed448
	P384_AES256GCM_SHA384_P384             = suite.MLS256DHKEMP384AES256GCMSHA384P384

	// XWING_AES256GCM_SHA512_Ed25519 (83) is the post-quantum hybrid
	// suite: X-Wing (ML-KEM-768 + X25519) for HPKE, HKDF-SHA512,
	// AES-256-GCM and Ed25519, under the code point and name of the MLS
	// post-quantum cipher suites draft as ts-mls implements it.
	XWING_AES256GCM_SHA512_Ed25519 = suite.MLS256XWINGAES256GCMSHA512Ed25519

	// DefaultCipherSuite is the mandatory-to-implement suite 1.
	DefaultCipherSuite = X25519_AES128GCM_SHA256_Ed25519
)

func lookupSuite(cs CipherSuite) (*suite.Suite, error) {
	s, err := suite.Lookup(cs)
	if err != nil {
		return nil, fmt.Errorf("%w: 0x%04x", ErrUnsupportedCipherSuite, uint16(cs))
	}
	return s, nil
}

// Signer is a member's signature key pair (RFC 9420 §5.1.2) in one cipher
// suite: the key a node's identity signs its leaves and messages with.
type Signer struct {
	suite *suite.Suite
	priv  secret.Secret
	pub   []byte
	key   *suite.SigningKey // priv parsed once: signing is on every message's path
}

// newSigner wraps a private key and its public key.
func newSigner(s *suite.Suite, priv, pub []byte) (*Signer, error) {
	key, err := s.NewSigningKey(priv)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: signature key: %w", err)
	}
	return &Signer{suite: s, priv: secret.New(priv), pub: pub, key: key}, nil
}

// GenerateSigner makes a signature key pair for cs from rand.
func GenerateSigner(cs CipherSuite, rand io.Reader) (*Signer, error) {
	s, err := lookupSuite(cs)
	if err != nil {
		return nil, err
	}
	priv, pub, err := s.GenerateSignatureKey(rand)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: generating signature key: %w", err)
	}
	return newSigner(s, priv, pub)
}

// signerEncodingVersion versions Signer.MarshalBinary.
const signerEncodingVersion = 1

// MarshalBinary encodes the key pair for the node's Storage. The result
// holds the private key.
func (k *Signer) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(signerEncodingVersion)
	b.AddUint16(uint16(k.suite.ID()))
	wire.AddOpaque(&b, k.priv.Bytes())
	return b.Bytes()
}

// ParseSigner decodes what Signer.MarshalBinary wrote.
func ParseSigner(data []byte) (*Signer, error) {
	s := cryptobyte.String(data)
	var version uint8
	var cs uint16
	var priv []byte
	if !s.ReadUint8(&version) || version != signerEncodingVersion ||
		!s.ReadUint16(&cs) || !wire.ReadOpaqueCopy(&s, &priv) || !s.Empty() {
		return nil, fmt.Errorf("%w: signer encoding", ErrMalformed)
	}
	su, err := lookupSuite(CipherSuite(cs))
	if err != nil {
		return nil, err
	}
	pub, err := su.SignaturePublicKey(priv)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: signer: %w", err)
	}
	return newSigner(su, priv, pub)
}

// PublicKey is the signature public key as it appears in leaves.
func (k *Signer) PublicKey() []byte { return bytes.Clone(k.pub) }

// CipherSuite is the suite the key belongs to.
func (k *Signer) CipherSuite() CipherSuite { return k.suite.ID() }

func (k *Signer) sign(label string, content []byte) ([]byte, error) {
	return k.key.SignWithLabel(label, content)
}

// signLeaf signs a LeafNode (§7.2); groupID and leaf bind update and
// commit leaves to their place.
func (k *Signer) signLeaf(ln *mls.LeafNode, groupID []byte, leaf uint32) error {
	tbs, err := ln.MarshalTBS(groupID, leaf)
	if err != nil {
		return fmt.Errorf("mlsgroup: LeafNodeTBS: %w", err)
	}
	if ln.Signature, err = k.sign("LeafNodeTBS", tbs); err != nil {
		return fmt.Errorf("mlsgroup: signing leaf: %w", err)
	}
	return nil
}

// KeyPackageOptions tunes NewKeyPackage. The zero value gives the defaults.
type KeyPackageOptions struct {
	// Lifetime is how long the KeyPackage stays valid from now; zero means
	// DefaultKeyPackageLifetime.
	Lifetime time.Duration
	// Backdate moves not_before into the past, so that a peer whose clock
	// is a little behind does not refuse a fresh KeyPackage; zero means
	// DefaultKeyPackageBackdate, negative means none.
	Backdate time.Duration
	// Capabilities lists what the member supports beyond the defaults.
	Capabilities Capabilities
	// Extensions are the KeyPackage's extensions (§10).
	Extensions []Extension
	// LeafExtensions are the extensions of its leaf node (§7.2), such as
	// application_id; each non-default type must be in Capabilities.
	LeafExtensions []Extension
	// NotBefore and NotAfter, if set, are the lifetime's bounds, in place
	// of those Lifetime and Backdate give.
	NotBefore, NotAfter time.Time
	// LastResort marks the KeyPackage a node keeps published so that it
	// can always be invited. NewKeyPackage passes it to the Storage, whose
	// rule keeps such a KeyPackage's private keys after a join consumed
	// it; the KeyPackage itself is the same.
	LastResort bool
}

// lifetime turns the options into a §7.2 Lifetime starting at now.
func (o *KeyPackageOptions) lifetime(now time.Time) mls.Lifetime {
	lifetime, backdate := o.Lifetime, o.Backdate
	if lifetime <= 0 {
		lifetime = DefaultKeyPackageLifetime
	}
	if backdate == 0 {
		backdate = DefaultKeyPackageBackdate
	}
	backdate = max(backdate, 0)
	lt := mls.Lifetime{
		NotBefore: unixSeconds(now.Add(-backdate)),
		NotAfter:  unixSeconds(now.Add(lifetime)),
	}
	if !o.NotBefore.IsZero() {
		lt.NotBefore = unixSeconds(o.NotBefore)
	}
	if !o.NotAfter.IsZero() {
		lt.NotAfter = unixSeconds(o.NotAfter)
	}
	return lt
}

// Defaults of KeyPackageOptions. Four weeks bounds how long a published
// KeyPackage, and the private init key behind it, can be used; an hour
// covers ordinary clock skew.
const (
	DefaultKeyPackageLifetime = 28 * 24 * time.Hour
	DefaultKeyPackageBackdate = time.Hour
)

// KeyPackage is a parsed MLS KeyPackage (RFC 9420 §10) with its
// MLSMessage encoding and KeyPackageRef. It is immutable.
type KeyPackage struct {
	kp    mls.KeyPackage
	suite *suite.Suite
	msg   []byte // MLSMessage encoding
	ref   []byte
}

// keyPackagePrivateVersion versions the private half handed to Storage.
const keyPackagePrivateVersion = 1

// keyPackagePrivate is the private half of a KeyPackage as Storage holds it:
// the KeyPackage itself (to find one's own leaf in a Welcome's tree) and the
// private init and leaf encryption keys.
type keyPackagePrivate struct {
	msg     []byte
	initKey secret.Secret
	leafKey secret.Secret
}

func (p *keyPackagePrivate) marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(keyPackagePrivateVersion)
	wire.AddOpaque(&b, p.msg)
	wire.AddOpaque(&b, p.initKey.Bytes())
	wire.AddOpaque(&b, p.leafKey.Bytes())
	return b.Bytes()
}

func parseKeyPackagePrivate(data []byte) (*keyPackagePrivate, error) {
	s := cryptobyte.String(data)
	var version uint8
	var msg, initKey, leafKey []byte
	if !s.ReadUint8(&version) || version != keyPackagePrivateVersion ||
		!wire.ReadOpaqueCopy(&s, &msg) || !wire.ReadOpaqueCopy(&s, &initKey) ||
		!wire.ReadOpaqueCopy(&s, &leafKey) || !s.Empty() {
		return nil, fmt.Errorf("%w: stored KeyPackage private keys", ErrMalformed)
	}
	return &keyPackagePrivate{msg: msg, initKey: secret.New(initKey), leafKey: secret.New(leafKey)}, nil
}

// defaultCapabilities lists what this implementation supports, for
// KeyPackage and commit leaves alike. §7.2 asks for every supported value
// to be listed, except RFC 9420's own extension and proposal types, which
// are "default" and must not be.
func defaultCapabilities() mls.Capabilities {
	return mls.Capabilities{
		Versions:     []mls.ProtocolVersion{mls.MLS10},
		CipherSuites: suite.IDs(),
		Credentials:  []mls.CredentialType{mls.CredentialBasic},
	}
}

// NewKeyPackage makes a KeyPackage for identity (a basic credential, §5.3)
// signed by signer, and stores its private keys in st under its
// KeyPackageRef, where a later join finds them. rand supplies the init and
// leaf key pairs; now anchors the lifetime.
func NewKeyPackage(st Storage, identity []byte, signer *Signer, opts KeyPackageOptions, rand io.Reader, now time.Time) (*KeyPackage, error) {
	s := signer.suite
	initPriv, initPub, err := s.GenerateKeyPair(rand)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: init key: %w", err)
	}
	leafPriv, leafPub, err := s.GenerateKeyPair(rand)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: leaf encryption key: %w", err)
	}
	kp := mls.KeyPackage{
		Version:     mls.MLS10,
		CipherSuite: s.ID(),
		InitKey:     initPub,
		LeafNode: mls.LeafNode{
			EncryptionKey: leafPub,
			SignatureKey:  signer.pub,
			Credential:    mls.Credential{Type: mls.CredentialBasic, Identity: bytes.Clone(identity)},
			Capabilities:  opts.Capabilities.capabilities(),
			Source:        mls.LeafNodeSourceKeyPackage,
			Lifetime:      opts.lifetime(now),
			Extensions:    importExtensions(opts.LeafExtensions),
		},
		Extensions: importExtensions(opts.Extensions),
	}
	if err := checkOwnExtensions(&kp.LeafNode, kp.Extensions); err != nil {
		return nil, err
	}
	if err := signer.signLeaf(&kp.LeafNode, nil, 0); err != nil {
		return nil, err
	}
	tbs, err := kp.MarshalTBS()
	if err != nil {
		return nil, err
	}
	if kp.Signature, err = signer.sign("KeyPackageTBS", tbs); err != nil {
		return nil, fmt.Errorf("mlsgroup: signing KeyPackage: %w", err)
	}
	k, err := newKeyPackage(s, kp)
	if err != nil {
		return nil, err
	}
	priv, err := (&keyPackagePrivate{msg: k.msg, initKey: secret.New(initPriv), leafKey: secret.New(leafPriv)}).marshal()
	if err != nil {
		return nil, err
	}
	if err := st.PutKeyPackage(k.ref, priv, kp.LeafNode.Lifetime.NotAfter, opts.LastResort); err != nil {
		return nil, fmt.Errorf("mlsgroup: storing KeyPackage private keys: %w", err)
	}
	return k, nil
}

// unixSeconds is t as a Lifetime bound; times before 1970 clamp to 0.
func unixSeconds(t time.Time) uint64 { return uint64(max(t.Unix(), 0)) }

func newKeyPackage(s *suite.Suite, kp mls.KeyPackage) (*KeyPackage, error) {
	msg, err := wire.Marshal(&mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: &kp})
	if err != nil {
		return nil, err
	}
	ref, err := mls.KeyPackageRef(s, &kp)
	if err != nil {
		return nil, err
	}
	return &KeyPackage{kp: kp, suite: s, msg: msg, ref: ref}, nil
}

// ParseKeyPackage decodes an MLSMessage holding a KeyPackage. It checks the
// encoding only; call Validate before trusting it.
func ParseKeyPackage(msg []byte) (*KeyPackage, error) {
	var m mls.MLSMessage
	if err := wire.Unmarshal(msg, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.WireFormat != mls.WireFormatKeyPackage {
		return nil, fmt.Errorf("%w: wire format %d is not a KeyPackage", ErrMalformed, m.WireFormat)
	}
	s, err := lookupSuite(m.KeyPackage.CipherSuite)
	if err != nil {
		return nil, err
	}
	return newKeyPackage(s, *m.KeyPackage)
}

// Bytes is the KeyPackage as an MLSMessage, the form it travels in. The
// caller must not modify it.
func (k *KeyPackage) Bytes() []byte { return k.msg }

// Ref is the KeyPackageRef (§5.2) that names the KeyPackage in a Welcome.
func (k *KeyPackage) Ref() []byte { return bytes.Clone(k.ref) }

// CipherSuite is the KeyPackage's suite.
func (k *KeyPackage) CipherSuite() CipherSuite { return k.kp.CipherSuite }

// Identity is the identity of the KeyPackage's basic credential (nil for
// other credential types).
func (k *KeyPackage) Identity() []byte { return bytes.Clone(k.kp.LeafNode.Credential.Identity) }

// SignatureKey is the signature public key of the KeyPackage's leaf.
func (k *KeyPackage) SignatureKey() []byte { return bytes.Clone(k.kp.LeafNode.SignatureKey) }

// NotAfter is the end of the KeyPackage's lifetime.
func (k *KeyPackage) NotAfter() time.Time { return lifetimeBound(k.kp.LeafNode.Lifetime.NotAfter) }

// NotBefore is the start of the KeyPackage's lifetime.
func (k *KeyPackage) NotBefore() time.Time { return lifetimeBound(k.kp.LeafNode.Lifetime.NotBefore) }

// lifetimeBound turns a Lifetime bound into a time, saturating the
// "forever" values some implementations use (up to 2^64-1).
func lifetimeBound(sec uint64) time.Time {
	if sec > math.MaxInt64/2 {
		sec = math.MaxInt64 / 2
	}
	return time.Unix(int64(sec), 0)
}

// CredentialValidator is the node's say in which identities it accepts
// (§5.3.1): mlsgroup calls it for every credential it is asked to trust
// (KeyPackages to add, Update and commit leaves, every leaf of a tree it
// joins, external senders) and refuses the credential when it returns an
// error. identity is a basic credential's identity, or the DER of an x509
// credential's first certificate.
type CredentialValidator func(credentialType uint16, identity []byte, signatureKey []byte) error

// CredentialSuccession decides whether a member may present newIdentity
// in place of oldIdentity (§5.3.1: "the AS MUST also verify that the set
// of presented identifiers in the new credential is valid as a successor
// to the set of presented identifiers in the old credential"). Identities
// are as CredentialValidator receives them.
type CredentialSuccession func(oldType uint16, oldIdentity []byte, newType uint16, newIdentity []byte) error

// ValidationOptions are the application's choices that RFC 9420 leaves to
// it. The zero value accepts any basic credential and any lifetime length,
// and lets no member change its identity.
type ValidationOptions struct {
	// Credentials, if set, vets every credential.
	Credentials CredentialValidator
	// Succession, if set, decides when a member replaces its leaf (an
	// Update proposal, or the path of its own commit) whether the new
	// credential may succeed the old one. If nil, it must be of the same
	// type with the same identity: a member cannot rename itself, and an
	// application with certificates that renew sets its own rule.
	Succession CredentialSuccession
	// MaxLifetime, if positive, refuses leaves whose lifetime spans more
	// (§7.2 asks applications to set one; interop peers such as ts-mls
	// default to an unbounded lifetime, so it is opt-in).
	MaxLifetime time.Duration
}

// Validate runs §10.1's checks on a KeyPackage received for an Add: a
// supported version and suite, a valid leaf node (§7.3, including the
// lifetime against now), a valid signature, and an init key distinct from
// the leaf's encryption key.
func (k *KeyPackage) Validate(now time.Time, opts ValidationOptions) error {
	return validateKeyPackage(k.suite, &k.kp, now, opts)
}

// leafContext is what §7.3's leaf checks need beyond the leaf itself.
type leafContext struct {
	now     time.Time
	opts    ValidationOptions
	groupID []byte // for update and commit leaves
	leaf    uint32 // the leaf index, for update and commit leaves
	// source, if set, is the leaf_node_source the leaf must have.
	source mls.LeafNodeSource
	// skipSignature leaves out the signature check, for leaves whose
	// signatures were checked together (a received tree's).
	skipSignature bool
	// skipLifetime leaves out the lifetime check, for key package leaves
	// that entered the tree long ago (§7.3 only recommends checking them).
	skipLifetime bool
}

// validateLeafNode runs the group-independent checks of §7.3: signature,
// lifetime (key package leaves), the credential, and that the leaf supports
// its own suite, version and credential type and lists every non-default
// extension it carries. Group-dependent checks (required_capabilities,
// uniqueness of keys in the tree) are the group's.
func validateLeafNode(s *suite.Suite, ln *mls.LeafNode, c leafContext) error {
	if c.source != 0 && ln.Source != c.source {
		return fmt.Errorf("%w: leaf_node_source %d, want %d", ErrInvalidLeafNode, ln.Source, c.source)
	}
	if !c.skipSignature {
		tbs, err := ln.MarshalTBS(c.groupID, c.leaf)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidLeafNode, err)
		}
		if err := s.VerifyWithLabel(ln.SignatureKey, "LeafNodeTBS", tbs, ln.Signature); err != nil {
			return fmt.Errorf("%w: leaf node signature", ErrInvalidSignature)
		}
	}
	if ln.Source == mls.LeafNodeSourceKeyPackage && !c.skipLifetime {
		lt := ln.Lifetime
		now := unixSeconds(c.now)
		if now < lt.NotBefore || now > lt.NotAfter {
			return fmt.Errorf("%w: valid %s to %s, now %s", ErrKeyPackageExpired,
				lifetimeBound(lt.NotBefore).UTC().Format(time.RFC3339),
				lifetimeBound(lt.NotAfter).UTC().Format(time.RFC3339), c.now.UTC().Format(time.RFC3339))
		}
		if c.opts.MaxLifetime > 0 && lt.NotAfter-lt.NotBefore > uint64(c.opts.MaxLifetime/time.Second) {
			return fmt.Errorf("%w: lifetime longer than the %s allowed", ErrInvalidLeafNode, c.opts.MaxLifetime)
		}
	}
	caps := &ln.Capabilities
	if !slices.Contains(caps.Versions, mls.MLS10) || !slices.Contains(caps.CipherSuites, s.ID()) {
		return fmt.Errorf("%w: capabilities omit its own version or cipher suite", ErrInvalidLeafNode)
	}
	if !slices.Contains(caps.Credentials, ln.Credential.Type) {
		return fmt.Errorf("%w: capabilities omit its own credential type %d", ErrInvalidLeafNode, ln.Credential.Type)
	}
	if err := mls.ValidateExtensions(ln.Extensions); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLeafNode, err)
	}
	for _, e := range ln.Extensions {
		if !isDefaultExtension(e.Type) && !slices.Contains(caps.Extensions, e.Type) {
			return fmt.Errorf("%w: extension %d not listed in its capabilities", ErrInvalidLeafNode, e.Type)
		}
	}
	if c.opts.Credentials != nil {
		if err := c.opts.Credentials(uint16(ln.Credential.Type), presentedIdentity(ln), ln.SignatureKey); err != nil {
			return fmt.Errorf("%w: %w", ErrCredentialRejected, err)
		}
	}
	return nil
}

// presentedIdentity is the identity a leaf's credential presents: a basic
// credential's identity, or the DER of an x509 credential's first
// certificate.
func presentedIdentity(ln *mls.LeafNode) []byte {
	if ln.Credential.Type == mls.CredentialX509 && len(ln.Credential.Certificates) > 0 {
		return ln.Credential.Certificates[0]
	}
	return ln.Credential.Identity
}

// checkSuccession checks that a member's new leaf may replace its old one
// as far as credentials go (§5.3.1), by opts.Succession or, without one,
// by requiring the same credential type and identity.
func checkSuccession(opts ValidationOptions, old, next *mls.LeafNode) error {
	oldType, nextType := uint16(old.Credential.Type), uint16(next.Credential.Type)
	oldID, nextID := presentedIdentity(old), presentedIdentity(next)
	if opts.Succession != nil {
		if err := opts.Succession(oldType, oldID, nextType, nextID); err != nil {
			return fmt.Errorf("%w: %w", ErrCredentialRejected, err)
		}
		return nil
	}
	if oldType != nextType || !bytes.Equal(oldID, nextID) {
		return fmt.Errorf("%w: credential changes from type %d identity %x to type %d identity %x", ErrCredentialRejected, oldType, oldID, nextType, nextID)
	}
	return nil
}

// isDefaultExtension reports whether t is one of RFC 9420's own extensions,
// which every implementation supports without listing (§7.2).
func isDefaultExtension(t mls.ExtensionType) bool {
	return t >= mls.ExtApplicationID && t <= mls.ExtExternalSenders
}

// checkOwnExtensions checks the extensions this member puts into its own
// leaf (and KeyPackage): no type twice (§13.4), and every non-default leaf
// extension listed in the leaf's capabilities (§7.2).
func checkOwnExtensions(ln *mls.LeafNode, kpExts []mls.Extension) error {
	if err := mls.ValidateExtensions(kpExts); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if err := mls.ValidateExtensions(ln.Extensions); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidLeafNode, err)
	}
	for _, e := range ln.Extensions {
		if !isDefaultExtension(e.Type) && !slices.Contains(ln.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("%w: extension %d not listed in Capabilities", ErrInvalidLeafNode, e.Type)
		}
	}
	return nil
}
