package keyschedule

import (
	"bytes"
	"sync/atomic"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
)

// A group state is a value: decrypting a message yields a new state while
// the old one is kept until the new one is persisted, so each message
// clones the secret tree. Copying the whole tree for that would cost a pass
// over every node and leaf per message, while a message moves one ratchet.
// So trees share their parts copy-on-write: the node slice, the leaf slice
// and each leaf's pair of ratchets. A tree owns a part, and may change it
// in place, when the part is stamped with the tree's version. Clone gives
// both trees fresh versions, so each copies a part before its first change
// to it. Copies are deep: deleting a secret (§9.2) wipes its bytes, which
// must not reach a tree that still holds them.

// versions issues tree versions. Zero is never issued.
var versions atomic.Uint64

func nextVersion() uint64 { return versions.Add(1) }

// own stamps every part of a tree built from scratch as its own.
func (t *SecretTree) own() {
	v := nextVersion()
	atomic.StoreUint64(&t.version, v)
	t.nodesVersion, t.leavesVersion = v, v
	t.leafVersions = make([]uint64, len(t.leaves))
	for i, l := range t.leaves {
		if l != nil {
			t.leafVersions[i] = v
		}
	}
}

// Clone returns a tree with the secrets of t that shares no key material
// with it in effect: keys consumed from one, and the secrets deleted with
// them, stay in the other. It copies no secrets; each tree copies what it
// changes, when it first changes it. Clone may be called on one tree from
// several goroutines at once (it only reads t's parts), but not while t
// is being used otherwise.
func (t *SecretTree) Clone() *SecretTree {
	c := &SecretTree{
		suite:         t.suite,
		nLeaves:       t.nLeaves,
		window:        t.window,
		nodes:         t.nodes,
		leaves:        t.leaves,
		nodesVersion:  t.nodesVersion,
		leavesVersion: t.leavesVersion,
		leafVersions:  t.leafVersions,
	}
	atomic.StoreUint64(&c.version, nextVersion())
	atomic.StoreUint64(&t.version, nextVersion())
	return c
}

// ownNodes makes t's node slice its own before a change.
func (t *SecretTree) ownNodes() {
	v := atomic.LoadUint64(&t.version)
	if t.nodesVersion == v {
		return
	}
	if t.nodes != nil {
		nodes := make([]secret.Secret, len(t.nodes))
		for i := range t.nodes {
			nodes[i] = cloneSecret(t.nodes[i])
		}
		t.nodes = nodes
	}
	t.nodesVersion = v
}

// ownLeaves makes t's leaf slice its own before a leaf is replaced in it.
// The ratchets it points to stay shared.
func (t *SecretTree) ownLeaves() {
	v := atomic.LoadUint64(&t.version)
	if t.leavesVersion == v {
		return
	}
	t.leaves = append([]*[2]ratchet(nil), t.leaves...)
	t.leafVersions = append([]uint64(nil), t.leafVersions...)
	t.leavesVersion = v
}

// ownLeaf makes leaf's ratchets, which must exist, t's own before a change.
func (t *SecretTree) ownLeaf(leaf uint32) *[2]ratchet {
	v := atomic.LoadUint64(&t.version)
	if t.leafVersions[leaf] == v && t.leavesVersion == v {
		return t.leaves[leaf]
	}
	t.ownLeaves()
	if t.leafVersions[leaf] != v {
		l := t.leaves[leaf]
		t.leaves[leaf] = &[2]ratchet{l[Handshake].clone(), l[Application].clone()}
		t.leafVersions[leaf] = v
	}
	return t.leaves[leaf]
}

// setLeaf installs the ratchets of a newly derived leaf.
func (t *SecretTree) setLeaf(leaf uint32, l *[2]ratchet) {
	t.ownLeaves()
	t.leaves[leaf] = l
	t.leafVersions[leaf] = t.leavesVersion
}

func (r *ratchet) clone() ratchet {
	c := ratchet{next: r.next, secret: cloneSecret(r.secret)}
	if len(r.skipped) > 0 {
		c.skipped = make([]skippedKey, len(r.skipped))
		for i, k := range r.skipped {
			c.skipped[i] = skippedKey{generation: k.generation, key: cloneSecret(k.key), nonce: cloneSecret(k.nonce)}
		}
	}
	return c
}

func cloneSecret(s secret.Secret) secret.Secret {
	if s.IsZero() {
		return secret.Secret{}
	}
	return secret.New(bytes.Clone(s.Bytes()))
}
