package keyschedule

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
)

// allSuites runs f once per cipher suite of RFC 9420 §17.1, all of which
// the vectors cover.
func allSuites(t *testing.T, f func(t *testing.T, s *suite.Suite)) {
	for id := uint16(1); id <= 7; id++ {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) { f(t, lookup(t, id)) })
	}
}

func testSecret(s *suite.Suite, seed byte) []byte {
	return bytes.Repeat([]byte{seed}, s.Nh())
}

// inOrderKeys returns the first n keys and nonces of a ratchet, read in
// order from a fresh tree: the reference out-of-order reads must match.
func inOrderKeys(t *testing.T, s *suite.Suite, leaf treemath.LeafIndex, k RatchetKind, n int) (keys, nonces [][]byte) {
	t.Helper()
	tree := NewSecretTree(s, testSecret(s, 7), 8)
	for g := range n {
		gen, key, nonce, err := tree.Next(leaf, k)
		if err != nil || gen != uint32(g) {
			t.Fatalf("Next: generation %d, %v", gen, err)
		}
		keys, nonces = append(keys, key.Bytes()), append(nonces, nonce.Bytes())
	}
	return keys, nonces
}

func mustGet(t *testing.T, tree *SecretTree, leaf treemath.LeafIndex, k RatchetKind, g uint32, wantKeys, wantNonces [][]byte) {
	t.Helper()
	key, nonce, err := tree.Get(leaf, k, g)
	if err != nil {
		t.Fatalf("Get(%d, %v, %d): %v", leaf, k, g, err)
	}
	if !bytes.Equal(key.Bytes(), wantKeys[g]) || !bytes.Equal(nonce.Bytes(), wantNonces[g]) {
		t.Fatalf("Get(%d, %v, %d): wrong key or nonce", leaf, k, g)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got %v, want %v", what, err, target)
	}
}

// TestSecretTreeDeletion checks §9.2 on the receiver's side: a consumed key
// cannot be had again, skipped keys are kept only within the window, and a
// generation beyond the window is refused without disturbing the ratchet.
func TestSecretTreeDeletion(t *testing.T) {
	allSuites(t, func(t *testing.T, s *suite.Suite) {
		const leaf = 5
		keys, nonces := inOrderKeys(t, s, leaf, Application, 40)
		tree := NewSecretTree(s, testSecret(s, 7), 8)
		tree.SetWindow(Window{MaxBehind: 4, MaxAhead: 10})

		mustGet(t, tree, leaf, Application, 0, keys, nonces)
		_, _, err := tree.Get(leaf, Application, 0)
		wantErr(t, "Get of a consumed generation", err, ErrReplay)

		// Next expected is 1, so 11 is the furthest allowed.
		_, _, err = tree.Get(leaf, Application, 12)
		wantErr(t, "Get beyond MaxAhead", err, ErrGenerationTooFar)
		mustGet(t, tree, leaf, Application, 11, keys, nonces)

		// Generations 7-10 lie within MaxBehind of 11 and are kept, in any
		// order; 1-6 were deleted.
		for _, g := range []uint32{9, 7, 10, 8} {
			mustGet(t, tree, leaf, Application, g, keys, nonces)
			_, _, err = tree.Get(leaf, Application, g)
			wantErr(t, fmt.Sprintf("second Get of generation %d", g), err, ErrReplay)
		}
		for g := uint32(1); g <= 6; g++ {
			_, _, err = tree.Get(leaf, Application, g)
			wantErr(t, fmt.Sprintf("Get of generation %d, outside the window", g), err, ErrReplay)
		}

		// Moving on drops kept keys that fall behind the window.
		mustGet(t, tree, leaf, Application, 13, keys, nonces) // keeps 12
		mustGet(t, tree, leaf, Application, 17, keys, nonces) // 12 is now 5 behind
		_, _, err = tree.Get(leaf, Application, 12)
		wantErr(t, "Get of a key trimmed from the window", err, ErrReplay)
		mustGet(t, tree, leaf, Application, 14, keys, nonces)

		// The handshake ratchet of the same leaf, and other leaves, are
		// independent.
		hKeys, hNonces := inOrderKeys(t, s, leaf, Handshake, 3)
		mustGet(t, tree, leaf, Handshake, 2, hKeys, hNonces)
		mustGet(t, tree, leaf, Handshake, 0, hKeys, hNonces)
		oKeys, oNonces := inOrderKeys(t, s, 0, Application, 1)
		mustGet(t, tree, 0, Application, 0, oKeys, oNonces)
	})
}

