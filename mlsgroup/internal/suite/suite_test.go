package suite

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	circlhpke "github.com/cloudflare/circl/hpke"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
)

// hexBytes is a hex string of the vectors.
type hexBytes = vectortest.HexBytes

// padPrivateKey left-pads the 65-byte P-521 private keys found in some
// vectors (see testdata/mls-vectors/README.md); the package takes 66.
func padPrivateKey(id ID, priv []byte) []byte {
	if id == MLS256DHKEMP521AES256GCMSHA512P521 && len(priv) == 65 {
		return append([]byte{0}, priv...)
	}
	return priv
}

func mustLookup(t testing.TB, id ID) *Suite {
	t.Helper()
	s, err := Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkBytes(t *testing.T, field string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", field, got, want)
	}
}

type cryptoBasicsVector struct {
	CipherSuite ID `json:"cipher_suite"`
	RefHash     struct {
		Label string   `json:"label"`
		Value hexBytes `json:"value"`
		Out   hexBytes `json:"out"`
	} `json:"ref_hash"`
	ExpandWithLabel struct {
		Secret  hexBytes `json:"secret"`
		Label   string   `json:"label"`
		Context hexBytes `json:"context"`
		Length  int      `json:"length"`
		Out     hexBytes `json:"out"`
	} `json:"expand_with_label"`
	DeriveSecret struct {
		Secret hexBytes `json:"secret"`
		Label  string   `json:"label"`
		Out    hexBytes `json:"out"`
	} `json:"derive_secret"`
	DeriveTreeSecret struct {
		Secret     hexBytes `json:"secret"`
		Label      string   `json:"label"`
		Generation uint32   `json:"generation"`
		Length     int      `json:"length"`
		Out        hexBytes `json:"out"`
	} `json:"derive_tree_secret"`
	SignWithLabel struct {
		Priv      hexBytes `json:"priv"`
		Pub       hexBytes `json:"pub"`
		Content   hexBytes `json:"content"`
		Label     string   `json:"label"`
		Signature hexBytes `json:"signature"`
	} `json:"sign_with_label"`
	EncryptWithLabel struct {
		Priv       hexBytes `json:"priv"`
		Pub        hexBytes `json:"pub"`
		Label      string   `json:"label"`
		Context    hexBytes `json:"context"`
		Plaintext  hexBytes `json:"plaintext"`
		KEMOutput  hexBytes `json:"kem_output"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"encrypt_with_label"`
}

// deterministicSignatures reports whether the suite signs with EdDSA, whose
// signatures are a function of key and message (RFC 8032 §5.1.6, §5.2.6).
func deterministicSignatures(id ID) bool {
	switch id {
	case 1, 3, 4, 6, MLS256XWINGAES256GCMSHA512Ed25519:
		return true
	}
	return false
}

// TestCryptoBasics runs crypto-basics.json: RFC 9420 §5.1.2, §5.1.3, §5.2,
// §8 and §9.
func TestCryptoBasics(t *testing.T) {
	var vectors []cryptoBasicsVector
	vectortest.LoadInto(t, "crypto-basics.json", &vectors)
	if len(vectors) != 7 {
		t.Fatalf("got %d vectors, want 7 (one per suite)", len(vectors))
	}
	for i, v := range vectors {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := mustLookup(t, v.CipherSuite)

			t.Run("ref_hash/5.2", func(t *testing.T) {
				r := v.RefHash
				checkBytes(t, "RefHash", s.RefHash(r.Label, r.Value), r.Out)
			})
			t.Run("expand_with_label/8", func(t *testing.T) {
				e := v.ExpandWithLabel
				checkBytes(t, "ExpandWithLabel", s.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length), e.Out)
			})
			t.Run("derive_secret/8", func(t *testing.T) {
				d := v.DeriveSecret
				checkBytes(t, "DeriveSecret", s.DeriveSecret(d.Secret, d.Label), d.Out)
			})
			t.Run("derive_tree_secret/9", func(t *testing.T) {
				d := v.DeriveTreeSecret
				checkBytes(t, "DeriveTreeSecret", s.DeriveTreeSecret(d.Secret, d.Label, d.Generation, d.Length), d.Out)
			})
			t.Run("sign_with_label/5.1.2", func(t *testing.T) {
				sv := v.SignWithLabel
				priv := padPrivateKey(s.ID(), sv.Priv)
				pub, err := s.SignaturePublicKey(priv)
				if err != nil {
					t.Fatal(err)
				}
				checkBytes(t, "SignaturePublicKey(priv)", pub, sv.Pub)
				if err := s.VerifyWithLabel(sv.Pub, sv.Label, sv.Content, sv.Signature); err != nil {
					t.Errorf("VerifyWithLabel(vector signature): %v", err)
				}
				sig, err := s.SignWithLabel(priv, sv.Label, sv.Content)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.VerifyWithLabel(sv.Pub, sv.Label, sv.Content, sig); err != nil {
					t.Errorf("VerifyWithLabel(own signature): %v", err)
				}
				if deterministicSignatures(s.ID()) {
					checkBytes(t, "SignWithLabel", sig, sv.Signature)
				}
			})
			t.Run("encrypt_with_label/5.1.3", func(t *testing.T) {
				ev := v.EncryptWithLabel
				priv := padPrivateKey(s.ID(), ev.Priv)
				pub, err := s.HPKEPublicKey(priv)
				if err != nil {
					t.Fatal(err)
				}
				checkBytes(t, "HPKEPublicKey(priv)", pub, ev.Pub)
				pt, err := s.DecryptWithLabel(priv, ev.Label, ev.Context, ev.KEMOutput, ev.Ciphertext)
				if err != nil {
					t.Fatalf("DecryptWithLabel(vector ciphertext): %v", err)
				}
				checkBytes(t, "DecryptWithLabel(vector ciphertext)", pt, ev.Plaintext)
				kemOut, ct, err := s.EncryptWithLabel(ev.Pub, ev.Label, ev.Context, ev.Plaintext)
				if err != nil {
					t.Fatal(err)
				}
				if len(kemOut) != len(ev.KEMOutput) || len(ct) != len(ev.Ciphertext) {
					t.Errorf("EncryptWithLabel lengths = %d, %d, want %d, %d", len(kemOut), len(ct), len(ev.KEMOutput), len(ev.Ciphertext))
				}
				pt, err = s.DecryptWithLabel(priv, ev.Label, ev.Context, kemOut, ct)
				if err != nil {
					t.Fatalf("DecryptWithLabel(own ciphertext): %v", err)
				}
				checkBytes(t, "DecryptWithLabel(own ciphertext)", pt, ev.Plaintext)
			})
		})
	}
}

