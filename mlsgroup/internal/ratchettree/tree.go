// Package ratchettree is the public ratchet tree of RFC 9420 and the
// TreeKEM operations on it: resolutions and filtered direct paths (§4.1),
// adding, updating and removing leaves (§7.7, §12.1.1-§12.1.3), tree hashes
// (§7.8), parent hashes (§7.9), the checks a joiner runs on a tree
// (§7.3, §12.4.3.1) and creating and processing UpdatePaths (§7.4-§7.6,
// §12.4.1, §12.4.2).
//
// A Tree holds only public state. The HPKE private keys a member knows (its
// own leaf's and those of the parent nodes above it) live apart in a
// PrivateKeys map, so a group can persist or drop them on its own terms.
//
// A Tree is not safe for concurrent use, not even for reads: computing a
// tree hash fills its cache.
package ratchettree

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
)

// Errors.
var (
	ErrMalformedTree  = errors.New("ratchettree: malformed tree")
	ErrOutOfRange     = errors.New("ratchettree: index out of range")
	ErrBlankLeaf      = errors.New("ratchettree: leaf is blank")
	ErrTreeHash       = errors.New("ratchettree: tree hash mismatch")
	ErrParentHash     = errors.New("ratchettree: parent hash not valid")
	ErrSignature      = errors.New("ratchettree: invalid leaf node signature")
	ErrUnmergedLeaves = errors.New("ratchettree: inconsistent unmerged leaves")
	ErrDuplicateKey   = errors.New("ratchettree: public key is not unique")
	ErrInvalidPath    = errors.New("ratchettree: invalid update path")
	ErrNoPrivateKey   = errors.New("ratchettree: no private key to decrypt the update path")
	ErrKeyMismatch    = errors.New("ratchettree: private key does not match the tree")
)

// maxLeaves bounds a tree so that node indices fit in a uint32.
const maxLeaves = 1 << 31

// Tree is a ratchet tree (§4.1, Appendix C): an array of 2n-1 nodes for a
// power of two n, leaves at even indices, nil for a blank node. Nodes
// returned by its methods belong to the tree and must not be modified.
type Tree struct {
	cs    *suite.Suite
	nodes []*mls.Node
	// hashes caches the tree hash (§7.8) of each node; nil means not
	// computed. If a node's entry is set, so are those of its whole
	// subtree, which is why a change invalidates the path up to the root.
	hashes [][]byte
}

// New returns the one-leaf tree of a group's creator (§11).
func New(cs *suite.Suite, leaf *mls.LeafNode) *Tree {
	return &Tree{
		cs:     cs,
		nodes:  []*mls.Node{{Leaf: cloneLeaf(leaf)}},
		hashes: make([][]byte, 1),
	}
}

// Import builds a tree from the ratchet_tree extension's form (§12.4.3.3):
// the last node must be non-blank, and the array is extended with blanks to
// the next full tree. It checks the tree's shape, not its contents: run
// Validate before trusting a tree received from others. The nodes are
// copied.
func Import(cs *suite.Suite, rt mls.RatchetTree) (*Tree, error) {
	if len(rt) == 0 || rt[len(rt)-1] == nil {
		return nil, fmt.Errorf("%w: empty or ends in a blank node", ErrMalformedTree)
	}
	if uint64(len(rt)) > 2*maxLeaves-1 {
		return nil, fmt.Errorf("%w: %d nodes", ErrMalformedTree, len(rt))
	}
	n := uint32(1)
	for int(treemath.NodeWidth(n)) < len(rt) {
		n *= 2
	}
	t := &Tree{
		cs:     cs,
		nodes:  make([]*mls.Node, treemath.NodeWidth(n)),
		hashes: make([][]byte, treemath.NodeWidth(n)),
	}
	for i, node := range rt {
		if node == nil {
			continue
		}
		x := treemath.NodeIndex(i)
		if (node.Leaf != nil) == (node.Parent != nil) || (node.Leaf != nil) != x.IsLeaf() {
			return nil, fmt.Errorf("%w: node %d is of the wrong type for its index", ErrMalformedTree, i)
		}
		if p := node.Parent; p != nil {
			// Resolutions turn unmerged leaves into node indices, so an
			// entry outside the node's subtree must not get in.
			for j, l := range p.UnmergedLeaves {
				if j > 0 && l <= p.UnmergedLeaves[j-1] {
					return nil, fmt.Errorf("%w: node %d: unmerged_leaves not strictly increasing", ErrUnmergedLeaves, i)
				}
				if l >= n || !treemath.IsInSubtree(treemath.LeafIndex(l).Node(), x) {
					return nil, fmt.Errorf("%w: node %d: unmerged leaf %d is not a descendant", ErrUnmergedLeaves, i, l)
				}
			}
		}
		t.nodes[i] = cloneNode(node)
	}
	return t, nil
}

