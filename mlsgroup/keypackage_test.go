package mlsgroup

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
)

// seeded returns a deterministic randomness source, so that failures
// replay.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

var testNow = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newTestKeyPackage(t testing.TB, st Storage, cs CipherSuite, identity string) (*KeyPackage, *Signer) {
	t.Helper()
	r := seeded(uint64(len(identity)) + uint64(cs))
	signer, err := GenerateSigner(cs, r)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := NewKeyPackage(st, []byte(identity), signer, KeyPackageOptions{}, r, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return kp, signer
}

// TestKeyPackageRoundTripAndValidate covers §10 and §10.1 for every suite:
// a fresh KeyPackage parses back to the same bytes and ref, validates, and
// its private keys are in the Storage it was made with, under its ref.
func TestKeyPackageRoundTripAndValidate(t *testing.T) {
	for _, cs := range suite.IDs() {
		var st MemoryStorage
		kp, _ := newTestKeyPackage(t, &st, cs, "bob")
		parsed, err := ParseKeyPackage(kp.Bytes())
		if err != nil {
			t.Fatalf("suite %d: %v", cs, err)
		}
		if !bytes.Equal(parsed.Ref(), kp.Ref()) || !bytes.Equal(parsed.Bytes(), kp.Bytes()) {
			t.Fatalf("suite %d: parse changed the KeyPackage", cs)
		}
		if err := parsed.Validate(testNow, ValidationOptions{}); err != nil {
			t.Fatalf("suite %d: fresh KeyPackage invalid: %v", cs, err)
		}
		if string(parsed.Identity()) != "bob" || parsed.CipherSuite() != cs {
			t.Fatalf("suite %d: identity %q suite %d", cs, parsed.Identity(), parsed.CipherSuite())
		}
		priv, status, err := st.KeyPackage(kp.Ref())
		if err != nil || status != KeyPackageAvailable || len(priv) == 0 {
			t.Fatalf("suite %d: storage has status %d (%v)", cs, status, err)
		}
		if _, err := parseKeyPackagePrivate(priv); err != nil {
			t.Fatalf("suite %d: stored private half: %v", cs, err)
		}
	}
}

func TestKeyPackageLifetime(t *testing.T) {
	var st MemoryStorage
	kp, _ := newTestKeyPackage(t, &st, DefaultCipherSuite, "bob")
	if !kp.NotAfter().Equal(testNow.Add(DefaultKeyPackageLifetime)) ||
		!kp.NotBefore().Equal(testNow.Add(-DefaultKeyPackageBackdate)) {
		t.Fatalf("lifetime %s..%s", kp.NotBefore(), kp.NotAfter())
	}
	for _, at := range []time.Time{testNow.Add(DefaultKeyPackageLifetime + time.Second), testNow.Add(-2 * time.Hour)} {
		if err := kp.Validate(at, ValidationOptions{}); !errors.Is(err, ErrKeyPackageExpired) {
			t.Errorf("validate at %s: err = %v, want ErrKeyPackageExpired", at, err)
		}
	}
	err := kp.Validate(testNow, ValidationOptions{MaxLifetime: 24 * time.Hour})
	if !errors.Is(err, ErrInvalidLeafNode) {
		t.Errorf("28-day KeyPackage under a 1-day maximum: err = %v", err)
	}
}

func TestKeyPackageTamperingDetected(t *testing.T) {
	var st MemoryStorage
	kp, _ := newTestKeyPackage(t, &st, DefaultCipherSuite, "bob")
	raw := kp.Bytes()
	// The last byte is inside the KeyPackage signature; the identity sits in
	// the leaf's credential and is covered by both signatures.
	sigFlip := bytes.Clone(raw)
	sigFlip[len(sigFlip)-1] ^= 1
	idFlip := bytes.Replace(raw, []byte("bob"), []byte("eve"), 1)
	for name, b := range map[string][]byte{"signature": sigFlip, "identity": idFlip} {
		k, err := ParseKeyPackage(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := k.Validate(testNow, ValidationOptions{}); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("%s tampered: err = %v, want ErrInvalidSignature", name, err)
		}
	}
	reject := errors.New("not on the allow list")
	err := kp.Validate(testNow, ValidationOptions{Credentials: func(_ uint16, id, _ []byte) error {
		if string(id) != "alice" {
			return reject
		}
		return nil
	}})
	if !errors.Is(err, ErrCredentialRejected) || !errors.Is(err, reject) {
		t.Errorf("credential hook: err = %v", err)
	}
	if _, err := ParseKeyPackage(raw[:len(raw)-1]); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated: err = %v, want ErrMalformed", err)
	}
}

func TestSignerRoundTrip(t *testing.T) {
	for _, cs := range suite.IDs() {
		s, err := GenerateSigner(cs, seeded(uint64(cs)))
		if err != nil {
			t.Fatal(err)
		}
		enc, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseSigner(enc)
		if err != nil {
			t.Fatalf("suite %d: %v", cs, err)
		}
		if !bytes.Equal(back.PublicKey(), s.PublicKey()) || back.CipherSuite() != cs {
			t.Fatalf("suite %d: signer changed in the round trip", cs)
		}
	}
}