// TestDeriveKeyPairKeySchedule checks DeriveKeyPair (RFC 9180 §7.1.3) on
// key-schedule.json's external_secret -> external_pub (RFC 9420 §8, §12.4.3.2).
// Its Nh-byte inputs are longer than Nsk for X448, which circl's own
// DeriveKeyPair would refuse.
func TestDeriveKeyPairKeySchedule(t *testing.T) {
	var vectors []struct {
		CipherSuite ID `json:"cipher_suite"`
		Epochs      []struct {
			ExternalSecret hexBytes `json:"external_secret"`
			ExternalPub    hexBytes `json:"external_pub"`
		} `json:"epochs"`
	}
	vectortest.LoadInto(t, "key-schedule.json", &vectors)
	for i, v := range vectors {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := mustLookup(t, v.CipherSuite)
			if len(v.Epochs) == 0 {
				t.Fatal("vector has no epochs")
			}
			for j, e := range v.Epochs {
				priv, pub, err := s.DeriveKeyPair(e.ExternalSecret)
				if err != nil {
					t.Fatalf("epoch %d: %v", j, err)
				}
				checkBytes(t, fmt.Sprintf("epoch %d external_pub", j), pub, e.ExternalPub)
				again, err := s.HPKEPublicKey(priv)
				if err != nil {
					t.Fatalf("epoch %d: HPKEPublicKey: %v", j, err)
				}
				checkBytes(t, fmt.Sprintf("epoch %d HPKEPublicKey(priv)", j), again, e.ExternalPub)
			}
		})
	}
}

