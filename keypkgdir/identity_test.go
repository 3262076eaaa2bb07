package keypkgdir

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// identityOf builds an Identity field by field, as a forger would.
func identityOf(tb testing.TB, version uint8, pub, sig []byte) []byte {
	tb.Helper()
	var b cryptobyte.Builder
	b.AddUint8(version)
	addOpaque(&b, pub)
	addOpaque(&b, sig)
	out, err := b.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func publicKey(tb testing.TB, key crypto.PrivKey) []byte {
	tb.Helper()
	pub, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

func TestIdentityRoundTrip(t *testing.T) {
	a := newTestPeer(t, 1)
	mlsKey := a.signer.PublicKey()
	identity, err := NewIdentity(a.key, mlsKey)
	if err != nil {
		t.Fatal(err)
	}
	p, err := PeerOf(identity, mlsKey)
	if err != nil || p != a.id {
		t.Fatalf("PeerOf: %s, %v; want %s", p, err, a.id)
	}
	if err := CredentialValidator(basicCredential, identity, mlsKey); err != nil {
		t.Fatalf("CredentialValidator: %v", err)
	}
	// Ed25519 signs deterministically: the same binding, the same bytes,
	// which mlsgroup's default succession rule relies on.
	again, err := NewIdentity(a.key, mlsKey)
	if err != nil || !bytes.Equal(again, identity) {
		t.Fatalf("a second NewIdentity gives other bytes (%v)", err)
	}
	// The layout of the brief's struct: version, then two opaque<2^16-1>.
	pub := publicKey(t, a.key)
	if identity[0] != 1 || !bytes.Equal(identity[3:3+len(pub)], pub) || int(identity[1])<<8|int(identity[2]) != len(pub) {
		t.Fatalf("identity %x is not version 1 then the public key", identity)
	}
}

// TestPeerOfRefuses covers each way an identity fails to bind a key: every
// one must be refused with ErrBadBinding, by PeerOf and CredentialValidator.
func TestPeerOfRefuses(t *testing.T) {
	a, b := newTestPeer(t, 1), newTestPeer(t, 2)
	mlsKey := a.signer.PublicKey()
	good, err := NewIdentity(a.key, mlsKey)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := a.key.Sign(bindingMessage(mlsKey))
	if err != nil {
		t.Fatal(err)
	}
	broken := slices.Clone(sig)
	broken[0] ^= 1
	ofOther, err := NewIdentity(a.key, b.signer.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	withoutContext, err := a.key.Sign(mlsKey)
	if err != nil {
		t.Fatal(err)
	}
	// The same Ed25519 key with its two protobuf fields swapped: it
	// unmarshals, but is not the one encoding of the key.
	pub := publicKey(t, a.key)
	swapped := append(slices.Clone(pub[2:]), pub[:2]...)
	if _, err := crypto.UnmarshalPublicKey(swapped); err != nil {
		t.Fatalf("swapped encoding does not unmarshal (%v): the case tests nothing", err)
	}

	for _, tc := range []struct {
		name     string
		identity []byte
	}{
		{"forged signature", identityOf(t, 1, pub, broken)},
		{"binding of another MLS key", ofOther},
		{"signature without the context", identityOf(t, 1, pub, withoutContext)},
		{"another peer's public key", identityOf(t, 1, publicKey(t, b.key), sig)},
		{"raw peer ID", []byte(a.id)},
		{"empty", nil},
		{"unknown version", identityOf(t, 2, pub, sig)},
		{"version 0", identityOf(t, 0, pub, sig)},
		{"trailing byte", append(slices.Clone(good), 0)},
		{"trailing field", append(slices.Clone(good), 0, 1, 7)},
		{"public key not a key", identityOf(t, 1, []byte("not a key"), sig)},
		{"public key not canonical", identityOf(t, 1, swapped, sig)},
		{"no signature", identityOf(t, 1, pub, nil)},
		{"field longer than the identity", append([]byte{1, 0xff, 0xff}, pub...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := PeerOf(tc.identity, mlsKey); !errors.Is(err, ErrBadBinding) {
				t.Fatalf("PeerOf: %s, %v; want ErrBadBinding", p, err)
			}
			if err := CredentialValidator(basicCredential, tc.identity, mlsKey); !errors.Is(err, ErrBadBinding) {
				t.Fatalf("CredentialValidator: %v, want ErrBadBinding", err)
			}
		})
	}
	for i := range good {
		if _, err := PeerOf(good[:i], mlsKey); !errors.Is(err, ErrBadBinding) {
			t.Fatalf("identity truncated to %d bytes: %v", i, err)
		}
	}
	if err := CredentialValidator(2, good, mlsKey); !errors.Is(err, ErrBadBinding) {
		t.Fatalf("an x509 credential: %v, want ErrBadBinding", err)
	}
}

// FuzzPeerOf: no input panics, and what is accepted is an identity
// NewIdentity could have made: it re-encodes to its own bytes, and since
// only the seed's key signed, it names that key's peer.
func FuzzPeerOf(f *testing.F) {
	a, b := newTestPeer(f, 1), newTestPeer(f, 2)
	mlsKey := a.signer.PublicKey()
	for _, k := range []crypto.PrivKey{a.key, b.key} {
		id, err := NewIdentity(k, mlsKey)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(id, mlsKey)
		f.Add(id, b.signer.PublicKey())
	}
	f.Add([]byte(a.id), mlsKey)
	f.Fuzz(func(t *testing.T, identity, signatureKey []byte) {
		p, err := PeerOf(identity, signatureKey)
		if err != nil {
			if !errors.Is(err, ErrBadBinding) {
				t.Fatalf("PeerOf error %v does not wrap ErrBadBinding", err)
			}
			return
		}
		if p != a.id && p != b.id {
			t.Fatalf("identity %x accepted for %s, whose key signed nothing", identity, p)
		}
		bd, err := parseIdentity(identity)
		if err != nil {
			t.Fatalf("accepted identity does not parse: %v", err)
		}
		pub, err := crypto.MarshalPublicKey(bd.pub)
		if err != nil {
			t.Fatal(err)
		}
		again, err := marshalIdentity(pub, bd.sig)
		if err != nil || !bytes.Equal(again, identity) {
			t.Fatalf("identity %x re-encodes to %x (%v)", identity, again, err)
		}
	})
}

// TestGroupRefusesForgedBinding: in a group whose members set
// CredentialValidator, anyone holding the group can check a KeyPackage's
// binding: Add of bob's KeyPackage works, and Add of mallory's KeyPackage
// carrying bob's identity (his genuine binding of his own MLS key, copied)
// or a binding with a broken signature is refused.
func TestGroupRefusesForgedBinding(t *testing.T) {
	alice, bob, mallory := newTestPeer(t, 1), newTestPeer(t, 2), newTestPeer(t, 3)
	cfg := mlsgroup.Config{Storage: alice.st, Rand: alice.rand, Now: fixedClock(testNow),
		Validation: mlsgroup.ValidationOptions{Credentials: CredentialValidator}}
	g, err := mlsgroup.CreateGroup(cfg, []byte("group"), bound(t, alice.key, alice.signer), alice.signer, mlsgroup.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bobs := bob.keyPackage(t, bob.key, testNow)
	broken := slices.Clone(bound(t, mallory.key, mallory.signer))
	broken[len(broken)-1] ^= 1
	for _, tc := range []struct {
		name string
		kp   *mlsgroup.KeyPackage
		ok   bool
	}{
		{"bob's", bobs, true},
		{"bob's identity on mallory's key", mallory.keyPackageWith(t, bobs.Identity(), testNow), false},
		{"broken signature", mallory.keyPackageWith(t, broken, testNow), false},
		{"raw peer ID", mallory.keyPackageWith(t, []byte(mallory.id), testNow), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := g.Commit(mlsgroup.CommitOptions{Proposals: []mlsgroup.Proposal{mlsgroup.AddProposal(tc.kp)}})
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Add: %v", err)
			case !tc.ok && (!errors.Is(err, mlsgroup.ErrCredentialRejected) || !errors.Is(err, ErrBadBinding)):
				t.Fatalf("Add: %v, want ErrCredentialRejected and ErrBadBinding", err)
			}
		})
	}
}
