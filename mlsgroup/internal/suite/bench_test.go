package suite

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchSuites runs f once per suite, as sub-benchmark "suiteN".
func benchSuites(b *testing.B, f func(b *testing.B, s *Suite)) {
	for _, id := range allSuites {
		b.Run(fmt.Sprintf("suite%d", id), func(b *testing.B) { f(b, mustLookup(b, id)) })
	}
}

// pathSecret is what TreeKEM encrypts to each resolution node (§7.6).
var pathSecret = make([]byte, 32)

func BenchmarkHPKESeal(b *testing.B) {
	benchSuites(b, func(b *testing.B, s *Suite) {
		_, pub, err := s.GenerateKeyPair(rand.NewChaCha8([32]byte{}))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, _, err := s.EncryptWithLabel(pub, "UpdatePathNode", pathSecret, pathSecret); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkHPKEOpen(b *testing.B) {
	benchSuites(b, func(b *testing.B, s *Suite) {
		priv, pub, err := s.GenerateKeyPair(rand.NewChaCha8([32]byte{}))
		if err != nil {
			b.Fatal(err)
		}
		kemOut, ct, err := s.EncryptWithLabel(pub, "UpdatePathNode", pathSecret, pathSecret)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", pathSecret, kemOut, ct); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSignWithLabel(b *testing.B) {
	benchSuites(b, func(b *testing.B, s *Suite) {
		priv, _, err := s.GenerateSignatureKey(rand.NewChaCha8([32]byte{}))
		if err != nil {
			b.Fatal(err)
		}
		content := make([]byte, 256)
		for b.Loop() {
			if _, err := s.SignWithLabel(priv, "LeafNodeTBS", content); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyWithLabel(b *testing.B) {
	benchSuites(b, func(b *testing.B, s *Suite) {
		priv, pub, err := s.GenerateSignatureKey(rand.NewChaCha8([32]byte{}))
		if err != nil {
			b.Fatal(err)
		}
		content := make([]byte, 256)
		sig, err := s.SignWithLabel(priv, "LeafNodeTBS", content)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := s.VerifyWithLabel(pub, "LeafNodeTBS", content, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkGenerateKeyPair(b *testing.B) {
	benchSuites(b, func(b *testing.B, s *Suite) {
		r := rand.NewChaCha8([32]byte{})
		for b.Loop() {
			if _, _, err := s.GenerateKeyPair(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
