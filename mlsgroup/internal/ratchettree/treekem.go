package ratchettree

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/par"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
)

// updatePathNodeLabel is the EncryptWithLabel label of path secrets (§7.6).
const updatePathNodeLabel = "UpdatePathNode"

// PrivateKeys holds the HPKE private keys one member knows, by node index:
// its own leaf's and, by the tree invariant (§4.2), some of the parent
// nodes on its direct path.
type PrivateKeys map[treemath.NodeIndex]secret.Secret

// Clone copies the keys, bytes and all, so that wiping one copy leaves the
// other intact.
func (k PrivateKeys) Clone() PrivateKeys {
	c := make(PrivateKeys, len(k))
	for x, s := range k {
		c[x] = secret.New(bytes.Clone(s.Bytes()))
	}
	return c
}

// Prune wipes and drops the keys of nodes that t no longer has or that are
// blank, as after an Update or Remove blanked part of the member's path.
func (k PrivateKeys) Prune(t *Tree) {
	for x := range k {
		if t.Node(x) == nil {
			k.drop(x)
		}
	}
}

func (k PrivateKeys) drop(x treemath.NodeIndex) {
	if s, ok := k[x]; ok {
		s.Wipe()
		delete(k, x)
	}
}

// VerifyPrivateKeys checks that every key in k belongs to a non-blank node
// of t and matches that node's public key.
func (t *Tree) VerifyPrivateKeys(k PrivateKeys) error {
	for x, priv := range k {
		node := t.Node(x)
		if node == nil {
			return fmt.Errorf("%w: node %d is blank", ErrKeyMismatch, x)
		}
		pub, err := t.cs.HPKEPublicKey(priv.Bytes())
		if err != nil {
			return fmt.Errorf("%w: node %d: %w", ErrKeyMismatch, x, err)
		}
		if !bytes.Equal(pub, encryptionKey(node)) {
			return fmt.Errorf("%w: node %d", ErrKeyMismatch, x)
		}
	}
	return nil
}

// nodeKeyPair derives a node's HPKE key pair from its path secret (§7.4):
// the node secret DeriveSecret(path_secret, "node") is the KEM's
// DeriveKeyPair input, so each secret feeds a single algorithm.
func nodeKeyPair(cs *suite.Suite, pathSecret []byte) (secret.Secret, []byte, error) {
	priv, pub, err := cs.DeriveKeyPair(cs.DeriveSecret(pathSecret, "node"))
	if err != nil {
		return secret.Secret{}, nil, err
	}
	return secret.New(priv), pub, nil
}

// Path is the secret side of an UpdatePath its sender made (§7.4, §7.5):
// the path secrets and private keys of the new nodes, the commit secret,
// and the public keys that each path secret goes to.
type Path struct {
	cs      *suite.Suite
	leaf    *mls.LeafNode
	nodes   []treemath.NodeIndex // the sender's filtered direct path
	secrets []secret.Secret      // path_secret[i], for nodes[i]
	pubs    [][]byte             // the new public key of nodes[i]
	targets [][]target           // the resolution of the copath child of nodes[i]
	keys    PrivateKeys
	commit  secret.Secret
}

// target is a node a path secret is encrypted to.
type target struct {
	node treemath.NodeIndex
	pub  []byte
}

