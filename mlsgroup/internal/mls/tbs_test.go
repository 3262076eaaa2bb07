package mls

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// The tests below check the to-be-signed, to-be-hashed and reference
// encodings against signatures, MACs and hashes the vectors were made with:
// a single wrong byte in an encoding makes the check fail.

func lookup(t *testing.T, id suite.ID) *suite.Suite {
	t.Helper()
	s, err := suite.Lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decodeMessage(t *testing.T, data []byte) *MLSMessage {
	t.Helper()
	var m MLSMessage
	if err := wire.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func verifyKeyPackage(t *testing.T, s *suite.Suite, kp *KeyPackage) {
	t.Helper()
	tbs, err := kp.MarshalTBS()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyWithLabel(kp.LeafNode.SignatureKey, "KeyPackageTBS", tbs, kp.Signature); err != nil {
		t.Errorf("KeyPackageTBS (§10): %v", err)
	}
	// A key package leaf is signed without group_id and leaf_index, so
	// whatever is passed must be ignored.
	ltbs, err := kp.LeafNode.MarshalTBS([]byte("ignored"), 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyWithLabel(kp.LeafNode.SignatureKey, "LeafNodeTBS", ltbs, kp.LeafNode.Signature); err != nil {
		t.Errorf("LeafNodeTBS (§7.2): %v", err)
	}
}

// TestWelcomeVectorsTBS follows welcome.json (§12.4.3.1) far enough to
// check KeyPackageTBS, LeafNodeTBS, KeyPackageRef, GroupSecrets and
// GroupInfoTBS.
func TestWelcomeVectorsTBS(t *testing.T) {
	type vector struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		InitPriv    hexBytes `json:"init_priv"`
		KeyPackage  hexBytes `json:"key_package"`
		SignerPub   hexBytes `json:"signer_pub"`
		Welcome     hexBytes `json:"welcome"`
	}
	for i, v := range vectortest.Load[vector](t, "welcome.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			kp := decodeMessage(t, v.KeyPackage).KeyPackage
			w := decodeMessage(t, v.Welcome).Welcome
			verifyKeyPackage(t, s, kp)

			ref, err := KeyPackageRef(s, kp)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(w.Secrets, func(e EncryptedGroupSecrets) bool { return bytes.Equal(e.NewMember, ref) })
			if i < 0 {
				t.Fatalf("KeyPackageRef (§5.2) %x names no entry of the Welcome", ref)
			}
			egs := w.Secrets[i].EncryptedGroupSecrets
			pt, err := s.DecryptWithLabel(v.InitPriv, "Welcome", w.EncryptedGroupInfo, egs.KEMOutput, egs.Ciphertext)
			if err != nil {
				t.Fatal(err)
			}
			gs := roundTrip[GroupSecrets](t, "group_secrets", pt)
			if gs == nil {
				return
			}
			if len(gs.PSKs) != 0 {
				t.Fatal("vector uses PSKs; this test assumes none")
			}
			// §8: welcome_secret = DeriveSecret(KDF.Extract(joiner_secret,
			// psk_secret), "welcome"), with an all-zero psk_secret.
			member := s.Extract(gs.JoinerSecret.Bytes(), make([]byte, s.Nh()))
			welcome := s.DeriveSecret(member, "welcome")
			key := s.ExpandWithLabel(welcome, "key", nil, s.AEADKeySize())
			nonce := s.ExpandWithLabel(welcome, "nonce", nil, s.AEADNonceSize())
			gi, err := s.Open(key, nonce, nil, w.EncryptedGroupInfo)
			if err != nil {
				t.Fatal(err)
			}
			info := roundTrip[GroupInfo](t, "group_info", gi)
			if info == nil {
				return
			}
			tbs, err := info.MarshalTBS()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(v.SignerPub, "GroupInfoTBS", tbs, info.Signature); err != nil {
				t.Errorf("GroupInfoTBS (§12.4.3): %v", err)
			}
		})
	}
}