// TestSecretTreeDefaultWindow pins the documented defaults.
func TestSecretTreeDefaultWindow(t *testing.T) {
	s := lookup(t, 1)
	tree := NewSecretTree(s, testSecret(s, 7), 2)
	if w := tree.Window(); w != (Window{MaxBehind: DefaultMaxBehind, MaxAhead: DefaultMaxAhead}) {
		t.Fatalf("default window %+v", w)
	}
	_, _, err := tree.Get(0, Application, DefaultMaxAhead+1)
	wantErr(t, "Get past the default MaxAhead", err, ErrGenerationTooFar)
	if _, _, err := tree.Get(0, Application, DefaultMaxAhead); err != nil {
		t.Fatal(err)
	}
	kept := tree.leaves[0][Application].skipped
	if len(kept) != DefaultMaxBehind || kept[0].generation != DefaultMaxAhead-DefaultMaxBehind {
		t.Fatalf("kept %d keys from generation %d", len(kept), kept[0].generation)
	}
}

// TestSecretTreeNextGet checks that sender and receiver share generations:
// Next consumes what Get would return and vice versa.
func TestSecretTreeNextGet(t *testing.T) {
	allSuites(t, func(t *testing.T, s *suite.Suite) {
		keys, nonces := inOrderKeys(t, s, 3, Handshake, 4)
		tree := NewSecretTree(s, testSecret(s, 7), 8)
		mustGet(t, tree, 3, Handshake, 1, keys, nonces) // keeps 0
		gen, key, _, err := tree.Next(3, Handshake)
		if err != nil || gen != 2 || !bytes.Equal(key.Bytes(), keys[2]) {
			t.Fatalf("Next after Get(1): generation %d, %v", gen, err)
		}
		_, _, err = tree.Get(3, Handshake, 2)
		wantErr(t, "Get of a generation Next consumed", err, ErrReplay)
		mustGet(t, tree, 3, Handshake, 0, keys, nonces)
	})
}

func TestSecretTreeErrors(t *testing.T) {
	s := lookup(t, 1)
	tree := NewSecretTree(s, testSecret(s, 7), 4)
	_, _, err := tree.Get(4, Application, 0)
	wantErr(t, "Get of leaf 4 of 4", err, ErrLeafOutOfRange)
	_, _, _, err = tree.Next(4, Handshake)
	wantErr(t, "Next of leaf 4 of 4", err, ErrLeafOutOfRange)
	_, _, err = tree.Get(0, RatchetKind(2), 0)
	wantErr(t, "Get of an unknown ratchet", err, ErrRatchetKind)

	empty := NewSecretTree(s, testSecret(s, 7), 0)
	_, _, err = empty.Get(0, Application, 0)
	wantErr(t, "Get of an empty tree", err, ErrLeafOutOfRange)

	// The last generation is given up so that next never overflows.
	r, err := tree.ratchet(1, Application)
	if err != nil {
		t.Fatal(err)
	}
	r.next = math.MaxUint32 - 1
	if gen, _, _, err := tree.Next(1, Application); err != nil || gen != math.MaxUint32-1 {
		t.Fatalf("Next at the end of the ratchet: generation %d, %v", gen, err)
	}
	_, _, _, err = tree.Next(1, Application)
	wantErr(t, "Next of an exhausted ratchet", err, ErrRatchetExhausted)
	_, _, err = tree.Get(1, Handshake, math.MaxUint32)
	wantErr(t, "Get of generation 2^32-1", err, ErrRatchetExhausted)
}

// heldNodes lists the tree nodes whose secrets the tree still holds.
func heldNodes(t *SecretTree) []treemath.NodeIndex {
	var held []treemath.NodeIndex
	for x, s := range t.nodes {
		if !s.IsZero() {
			held = append(held, treemath.NodeIndex(x))
		}
	}
	return held
}