// GeneratePath updates the direct path of leaf sender with fresh keys
// (§7.4, §7.5): it draws a leaf secret from rand, derives the leaf's key
// pair and path secrets for each node of the filtered direct path, blanks
// the direct path, sets the new public keys and parent hashes (§7.9) and
// installs a new leaf node signed with sigPriv (a LeafNodeTBS for groupID
// and sender, §7.2).
//
// leaf supplies the new leaf node's credential, signature key,
// capabilities and extensions; its encryption key, source, parent hash and
// signature are set here. The sender's old leaf may be blank, as for an
// external commit (§12.4.3.2).
//
// Once the caller has built the provisional GroupContext on the updated
// tree, Path.Encrypt gives the UpdatePath to send. Should GeneratePath
// fail, t is left unchanged.
func (t *Tree) GeneratePath(rand io.Reader, sender treemath.LeafIndex, leaf mls.LeafNode, groupID, sigPriv []byte) (*Path, error) {
	if err := t.checkLeaf(sender); err != nil {
		return nil, err
	}
	if err := t.checkSignatureKey(sender, leaf.SignatureKey); err != nil {
		return nil, err
	}
	cs := t.cs
	nodes, copath := t.filteredPath(sender)
	p := &Path{
		cs:      cs,
		nodes:   nodes,
		secrets: make([]secret.Secret, len(nodes)),
		pubs:    make([][]byte, len(nodes)),
		targets: make([][]target, len(nodes)),
		keys:    make(PrivateKeys, len(nodes)+1),
	}
	// The leaf secret yields the leaf's key pair and, as path_secret[-1],
	// the first path secret (Figure 14); a leaf with no path above it
	// still gets a commit secret from it.
	leafSecret := make([]byte, cs.Nh())
	if _, err := io.ReadFull(rand, leafSecret); err != nil {
		return nil, fmt.Errorf("ratchettree: reading the leaf secret: %w", err)
	}
	leafPriv, leafPub, err := nodeKeyPair(cs, leafSecret)
	if err != nil {
		return nil, fmt.Errorf("ratchettree: leaf key pair: %w", err)
	}
	p.keys[sender.Node()] = leafPriv
	ps := cs.DeriveSecret(leafSecret, "path")
	clear(leafSecret)
	for i, x := range nodes {
		p.secrets[i] = secret.New(ps)
		priv, pub, err := nodeKeyPair(cs, ps)
		if err != nil {
			return nil, fmt.Errorf("ratchettree: key pair of node %d: %w", x, err)
		}
		p.keys[x], p.pubs[i] = priv, pub
		ps = cs.DeriveSecret(ps, "path")
		for _, r := range t.Resolution(copath[i]) {
			node := t.nodes[r]
			if node == nil { // an unmerged leaf that is blank
				return nil, fmt.Errorf("%w: node %d: resolution holds blank leaf %d", ErrMalformedTree, copath[i], r)
			}
			p.targets[i] = append(p.targets[i], target{r, encryptionKey(node)})
		}
	}
	p.commit = secret.New(ps)

	hashes, leafHash, err := t.pathParentHashes(copath, p.pubs)
	if err != nil {
		return nil, err
	}
	newLeaf := cloneLeaf(&leaf)
	newLeaf.EncryptionKey = leafPub
	newLeaf.Source = mls.LeafNodeSourceCommit
	newLeaf.Lifetime = mls.Lifetime{}
	newLeaf.ParentHash = leafHash
	tbs, err := newLeaf.MarshalTBS(groupID, uint32(sender))
	if err != nil {
		return nil, fmt.Errorf("ratchettree: LeafNodeTBS: %w", err)
	}
	if newLeaf.Signature, err = cs.SignWithLabel(sigPriv, leafNodeTBSLabel, tbs); err != nil {
		return nil, fmt.Errorf("ratchettree: signing the leaf node: %w", err)
	}
	p.leaf = newLeaf
	t.mergePath(sender, nodes, p.pubs, hashes, cloneLeaf(newLeaf))
	return p, nil
}

// mergePath writes a new path into the tree (§7.5): the direct path is
// blanked, then the filtered direct path gets its new keys and parent
// hashes and no unmerged leaves.
func (t *Tree) mergePath(sender treemath.LeafIndex, nodes []treemath.NodeIndex, pubs, parentHashes [][]byte, leaf *mls.LeafNode) {
	t.blankDirectPath(sender)
	for i, x := range nodes {
		t.setNode(x, &mls.Node{Parent: &mls.ParentNode{
			EncryptionKey: bytes.Clone(pubs[i]),
			ParentHash:    bytes.Clone(parentHashes[i]),
		}})
	}
	t.setNode(sender.Node(), &mls.Node{Leaf: leaf})
}

