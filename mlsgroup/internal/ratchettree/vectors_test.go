package ratchettree

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// hexBytes is a hex string of the vectors.
type hexBytes = vectortest.HexBytes

func lookupSuite(t *testing.T, id uint16) *suite.Suite {
	t.Helper()
	cs, err := suite.Lookup(suite.ID(id))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func importTree(t *testing.T, cs *suite.Suite, data []byte) *Tree {
	t.Helper()
	var rt mls.RatchetTree
	if err := wire.Unmarshal(data, &rt); err != nil {
		t.Fatalf("decoding ratchet tree: %v", err)
	}
	tree, err := Import(cs, rt)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return tree
}

func treeHash(t *testing.T, tree *Tree) []byte {
	t.Helper()
	h, err := tree.TreeHash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want %x", what, got, want)
	}
}

// TestTreeValidation runs tree-validation.json: resolutions (§4.1.1) and
// tree hashes (§7.8) of every node, parent hashes (§7.9.2) and leaf
// signatures (§7.3).
func TestTreeValidation(t *testing.T) {
	type vector struct {
		CipherSuite uint16                 `json:"cipher_suite"`
		Tree        hexBytes               `json:"tree"`
		GroupID     hexBytes               `json:"group_id"`
		Resolutions [][]treemath.NodeIndex `json:"resolutions"`
		TreeHashes  []hexBytes             `json:"tree_hashes"`
	}
	for i, v := range vectortest.Load[vector](t, "tree-validation.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			cs := lookupSuite(t, v.CipherSuite)
			tree := importTree(t, cs, v.Tree)
			width := len(tree.nodes)
			if len(v.Resolutions) != width || len(v.TreeHashes) != width {
				t.Fatalf("tree has %d nodes; vector has %d resolutions and %d hashes", width, len(v.Resolutions), len(v.TreeHashes))
			}
			for x := range width {
				got := tree.Resolution(treemath.NodeIndex(x))
				if !slices.Equal(got, v.Resolutions[x]) {
					t.Errorf("resolution of node %d = %v, want %v", x, got, v.Resolutions[x])
				}
				h, err := tree.NodeHash(treemath.NodeIndex(x))
				if err != nil {
					t.Fatal(err)
				}
				checkBytes(t, fmt.Sprintf("tree hash of node %d", x), h, v.TreeHashes[x])
			}
			if err := tree.VerifyParentHashes(); err != nil {
				t.Error(err)
			}
			// Validate also checks every leaf signature against group_id.
			if err := tree.Validate(v.GroupID, v.TreeHashes[tree.Root()]); err != nil {
				t.Error(err)
			}
			// A fresh computation agrees with the cached one, and the tree
			// survives the round trip through the extension's form.
			again := importTree(t, cs, mustMarshal(t, ptr(tree.RatchetTree())))
			checkBytes(t, "re-imported tree hash", treeHash(t, again), v.TreeHashes[tree.Root()])
			checkBytes(t, "re-exported tree", mustMarshal(t, ptr(again.RatchetTree())), v.Tree)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func mustMarshal(t *testing.T, m wire.Marshaler) []byte {
	t.Helper()
	b, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTreeOperations runs tree-operations.json: one Add, Update or Remove
// applied to a tree (§12.1.1-§12.1.3, §7.7), with tree hashes (§7.8).
func TestTreeOperations(t *testing.T) {
	type vector struct {
		CipherSuite    uint16   `json:"cipher_suite"`
		TreeBefore     hexBytes `json:"tree_before"`
		Proposal       hexBytes `json:"proposal"`
		ProposalSender uint32   `json:"proposal_sender"`
		TreeHashBefore hexBytes `json:"tree_hash_before"`
		TreeAfter      hexBytes `json:"tree_after"`
		TreeHashAfter  hexBytes `json:"tree_hash_after"`
	}
	for i, v := range vectortest.Load[vector](t, "tree-operations.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			cs := lookupSuite(t, v.CipherSuite)
			tree := importTree(t, cs, v.TreeBefore)
			checkBytes(t, "tree_hash_before", treeHash(t, tree), v.TreeHashBefore)
			if tree.Leaf(treemath.LeafIndex(v.ProposalSender)) == nil {
				t.Fatalf("proposal_sender %d is not a member", v.ProposalSender)
			}
			var p mls.Proposal
			if err := wire.Unmarshal(v.Proposal, &p); err != nil {
				t.Fatal(err)
			}
			switch p.Type {
			case mls.ProposalAdd:
				tree.AddLeaf(&p.Add.KeyPackage.LeafNode)
			case mls.ProposalUpdate:
				if err := tree.UpdateLeaf(treemath.LeafIndex(v.ProposalSender), &p.Update.LeafNode); err != nil {
					t.Fatal(err)
				}
			case mls.ProposalRemove:
				if err := tree.RemoveLeaf(treemath.LeafIndex(p.Remove.Removed)); err != nil {
					t.Fatal(err)
				}
			default:
				t.Fatalf("proposal type %d", p.Type)
			}
			checkBytes(t, "tree_after", mustMarshal(t, ptr(tree.RatchetTree())), v.TreeAfter)
			checkBytes(t, "tree_hash_after", treeHash(t, tree), v.TreeHashAfter)
			fresh := importTree(t, cs, v.TreeAfter)
			checkBytes(t, "tree_hash_after of the imported tree_after", treeHash(t, fresh), v.TreeHashAfter)
		})
	}
}

// leftPad restores the leading zero bytes some P-521 private keys in the
// vectors lack (see the vectors' README).
func leftPad(cs *suite.Suite, priv []byte) []byte {
	if cs.ID() == suite.MLS256DHKEMP521AES256GCMSHA512P521 && len(priv) < 66 {
		return append(make([]byte, 66-len(priv)), priv...)
	}
	return priv
}

// TestTreeKEM runs treekem.json (§7.4-§7.6, §7.9, §12.4.1, §12.4.2): each
// update path merges parent-hash valid, every other member decrypts the
// given path secret and commit secret, the tree hash after matches, and a
// fresh path from the same sender round-trips to every member.
func TestTreeKEM(t *testing.T) {
	type pathSecret struct {
		Node       treemath.NodeIndex `json:"node"`
		PathSecret hexBytes           `json:"path_secret"`
	}
	type leafPrivate struct {
		Index          treemath.LeafIndex `json:"index"`
		EncryptionPriv hexBytes           `json:"encryption_priv"`
		SignaturePriv  hexBytes           `json:"signature_priv"`
		PathSecrets    []pathSecret       `json:"path_secrets"`
	}
	type updatePath struct {
		Sender        treemath.LeafIndex `json:"sender"`
		UpdatePath    hexBytes           `json:"update_path"`
		PathSecrets   []hexBytes         `json:"path_secrets"`
		CommitSecret  hexBytes           `json:"commit_secret"`
		TreeHashAfter hexBytes           `json:"tree_hash_after"`
	}
	type vector struct {
		CipherSuite             uint16        `json:"cipher_suite"`
		GroupID                 hexBytes      `json:"group_id"`
		Epoch                   uint64        `json:"epoch"`
		ConfirmedTranscriptHash hexBytes      `json:"confirmed_transcript_hash"`
		RatchetTree             hexBytes      `json:"ratchet_tree"`
		LeavesPrivate           []leafPrivate `json:"leaves_private"`
		UpdatePaths             []updatePath  `json:"update_paths"`
	}
	for i, v := range vectortest.Load[vector](t, "treekem.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			t.Parallel() // P-521 is slow; use every core
			rng := rand.NewChaCha8([32]byte{byte(i)})
			cs := lookupSuite(t, v.CipherSuite)
			tree := importTree(t, cs, v.RatchetTree)
			context := func(treeHash []byte) []byte {
				return mustMarshal(t, &mls.GroupContext{
					Version:                 mls.MLS10,
					CipherSuite:             suite.ID(v.CipherSuite),
					GroupID:                 v.GroupID,
					Epoch:                   v.Epoch,
					TreeHash:                treeHash,
					ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
				})
			}

			// The private state of each member, checked against the tree.
			keys := make(map[treemath.LeafIndex]PrivateKeys)
			sigPriv := make(map[treemath.LeafIndex][]byte)
			for _, lp := range v.LeavesPrivate {
				k := PrivateKeys{lp.Index.Node(): secret.New(leftPad(cs, lp.EncryptionPriv))}
				for _, ps := range lp.PathSecrets {
					priv, _, err := nodeKeyPair(cs, ps.PathSecret)
					if err != nil {
						t.Fatal(err)
					}
					k[ps.Node] = priv
				}
				if err := tree.VerifyPrivateKeys(k); err != nil {
					t.Fatalf("leaf %d: %v", lp.Index, err)
				}
				keys[lp.Index] = k
				sigPriv[lp.Index] = leftPad(cs, lp.SignaturePriv)
			}

			for _, u := range v.UpdatePaths {
				var up mls.UpdatePath
				if err := wire.Unmarshal(u.UpdatePath, &up); err != nil {
					t.Fatal(err)
				}
				after := tree.Clone()
				if err := after.MergePath(u.Sender, &up, v.GroupID); err != nil {
					t.Fatalf("sender %d: MergePath: %v", u.Sender, err)
				}
				checkBytes(t, fmt.Sprintf("sender %d: tree_hash_after", u.Sender), treeHash(t, after), u.TreeHashAfter)
				if err := after.VerifyParentHashes(); err != nil {
					t.Errorf("sender %d: merged tree: %v", u.Sender, err)
				}
				ctx := context(u.TreeHashAfter)
				if len(u.PathSecrets) != int(tree.NumLeaves()) {
					t.Fatalf("sender %d: %d path secrets for %d leaves", u.Sender, len(u.PathSecrets), tree.NumLeaves())
				}
				for j, want := range u.PathSecrets {
					j := treemath.LeafIndex(j)
					k, ok := keys[j]
					if j == u.Sender || !ok {
						if want != nil {
							t.Errorf("sender %d: leaf %d has a path secret but no private state", u.Sender, j)
						}
						continue
					}
					k = k.Clone()
					got, err := after.DecryptPath(k, j, u.Sender, &up, nil, ctx)
					if err != nil {
						t.Errorf("sender %d: leaf %d: DecryptPath: %v", u.Sender, j, err)
						continue
					}
					checkBytes(t, fmt.Sprintf("sender %d: path secret of leaf %d", u.Sender, j), got.PathSecret.Bytes(), want)
					checkBytes(t, fmt.Sprintf("sender %d: commit secret of leaf %d", u.Sender, j), got.CommitSecret.Bytes(), u.CommitSecret)
				}

				// Our own path from the same sender.
				fresh := tree.Clone()
				p, err := fresh.GeneratePath(rng, u.Sender, *tree.Leaf(u.Sender), v.GroupID, sigPriv[u.Sender])
				if err != nil {
					t.Fatalf("sender %d: GeneratePath: %v", u.Sender, err)
				}
				if err := fresh.VerifyPrivateKeys(p.PrivateKeys()); err != nil {
					t.Errorf("sender %d: own keys: %v", u.Sender, err)
				}
				freshHash := treeHash(t, fresh)
				ctx = context(freshHash)
				newUp, err := p.Encrypt(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				newUp = roundTrip(t, newUp)
				recv := tree.Clone()
				if err := recv.MergePath(u.Sender, newUp, v.GroupID); err != nil {
					t.Fatalf("sender %d: MergePath of our path: %v", u.Sender, err)
				}
				checkBytes(t, fmt.Sprintf("sender %d: tree hash after our path", u.Sender), treeHash(t, recv), freshHash)
				checkBytes(t, fmt.Sprintf("sender %d: tree after our path", u.Sender),
					mustMarshal(t, ptr(recv.RatchetTree())), mustMarshal(t, ptr(fresh.RatchetTree())))
				if err := recv.VerifyParentHashes(); err != nil {
					t.Errorf("sender %d: tree after our path: %v", u.Sender, err)
				}
				for j, k := range keys {
					if j == u.Sender {
						continue
					}
					got, err := recv.DecryptPath(k.Clone(), j, u.Sender, newUp, nil, ctx)
					if err != nil {
						t.Errorf("sender %d: leaf %d: DecryptPath of our path: %v", u.Sender, j, err)
						continue
					}
					if !got.CommitSecret.Equal(p.CommitSecret()) {
						t.Errorf("sender %d: leaf %d derives another commit secret", u.Sender, j)
					}
					if ps, ok := p.PathSecret(got.Node); !ok || !ps.Equal(got.PathSecret) {
						t.Errorf("sender %d: leaf %d: path secret of node %d differs", u.Sender, j, got.Node)
					}
				}
			}
		})
	}
}

// roundTrip encodes and decodes an UpdatePath, as sending it would.
func roundTrip(t *testing.T, up *mls.UpdatePath) *mls.UpdatePath {
	t.Helper()
	var out mls.UpdatePath
	if err := wire.Unmarshal(mustMarshal(t, up), &out); err != nil {
		t.Fatal(err)
	}
	return &out
}
