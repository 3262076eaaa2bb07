package suite

import (
	"bytes"
	"fmt"
	"testing"
)

// TestSigningKeyMatchesSignWithLabel: a parsed key signs what
// SignWithLabel would (byte for byte where signatures are deterministic)
// and its signatures verify, in every suite.
func TestSigningKeyMatchesSignWithLabel(t *testing.T) {
	for id := ID(1); id <= 7; id++ {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) {
			s := mustLookup(t, id)
			priv, pub, err := s.GenerateSignatureKey(bytes.NewReader(bytes.Repeat([]byte{byte(id)}, 200)))
			if err != nil {
				t.Fatal(err)
			}
			k, err := s.NewSigningKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := k.SignWithLabel("LeafNodeTBS", []byte("content"))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(pub, "LeafNodeTBS", []byte("content"), sig); err != nil {
				t.Fatalf("signature does not verify: %v", err)
			}
			if err := s.VerifyWithLabel(pub, "KeyPackageTBS", []byte("content"), sig); err == nil {
				t.Fatal("signature verifies under another label")
			}
			if deterministicSignatures(id) {
				want, err := s.SignWithLabel(priv, "LeafNodeTBS", []byte("content"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(sig, want) {
					t.Fatal("SigningKey and SignWithLabel disagree")
				}
			}
			if _, err := s.NewSigningKey(priv[1:]); err == nil {
				t.Fatal("a short private key parsed")
			}
		})
	}
}

func BenchmarkSigningKey(b *testing.B) {
	s := mustLookup(b, 1)
	priv, _, err := s.GenerateSignatureKey(bytes.NewReader(make([]byte, 64)))
	if err != nil {
		b.Fatal(err)
	}
	k, err := s.NewSigningKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := k.SignWithLabel("FramedContentTBS", make([]byte, 1024)); err != nil {
			b.Fatal(err)
		}
	}
}
