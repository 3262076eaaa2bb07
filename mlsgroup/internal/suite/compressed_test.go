package suite

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestECDSACompressedPublicKey checks that verification also takes the
// compressed SEC 1 form of an ECDSA key (which ts-mls 1.6.4 puts in its
// leaves, where §5.1.2 asks for the uncompressed one), with the same
// result as the uncompressed key, and still refuses points not on the curve.
func TestECDSACompressedPublicKey(t *testing.T) {
	for _, id := range []ID{2, 5, 7} {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) {
			s := mustLookup(t, id)
			priv, pub, err := s.GenerateSignatureKey(rand.NewChaCha8([32]byte{byte(id), 'c'}))
			if err != nil {
				t.Fatal(err)
			}
			size := (len(pub) - 1) / 2
			compressed := append([]byte{2 | pub[len(pub)-1]&1}, pub[1:1+size]...)
			sig, err := s.SignWithLabel(priv, "LeafNodeTBS", []byte("content"))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(compressed, "LeafNodeTBS", []byte("content"), sig); err != nil {
				t.Errorf("VerifyWithLabel(compressed key): %v", err)
			}
			if err := s.VerifyWithLabel(compressed, "LeafNodeTBS", []byte("other"), sig); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("VerifyWithLabel(compressed key, wrong content) error = %v, want ErrInvalidSignature", err)
			}
			wrongY := bytes.Clone(compressed)
			wrongY[0] ^= 1 // the other point with this x: a different key
			if err := s.VerifyWithLabel(wrongY, "LeafNodeTBS", []byte("content"), sig); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("VerifyWithLabel(negated key) error = %v, want ErrInvalidSignature", err)
			}
			for name, bad := range map[string][]byte{
				"truncated":  compressed[:len(compressed)-1],
				"bad prefix": append([]byte{5}, compressed[1:]...),
				"x too big":  append([]byte{2}, bytes.Repeat([]byte{0xff}, size)...),
			} {
				if err := s.VerifyWithLabel(bad, "LeafNodeTBS", []byte("content"), sig); !errors.Is(err, ErrInvalidKey) {
					t.Errorf("VerifyWithLabel(%s compressed key) error = %v, want ErrInvalidKey", name, err)
				}
			}
		})
	}
}

// TestCanonicalSignatureKey: both encodings of one ECDSA key map to the
// same bytes, so uniqueness checks cannot be dodged by recompressing.
func TestCanonicalSignatureKey(t *testing.T) {
	for _, id := range []ID{2, 5, 7} {
		s := mustLookup(t, id)
		_, pub, err := s.GenerateSignatureKey(bytes.NewReader(bytes.Repeat([]byte{9}, 200)))
		if err != nil {
			t.Fatal(err)
		}
		size := (len(pub) - 1) / 2
		compressed := append([]byte{2 + pub[len(pub)-1]&1}, pub[1:1+size]...)
		if got := s.CanonicalSignatureKey(compressed); !bytes.Equal(got, pub) {
			t.Fatalf("suite %d: compressed key canonicalises to %x, want %x", id, got, pub)
		}
		if got := s.CanonicalSignatureKey(pub); !bytes.Equal(got, pub) {
			t.Fatalf("suite %d: uncompressed key changed", id)
		}
	}
	s := mustLookup(t, 1)
	if got := s.CanonicalSignatureKey([]byte{1, 2, 3}); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Fatal("an Ed25519 key changed")
	}
}
