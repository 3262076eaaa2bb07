package ratchettree

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
)

// member is a client with a fresh key package leaf (§10) and its keys.
type member struct {
	leaf    mls.LeafNode
	encPriv []byte
	sigPriv []byte
}

func newMember(tb testing.TB, cs *suite.Suite, rng io.Reader, id int) member {
	tb.Helper()
	encPriv, encPub, err := cs.GenerateKeyPair(rng)
	if err != nil {
		tb.Fatal(err)
	}
	sigPriv, sigPub, err := cs.GenerateSignatureKey(rng)
	if err != nil {
		tb.Fatal(err)
	}
	leaf := mls.LeafNode{
		EncryptionKey: encPub,
		SignatureKey:  sigPub,
		Credential:    mls.Credential{Type: mls.CredentialBasic, Identity: fmt.Appendf(nil, "member %d", id)},
		Capabilities: mls.Capabilities{
			Versions:     []mls.ProtocolVersion{mls.MLS10},
			CipherSuites: []suite.ID{cs.ID()},
			Credentials:  []mls.CredentialType{mls.CredentialBasic},
		},
		Source:   mls.LeafNodeSourceKeyPackage,
		Lifetime: mls.Lifetime{NotAfter: math.MaxUint64},
	}
	tbs, err := leaf.MarshalTBS(nil, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if leaf.Signature, err = cs.SignWithLabel(sigPriv, leafNodeTBSLabel, tbs); err != nil {
		tb.Fatal(err)
	}
	return member{leaf, encPriv, sigPriv}
}

func suite1(tb testing.TB) *suite.Suite {
	tb.Helper()
	cs, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		tb.Fatal(err)
	}
	return cs
}

// fakeLeaf and fakeParent make nodes for tests of the tree's shape, where
// only their keys matter.
func fakeLeaf(key byte) *mls.Node {
	return &mls.Node{Leaf: &mls.LeafNode{
		EncryptionKey: []byte{key},
		Credential:    mls.Credential{Type: mls.CredentialBasic},
		Source:        mls.LeafNodeSourceKeyPackage,
	}}
}

func fakeParent(key byte, unmerged ...uint32) *mls.Node {
	return &mls.Node{Parent: &mls.ParentNode{EncryptionKey: []byte{key}, UnmergedLeaves: unmerged}}
}

