package keyschedule

import (
	"bytes"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
)

// TestSecretTreeClone: a clone persists like the original, and consuming
// keys from either leaves the other able to give the same keys (§9.2's
// deletions happen in one copy only).
func TestSecretTreeClone(t *testing.T) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	orig := NewSecretTree(s, bytes.Repeat([]byte{7}, s.Nh()), 5)
	// Leaf 1 has ratchets with a kept key; the others still hang off
	// tree nodes.
	if _, _, err := orig.Get(1, Application, 3); err != nil {
		t.Fatal(err)
	}
	c := orig.Clone()
	want, err := orig.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := c.MarshalBinary(); !bytes.Equal(got, want) {
		t.Fatal("clone persists differently")
	}
	for _, step := range []struct {
		leaf treemath.LeafIndex
		gen  uint32
	}{{1, 1}, {1, 4}, {4, 0}, {0, 2}} {
		k1, n1, err := c.Get(step.leaf, Application, step.gen)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := orig.MarshalBinary(); !bytes.Equal(got, want) {
			t.Fatalf("consuming leaf %d generation %d from the clone changed the original", step.leaf, step.gen)
		}
		k2, n2, err := orig.Clone().Get(step.leaf, Application, step.gen)
		if err != nil {
			t.Fatal(err)
		}
		if !k1.Equal(k2) || !n1.Equal(n2) {
			t.Fatal("clone and original derive different keys")
		}
	}
	if _, _, err := orig.Get(1, Application, 1); err != nil {
		t.Fatalf("the original lost a key its clone consumed: %v", err)
	}
}

// TestSecretTreeCloneCopyOnWrite: clones share their parts until one
// changes them, so changes in the original (a new leaf, a moved ratchet, a
// narrower window) and wiping either tree leave the other as it was.
func TestSecretTreeCloneCopyOnWrite(t *testing.T) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	orig := NewSecretTree(s, bytes.Repeat([]byte{7}, s.Nh()), 4)
	if _, _, err := orig.Get(1, Application, 5); err != nil {
		t.Fatal(err)
	}
	c := orig.Clone()
	want, err := c.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := orig.Next(1, Application); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := orig.Next(2, Handshake); err != nil {
		t.Fatal(err)
	}
	orig.SetWindow(Window{})
	orig.Wipe()
	if got, _ := c.MarshalBinary(); !bytes.Equal(got, want) {
		t.Fatal("changing and wiping the original changed the clone")
	}
	// The clone still gives every key the original gave before the clone.
	if _, _, err := c.Get(1, Application, 2); err != nil {
		t.Fatalf("clone lost a kept key: %v", err)
	}
	if _, _, _, err := c.Next(2, Handshake); err != nil {
		t.Fatal(err)
	}
	c2 := c.Clone()
	want, _ = c2.MarshalBinary()
	c.Wipe()
	if got, _ := c2.MarshalBinary(); !bytes.Equal(got, want) {
		t.Fatal("wiping a clone changed its own clone")
	}
	if len(heldNodes(c)) != 0 {
		t.Fatal("Wipe of a clone left node secrets behind")
	}
}