// TestX448DeriveKeyPairMatchesCircl cross-checks the spelt-out X448
// DeriveKeyPair against circl's, on the Nsk-byte seeds circl accepts.
func TestX448DeriveKeyPairMatchesCircl(t *testing.T) {
	scheme := circlhpke.KEM_X448_HKDF_SHA512.Scheme()
	r := rand.NewChaCha8([32]byte{4})
	for i := range 20 {
		seed := make([]byte, scheme.SeedSize())
		r.Read(seed)
		wantPub, wantPriv := scheme.DeriveKeyPair(seed)
		wp, _ := wantPub.MarshalBinary()
		ws, _ := wantPriv.MarshalBinary()
		priv, pub, err := kemX448AES256GCM.deriveKeyPair(seed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(priv, ws) || !bytes.Equal(pub, wp) {
			t.Errorf("seed %d: DeriveKeyPair differs from circl's", i)
		}
	}
}

var allSuites = []ID{1, 2, 3, 4, 5, 6, 7, MLS256XWINGAES256GCMSHA512Ed25519}

// TestSuiteParameters checks the sizes of the §17.1 table.
func TestSuiteParameters(t *testing.T) {
	want := map[ID]struct{ nh, nk, nn, nsk int }{
		1: {32, 16, 12, 32}, 2: {32, 16, 12, 32}, 3: {32, 32, 12, 32},
		4: {64, 32, 12, 56}, 5: {64, 32, 12, 66}, 6: {64, 32, 12, 56},
		7: {48, 32, 12, 48}, 83: {64, 32, 12, 32},
	}
	for _, id := range allSuites {
		s := mustLookup(t, id)
		w := want[id]
		if s.ID() != id || s.Nh() != w.nh || s.AEADKeySize() != w.nk || s.AEADNonceSize() != w.nn || s.HPKESeedSize() != w.nsk {
			t.Errorf("suite %d: ID, Nh, Nk, Nn, seed = %d, %d, %d, %d, %d, want %d, %d, %d, %d, %d", id,
				s.ID(), s.Nh(), s.AEADKeySize(), s.AEADNonceSize(), s.HPKESeedSize(), id, w.nh, w.nk, w.nn, w.nsk)
		}
		if got := len(s.Hash(nil)); got != w.nh {
			t.Errorf("suite %d: hash length %d", id, got)
		}
		if got := len(s.MAC([]byte("k"), nil)); got != w.nh {
			t.Errorf("suite %d: MAC length %d", id, got)
		}
		if got := len(s.Extract(nil, []byte("ikm"))); got != w.nh {
			t.Errorf("suite %d: Extract length %d", id, got)
		}
	}
}

func TestLookupUnsupported(t *testing.T) {
	for _, id := range []ID{0, 8, 82, 84, 0x0a0a, 0xffff} {
		if s, err := Lookup(id); !errors.Is(err, ErrUnsupported) || s != nil {
			t.Errorf("Lookup(0x%04x) = %v, %v; want ErrUnsupported", uint16(id), s, err)
		}
	}
}

func TestAEAD(t *testing.T) {
	for _, id := range allSuites {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) {
			s := mustLookup(t, id)
			key := bytes.Repeat([]byte{1}, s.AEADKeySize())
			nonce := bytes.Repeat([]byte{2}, s.AEADNonceSize())
			aad, pt := []byte("aad"), []byte("plaintext")
			ct, err := s.Seal(key, nonce, aad, pt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Open(key, nonce, aad, ct)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Open = %q, %v", got, err)
			}
			ct[0] ^= 1
			if _, err := s.Open(key, nonce, aad, ct); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Open(tampered) error = %v, want ErrDecrypt", err)
			}
			ct[0] ^= 1
			if _, err := s.Open(key, nonce, []byte("other"), ct); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Open(wrong aad) error = %v, want ErrDecrypt", err)
			}
			if _, err := s.Seal(key[1:], nonce, aad, pt); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Seal(short key) error = %v, want ErrInvalidKey", err)
			}
			if _, err := s.Open(key, nonce[1:], aad, ct); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("Open(short nonce) error = %v, want ErrInvalidKey", err)
			}
		})
	}
}