// TestSecretTreeNodeDeletion follows §9.2's example (Figure 27): reading a
// key of leaf D consumes D, F and G and keeps the copath E and C, and the
// ratchet secret moves on.
func TestSecretTreeNodeDeletion(t *testing.T) {
	allSuites(t, func(t *testing.T, s *suite.Suite) {
		tree := NewSecretTree(s, testSecret(s, 7), 4)
		if got := fmt.Sprint(heldNodes(tree)); got != "[3]" {
			t.Fatalf("fresh tree holds %s, want the root", got)
		}
		before := bytes.Clone(mustRatchet(t, tree, 3, Application).secret.Bytes())
		if _, _, err := tree.Get(3, Application, 1); err != nil {
			t.Fatal(err)
		}
		// A=0 B=2 C=4 D=6, E=1 F=5 G=3: E and C remain.
		if got := fmt.Sprint(heldNodes(tree)); got != "[1 4]" {
			t.Fatalf("after reading leaf D the tree holds %s, want [1 4] (E and C)", got)
		}
		r := mustRatchet(t, tree, 3, Application)
		if r.next != 2 || bytes.Equal(r.secret.Bytes(), before) || len(r.skipped) != 1 || r.skipped[0].generation != 0 {
			t.Fatalf("ratchet after Get(1): next %d, %d kept", r.next, len(r.skipped))
		}
		// Non-power-of-two trees keep nothing for their padding leaves.
		odd := NewSecretTree(s, testSecret(s, 7), 3)
		if _, _, _, err := odd.Next(2, Handshake); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(heldNodes(odd)); got != "[1]" {
			t.Fatalf("3-leaf tree holds %s after reading leaf 2, want [1]", got)
		}
	})
}