// RatchetTree exports the tree in the ratchet_tree extension's form
// (§12.4.3.3): a copy, without trailing blank nodes.
func (t *Tree) RatchetTree() mls.RatchetTree {
	end := len(t.nodes)
	for end > 0 && t.nodes[end-1] == nil {
		end--
	}
	rt := make(mls.RatchetTree, end)
	for i, node := range t.nodes[:end] {
		rt[i] = cloneNode(node)
	}
	return rt
}

// Clone returns a deep copy: changing one tree never affects the other.
func (t *Tree) Clone() *Tree {
	c := &Tree{
		cs:    t.cs,
		nodes: make([]*mls.Node, len(t.nodes)),
		// Cached hashes are never modified in place, only replaced.
		hashes: slices.Clone(t.hashes),
	}
	for i, node := range t.nodes {
		c.nodes[i] = cloneNode(node)
	}
	return c
}

// Suite is the tree's cipher suite.
func (t *Tree) Suite() *suite.Suite { return t.cs }

// NumLeaves is the number of leaves, blank or not: a power of two.
func (t *Tree) NumLeaves() uint32 { return uint32(len(t.nodes)+1) / 2 }

// Root is the root's node index.
func (t *Tree) Root() treemath.NodeIndex { return treemath.Root(t.NumLeaves()) }

// Node returns node x, or nil if it is blank or out of range.
func (t *Tree) Node(x treemath.NodeIndex) *mls.Node {
	if int(x) >= len(t.nodes) {
		return nil
	}
	return t.nodes[x]
}

// Leaf returns leaf l's LeafNode, or nil if it is blank or out of range.
// The range is checked on the leaf index itself: from 2^31 on, its node
// index would wrap around to a leaf that exists.
func (t *Tree) Leaf(l treemath.LeafIndex) *mls.LeafNode {
	if uint32(l) >= t.NumLeaves() {
		return nil
	}
	if node := t.Node(l.Node()); node != nil {
		return node.Leaf
	}
	return nil
}

// Leaves iterates over the non-blank leaves, left to right.
func (t *Tree) Leaves() iter.Seq2[treemath.LeafIndex, *mls.LeafNode] {
	return func(yield func(treemath.LeafIndex, *mls.LeafNode) bool) {
		for i := 0; i < len(t.nodes); i += 2 {
			if node := t.nodes[i]; node != nil && !yield(treemath.LeafIndex(i/2), node.Leaf) {
				return
			}
		}
	}
}

// encryptionKey is the HPKE public key of a non-blank node.
func encryptionKey(node *mls.Node) []byte {
	if node.Leaf != nil {
		return node.Leaf.EncryptionKey
	}
	return node.Parent.EncryptionKey
}

// HasEncryptionKey reports whether any node holds the HPKE public key pub.
func (t *Tree) HasEncryptionKey(pub []byte) bool {
	for _, node := range t.nodes {
		if node != nil && bytes.Equal(encryptionKey(node), pub) {
			return true
		}
	}
	return false
}

// Resolution is the resolution of node x (§4.1.1): the non-blank nodes
// that together cover every non-blank node below x, each non-blank node
// followed by its unmerged leaves.
func (t *Tree) Resolution(x treemath.NodeIndex) []treemath.NodeIndex {
	return t.resolve(x, nil)
}