func TestHPKERoundTrip(t *testing.T) {
	for _, id := range allSuites {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) {
			s := mustLookup(t, id)
			priv, pub, err := s.GenerateKeyPair(rand.NewChaCha8([32]byte{byte(id)}))
			if err != nil {
				t.Fatal(err)
			}
			priv2, pub2, err := s.GenerateKeyPair(rand.NewChaCha8([32]byte{byte(id)}))
			if err != nil || !bytes.Equal(priv, priv2) || !bytes.Equal(pub, pub2) {
				t.Errorf("GenerateKeyPair is not a function of rand: %v", err)
			}
			if got, err := s.HPKEPublicKey(priv); err != nil || !bytes.Equal(got, pub) {
				t.Errorf("HPKEPublicKey = %x, %v; want %x", got, err, pub)
			}

			ctx, pt := []byte("context"), []byte("path secret")
			kemOut, ct, err := s.EncryptWithLabel(pub, "UpdatePathNode", ctx, pt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.DecryptWithLabel(priv, "UpdatePathNode", ctx, kemOut, ct)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("DecryptWithLabel = %q, %v", got, err)
			}

			fails := map[string]func() error{
				"label": func() error {
					_, err := s.DecryptWithLabel(priv, "Welcome", ctx, kemOut, ct)
					return err
				},
				"context": func() error {
					_, err := s.DecryptWithLabel(priv, "UpdatePathNode", nil, kemOut, ct)
					return err
				},
				"ciphertext": func() error {
					bad := bytes.Clone(ct)
					bad[len(bad)-1] ^= 1
					_, err := s.DecryptWithLabel(priv, "UpdatePathNode", ctx, kemOut, bad)
					return err
				},
				"kem_output": func() error {
					bad := bytes.Clone(kemOut)
					bad[len(bad)/2] ^= 1
					_, err := s.DecryptWithLabel(priv, "UpdatePathNode", ctx, bad, ct)
					return err
				},
				"short kem_output": func() error {
					_, err := s.DecryptWithLabel(priv, "UpdatePathNode", ctx, kemOut[1:], ct)
					return err
				},
			}
			for name, f := range fails {
				if err := f(); !errors.Is(err, ErrDecrypt) {
					t.Errorf("DecryptWithLabel with wrong %s: error = %v, want ErrDecrypt", name, err)
				}
			}
		})
	}
}

func TestHPKEInvalidKeys(t *testing.T) {
	for _, id := range allSuites {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) {
			s := mustLookup(t, id)
			priv, pub, err := s.GenerateKeyPair(rand.NewChaCha8([32]byte{}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.HPKEPublicKey(priv[1:]); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("HPKEPublicKey(short) error = %v, want ErrInvalidKey", err)
			}
			if _, _, err := s.EncryptWithLabel(pub[1:], "l", nil, nil); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("EncryptWithLabel(short pub) error = %v, want ErrInvalidKey", err)
			}
			// The all-zero public key is the identity (X25519, X448) or not
			// a point (NIST curves): no shared secret may come of it.
			if _, _, err := s.EncryptWithLabel(make([]byte, len(pub)), "l", nil, nil); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("EncryptWithLabel(zero pub) error = %v, want ErrInvalidKey", err)
			}
			if _, err := s.DecryptWithLabel(priv[1:], "l", nil, pub, nil); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("DecryptWithLabel(short priv) error = %v, want ErrInvalidKey", err)
			}
			if _, _, err := s.GenerateKeyPair(bytes.NewReader(make([]byte, s.HPKESeedSize()-1))); err == nil {
				t.Error("GenerateKeyPair with a short reader succeeded")
			}
		})
	}
	// NIST scalars must be below the group order.
	for _, id := range []ID{2, 5, 7} {
		s := mustLookup(t, id)
		big := bytes.Repeat([]byte{0xff}, s.HPKESeedSize())
		if _, err := s.HPKEPublicKey(big); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("suite %d: HPKEPublicKey(0xff...) error = %v, want ErrInvalidKey", id, err)
		}
		if _, err := s.SignaturePublicKey(big); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("suite %d: SignaturePublicKey(0xff...) error = %v, want ErrInvalidKey", id, err)
		}
	}
}