func mustRatchet(t *testing.T, tree *SecretTree, leaf treemath.LeafIndex, k RatchetKind) *ratchet {
	t.Helper()
	r, err := tree.ratchet(leaf, k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSecretTreePersistence round-trips a tree in the middle of its
// ratchets and checks that the copy carries on exactly as the original.
func TestSecretTreePersistence(t *testing.T) {
	allSuites(t, func(t *testing.T, s *suite.Suite) {
		tree := NewSecretTree(s, testSecret(s, 7), 8)
		tree.SetWindow(Window{MaxBehind: 5, MaxAhead: 50})
		if _, _, err := tree.Get(3, Application, 9); err != nil { // keeps 4-8
			t.Fatal(err)
		}
		if _, _, err := tree.Get(3, Application, 6); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := tree.Next(6, Handshake); err != nil {
			t.Fatal(err)
		}
		state, err := tree.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var restored SecretTree
		if err := restored.UnmarshalBinary(state); err != nil {
			t.Fatal(err)
		}
		again, err := restored.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, state) {
			t.Fatal("state changed across a round trip")
		}
		if restored.Window() != tree.Window() {
			t.Fatalf("window %+v, want %+v", restored.Window(), tree.Window())
		}

		// Both trees now answer identically: kept keys, replays, fresh
		// generations and leaves not yet derived.
		steps := []struct {
			leaf treemath.LeafIndex
			kind RatchetKind
			gen  uint32
			err  error
		}{
			{3, Application, 6, ErrReplay},
			{3, Application, 9, ErrReplay},
			{3, Application, 3, ErrReplay},
			{3, Application, 4, nil},
			{3, Application, 8, nil},
			{3, Application, 10, nil},
			{6, Handshake, 0, ErrReplay},
			{6, Handshake, 1, nil},
			{0, Application, 2, nil},
			{7, Handshake, 0, nil},
		}
		for _, st := range steps {
			k1, n1, err1 := tree.Get(st.leaf, st.kind, st.gen)
			k2, n2, err2 := restored.Get(st.leaf, st.kind, st.gen)
			what := fmt.Sprintf("Get(%d, %v, %d)", st.leaf, st.kind, st.gen)
			wantErr(t, what+" on the original", err1, st.err)
			wantErr(t, what+" on the restored tree", err2, st.err)
			if !k1.Equal(k2) || !n1.Equal(n2) {
				t.Fatalf("%s: keys differ after the round trip", what)
			}
		}
		a, _ := tree.MarshalBinary()
		b, _ := restored.MarshalBinary()
		if !bytes.Equal(a, b) {
			t.Fatal("the trees diverged")
		}
	})
}

// TestSecretTreeUnmarshalRejects checks that truncated, extended and
// inconsistent states are refused.
func TestSecretTreeUnmarshalRejects(t *testing.T) {
	s := lookup(t, 1)
	tree := NewSecretTree(s, testSecret(s, 7), 4)
	if _, _, err := tree.Get(2, Application, 3); err != nil {
		t.Fatal(err)
	}
	state, err := tree.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var out SecretTree
	for n := range len(state) {
		wantErr(t, fmt.Sprintf("state cut to %d bytes", n), out.UnmarshalBinary(state[:n]), ErrMalformedState)
	}
	wantErr(t, "state with a trailing byte", out.UnmarshalBinary(append(bytes.Clone(state), 0)), ErrMalformedState)
	bad := bytes.Clone(state)
	bad[0] = 2
	wantErr(t, "state of version 2", out.UnmarshalBinary(bad), ErrMalformedState)

	// A tree that lost the node secret leaf 0 depends on would strand it.
	lost := NewSecretTree(s, testSecret(s, 7), 4)
	if _, _, _, err := lost.Next(3, Handshake); err != nil {
		t.Fatal(err)
	}
	lost.nodes[1] = secret.Secret{} // E, the only secret above leaves 0 and 1
	state, _ = lost.MarshalBinary()
	wantErr(t, "state missing a node secret", out.UnmarshalBinary(state), ErrMalformedState)

	// A node secret whose ancestor is still held cannot arise either.
	dup := NewSecretTree(s, testSecret(s, 7), 4)
	dup.nodes[1] = secret.New(testSecret(s, 8))
	state, _ = dup.MarshalBinary()
	wantErr(t, "state holding a node and its ancestor", out.UnmarshalBinary(state), ErrMalformedState)
}

func TestSecretTreeWipe(t *testing.T) {
	s := lookup(t, 1)
	tree := NewSecretTree(s, testSecret(s, 7), 4)
	if _, _, err := tree.Get(1, Application, 3); err != nil {
		t.Fatal(err)
	}
	held := tree.leaves[1][Application].secret.Bytes()
	tree.Wipe()
	if len(heldNodes(tree)) != 0 || !bytes.Equal(held, make([]byte, len(held))) {
		t.Fatal("Wipe left secrets behind")
	}
}

// TestSecretTreeMaxSkipped: the cap on kept keys holds over all senders,
// and it takes from the sender that keeps the most: one long gap does not
// cost the others their few kept keys.
func TestSecretTreeMaxSkipped(t *testing.T) {
	s := lookup(t, 1)
	tree := NewSecretTree(s, testSecret(s, 7), 4)
	tree.SetWindow(Window{MaxBehind: 1024, MaxAhead: 1024, MaxSkipped: 100})
	kept := func(leaf treemath.LeafIndex, k RatchetKind) int {
		return len(tree.leaves[leaf][k].skipped)
	}
	if _, _, err := tree.Get(1, Application, 10); err != nil { // sender 1 skips 10
		t.Fatal(err)
	}
	if _, _, err := tree.Get(0, Application, 500); err != nil { // sender 0 skips 500
		t.Fatal(err)
	}
	if got := kept(0, Application) + kept(1, Application); got != 100 {
		t.Fatalf("%d keys kept, want the cap of 100", got)
	}
	if kept(1, Application) != 10 {
		t.Errorf("sender 1 keeps %d of its 10 skipped keys; sender 0's gap took them", kept(1, Application))
	}
	// Sender 0 kept its newest skipped generations.
	if _, _, err := tree.Get(0, Application, 499); err != nil {
		t.Errorf("the newest skipped generation: %v", err)
	}
	if _, _, err := tree.Get(0, Application, 0); !errors.Is(err, ErrReplay) {
		t.Errorf("the oldest skipped generation: %v, want ErrReplay", err)
	}
	// Sender 2 skips 60: the largest ratchets shrink to make room.
	if _, _, err := tree.Get(2, Handshake, 60); err != nil {
		t.Fatal(err)
	}
	total := kept(0, Application) + kept(1, Application) + kept(2, Handshake)
	if total != 100 || kept(1, Application) != 10 {
		t.Errorf("after a third sender's gap: %d, %d, %d kept (total %d)", kept(0, Application), kept(1, Application), kept(2, Handshake), total)
	}
}
