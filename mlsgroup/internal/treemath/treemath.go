// Package treemath is the index arithmetic of RFC 9420's array-based
// binary trees (§4.1, Appendix C).
//
// A tree with n leaves (n a power of two, as RFC 9420's trees are always
// full) has 2n-1 nodes; leaves sit at even node indices, parents at odd
// ones, and a node's level is the number of trailing one bits of its index.
// Everything here is pure arithmetic on indices; callers check that an
// index is in range before they ask about it.
package treemath

import "math/bits"

// LeafIndex numbers the leaves left to right from 0.
type LeafIndex uint32

// NodeIndex numbers all nodes of the array representation left to right.
type NodeIndex uint32

// Node is the node index of leaf l.
func (l LeafIndex) Node() NodeIndex { return NodeIndex(2 * l) }

// IsLeaf reports whether x is a leaf (level 0).
func (x NodeIndex) IsLeaf() bool { return x&1 == 0 }

// Leaf is the leaf index of x; x must be a leaf.
func (x NodeIndex) Leaf() LeafIndex { return LeafIndex(x / 2) }

// NodeWidth is the number of nodes in a tree with nLeaves leaves.
func NodeWidth(nLeaves uint32) uint32 {
	if nLeaves == 0 {
		return 0
	}
	return 2*(nLeaves-1) + 1
}

// Level is the height of x above the leaves.
func Level(x NodeIndex) uint32 { return uint32(bits.TrailingZeros32(^uint32(x))) }

// Root is the root of a tree with nLeaves leaves.
func Root(nLeaves uint32) NodeIndex {
	w := NodeWidth(nLeaves)
	return NodeIndex(1<<(bits.Len32(w)-1) - 1)
}

// Left is the left child of the parent node x.
func Left(x NodeIndex) NodeIndex {
	k := Level(x)
	return x ^ (1 << (k - 1))
}

// Right is the right child of the parent node x.
func Right(x NodeIndex) NodeIndex {
	k := Level(x)
	return x ^ (3 << (k - 1))
}

// Parent is the parent of x, which must not be the root.
func Parent(x NodeIndex, nLeaves uint32) NodeIndex {
	_ = nLeaves // trees are full, so the parent never depends on the width
	k := Level(x)
	b := (x >> (k + 1)) & 1
	return (x | 1<<k) ^ (b << (k + 1))
}

// Sibling is the other child of x's parent; x must not be the root.
func Sibling(x NodeIndex, nLeaves uint32) NodeIndex {
	p := Parent(x, nLeaves)
	if x < p {
		return Right(p)
	}
	return Left(p)
}

// DirectPath lists the ancestors of x from its parent up to the root; it is
// empty for the root.
func DirectPath(x NodeIndex, nLeaves uint32) []NodeIndex {
	r := Root(nLeaves)
	if x == r {
		return nil
	}
	path := make([]NodeIndex, 0, Level(r)-Level(x))
	for x != r {
		x = Parent(x, nLeaves)
		path = append(path, x)
	}
	return path
}

// Copath lists the siblings of x and of each node on its direct path but
// the root, bottom up: the roots of the subtrees that x's path secret is
// encrypted to (§7.5).
func Copath(x NodeIndex, nLeaves uint32) []NodeIndex {
	r := Root(nLeaves)
	if x == r {
		return nil
	}
	path := make([]NodeIndex, 0, Level(r)-Level(x))
	for x != r {
		path = append(path, Sibling(x, nLeaves))
		x = Parent(x, nLeaves)
	}
	return path
}

// CommonAncestor is the lowest node whose subtree holds both x and y.
func CommonAncestor(x, y NodeIndex) NodeIndex {
	// Parent is pure arithmetic, so climbing never needs the tree's width:
	// stop at the first ancestor of x whose subtree also holds y.
	for !IsInSubtree(y, x) {
		x = Parent(x, 0)
	}
	return x
}

// IsInSubtree reports whether x lies in the subtree rooted at ancestor
// (which includes ancestor itself).
func IsInSubtree(x, ancestor NodeIndex) bool {
	k := Level(ancestor)
	lo := uint32(ancestor) - (1<<k - 1)
	hi := uint32(ancestor) + (1<<k - 1)
	return uint32(x) >= lo && uint32(x) <= hi
}
