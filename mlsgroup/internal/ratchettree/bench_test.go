package ratchettree

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

const (
	benchMembers  = 1000
	benchSender   = treemath.LeafIndex(0)
	benchReceiver = treemath.LeafIndex(benchMembers - 1) // decrypts at the root
)

var benchGroupID = []byte("benchmark group")

// benchTree is a 1000-member suite 1 tree with real keys, and the private
// keys of benchReceiver.
type benchTree struct {
	cs      *suite.Suite
	tree    *Tree
	sigPriv []byte // every leaf shares one signature key, to save setup time
	keys    PrivateKeys
}

var benchTrees = map[string]func() *benchTree{
	"sparse": sync.OnceValue(func() *benchTree { return newBenchTree(false) }),
	"full":   sync.OnceValue(func() *benchTree { return newBenchTree(true) }),
}

func getBenchTree(b *testing.B, kind string) *benchTree {
	b.Helper()
	bt := benchTrees[kind]()
	if bt == nil {
		b.Fatal("building the benchmark tree failed")
	}
	return bt
}

// newBenchTree builds the tree: "sparse" has only the leaves; "full" is
// what follows every member committing once in turn, so every parent node
// above a member has a key and benchReceiver knows those above it.
func newBenchTree(full bool) *benchTree {
	rng := rand.NewChaCha8([32]byte{'b', 'e', 'n', 'c', 'h'})
	cs, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		return nil
	}
	sigPriv, sigPub, err := cs.GenerateSignatureKey(rng)
	if err != nil {
		return nil
	}
	bt := &benchTree{cs: cs, sigPriv: sigPriv, keys: PrivateKeys{}}
	for i := range benchMembers {
		priv, pub, err := cs.GenerateKeyPair(rng)
		if err != nil {
			return nil
		}
		leaf := &mls.LeafNode{
			EncryptionKey: pub,
			SignatureKey:  sigPub,
			Credential:    mls.Credential{Type: mls.CredentialBasic, Identity: []byte{byte(i), byte(i >> 8)}},
			Capabilities: mls.Capabilities{
				Versions:     []mls.ProtocolVersion{mls.MLS10},
				CipherSuites: []suite.ID{cs.ID()},
				Credentials:  []mls.CredentialType{mls.CredentialBasic},
			},
			Source: mls.LeafNodeSourceKeyPackage,
		}
		if bt.tree == nil {
			bt.tree = New(cs, leaf)
		} else {
			bt.tree.AddLeaf(leaf)
		}
		if treemath.LeafIndex(i) == benchReceiver {
			bt.keys[benchReceiver.Node()] = secret.New(priv)
		}
	}
	if !full {
		return bt
	}
	for i := range benchMembers {
		sender := treemath.LeafIndex(i)
		p, err := bt.tree.GeneratePath(rng, sender, *bt.tree.Leaf(sender), benchGroupID, sigPriv)
		if err != nil {
			return nil
		}
		// What benchReceiver would have decrypted, without the HPKE.
		for _, x := range treemath.DirectPath(sender.Node(), bt.tree.NumLeaves()) {
			delete(bt.keys, x)
		}
		for x, priv := range p.PrivateKeys() {
			if treemath.IsInSubtree(benchReceiver.Node(), x) {
				bt.keys[x] = priv
			}
		}
	}
	return bt
}

func benchContext(b *testing.B, cs *suite.Suite, treeHash []byte) []byte {
	ctx, err := wire.Marshal(&mls.GroupContext{
		Version:     mls.MLS10,
		CipherSuite: cs.ID(),
		GroupID:     benchGroupID,
		Epoch:       1,
		TreeHash:    treeHash,
	})
	if err != nil {
		b.Fatal(err)
	}
	return ctx
}

// createPath is a committer's TreeKEM work (§12.4.1): copy the tree,
// generate the path, hash the new tree, encrypt.
func (bt *benchTree) createPath(b *testing.B, rng *rand.ChaCha8) (*Tree, *Path, *mls.UpdatePath, []byte) {
	next := bt.tree.Clone()
	p, err := next.GeneratePath(rng, benchSender, *next.Leaf(benchSender), benchGroupID, bt.sigPriv)
	if err != nil {
		b.Fatal(err)
	}
	h, err := next.TreeHash()
	if err != nil {
		b.Fatal(err)
	}
	ctx := benchContext(b, bt.cs, h)
	up, err := p.Encrypt(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	return next, p, up, ctx
}

// BenchmarkUpdatePath1000 creates and applies an UpdatePath from leaf 0 in
// a 1000-member group. In the sparse tree the path secrets go to ~999
// leaves; in the full one to one node per level.
func BenchmarkUpdatePath1000(b *testing.B) {
	for _, kind := range []string{"full", "sparse"} {
		b.Run(kind+"/create", func(b *testing.B) {
			bt := getBenchTree(b, kind)
			rng := rand.NewChaCha8([32]byte{1})
			for b.Loop() {
				bt.createPath(b, rng)
			}
		})
		b.Run(kind+"/apply", func(b *testing.B) {
			bt := getBenchTree(b, kind)
			_, p, up, ctx := bt.createPath(b, rand.NewChaCha8([32]byte{2}))
			if _, err := bt.tree.TreeHash(); err != nil { // a member's cache is warm
				b.Fatal(err)
			}
			for b.Loop() {
				recv := bt.tree.Clone()
				if err := recv.MergePath(benchSender, up, benchGroupID); err != nil {
					b.Fatal(err)
				}
				if _, err := recv.TreeHash(); err != nil {
					b.Fatal(err)
				}
				got, err := recv.DecryptPath(bt.keys.Clone(), benchReceiver, benchSender, up, nil, ctx)
				if err != nil {
					b.Fatal(err)
				}
				if !got.CommitSecret.Equal(p.CommitSecret()) {
					b.Fatal("commit secrets differ")
				}
			}
		})
	}
}

// BenchmarkTreeHash1000 computes the tree hash of a 1000-member tree from
// scratch, with no cached subtree hashes.
func BenchmarkTreeHash1000(b *testing.B) {
	for _, kind := range []string{"full", "sparse"} {
		b.Run(kind, func(b *testing.B) {
			tree := getBenchTree(b, kind).tree.Clone()
			for b.Loop() {
				clear(tree.hashes)
				if _, err := tree.TreeHash(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClone1000 is the cost of the deep copy a group makes of its
// tree for each new epoch.
func BenchmarkClone1000(b *testing.B) {
	tree := getBenchTree(b, "full").tree
	for b.Loop() {
		tree.Clone()
	}
}