func (t *Tree) resolve(x treemath.NodeIndex, out []treemath.NodeIndex) []treemath.NodeIndex {
	switch node := t.nodes[x]; {
	case node != nil:
		out = append(out, x)
		if node.Parent != nil {
			for _, l := range node.Parent.UnmergedLeaves {
				out = append(out, treemath.LeafIndex(l).Node())
			}
		}
	case !x.IsLeaf():
		out = t.resolve(treemath.Left(x), out)
		out = t.resolve(treemath.Right(x), out)
	}
	return out
}

// isBlankSubtree reports whether every node under x, x included, is blank:
// exactly when x's resolution is empty, since unmerged leaves only appear
// in non-blank nodes.
func (t *Tree) isBlankSubtree(x treemath.NodeIndex) bool {
	if t.nodes[x] != nil {
		return false
	}
	return x.IsLeaf() || t.isBlankSubtree(treemath.Left(x)) && t.isBlankSubtree(treemath.Right(x))
}

// FilteredDirectPath is leaf l's filtered direct path (§4.1.2): its direct
// path without the nodes whose copath child has an empty resolution.
func (t *Tree) FilteredDirectPath(l treemath.LeafIndex) []treemath.NodeIndex {
	path, _ := t.filteredPath(l)
	return path
}

// filteredPath returns l's filtered direct path and, for each of its nodes,
// the child that is on l's copath.
func (t *Tree) filteredPath(l treemath.LeafIndex) (path, copath []treemath.NodeIndex) {
	n := t.NumLeaves()
	dp := treemath.DirectPath(l.Node(), n)
	cp := treemath.Copath(l.Node(), n)
	for i, s := range cp {
		if !t.isBlankSubtree(s) {
			path = append(path, dp[i])
			copath = append(copath, s)
		}
	}
	return path, copath
}

// setNode replaces node x and invalidates the cached hashes that cover it.
func (t *Tree) setNode(x treemath.NodeIndex, node *mls.Node) {
	t.nodes[x] = node
	t.invalidate(x)
}

func (t *Tree) invalidate(x treemath.NodeIndex) {
	root := t.Root()
	for {
		t.hashes[x] = nil
		if x == root {
			return
		}
		x = treemath.Parent(x, t.NumLeaves())
	}
}

// blankDirectPath blanks every parent node above leaf l.
func (t *Tree) blankDirectPath(l treemath.LeafIndex) {
	for _, x := range treemath.DirectPath(l.Node(), t.NumLeaves()) {
		t.setNode(x, nil)
	}
}

func (t *Tree) checkLeaf(l treemath.LeafIndex) error {
	if uint32(l) >= t.NumLeaves() {
		return fmt.Errorf("%w: leaf %d of %d", ErrOutOfRange, l, t.NumLeaves())
	}
	return nil
}

// FreeLeaf returns the leftmost blank leaf, first extending the tree to the
// right (§7.7) if there is none. It is where an Add (§12.1.1) or an
// external joiner's commit (§12.4.3.2) puts the new member.
func (t *Tree) FreeLeaf() treemath.LeafIndex {
	for i := 0; i < len(t.nodes); i += 2 {
		if t.nodes[i] == nil {
			return treemath.LeafIndex(i / 2)
		}
	}
	// Doubling the leaves keeps every node index; the old root becomes the
	// left child of a new blank root, over a blank right subtree.
	l := treemath.LeafIndex(t.NumLeaves())
	width := 2*len(t.nodes) + 1
	t.nodes = append(t.nodes, make([]*mls.Node, width-len(t.nodes))...)
	t.hashes = append(t.hashes, make([][]byte, width-len(t.hashes))...)
	return l
}