func mustImport(t *testing.T, rt mls.RatchetTree) *Tree {
	t.Helper()
	tree, err := Import(suite1(t), rt)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// TestResolution builds Figure 10 of §4.1.1: blanks and an unmerged leaf.
func TestResolution(t *testing.T) {
	rt := make(mls.RatchetTree, 15)
	for _, l := range []int{0, 1, 3, 4, 5, 7} {
		rt[2*l] = fakeLeaf(byte(l))
	}
	rt[3] = fakeParent('X', 1)
	rt[9] = fakeParent('Y')
	tree := mustImport(t, rt)
	for _, tc := range []struct {
		node treemath.NodeIndex
		want []treemath.NodeIndex
	}{
		{3, []treemath.NodeIndex{3, 2}}, // X is [X, B]
		{4, nil},                        // blank leaf 2
		{12, nil},                       // blank leaf 6
		{7, []treemath.NodeIndex{3, 2, 9, 14}},
		{11, []treemath.NodeIndex{9, 14}},
		{1, []treemath.NodeIndex{0, 2}},
	} {
		if got := tree.Resolution(tc.node); !slices.Equal(got, tc.want) {
			t.Errorf("resolution of node %d = %v, want %v", tc.node, got, tc.want)
		}
	}
}

// TestFilteredDirectPath builds Figure 11 of §4.1.2 and checks Table 2.
func TestFilteredDirectPath(t *testing.T) {
	rt := make(mls.RatchetTree, 13) // H, the last leaf, is blank
	for _, l := range []int{0, 1, 4, 5, 6} {
		rt[2*l] = fakeLeaf(byte(l))
	}
	rt[1], rt[7], rt[9], rt[11] = fakeParent('T'), fakeParent('W'), fakeParent('X'), fakeParent('Y')
	tree := mustImport(t, rt)
	if tree.NumLeaves() != 8 {
		t.Fatalf("NumLeaves = %d, want 8", tree.NumLeaves())
	}
	for _, tc := range []struct {
		leaf treemath.LeafIndex
		want []treemath.NodeIndex
	}{
		{0, []treemath.NodeIndex{1, 7}},     // A: T, W
		{1, []treemath.NodeIndex{1, 7}},     // B: T, W
		{4, []treemath.NodeIndex{9, 11, 7}}, // E: X, Y, W
		{5, []treemath.NodeIndex{9, 11, 7}}, // F: X, Y, W
		{6, []treemath.NodeIndex{11, 7}},    // G: Y, W
	} {
		if got := tree.FilteredDirectPath(tc.leaf); !slices.Equal(got, tc.want) {
			t.Errorf("filtered direct path of leaf %d = %v, want %v", tc.leaf, got, tc.want)
		}
	}
}

// TestImportRejects checks the shape checks of §12.4.3.3 and §7.1.
func TestImportRejects(t *testing.T) {
	cs := suite1(t)
	for name, rt := range map[string]mls.RatchetTree{
		"empty":            {},
		"trailing blank":   {fakeLeaf(0), nil, nil},
		"leaf at odd":      {fakeLeaf(0), fakeLeaf(1), fakeLeaf(2)},
		"parent at even":   {fakeParent(0), nil, fakeLeaf(2)},
		"both set":         {{Leaf: fakeLeaf(0).Leaf, Parent: fakeParent(0).Parent}},
		"unsorted":         {fakeLeaf(0), nil, fakeLeaf(1), fakeParent(9, 2, 1), fakeLeaf(2), nil, fakeLeaf(3)},
		"duplicate":        {fakeLeaf(0), nil, fakeLeaf(1), fakeParent(9, 1, 1), fakeLeaf(2), nil, fakeLeaf(3)},
		"not a descendant": {fakeLeaf(0), fakeParent(8, 2), fakeLeaf(1), nil, fakeLeaf(2)},
		"out of range":     {fakeLeaf(0), nil, fakeLeaf(1), fakeParent(9, 7)},
	} {
		if _, err := Import(cs, rt); !errors.Is(err, ErrMalformedTree) && !errors.Is(err, ErrUnmergedLeaves) {
			t.Errorf("%s: Import error = %v", name, err)
		}
	}
	// Five nodes extend to seven (§12.4.3.3) and export trims them again.
	tree, err := Import(cs, mls.RatchetTree{fakeLeaf(0), nil, fakeLeaf(1), nil, fakeLeaf(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(tree.nodes) != 7 || len(tree.RatchetTree()) != 5 {
		t.Errorf("width %d, exported %d nodes; want 7 and 5", len(tree.nodes), len(tree.RatchetTree()))
	}
}

// TestAddRemoveTruncate follows §7.7 and §12.1.1-§12.1.3.
func TestAddRemoveTruncate(t *testing.T) {
	tree := New(suite1(t), fakeLeaf(0).Leaf)
	for i := 1; i < 5; i++ {
		if l := tree.AddLeaf(fakeLeaf(byte(i)).Leaf); l != treemath.LeafIndex(i) {
			t.Fatalf("leaf %d added at %d", i, l)
		}
	}
	if tree.NumLeaves() != 8 {
		t.Fatalf("5 members in %d leaves, want 8", tree.NumLeaves())
	}
	// Give the root and node 3 keys, so later adds become unmerged there.
	tree.setNode(7, fakeParent('R', 4))
	tree.setNode(3, fakeParent('P'))
	if err := tree.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if tree.nodes[3] != nil || tree.nodes[7] != nil || tree.nodes[1] != nil {
		t.Error("Remove left the direct path of leaf 1 non-blank")
	}
	tree.setNode(7, fakeParent('R', 4))
	if l := tree.AddLeaf(fakeLeaf(9).Leaf); l != 1 {
		t.Errorf("new member at leaf %d, want the freed leaf 1", l)
	}
	if um := tree.nodes[7].Parent.UnmergedLeaves; !slices.Equal(um, []uint32{1, 4}) {
		t.Errorf("root unmerged_leaves = %v, want [1 4] (sorted)", um)
	}
	if err := tree.RemoveLeaf(1); !errors.Is(err, nil) {
		t.Fatal(err)
	}
	if err := tree.RemoveLeaf(1); !errors.Is(err, ErrBlankLeaf) {
		t.Errorf("removing a blank leaf: %v", err)
	}
	if err := tree.RemoveLeaf(8); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("removing leaf 8 of 8: %v", err)
	}
	// Removing leaf 4 empties the right half: the tree halves, then stops
	// because leaf 3 is in the right half of what remains.
	if err := tree.RemoveLeaf(4); err != nil {
		t.Fatal(err)
	}
	if tree.NumLeaves() != 4 {
		t.Errorf("after removing the last right-half member: %d leaves, want 4", tree.NumLeaves())
	}
	for _, l := range []treemath.LeafIndex{3, 2} {
		if err := tree.RemoveLeaf(l); err != nil {
			t.Fatal(err)
		}
	}
	if tree.NumLeaves() != 1 || len(tree.nodes) != 1 {
		t.Errorf("one member left in %d leaves (%d nodes), want 1", tree.NumLeaves(), len(tree.nodes))
	}
	if err := tree.UpdateLeaf(0, fakeLeaf(7).Leaf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tree.Leaf(0).EncryptionKey, []byte{7}) {
		t.Error("UpdateLeaf did not replace the leaf")
	}
}

// TestLeafOutOfRange checks that a leaf index past the tree names no leaf,
// even one whose doubled node index wraps around to an existing leaf
// (§6.3.2: a sender's leaf_index must identify a non-blank leaf).
func TestLeafOutOfRange(t *testing.T) {
	tree := New(suite1(t), fakeLeaf(0).Leaf)
	tree.AddLeaf(fakeLeaf(1).Leaf)
	for _, l := range []treemath.LeafIndex{2, 1 << 31, 1<<31 + 1, 1<<32 - 1} {
		if leaf := tree.Leaf(l); leaf != nil {
			t.Errorf("Leaf(%d) of a %d-leaf tree = %x, want nil", l, tree.NumLeaves(), leaf.EncryptionKey)
		}
	}
	if tree.Leaf(1) == nil {
		t.Error("Leaf(1) is nil")
	}
}

// TestCloneIndependence checks that a clone shares nothing mutable.
func TestCloneIndependence(t *testing.T) {
	rt := mls.RatchetTree{fakeLeaf(0), fakeParent('P', 1), fakeLeaf(1), nil, fakeLeaf(2)}
	tree := mustImport(t, rt)
	before := tree.RatchetTree()
	hash := treeHash(t, tree)

	c := tree.Clone()
	c.Leaf(0).EncryptionKey[0] = 0xff
	c.Leaf(0).Credential.Identity = append(c.Leaf(0).Credential.Identity, 'x')
	c.nodes[1].Parent.EncryptionKey[0] = 0xff
	c.AddLeaf(fakeLeaf(3).Leaf) // changes unmerged_leaves of node 3 if set
	c.nodes[1].Parent.UnmergedLeaves[0] = 0
	if err := c.RemoveLeaf(2); err != nil {
		t.Fatal(err)
	}

	rt[0].Leaf.EncryptionKey[0] = 0xee // Import copied its input too
	if got := tree.RatchetTree(); !equalTrees(t, got, before) {
		t.Error("changing the clone changed the original")
	}
	if h := treeHash(t, tree); !bytes.Equal(h, hash) {
		t.Error("changing the clone changed the original's tree hash")
	}
	fresh := mustImport(t, before)
	checkBytes(t, "original's tree hash against a fresh import", hash, treeHash(t, fresh))
}

func equalTrees(t *testing.T, a, b mls.RatchetTree) bool {
	return bytes.Equal(mustMarshal(t, &a), mustMarshal(t, &b))
}

// TestHashCache checks that the cached tree hash always equals a fresh
// computation, through adds, updates, removes and truncation.
func TestHashCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tree := New(suite1(t), fakeLeaf(0).Leaf)
	key := byte(1)
	for step := range 300 {
		key++
		switch op := rng.IntN(4); {
		case op <= 1 || tree.NumLeaves() == 1:
			tree.AddLeaf(fakeLeaf(key).Leaf)
		case op == 2:
			l := treemath.LeafIndex(rng.IntN(int(tree.NumLeaves())))
			if tree.Leaf(l) != nil {
				_ = tree.UpdateLeaf(l, fakeLeaf(key).Leaf)
				// Give its path keys so that later adds are unmerged there.
				for _, x := range treemath.DirectPath(l.Node(), tree.NumLeaves()) {
					if rng.IntN(2) == 0 {
						key++
						tree.setNode(x, fakeParent(key))
					}
				}
			}
		default:
			var members []treemath.LeafIndex
			for l := range tree.Leaves() {
				members = append(members, l)
			}
			if len(members) > 1 {
				if err := tree.RemoveLeaf(members[rng.IntN(len(members))]); err != nil {
					t.Fatal(err)
				}
			}
		}
		got := treeHash(t, tree)
		fresh := tree.Clone()
		clear(fresh.hashes)
		if want := treeHash(t, fresh); !bytes.Equal(got, want) {
			t.Fatalf("step %d: cached tree hash %x, fresh %x", step, got, want)
		}
	}
}

// group simulates every member of a group through commits with paths, to
// test TreeKEM end to end (§7.4-§7.6, §12.4.1-§12.4.3.1).
type group struct {
	t       *testing.T
	cs      *suite.Suite
	rng     io.Reader
	groupID []byte
	epoch   uint64
	tree    *Tree
	members map[treemath.LeafIndex]*state
	next    int
}

type state struct {
	sigPriv []byte
	keys    PrivateKeys
}

func newGroup(t *testing.T, cs *suite.Suite, seed uint64) *group {
	rng := rand.NewChaCha8([32]byte{byte(seed)})
	g := &group{t: t, cs: cs, rng: rng, groupID: []byte("group"), members: map[treemath.LeafIndex]*state{}}
	m := newMember(t, cs, rng, 0)
	g.tree = New(cs, &m.leaf)
	g.members[0] = &state{m.sigPriv, PrivateKeys{0: secret.New(m.encPriv)}}
	g.next = 1
	return g
}

func (g *group) context(treeHash []byte) []byte {
	return mustMarshal(g.t, &mls.GroupContext{
		Version:     mls.MLS10,
		CipherSuite: g.cs.ID(),
		GroupID:     g.groupID,
		Epoch:       g.epoch + 1,
		TreeHash:    treeHash,
	})
}

// commit has sender commit nAdd adds, the given removes and updates (each
// with a fresh leaf) and, if withPath, an UpdatePath; every member then
// processes it.
func (g *group) commit(sender treemath.LeafIndex, nAdd int, removes, updates []treemath.LeafIndex, withPath bool) {
	t := g.t
	t.Helper()
	type update struct {
		leaf treemath.LeafIndex
		m    member
	}
	var ups []update
	for _, l := range updates {
		m := newMember(t, g.cs, g.rng, g.next)
		g.next++
		m.leaf.SignatureKey = g.tree.Leaf(l).SignatureKey
		m.sigPriv = g.members[l].sigPriv
		m.leaf.Source = mls.LeafNodeSourceUpdate
		tbs, err := m.leaf.MarshalTBS(g.groupID, uint32(l))
		if err != nil {
			t.Fatal(err)
		}
		if m.leaf.Signature, err = g.cs.SignWithLabel(m.sigPriv, leafNodeTBSLabel, tbs); err != nil {
			t.Fatal(err)
		}
		ups = append(ups, update{l, m})
	}
	var adds []member
	for range nAdd {
		adds = append(adds, newMember(t, g.cs, g.rng, g.next))
		g.next++
	}
	// §12.3: updates, then removes, then adds.
	apply := func(tree *Tree) []treemath.LeafIndex {
		for _, u := range ups {
			if err := tree.UpdateLeaf(u.leaf, &u.m.leaf); err != nil {
				t.Fatal(err)
			}
		}
		for _, l := range removes {
			if err := tree.RemoveLeaf(l); err != nil {
				t.Fatal(err)
			}
		}
		var joiners []treemath.LeafIndex
		for _, m := range adds {
			joiners = append(joiners, tree.AddLeaf(&m.leaf))
		}
		return joiners
	}
	next := g.tree.Clone()
	joiners := apply(next)
	var (
		p   *Path
		up  *mls.UpdatePath
		ctx []byte
		err error
	)
	if withPath {
		p, err = next.GeneratePath(g.rng, sender, *next.Leaf(sender), g.groupID, g.members[sender].sigPriv)
		if err != nil {
			t.Fatal(err)
		}
		ctx = g.context(treeHash(t, next))
		up, err = p.Encrypt(ctx, joiners)
		if err != nil {
			t.Fatal(err)
		}
		up = roundTrip(t, up)
	}
	wantHash := treeHash(t, next)

	// Every member but the sender and the removed processes the commit
	// on its own copy of the tree.
	for _, l := range removes {
		delete(g.members, l)
	}
	for _, u := range ups {
		g.members[u.leaf].keys = PrivateKeys{u.leaf.Node(): secret.New(u.m.encPriv)}
	}
	for l, st := range g.members {
		if l == sender {
			continue
		}
		recv := g.tree.Clone()
		apply(recv)
		keys := st.keys.Clone()
		keys.Prune(recv)
		if withPath {
			if err := recv.MergePath(sender, up, g.groupID); err != nil {
				t.Fatalf("epoch %d: leaf %d: MergePath: %v", g.epoch, l, err)
			}
			got, err := recv.DecryptPath(keys, l, sender, up, joiners, ctx)
			if err != nil {
				t.Fatalf("epoch %d: leaf %d: DecryptPath from %d: %v", g.epoch, l, sender, err)
			}
			if !got.CommitSecret.Equal(p.CommitSecret()) {
				t.Fatalf("epoch %d: leaf %d: commit secret differs", g.epoch, l)
			}
		}
		checkBytes(t, fmt.Sprintf("epoch %d: leaf %d: tree hash", g.epoch, l), treeHash(t, recv), wantHash)
		if err := recv.VerifyPrivateKeys(keys); err != nil {
			t.Fatalf("epoch %d: leaf %d: %v", g.epoch, l, err)
		}
		st.keys = keys
	}
	if withPath {
		g.members[sender].keys = p.PrivateKeys()
	} else {
		g.members[sender].keys.Prune(next)
	}
	// The new members join by Welcome (§12.4.3.1), with the path secret of
	// the lowest common ancestor of their leaf and the sender's.
	for i, l := range joiners {
		st := &state{adds[i].sigPriv, PrivateKeys{l.Node(): secret.New(adds[i].encPriv)}}
		if withPath {
			x := treemath.CommonAncestor(l.Node(), sender.Node())
			ps, ok := p.PathSecret(x)
			if !ok {
				t.Fatalf("epoch %d: no path secret for node %d", g.epoch, x)
			}
			joined, err := Import(g.cs, next.RatchetTree())
			if err != nil {
				t.Fatal(err)
			}
			if err := joined.ImportPathSecret(st.keys, x, ps); err != nil {
				t.Fatalf("epoch %d: joiner %d: %v", g.epoch, l, err)
			}
		}
		g.members[l] = st
	}
	for l, st := range g.members {
		if err := next.VerifyPrivateKeys(st.keys); err != nil {
			t.Fatalf("epoch %d: leaf %d: %v", g.epoch, l, err)
		}
	}
	if err := next.Validate(g.groupID, wantHash); err != nil {
		t.Fatalf("epoch %d: %v", g.epoch, err)
	}
	g.tree = next
	g.epoch++
}

func (g *group) leaves() []treemath.LeafIndex {
	var ls []treemath.LeafIndex
	for l := range g.tree.Leaves() {
		ls = append(ls, l)
	}
	return ls
}

// TestTreeKEMGroup drives a group through random epochs: adds (with the
// new members excluded from the path and joining by Welcome), removes,
// updates and commits with and without paths.
func TestTreeKEMGroup(t *testing.T) {
	g := newGroup(t, suite1(t), 1)
	g.commit(0, 3, nil, nil, true)
	g.commit(2, 2, nil, nil, false) // adds without a path leave unmerged leaves
	g.commit(1, 0, nil, nil, true)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 40 {
		ls := g.leaves()
		sender := ls[rng.IntN(len(ls))]
		var removes, updates []treemath.LeafIndex
		for _, l := range ls {
			switch r := rng.IntN(10); {
			case l == sender:
			case r == 0 && len(ls)-len(removes) > 2:
				removes = append(removes, l)
			case r == 1:
				updates = append(updates, l)
			}
		}
		withPath := len(removes)+len(updates) > 0 || rng.IntN(3) > 0
		g.commit(sender, rng.IntN(3), removes, updates, withPath)
	}
	t.Logf("%d members in %d leaves after %d epochs", len(g.members), g.tree.NumLeaves(), g.epoch)
}

// committedGroup returns a group of size members in which several have
// committed, so the tree has parent nodes, parent hashes and unmerged
// leaves.
func committedGroup(t *testing.T, size int) *group {
	g := newGroup(t, suite1(t), 2)
	g.commit(0, size-1, nil, nil, true)
	g.commit(3, 0, nil, nil, true)
	g.commit(1, 1, nil, nil, false)
	return g
}

// TestTamperedParentHash checks that a changed parent hash, parent key or
// unmerged list fails §7.9.2, and that MergePath rejects a path whose keys
// do not chain to the leaf's parent_hash.
func TestTamperedParentHash(t *testing.T) {
	g := committedGroup(t, 6)
	if err := g.tree.VerifyParentHashes(); err != nil {
		t.Fatal(err)
	}
	for x := 1; x < len(g.tree.nodes); x += 2 {
		if g.tree.nodes[x] == nil {
			continue
		}
		for name, tamper := range map[string]func(p *mls.ParentNode){
			"parent_hash":     func(p *mls.ParentNode) { p.ParentHash = append(bytes.Clone(p.ParentHash), 0) },
			"encryption_key":  func(p *mls.ParentNode) { p.EncryptionKey = append(bytes.Clone(p.EncryptionKey), 0) },
			"unmerged_leaves": func(p *mls.ParentNode) { p.UnmergedLeaves = nil },
		} {
			tree := g.tree.Clone()
			if name == "unmerged_leaves" && len(tree.nodes[x].Parent.UnmergedLeaves) == 0 {
				continue
			}
			tamper(tree.nodes[x].Parent)
			tree.invalidate(treemath.NodeIndex(x))
			if err := tree.VerifyParentHashes(); !errors.Is(err, ErrParentHash) {
				t.Errorf("node %d: tampered %s: %v", x, name, err)
			}
		}
	}

	// A path whose node key is swapped fails the leaf's parent hash.
	sender := treemath.LeafIndex(2)
	next := g.tree.Clone()
	p, err := next.GeneratePath(g.rng, sender, *next.Leaf(sender), g.groupID, g.members[sender].sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	up, err := p.Encrypt(g.context(treeHash(t, next)), nil)
	if err != nil {
		t.Fatal(err)
	}
	up.Nodes[len(up.Nodes)-1].EncryptionKey = g.tree.Leaf(5).EncryptionKey // also a reused key
	if err := g.tree.Clone().MergePath(sender, up, g.groupID); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("path reusing a tree key: %v", err)
	}
	_, fresh, err := g.cs.GenerateKeyPair(g.rng)
	if err != nil {
		t.Fatal(err)
	}
	up.Nodes[len(up.Nodes)-1].EncryptionKey = fresh
	recv := g.tree.Clone()
	before := treeHash(t, recv)
	if err := recv.MergePath(sender, up, g.groupID); !errors.Is(err, ErrParentHash) {
		t.Errorf("path with a swapped key: %v", err)
	}
	checkBytes(t, "tree hash after a rejected path", treeHash(t, recv), before)
	up.Nodes = up.Nodes[1:]
	if err := recv.MergePath(sender, up, g.groupID); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("path one node short: %v", err)
	}
}

// TestTamperedLeafSignature checks §7.3's signature check on the tree and
// on a received path.
func TestTamperedLeafSignature(t *testing.T) {
	g := committedGroup(t, 5)
	if err := g.tree.VerifyLeafSignatures(g.groupID); err != nil {
		t.Fatal(err)
	}
	if err := g.tree.VerifyLeafSignatures([]byte("other group")); !errors.Is(err, ErrSignature) {
		t.Errorf("commit leaves checked against another group_id: %v", err)
	}
	for l := range g.tree.Leaves() {
		tree := g.tree.Clone()
		leaf := tree.Leaf(l)
		leaf.Signature[0] ^= 1
		if err := tree.VerifyLeafSignatures(g.groupID); !errors.Is(err, ErrSignature) {
			t.Errorf("leaf %d: flipped signature bit: %v", l, err)
		}
		leaf.Signature[0] ^= 1
		leaf.Capabilities.Extensions = append(leaf.Capabilities.Extensions, 0x0a0a)
		if err := tree.VerifyLeafSignature(g.groupID, l); !errors.Is(err, ErrSignature) {
			t.Errorf("leaf %d: changed content: %v", l, err)
		}
	}

	sender := treemath.LeafIndex(0)
	next := g.tree.Clone()
	p, err := next.GeneratePath(g.rng, sender, *next.Leaf(sender), g.groupID, g.members[sender].sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	up, err := p.Encrypt(g.context(treeHash(t, next)), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Leaf 1 claiming leaf 0's path takes leaf 0's signature key (§7.3)...
	if err := g.tree.Clone().MergePath(1, up, g.groupID); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("path claimed by another leaf: %v", err)
	}
	// ...and were that key free, the signature binds leaf 0's index.
	claimed := g.tree.Clone()
	claimed.Leaf(sender).SignatureKey = []byte("another key")
	if err := claimed.MergePath(1, up, g.groupID); !errors.Is(err, ErrSignature) {
		t.Errorf("path claimed by another leaf, its key free: %v", err)
	}
	up.LeafNode.Signature[1] ^= 1
	if err := g.tree.Clone().MergePath(sender, up, g.groupID); !errors.Is(err, ErrSignature) {
		t.Errorf("path with a bad leaf signature: %v", err)
	}
}

// TestDecryptPathRejects checks the receiver's checks of §7.6 and §12.4.2.
func TestDecryptPathRejects(t *testing.T) {
	g := committedGroup(t, 6)
	sender, own := treemath.LeafIndex(0), treemath.LeafIndex(4)
	next := g.tree.Clone()
	p, err := next.GeneratePath(g.rng, sender, *next.Leaf(sender), g.groupID, g.members[sender].sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	ctx := g.context(treeHash(t, next))
	up, err := p.Encrypt(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	recv := g.tree.Clone()
	if err := recv.MergePath(sender, up, g.groupID); err != nil {
		t.Fatal(err)
	}
	keys := g.members[own].keys
	if _, err := recv.DecryptPath(keys.Clone(), own, sender, up, nil, []byte("other context")); !errors.Is(err, suite.ErrDecrypt) {
		t.Errorf("wrong context: %v", err)
	}
	if _, err := recv.DecryptPath(keys.Clone(), own, sender, up, []treemath.LeafIndex{5}, ctx); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("ciphertext count not matching the exclusions: %v", err)
	}
	if _, err := recv.DecryptPath(PrivateKeys{}, own, sender, up, nil, ctx); !errors.Is(err, ErrNoPrivateKey) {
		t.Errorf("no keys: %v", err)
	}
	bad := roundTrip(t, up)
	last := len(bad.Nodes) - 1
	_, bad.Nodes[last].EncryptionKey, _ = g.cs.GenerateKeyPair(g.rng)
	if _, err := recv.DecryptPath(keys.Clone(), own, sender, bad, nil, ctx); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("public key not derived from the path secret: %v", err)
	}
	k := keys.Clone()
	if _, err := recv.DecryptPath(k, own, sender, up, nil, ctx); err != nil {
		t.Fatal(err)
	}
	if err := recv.VerifyPrivateKeys(k); err != nil {
		t.Error(err)
	}
	if err := recv.VerifyPrivateKeys(keys); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("old keys against the new tree: %v", err)
	}
}