// TestMessageProtectionVectorsTBS checks FramedContentTBS (§6.1) and
// AuthenticatedContentTBM (§6.2) against the signatures and membership tags
// of message-protection.json's public messages.
func TestMessageProtectionVectorsTBS(t *testing.T) {
	type vector struct {
		CipherSuite   suite.ID `json:"cipher_suite"`
		GroupID       hexBytes `json:"group_id"`
		Epoch         uint64   `json:"epoch"`
		TreeHash      hexBytes `json:"tree_hash"`
		CTH           hexBytes `json:"confirmed_transcript_hash"`
		SignaturePub  hexBytes `json:"signature_pub"`
		MembershipKey hexBytes `json:"membership_key"`
		Proposal      hexBytes `json:"proposal"`
		ProposalPub   hexBytes `json:"proposal_pub"`
		Commit        hexBytes `json:"commit"`
		CommitPub     hexBytes `json:"commit_pub"`
	}
	for i, v := range vectortest.Load[vector](t, "message-protection.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			ctx := &GroupContext{
				Version: MLS10, CipherSuite: v.CipherSuite, GroupID: v.GroupID, Epoch: v.Epoch,
				TreeHash: v.TreeHash, ConfirmedTranscriptHash: v.CTH,
			}
			for _, c := range []struct {
				name       string
				msg, inner []byte
			}{{"proposal_pub", v.ProposalPub, v.Proposal}, {"commit_pub", v.CommitPub, v.Commit}} {
				pub := decodeMessage(t, c.msg).PublicMessage
				var inner wire.Marshaler = pub.Content.Proposal
				if pub.Content.ContentType == ContentCommit {
					inner = pub.Content.Commit
				}
				if got, err := wire.Marshal(inner); err != nil || !bytes.Equal(got, c.inner) {
					t.Errorf("%s: content = %x, %v; want %x", c.name, got, err, c.inner)
				}
				tbs, err := MarshalFramedContentTBS(WireFormatPublicMessage, &pub.Content, ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.VerifyWithLabel(v.SignaturePub, "FramedContentTBS", tbs, pub.Auth.Signature); err != nil {
					t.Errorf("%s: FramedContentTBS: %v", c.name, err)
				}
				tbm, err := MarshalAuthenticatedContentTBM(tbs, &pub.Auth, pub.Content.ContentType)
				if err != nil {
					t.Fatal(err)
				}
				if tag := s.MAC(v.MembershipKey, tbm); !bytes.Equal(tag, pub.MembershipTag) {
					t.Errorf("%s: membership tag over AuthenticatedContentTBM = %x, want %x", c.name, tag, pub.MembershipTag)
				}
			}
		})
	}
}

// TestTranscriptHashVectorsInputs checks ConfirmedTranscriptHashInput and
// InterimTranscriptHashInput (§8.2).
func TestTranscriptHashVectorsInputs(t *testing.T) {
	type vector struct {
		CipherSuite          suite.ID `json:"cipher_suite"`
		ConfirmationKey      hexBytes `json:"confirmation_key"`
		AuthenticatedContent hexBytes `json:"authenticated_content"`
		InterimBefore        hexBytes `json:"interim_transcript_hash_before"`
		ConfirmedAfter       hexBytes `json:"confirmed_transcript_hash_after"`
		InterimAfter         hexBytes `json:"interim_transcript_hash_after"`
	}
	for i, v := range vectortest.Load[vector](t, "transcript-hashes.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			var ac AuthenticatedContent
			if err := wire.Unmarshal(v.AuthenticatedContent, &ac); err != nil {
				t.Fatal(err)
			}
			in, err := ac.ConfirmedTranscriptHashInput()
			if err != nil {
				t.Fatal(err)
			}
			confirmed := s.Hash(append(slices.Clone(v.InterimBefore), in...))
			if !bytes.Equal(confirmed, v.ConfirmedAfter) {
				t.Errorf("confirmed_transcript_hash_after = %x, want %x", confirmed, v.ConfirmedAfter)
			}
			if tag := s.MAC(v.ConfirmationKey, v.ConfirmedAfter); !bytes.Equal(tag, ac.Auth.ConfirmationTag) {
				t.Errorf("confirmation_tag = %x, want %x", ac.Auth.ConfirmationTag, tag)
			}
			in, err = InterimTranscriptHashInput(ac.Auth.ConfirmationTag)
			if err != nil {
				t.Fatal(err)
			}
			if interim := s.Hash(append(slices.Clone(v.ConfirmedAfter), in...)); !bytes.Equal(interim, v.InterimAfter) {
				t.Errorf("interim_transcript_hash_after = %x, want %x", interim, v.InterimAfter)
			}
		})
	}
}

