package suite

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestXWingParameters pins the code point and the sizes of suite 83
// (draft-ietf-mls-pq-ciphersuites; X-Wing sizes from draft-ietf-hpke-pq:
// 32-byte seed, 1216-byte public key, 1120-byte encapsulation).
func TestXWingParameters(t *testing.T) {
	if MLS256XWINGAES256GCMSHA512Ed25519 != 83 {
		t.Fatalf("X-Wing suite code point = %d, want 83", MLS256XWINGAES256GCMSHA512Ed25519)
	}
	s := mustLookup(t, MLS256XWINGAES256GCMSHA512Ed25519)
	priv, pub, err := s.GenerateKeyPair(rand.NewChaCha8([32]byte{83}))
	if err != nil {
		t.Fatal(err)
	}
	kemOut, ct, err := s.EncryptWithLabel(pub, "Welcome", nil, make([]byte, 64))
	if err != nil {
		t.Fatal(err)
	}
	if len(priv) != 32 || len(pub) != 1216 || len(kemOut) != 1120 || len(ct) != 64+16 {
		t.Errorf("priv, pub, kem_output, ciphertext sizes = %d, %d, %d, %d, want 32, 1216, 1120, 80",
			len(priv), len(pub), len(kemOut), len(ct))
	}
	if !slices.Contains(IDs(), MLS256XWINGAES256GCMSHA512Ed25519) {
		t.Errorf("IDs() = %v lacks the X-Wing suite", IDs())
	}
}

// TestXWingDeriveKeyPairKAT checks DeriveKeyPair against the
// MLKEM768-X25519 vector of draft-ietf-hpke-pq (ikmR -> skRm, pkRm; the
// 1216-byte public key is compared through its SHA-256).
func TestXWingDeriveKeyPairKAT(t *testing.T) {
	ikm := mustHex(t, "0379761fa4f6869592b0d1f9a71eb92b122dc030a7a8858132109f6b1a4bbde4")
	wantPriv := mustHex(t, "b3f98b03126a431ccecc62ae0f68e102c2d8e1cc7b21ba85d821d8e31761e0f8")
	wantPubHash := mustHex(t, "120b60e0ae3c00c1c9def1c61aeb12de710bfa49646ae6f99a7e564b25ace493")
	s := mustLookup(t, MLS256XWINGAES256GCMSHA512Ed25519)
	priv, pub, err := s.DeriveKeyPair(ikm)
	if err != nil {
		t.Fatal(err)
	}
	checkBytes(t, "skRm", priv, wantPriv)
	pubHash := sha256.Sum256(pub)
	checkBytes(t, "SHA-256(pkRm)", pubHash[:], wantPubHash)
}

// TestXWingDeriveKeyPairNhSecrets covers how MLS uses DeriveKeyPair
// (§7.4 node keys, §8 external key): Nh = 64-byte secrets, which must map
// deterministically to distinct key pairs, and agree with crypto/hpke.
func TestXWingDeriveKeyPairNhSecrets(t *testing.T) {
	s := mustLookup(t, MLS256XWINGAES256GCMSHA512Ed25519)
	r := rand.NewChaCha8([32]byte{0x53})
	seen := map[string]bool{}
	for i := range 8 {
		ikm := make([]byte, s.Nh())
		r.Read(ikm)
		priv, pub, err := s.DeriveKeyPair(ikm)
		if err != nil {
			t.Fatalf("secret %d: %v", i, err)
		}
		priv2, pub2, err := s.DeriveKeyPair(bytes.Clone(ikm))
		if err != nil || !bytes.Equal(priv, priv2) || !bytes.Equal(pub, pub2) {
			t.Fatalf("secret %d: DeriveKeyPair is not deterministic (%v)", i, err)
		}
		sk, err := hpke.MLKEM768X25519().DeriveKeyPair(ikm)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sk.PublicKey().Bytes(), pub) {
			t.Errorf("secret %d: public key differs from crypto/hpke's DeriveKeyPair", i)
		}
		if again, err := s.HPKEPublicKey(priv); err != nil || !bytes.Equal(again, pub) {
			t.Errorf("secret %d: HPKEPublicKey(priv) = %v, want the derived public key", i, err)
		}
		if seen[string(pub)] {
			t.Errorf("secret %d: public key repeats", i)
		}
		seen[string(pub)] = true
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