// Encrypt encrypts each path secret to the resolution of its node's copath
// child (§7.5, §7.6), skipping the leaves in exclude (the members added by
// the same commit), with the serialized provisional GroupContext as
// context. The HPKE operations run on all cores; the ciphertexts come out
// in resolution order regardless.
func (p *Path) Encrypt(groupContext []byte, exclude []treemath.LeafIndex) (*mls.UpdatePath, error) {
	type job struct{ node, slot int }
	up := &mls.UpdatePath{LeafNode: *cloneLeaf(p.leaf), Nodes: make([]mls.UpdatePathNode, len(p.nodes))}
	var jobs []job
	var to [][]byte
	for i, targets := range p.targets {
		up.Nodes[i].EncryptionKey = bytes.Clone(p.pubs[i])
		for _, r := range targets {
			if r.node.IsLeaf() && containsLeaf(exclude, r.node.Leaf()) {
				continue
			}
			jobs = append(jobs, job{i, len(up.Nodes[i].EncryptedPathSecret)})
			up.Nodes[i].EncryptedPathSecret = append(up.Nodes[i].EncryptedPathSecret, mls.HPKECiphertext{})
			to = append(to, r.pub)
		}
	}
	err := par.Do(len(jobs), func(k int) error {
		j := jobs[k]
		kem, ct, err := p.cs.EncryptWithLabel(to[k], updatePathNodeLabel, groupContext, p.secrets[j.node].Bytes())
		if err != nil {
			return fmt.Errorf("ratchettree: encrypting the path secret of node %d: %w", p.nodes[j.node], err)
		}
		up.Nodes[j.node].EncryptedPathSecret[j.slot] = mls.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return up, nil
}

func containsLeaf(ls []treemath.LeafIndex, l treemath.LeafIndex) bool {
	for _, x := range ls {
		if x == l {
			return true
		}
	}
	return false
}

// CommitSecret is the commit secret of the path (§12.4.1): the path secret
// one step past the last node.
func (p *Path) CommitSecret() secret.Secret { return p.commit }

// PathSecret returns the path secret of node x of the filtered direct
// path: for a new member's Welcome, x is the lowest common ancestor of its
// leaf and the sender's (§12.4.3.1).
func (p *Path) PathSecret(x treemath.NodeIndex) (secret.Secret, bool) {
	for i, y := range p.nodes {
		if y == x {
			return p.secrets[i], true
		}
	}
	return secret.Secret{}, false
}

// PrivateKeys returns the sender's private keys after the path: its new
// leaf key and the keys of its filtered direct path, which is all it knows
// since the rest of its direct path is blank.
func (p *Path) PrivateKeys() PrivateKeys { return p.keys.Clone() }

// Wipe overwrites the path's secrets and private keys once the commit no
// longer needs them (§9.2). The secrets CommitSecret and PathSecret
// returned share their bytes and are wiped too; PrivateKeys returns a copy.
func (p *Path) Wipe() {
	for i := range p.secrets {
		p.secrets[i].Wipe()
	}
	for x := range p.keys {
		p.keys.drop(x)
	}
	p.commit.Wipe()
}

// MergePath validates an UpdatePath received from leaf sender and merges
// it into t (§7.5, §12.4.2): the leaf node must come from a commit and be
// signed for groupID and sender, the path must have one node per node of
// the filtered direct path, no public key in it may already be in the tree
// (the tree after the commit's proposals), and the leaf's parent_hash must
// be the one the merged path yields (§7.9.2). On error t is unchanged.
//
// Checks of the leaf that need group state (§7.3: credential,
// capabilities) are the caller's.
func (t *Tree) MergePath(sender treemath.LeafIndex, up *mls.UpdatePath, groupID []byte) error {
	if err := t.checkLeaf(sender); err != nil {
		return err
	}
	nodes, copath := t.filteredPath(sender)
	if len(up.Nodes) != len(nodes) {
		return fmt.Errorf("%w: %d nodes for a filtered direct path of %d", ErrInvalidPath, len(up.Nodes), len(nodes))
	}
	leaf := &up.LeafNode
	if leaf.Source != mls.LeafNodeSourceCommit {
		return fmt.Errorf("%w: leaf_node_source %d, want commit", ErrInvalidPath, leaf.Source)
	}
	pubs := make([][]byte, len(up.Nodes)+1)
	for i := range up.Nodes {
		pubs[i] = up.Nodes[i].EncryptionKey
	}
	pubs[len(up.Nodes)] = leaf.EncryptionKey
	for i, pub := range pubs {
		for _, other := range pubs[:i] {
			if bytes.Equal(pub, other) {
				return fmt.Errorf("%w: the update path repeats a public key", ErrDuplicateKey)
			}
		}
	}
	set := make(map[string]struct{}, len(pubs))
	for _, pub := range pubs {
		set[string(pub)] = struct{}{}
	}
	for x, node := range t.nodes {
		if node == nil {
			continue
		}
		if _, ok := set[string(encryptionKey(node))]; ok {
			return fmt.Errorf("%w: the update path reuses the key of node %d", ErrDuplicateKey, x)
		}
	}
	if err := t.checkSignatureKey(sender, leaf.SignatureKey); err != nil {
		return err
	}
	if err := VerifyLeafNodeSignature(t.cs, leaf, groupID, sender); err != nil {
		return err
	}
	pubs = pubs[:len(up.Nodes)]
	hashes, leafHash, err := t.pathParentHashes(copath, pubs)
	if err != nil {
		return err
	}
	if !bytes.Equal(leaf.ParentHash, leafHash) {
		return fmt.Errorf("%w: parent_hash of leaf %d", ErrParentHash, sender)
	}
	t.mergePath(sender, nodes, pubs, hashes, cloneLeaf(leaf))
	return nil
}

// DecryptedPath is what a receiver learns from an UpdatePath (§7.5).
type DecryptedPath struct {
	// Node is the node of the sender's filtered direct path whose path
	// secret was decrypted: the lowest common ancestor of the two leaves.
	Node         treemath.NodeIndex
	PathSecret   secret.Secret
	CommitSecret secret.Secret
}

// DecryptPath processes an UpdatePath that MergePath has merged into t,
// for the member at leaf own whose private keys are keys (§7.5, §12.4.2).
// exclude lists the members the same commit added, to whom nothing was
// encrypted. It checks that every node has one ciphertext per resolution
// member, decrypts the path secret meant for own with the serialized
// provisional GroupContext as context, derives the path secrets above it
// and checks that they give the path's public keys. Then, and only then,
// it updates keys: the keys of the sender's direct path are dropped and
// those of the nodes own now shares with the sender are added.
func (t *Tree) DecryptPath(keys PrivateKeys, own, sender treemath.LeafIndex, up *mls.UpdatePath, exclude []treemath.LeafIndex, groupContext []byte) (*DecryptedPath, error) {
	if err := t.checkLeaf(own); err != nil {
		return nil, err
	}
	if own == sender || containsLeaf(exclude, own) {
		return nil, fmt.Errorf("%w: leaf %d gets no path secret from leaf %d", ErrInvalidPath, own, sender)
	}
	nodes, copath := t.filteredPath(sender)
	if len(up.Nodes) != len(nodes) {
		return nil, fmt.Errorf("%w: %d nodes for a filtered direct path of %d", ErrInvalidPath, len(up.Nodes), len(nodes))
	}
	ownNode := own.Node()
	at, slot := -1, -1
	var from treemath.NodeIndex
	for i, s := range copath {
		var res []treemath.NodeIndex
		for _, r := range t.Resolution(s) {
			if !r.IsLeaf() || !containsLeaf(exclude, r.Leaf()) {
				res = append(res, r)
			}
		}
		if len(res) != len(up.Nodes[i].EncryptedPathSecret) {
			return nil, fmt.Errorf("%w: node %d has %d ciphertexts for a resolution of %d",
				ErrInvalidPath, nodes[i], len(up.Nodes[i].EncryptedPathSecret), len(res))
		}
		if at >= 0 || !treemath.IsInSubtree(ownNode, s) {
			continue
		}
		at = i
		// Exactly one resolution member covers own: a node of its direct
		// path that it holds the key of, or its leaf as an unmerged leaf.
		for j, r := range res {
			if _, ok := keys[r]; ok && treemath.IsInSubtree(ownNode, r) && !t.isUnmergedAt(own, r) {
				slot, from = j, r
				break
			}
		}
	}
	if at < 0 {
		return nil, fmt.Errorf("%w: leaf %d is not below the path of leaf %d", ErrInvalidPath, own, sender)
	}
	if slot < 0 {
		return nil, fmt.Errorf("%w: at node %d", ErrNoPrivateKey, copath[at])
	}
	cs := t.cs
	ct := up.Nodes[at].EncryptedPathSecret[slot]
	pt, err := cs.DecryptWithLabel(keys[from].Bytes(), updatePathNodeLabel, groupContext, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("ratchettree: path secret of node %d: %w", nodes[at], err)
	}
	out := &DecryptedPath{Node: nodes[at], PathSecret: secret.New(pt)}
	derived := make(PrivateKeys, len(nodes)-at)
	ps := pt
	for i := at; i < len(nodes); i++ {
		priv, pub, err := nodeKeyPair(cs, ps)
		if err != nil {
			return nil, fmt.Errorf("ratchettree: key pair of node %d: %w", nodes[i], err)
		}
		if !bytes.Equal(pub, up.Nodes[i].EncryptionKey) {
			return nil, fmt.Errorf("%w: derived key of node %d differs from the update path's", ErrKeyMismatch, nodes[i])
		}
		derived[nodes[i]] = priv
		ps = cs.DeriveSecret(ps, "path")
	}
	out.CommitSecret = secret.New(ps)
	for _, x := range treemath.DirectPath(sender.Node(), t.NumLeaves()) {
		keys.drop(x)
	}
	for x, priv := range derived {
		keys[x] = priv
	}
	return out, nil
}

// isUnmergedAt reports whether leaf l is an unmerged leaf of node x.
func (t *Tree) isUnmergedAt(l treemath.LeafIndex, x treemath.NodeIndex) bool {
	node := t.nodes[x]
	if node == nil || node.Parent == nil {
		return false
	}
	for _, u := range node.Parent.UnmergedLeaves {
		if treemath.LeafIndex(u) == l {
			return true
		}
	}
	return false
}

// ImportPathSecret installs the keys a new member learns from the path
// secret in its Welcome (§12.4.3.1): pathSecret belongs to node x, the
// lowest common ancestor of the member's and the committer's leaves, and
// each non-blank node above x gets the next path secret. Every derived key
// must match the tree; keys is only changed if all do.
func (t *Tree) ImportPathSecret(keys PrivateKeys, x treemath.NodeIndex, pathSecret secret.Secret) error {
	if t.Node(x) == nil || x.IsLeaf() {
		return fmt.Errorf("%w: node %d is not a non-blank parent", ErrKeyMismatch, x)
	}
	n := t.NumLeaves()
	derived := make(PrivateKeys)
	ps := pathSecret.Bytes()
	for y := x; ; y = treemath.Parent(y, n) {
		if node := t.nodes[y]; node != nil {
			priv, pub, err := nodeKeyPair(t.cs, ps)
			if err != nil {
				return fmt.Errorf("ratchettree: key pair of node %d: %w", y, err)
			}
			if !bytes.Equal(pub, encryptionKey(node)) {
				return fmt.Errorf("%w: node %d", ErrKeyMismatch, y)
			}
			derived[y] = priv
			ps = t.cs.DeriveSecret(ps, "path")
		}
		if y == t.Root() {
			break
		}
	}
	for y, priv := range derived {
		keys.drop(y)
		keys[y] = priv
	}
	return nil
}

// checkSignatureKey refuses key as the signature key of leaf l's new node
// when another leaf holds it (§7.3: signature keys are unique among
// members). Keys of one length compare as bytes; only a leaf that encodes
// its key otherwise (an ECDSA point compressed where the other is not) is
// compared in canonical form, so that a commit in a large tree does not
// parse every member's key.
func (t *Tree) checkSignatureKey(l treemath.LeafIndex, key []byte) error {
	var canonical []byte
	for other, leaf := range t.Leaves() {
		if other == l {
			continue
		}
		same := bytes.Equal(leaf.SignatureKey, key)
		if !same && len(leaf.SignatureKey) != len(key) {
			if canonical == nil {
				canonical = t.cs.CanonicalSignatureKey(key)
			}
			same = bytes.Equal(t.cs.CanonicalSignatureKey(leaf.SignatureKey), canonical)
		}
		if same {
			return fmt.Errorf("%w: the new leaf takes the signature key of leaf %d", ErrDuplicateKey, other)
		}
	}
	return nil
}
