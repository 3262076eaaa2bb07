package ratchettree

import (
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// TreeHash is the tree hash of the root (§7.8), the value the GroupContext
// commits to.
func (t *Tree) TreeHash() ([]byte, error) { return t.hash(t.Root()) }

// NodeHash is the tree hash of the subtree under node x (§7.8).
func (t *Tree) NodeHash(x treemath.NodeIndex) ([]byte, error) {
	if int(x) >= len(t.nodes) {
		return nil, fmt.Errorf("%w: node %d of %d", ErrOutOfRange, x, len(t.nodes))
	}
	return t.hash(x)
}

// hash returns the tree hash of x from the cache, filling in whatever part
// of x's subtree is missing: after a path changes, only that path is
// rehashed.
func (t *Tree) hash(x treemath.NodeIndex) ([]byte, error) {
	if h := t.hashes[x]; h != nil {
		return h, nil
	}
	var (
		h   []byte
		err error
	)
	if x.IsLeaf() {
		var leaf *mls.LeafNode
		if node := t.nodes[x]; node != nil {
			leaf = node.Leaf
		}
		h, err = t.leafHash(x.Leaf(), leaf)
	} else {
		var left, right []byte
		if left, err = t.hash(treemath.Left(x)); err != nil {
			return nil, err
		}
		if right, err = t.hash(treemath.Right(x)); err != nil {
			return nil, err
		}
		var parent *mls.ParentNode
		if node := t.nodes[x]; node != nil {
			parent = node.Parent
		}
		h, err = t.parentHash(parent, left, right)
	}
	if err != nil {
		return nil, fmt.Errorf("ratchettree: tree hash of node %d: %w", x, err)
	}
	t.hashes[x] = h
	return h, nil
}

// leafHash hashes a TreeHashInput holding a LeafNodeHashInput; leaf is nil
// for a blank leaf.
func (t *Tree) leafHash(l treemath.LeafIndex, leaf *mls.LeafNode) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(uint8(mls.NodeTypeLeaf))
	b.AddUint32(uint32(l))
	addOptional(&b, leaf)
	return t.hashBuilder(&b)
}

// parentHash hashes a TreeHashInput holding a ParentNodeHashInput; parent
// is nil for a blank node.
func (t *Tree) parentHash(parent *mls.ParentNode, left, right []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(uint8(mls.NodeTypeParent))
	addOptional(&b, parent)
	wire.AddOpaque(&b, left)
	wire.AddOpaque(&b, right)
	return t.hashBuilder(&b)
}

// addOptional encodes optional<T> (§2.1): a presence byte, then the value.
func addOptional[T any, P interface {
	*T
	wire.Marshaler
}](b *cryptobyte.Builder, v P) {
	if v == nil {
		b.AddUint8(0)
		return
	}
	b.AddUint8(1)
	v.Marshal(b)
}

func (t *Tree) hashBuilder(b *cryptobyte.Builder) ([]byte, error) {
	in, err := b.Bytes()
	if err != nil {
		return nil, err
	}
	return t.cs.Hash(in), nil
}

// parentHashOf is the parent hash of P (§7.9): the hash of its
// ParentHashInput, given P's key and parent_hash and the original tree
// hash of its copath child.
func (t *Tree) parentHashOf(encryptionKey, parentHash, siblingHash []byte) ([]byte, error) {
	var b cryptobyte.Builder
	wire.AddOpaque(&b, encryptionKey)
	wire.AddOpaque(&b, parentHash)
	wire.AddOpaque(&b, siblingHash)
	return t.hashBuilder(&b)
}

// originalSiblingHash is the original_sibling_tree_hash of §7.9 for parent
// p and its child s: the tree hash of s once p's unmerged leaves are
// blanked and dropped from every unmerged_leaves list. When none of them is
// under s, that is just s's (cached) tree hash.
func (t *Tree) originalSiblingHash(p, s treemath.NodeIndex) ([]byte, error) {
	var excluded []uint32
	if node := t.nodes[p]; node != nil {
		for _, l := range node.Parent.UnmergedLeaves {
			if treemath.IsInSubtree(treemath.LeafIndex(l).Node(), s) {
				excluded = append(excluded, l)
			}
		}
	}
	return t.hashWithout(s, excluded)
}

// hashWithout is the tree hash of x with the leaves in excluded treated as
// blank and absent from unmerged_leaves. Subtrees without an excluded leaf
// come from the cache.
func (t *Tree) hashWithout(x treemath.NodeIndex, excluded []uint32) ([]byte, error) {
	if !slices.ContainsFunc(excluded, func(l uint32) bool {
		return treemath.IsInSubtree(treemath.LeafIndex(l).Node(), x)
	}) {
		return t.hash(x)
	}
	if x.IsLeaf() {
		return t.leafHash(x.Leaf(), nil)
	}
	left, err := t.hashWithout(treemath.Left(x), excluded)
	if err != nil {
		return nil, err
	}
	right, err := t.hashWithout(treemath.Right(x), excluded)
	if err != nil {
		return nil, err
	}
	var parent *mls.ParentNode
	if node := t.nodes[x]; node != nil {
		p := *node.Parent
		p.UnmergedLeaves = slices.DeleteFunc(slices.Clone(p.UnmergedLeaves), func(l uint32) bool {
			return slices.Contains(excluded, l)
		})
		parent = &p
	}
	return t.parentHash(parent, left, right)
}

// pathParentHashes computes the parent_hash fields along a filtered direct
// path whose nodes get the keys pubs (§7.9, §7.9.1): hashes[i] is the value
// for path node i, leafHash the value for the leaf below. The topmost node
// has nothing above it and so gets the empty string. copath[i] is the
// child of path[i] off the path; it is not changed by merging the path, and
// the merged nodes have no unmerged leaves, so its current tree hash is its
// original one.
func (t *Tree) pathParentHashes(copath []treemath.NodeIndex, pubs [][]byte) (hashes [][]byte, leafHash []byte, err error) {
	hashes = make([][]byte, len(copath))
	above := []byte{}
	for i := len(copath) - 1; i >= 0; i-- {
		hashes[i] = above
		sibling, err := t.hash(copath[i])
		if err != nil {
			return nil, nil, err
		}
		if above, err = t.parentHashOf(pubs[i], hashes[i], sibling); err != nil {
			return nil, nil, err
		}
	}
	return hashes, above, nil
}
