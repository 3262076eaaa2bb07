package suite

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestEncryptContext: encrypting through a prepared EncryptContext is
// EncryptWithLabel: DecryptWithLabel with the same label and context opens
// it, and another context does not.
func TestEncryptContext(t *testing.T) {
	for _, id := range allSuites {
		s := mustLookup(t, id)
		priv, pub, err := s.GenerateKeyPair(rand.NewChaCha8([32]byte{byte(id)}))
		if err != nil {
			t.Fatal(err)
		}
		context := bytes.Repeat([]byte("encrypted group info "), 100)
		c, err := s.NewEncryptContext("Welcome", context)
		if err != nil {
			t.Fatal(err)
		}
		kem, ct, err := c.Encrypt(pub, []byte("group secrets"))
		if err != nil {
			t.Fatalf("suite %d: %v", id, err)
		}
		pt, err := s.DecryptWithLabel(priv, "Welcome", context, kem, ct)
		if err != nil || string(pt) != "group secrets" {
			t.Fatalf("suite %d: DecryptWithLabel: %q, %v", id, pt, err)
		}
		if _, err := s.DecryptWithLabel(priv, "Welcome", context[1:], kem, ct); err == nil {
			t.Fatalf("suite %d: opened under another context", id)
		}
	}
}
