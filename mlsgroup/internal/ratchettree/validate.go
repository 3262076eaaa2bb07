package ratchettree

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/par"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
)

// leafNodeTBSLabel is the SignWithLabel label of a LeafNode (§7.2).
const leafNodeTBSLabel = "LeafNodeTBS"

// Validate runs the checks §12.4.3.1 asks of a joiner on a received tree
// that need nothing but the tree: its hash is treeHash, every non-blank
// parent is parent-hash valid (§7.9.2), every leaf signature verifies
// (§7.3), the unmerged leaves are consistent and the public keys are unique.
// Credentials, capabilities and lifetimes are the caller's to check.
func (t *Tree) Validate(groupID, treeHash []byte) error {
	h, err := t.TreeHash()
	if err != nil {
		return err
	}
	if !bytes.Equal(h, treeHash) {
		return ErrTreeHash
	}
	if err := t.VerifyParentHashes(); err != nil {
		return err
	}
	if err := t.VerifyUnmergedLeaves(); err != nil {
		return err
	}
	if err := t.VerifyUniqueKeys(); err != nil {
		return err
	}
	return t.VerifyLeafSignatures(groupID)
}

// VerifyLeafSignature checks the signature of leaf l, which must be
// non-blank, over its LeafNodeTBS (§7.2): update and commit leaves are
// bound to groupID and l.
func (t *Tree) VerifyLeafSignature(groupID []byte, l treemath.LeafIndex) error {
	leaf := t.Leaf(l)
	if leaf == nil {
		return fmt.Errorf("%w: leaf %d", ErrBlankLeaf, l)
	}
	return VerifyLeafNodeSignature(t.cs, leaf, groupID, l)
}

// VerifyLeafNodeSignature checks the signature of a LeafNode that is to
// sit at leaf l of group groupID (§7.2, §7.3), such as one in an Update
// proposal or an UpdatePath; groupID and l do not enter the signature of a
// key package leaf.
func VerifyLeafNodeSignature(cs *suite.Suite, leaf *mls.LeafNode, groupID []byte, l treemath.LeafIndex) error {
	tbs, err := leaf.MarshalTBS(groupID, uint32(l))
	if err != nil {
		return fmt.Errorf("ratchettree: leaf %d: LeafNodeTBS: %w", l, err)
	}
	if err := cs.VerifyWithLabel(leaf.SignatureKey, leafNodeTBSLabel, tbs, leaf.Signature); err != nil {
		return fmt.Errorf("%w: leaf %d: %w", ErrSignature, l, err)
	}
	return nil
}

// VerifyLeafSignatures checks the signature of every non-blank leaf, on
// all cores.
func (t *Tree) VerifyLeafSignatures(groupID []byte) error {
	var leaves []treemath.LeafIndex
	for l := range t.Leaves() {
		leaves = append(leaves, l)
	}
	return par.Do(len(leaves), func(i int) error {
		return VerifyLeafNodeSignature(t.cs, t.Leaf(leaves[i]), groupID, leaves[i])
	})
}

// VerifyParentHashes checks that every non-blank parent node is
// parent-hash valid (§7.9.2), top down: for each such P, exactly one
// descendant D has a parent hash valid with respect to P. The descendants
// that are parents are themselves checked in turn, so each chain reaches a
// leaf.
func (t *Tree) VerifyParentHashes() error {
	for i := 1; i < len(t.nodes); i += 2 {
		if t.nodes[i] == nil {
			continue
		}
		p := treemath.NodeIndex(i)
		valid := 0
		for _, c := range [2]treemath.NodeIndex{treemath.Left(p), treemath.Right(p)} {
			ok, err := t.hasValidChild(p, c)
			if err != nil {
				return err
			}
			if ok {
				valid++
			}
		}
		if valid != 1 {
			return fmt.Errorf("%w: node %d has %d children chaining to it", ErrParentHash, p, valid)
		}
	}
	return nil
}

