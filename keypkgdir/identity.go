package keypkgdir

import (
	"bytes"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/cryptobyte"
)

const (
	identityVersion = 1
	// bindingContext separates credential bindings from records and from
	// anything else the libp2p key signs.
	bindingContext = "spacepanda credential binding v1\x00"
	// basicCredential is the basic credential type (RFC 9420 §5.3).
	basicCredential = 1
)

// NewIdentity makes the credential identity binding mlsSignatureKey to
// key's peer ID: the identity every spacepanda node puts in its basic
// credentials (RFC 9420 §5.3), so that any member can check, with no DHT
// lookup, that a leaf's signature key belongs to the peer it names.
func NewIdentity(key crypto.PrivKey, mlsSignatureKey []byte) ([]byte, error) {
	pub, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		return nil, fmt.Errorf("keypkgdir: encoding public key: %w", err)
	}
	sig, err := key.Sign(bindingMessage(mlsSignatureKey))
	if err != nil {
		return nil, fmt.Errorf("keypkgdir: signing credential binding: %w", err)
	}
	return marshalIdentity(pub, sig)
}

// PeerOf checks that identity, a basic credential's identity, binds
// signatureKey, the MLS signature key of the same leaf, and returns the
// peer it names. Its errors wrap ErrBadBinding.
func PeerOf(identity, signatureKey []byte) (peer.ID, error) {
	b, err := parseIdentity(identity)
	if err != nil {
		return "", err
	}
	if err := b.verify(signatureKey); err != nil {
		return "", err
	}
	return b.peer, nil
}

// CredentialValidator is the mlsgroup.CredentialValidator every spacepanda
// node sets: it accepts basic credentials only, whose identity binds the
// leaf's signature key (PeerOf). mlsgroup calls it for every leaf it is
// asked to trust, so every member, not only the inviter, refuses a leaf
// whose signature key its peer did not sign for. Which peers may be in a
// group is the application's to decide on top.
func CredentialValidator(credentialType uint16, identity, signatureKey []byte) error {
	if credentialType != basicCredential {
		return fmt.Errorf("%w: credential type %d, not basic", ErrBadBinding, credentialType)
	}
	_, err := PeerOf(identity, signatureKey)
	return err
}

// binding is a decoded identity whose signature is not yet verified.
type binding struct {
	pub  crypto.PubKey
	peer peer.ID
	sig  []byte
}

// parseIdentity decodes identity and derives the peer it names, without
// verifying the signature: the costly part, which the Validator leaves for
// last.
func parseIdentity(identity []byte) (*binding, error) {
	s := cryptobyte.String(identity)
	var version uint8
	var rawPub, sig []byte
	if !s.ReadUint8(&version) {
		return nil, fmt.Errorf("%w: empty identity", ErrBadBinding)
	}
	// Only versions this code knows are accepted: a later version carries
	// more (a user key's chain), and reading only its prefix would accept
	// a binding without checking what it claims.
	if version != identityVersion {
		return nil, fmt.Errorf("%w: identity version %d", ErrBadBinding, version)
	}
	if !readOpaque(&s, &rawPub) || !readOpaque(&s, &sig) {
		return nil, fmt.Errorf("%w: truncated identity", ErrBadBinding)
	}
	if !s.Empty() {
		return nil, fmt.Errorf("%w: %d bytes after the identity", ErrBadBinding, len(s))
	}
	pub, err := crypto.UnmarshalPublicKey(rawPub)
	if err != nil {
		return nil, fmt.Errorf("%w: public key: %w", ErrBadBinding, err)
	}
	// One encoding per key, so that one peer's binding of one MLS key has
	// one identity: mlsgroup's default succession rule compares identity
	// bytes.
	if canon, err := crypto.MarshalPublicKey(pub); err != nil || !bytes.Equal(canon, rawPub) {
		return nil, fmt.Errorf("%w: public key not in its canonical encoding", ErrBadBinding)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: peer ID: %w", ErrBadBinding, err)
	}
	return &binding{pub: pub, peer: id, sig: sig}, nil
}

// verify checks that b's peer signed signatureKey.
func (b *binding) verify(signatureKey []byte) error {
	ok, err := b.pub.Verify(bindingMessage(signatureKey), b.sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: %s did not sign for this MLS signature key", ErrBadBinding, b.peer)
	}
	return nil
}

func bindingMessage(mlsSignatureKey []byte) []byte {
	return append([]byte(bindingContext), mlsSignatureKey...)
}

func marshalIdentity(pub, sig []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(identityVersion)
	addOpaque(&b, pub)
	addOpaque(&b, sig)
	out, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("keypkgdir: encoding identity: %w", err)
	}
	return out, nil
}