// AddLeaf applies an Add (§12.1.1): the new member takes the leftmost
// blank leaf, extending the tree if there is none, and becomes an unmerged
// leaf of every non-blank parent above it. leaf is copied.
func (t *Tree) AddLeaf(leaf *mls.LeafNode) treemath.LeafIndex {
	l := t.FreeLeaf()
	for _, x := range treemath.DirectPath(l.Node(), t.NumLeaves()) {
		node := t.nodes[x]
		if node == nil {
			continue
		}
		// A Remove can free a leaf left of one already unmerged here, so
		// insert in order (§7.1 keeps the list sorted).
		um := node.Parent.UnmergedLeaves
		i, _ := slices.BinarySearch(um, uint32(l))
		node.Parent.UnmergedLeaves = slices.Insert(um, i, uint32(l))
		t.invalidate(x)
	}
	t.setNode(l.Node(), &mls.Node{Leaf: cloneLeaf(leaf)})
	return l
}

// UpdateLeaf applies an Update (§12.1.2) from leaf l: its LeafNode is
// replaced and its direct path blanked. leaf is copied.
func (t *Tree) UpdateLeaf(l treemath.LeafIndex, leaf *mls.LeafNode) error {
	if err := t.checkLeaf(l); err != nil {
		return err
	}
	if t.nodes[l.Node()] == nil {
		return fmt.Errorf("%w: update of leaf %d", ErrBlankLeaf, l)
	}
	t.setNode(l.Node(), &mls.Node{Leaf: cloneLeaf(leaf)})
	t.blankDirectPath(l)
	return nil
}

// RemoveLeaf applies a Remove (§12.1.3): leaf l and its direct path are
// blanked and the tree is truncated.
func (t *Tree) RemoveLeaf(l treemath.LeafIndex) error {
	if err := t.checkLeaf(l); err != nil {
		return err
	}
	if t.nodes[l.Node()] == nil {
		return fmt.Errorf("%w: removal of leaf %d", ErrBlankLeaf, l)
	}
	t.setNode(l.Node(), nil)
	t.blankDirectPath(l)
	t.Truncate()
	return nil
}

// Truncate halves the tree while the right subtree of the root holds no
// non-blank leaf (§7.7, §12.1.3). The left subtree keeps its node indices
// and cached hashes.
func (t *Tree) Truncate() {
	for len(t.nodes) > 1 {
		root := int(t.Root())
		for i := root + 1; i < len(t.nodes); i += 2 {
			if t.nodes[i] != nil {
				return
			}
		}
		clear(t.nodes[root:])
		t.nodes = t.nodes[:root]
		t.hashes = t.hashes[:root]
	}
}

func cloneNode(n *mls.Node) *mls.Node {
	switch {
	case n == nil:
		return nil
	case n.Leaf != nil:
		return &mls.Node{Leaf: cloneLeaf(n.Leaf)}
	default:
		p := n.Parent
		return &mls.Node{Parent: &mls.ParentNode{
			EncryptionKey:  bytes.Clone(p.EncryptionKey),
			ParentHash:     bytes.Clone(p.ParentHash),
			UnmergedLeaves: slices.Clone(p.UnmergedLeaves),
		}}
	}
}

func cloneLeaf(l *mls.LeafNode) *mls.LeafNode {
	c := *l
	c.EncryptionKey = bytes.Clone(l.EncryptionKey)
	c.SignatureKey = bytes.Clone(l.SignatureKey)
	c.Credential.Identity = bytes.Clone(l.Credential.Identity)
	if certs := l.Credential.Certificates; certs != nil {
		c.Credential.Certificates = make([][]byte, len(certs))
		for i, cert := range certs {
			c.Credential.Certificates[i] = bytes.Clone(cert)
		}
	}
	c.Capabilities = mls.Capabilities{
		Versions:     slices.Clone(l.Capabilities.Versions),
		CipherSuites: slices.Clone(l.Capabilities.CipherSuites),
		Extensions:   slices.Clone(l.Capabilities.Extensions),
		Proposals:    slices.Clone(l.Capabilities.Proposals),
		Credentials:  slices.Clone(l.Capabilities.Credentials),
	}
	c.ParentHash = bytes.Clone(l.ParentHash)
	c.Extensions = slices.Clone(l.Extensions)
	for i := range c.Extensions {
		c.Extensions[i].Data = bytes.Clone(c.Extensions[i].Data)
	}
	c.Signature = bytes.Clone(l.Signature)
	return &c
}