// hasValidChild reports whether the parent hash of some node D under p's
// child c is valid with respect to p (§7.9.2): D is in c's resolution, the
// rest of that resolution is exactly p's unmerged leaves under c, and D's
// parent_hash is p's parent hash with copath child the other child.
func (t *Tree) hasValidChild(p, c treemath.NodeIndex) (bool, error) {
	parent := t.nodes[p].Parent
	var unmerged []treemath.NodeIndex
	for _, l := range parent.UnmergedLeaves {
		if x := treemath.LeafIndex(l).Node(); treemath.IsInSubtree(x, c) {
			unmerged = append(unmerged, x)
		}
	}
	// A resolution has no repeats and unmerged_leaves is strictly sorted,
	// so the sets match exactly when one node of the resolution is not
	// unmerged and all the others are.
	res := t.Resolution(c)
	if len(res) != len(unmerged)+1 {
		return false, nil
	}
	d := -1
	for i, x := range res {
		if !slices.Contains(unmerged, x) {
			if d >= 0 {
				return false, nil
			}
			d = i
		}
	}
	if d < 0 {
		return false, nil
	}
	var got []byte
	switch node := t.nodes[res[d]]; {
	case node == nil: // a blank unmerged leaf; VerifyUnmergedLeaves reports it
		return false, nil
	case node.Parent != nil:
		got = node.Parent.ParentHash
	case node.Leaf.Source == mls.LeafNodeSourceCommit:
		got = node.Leaf.ParentHash
	default:
		return false, nil // only commit leaves carry a parent hash
	}
	s := treemath.Sibling(c, t.NumLeaves())
	sibling, err := t.originalSiblingHash(p, s)
	if err != nil {
		return false, err
	}
	want, err := t.parentHashOf(parent.EncryptionKey, parent.ParentHash, sibling)
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, want), nil
}

// VerifyUnmergedLeaves checks §12.4.3.1's rules for unmerged leaves: each
// entry of a parent's list is a non-blank leaf below it, and every
// non-blank node between the two lists it too.
func (t *Tree) VerifyUnmergedLeaves() error {
	n := t.NumLeaves()
	for i := 1; i < len(t.nodes); i += 2 {
		node := t.nodes[i]
		if node == nil {
			continue
		}
		p := treemath.NodeIndex(i)
		for _, l := range node.Parent.UnmergedLeaves {
			x := treemath.LeafIndex(l).Node()
			if l >= n || !treemath.IsInSubtree(x, p) || t.nodes[x] == nil {
				return fmt.Errorf("%w: node %d lists leaf %d", ErrUnmergedLeaves, p, l)
			}
			for y := treemath.Parent(x, n); y != p; y = treemath.Parent(y, n) {
				if between := t.nodes[y]; between != nil && !slices.Contains(between.Parent.UnmergedLeaves, l) {
					return fmt.Errorf("%w: node %d lists leaf %d but node %d does not", ErrUnmergedLeaves, p, l, y)
				}
			}
		}
	}
	return nil
}

// VerifyUniqueKeys checks that no HPKE public key appears in two nodes
// (§7.3, §12.4.3.1) and no signature key in two leaves (§7.3).
func (t *Tree) VerifyUniqueKeys() error {
	enc := make(map[string]int, len(t.nodes))
	sig := make(map[string]int, len(t.nodes)/2+1)
	for i, node := range t.nodes {
		if node == nil {
			continue
		}
		k := string(encryptionKey(node))
		if j, ok := enc[k]; ok {
			return fmt.Errorf("%w: nodes %d and %d share an encryption key", ErrDuplicateKey, j, i)
		}
		enc[k] = i
		if node.Leaf != nil {
			k := string(t.cs.CanonicalSignatureKey(node.Leaf.SignatureKey))
			if j, ok := sig[k]; ok {
				return fmt.Errorf("%w: leaves %d and %d share a signature key", ErrDuplicateKey, j/2, i/2)
			}
			sig[k] = i
		}
	}
	return nil
}