// TestPassiveClientProposalRefs checks ProposalRef (§5.2): every proposal
// a commit names by reference is one of the epoch's proposal messages.
func TestPassiveClientProposalRefs(t *testing.T) {
	checked := 0
	for i, v := range vectortest.Load[passiveClientVector](t, "passive-client-handling-commit.json") {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			verifyKeyPackage(t, s, decodeMessage(t, v.KeyPackage).KeyPackage)
			for j, e := range v.Epochs {
				var refs [][]byte
				for _, p := range e.Proposals {
					pub := decodeMessage(t, p).PublicMessage
					ref, err := ProposalRef(s, &AuthenticatedContent{WireFormat: WireFormatPublicMessage, Content: pub.Content, Auth: pub.Auth})
					if err != nil {
						t.Fatal(err)
					}
					refs = append(refs, ref)
				}
				commit := decodeMessage(t, e.Commit).PublicMessage.Content.Commit
				for _, p := range commit.Proposals {
					if p.Reference == nil {
						continue
					}
					checked++
					if !slices.ContainsFunc(refs, func(r []byte) bool { return bytes.Equal(r, p.Reference) }) {
						t.Errorf("epochs[%d]: reference %x matches no ProposalRef of the epoch's proposals", j, p.Reference)
					}
				}
			}
		})
	}
	if checked == 0 {
		t.Error("no commit names a proposal by reference: ProposalRef went untested")
	}
}

// TestLeafNodeTBSWithGroup checks LeafNodeTBS (§7.2) for update and commit
// leaves, which bind group_id and leaf_index: treekem.json's update paths
// and every leaf of tree-validation.json's trees.
func TestLeafNodeTBSWithGroup(t *testing.T) {
	verify := func(t *testing.T, s *suite.Suite, l *LeafNode, groupID []byte, leaf uint32) {
		t.Helper()
		tbs, err := l.MarshalTBS(groupID, leaf)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyWithLabel(l.SignatureKey, "LeafNodeTBS", tbs, l.Signature); err != nil {
			t.Errorf("leaf %d (source %d): %v", leaf, l.Source, err)
		}
	}
	type treekem struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		GroupID     hexBytes `json:"group_id"`
		UpdatePaths []struct {
			Sender     uint32   `json:"sender"`
			UpdatePath hexBytes `json:"update_path"`
		} `json:"update_paths"`
	}
	for i, v := range vectortest.Load[treekem](t, "treekem.json") {
		t.Run(fmt.Sprintf("treekem/suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			for _, p := range v.UpdatePaths {
				var up UpdatePath
				if err := wire.Unmarshal(p.UpdatePath, &up); err != nil {
					t.Fatal(err)
				}
				verify(t, s, &up.LeafNode, v.GroupID, p.Sender)
			}
		})
	}
	type validation struct {
		CipherSuite suite.ID `json:"cipher_suite"`
		Tree        hexBytes `json:"tree"`
		GroupID     hexBytes `json:"group_id"`
	}
	for i, v := range vectortest.Load[validation](t, "tree-validation.json") {
		t.Run(fmt.Sprintf("tree-validation/suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			s := lookup(t, v.CipherSuite)
			var tree RatchetTree
			if err := wire.Unmarshal(v.Tree, &tree); err != nil {
				t.Fatal(err)
			}
			for n, node := range tree {
				if node != nil && node.Leaf != nil {
					verify(t, s, node.Leaf, v.GroupID, uint32(n/2))
				}
			}
		})
	}
}