func TestSignatureRoundTrip(t *testing.T) {
	for _, id := range allSuites {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) {
			s := mustLookup(t, id)
			priv, pub, err := s.GenerateSignatureKey(rand.NewChaCha8([32]byte{byte(id)}))
			if err != nil {
				t.Fatal(err)
			}
			priv2, pub2, err := s.GenerateSignatureKey(rand.NewChaCha8([32]byte{byte(id)}))
			if err != nil || !bytes.Equal(priv, priv2) || !bytes.Equal(pub, pub2) {
				t.Errorf("GenerateSignatureKey is not a function of rand: %v", err)
			}
			if got, err := s.SignaturePublicKey(priv); err != nil || !bytes.Equal(got, pub) {
				t.Errorf("SignaturePublicKey = %x, %v; want %x", got, err, pub)
			}

			content := []byte("content")
			sig, err := s.SignWithLabel(priv, "LeafNodeTBS", content)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(pub, "LeafNodeTBS", content, sig); err != nil {
				t.Fatalf("VerifyWithLabel: %v", err)
			}

			_, otherPub, err := s.GenerateSignatureKey(rand.NewChaCha8([32]byte{0xee}))
			if err != nil {
				t.Fatal(err)
			}
			bad := bytes.Clone(sig)
			bad[len(bad)-1] ^= 1
			fails := map[string]error{
				"label":     s.VerifyWithLabel(pub, "GroupInfoTBS", content, sig),
				"content":   s.VerifyWithLabel(pub, "LeafNodeTBS", []byte("other"), sig),
				"signature": s.VerifyWithLabel(pub, "LeafNodeTBS", content, bad),
				"truncated": s.VerifyWithLabel(pub, "LeafNodeTBS", content, sig[:len(sig)-1]),
				"key":       s.VerifyWithLabel(otherPub, "LeafNodeTBS", content, sig),
			}
			for name, err := range fails {
				if !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("VerifyWithLabel with wrong %s: error = %v, want ErrInvalidSignature", name, err)
				}
			}

			if _, err := s.SignWithLabel(priv[1:], "l", nil); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("SignWithLabel(short priv) error = %v, want ErrInvalidKey", err)
			}
			if _, err := s.SignaturePublicKey(priv[1:]); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("SignaturePublicKey(short priv) error = %v, want ErrInvalidKey", err)
			}
			if err := s.VerifyWithLabel(pub[1:], "LeafNodeTBS", content, sig); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("VerifyWithLabel(short pub) error = %v, want ErrInvalidKey", err)
			}
			if _, _, err := s.GenerateSignatureKey(bytes.NewReader(nil)); err == nil {
				t.Error("GenerateSignatureKey with an empty reader succeeded")
			}
		})
	}
}

// TestExpandWithLabelLimits checks that impossible lengths are refused loudly
// rather than truncated into KDFLabel's uint16.
func TestExpandWithLabelLimits(t *testing.T) {
	s := mustLookup(t, 1)
	for _, n := range []int{-1, 1 << 16} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ExpandWithLabel(length %d) did not panic", n)
				}
			}()
			s.ExpandWithLabel(make([]byte, 32), "l", nil, n)
		}()
	}
}
