package mls

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// hexBytes is a hex string of the vectors.
type hexBytes = vectortest.HexBytes

// roundTrip decodes data as a T, rejecting trailing bytes, and checks that
// it re-encodes to data.
func roundTrip[T any, P codec[T]](t *testing.T, field string, data []byte) *T {
	t.Helper()
	x := new(T)
	if err := wire.Unmarshal(data, P(x)); err != nil {
		t.Errorf("%s: decode: %v", field, err)
		return nil
	}
	got, err := wire.Marshal(P(x))
	if err != nil {
		t.Errorf("%s: encode: %v", field, err)
		return nil
	}
	if !bytes.Equal(got, data) {
		t.Errorf("%s: re-encoding differs\n got %x\nwant %x", field, got, data)
		return nil
	}
	return x
}

type messagesVector struct {
	MLSWelcome                     hexBytes `json:"mls_welcome"`
	MLSGroupInfo                   hexBytes `json:"mls_group_info"`
	MLSKeyPackage                  hexBytes `json:"mls_key_package"`
	RatchetTree                    hexBytes `json:"ratchet_tree"`
	GroupSecrets                   hexBytes `json:"group_secrets"`
	AddProposal                    hexBytes `json:"add_proposal"`
	UpdateProposal                 hexBytes `json:"update_proposal"`
	RemoveProposal                 hexBytes `json:"remove_proposal"`
	PreSharedKeyProposal           hexBytes `json:"pre_shared_key_proposal"`
	ReInitProposal                 hexBytes `json:"re_init_proposal"`
	ExternalInitProposal           hexBytes `json:"external_init_proposal"`
	GroupContextExtensionsProposal hexBytes `json:"group_context_extensions_proposal"`
	Commit                         hexBytes `json:"commit"`
	PublicMessageApplication       hexBytes `json:"public_message_application"`
	PublicMessageProposal          hexBytes `json:"public_message_proposal"`
	PublicMessageCommit            hexBytes `json:"public_message_commit"`
	PrivateMessage                 hexBytes `json:"private_message"`
}

// checkMessage round-trips an MLSMessage and checks its wire format.
func checkMessage(t *testing.T, field string, data []byte, wf WireFormat) *MLSMessage {
	t.Helper()
	m := roundTrip[MLSMessage](t, field, data)
	if m == nil {
		return nil
	}
	if m.WireFormat != wf || m.body() == nil {
		t.Errorf("%s: wire format %d, want %d", field, m.WireFormat, wf)
		return nil
	}
	return m
}

// checkPublic round-trips an MLSMessage holding a PublicMessage of content
// type ct.
func checkPublic(t *testing.T, field string, data []byte, ct ContentType) {
	t.Helper()
	m := checkMessage(t, field, data, WireFormatPublicMessage)
	if m != nil && m.PublicMessage.Content.ContentType != ct {
		t.Errorf("%s: content type %d, want %d", field, m.PublicMessage.Content.ContentType, ct)
	}
}

// TestMessagesVectors checks every structure in messages.json decodes and
// re-encodes byte for byte (§6, §7, §10, §12).
func TestMessagesVectors(t *testing.T) {
	for i, v := range vectortest.Load[messagesVector](t, "messages.json") {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			checkMessage(t, "mls_welcome", v.MLSWelcome, WireFormatWelcome)
			checkMessage(t, "mls_group_info", v.MLSGroupInfo, WireFormatGroupInfo)
			checkMessage(t, "mls_key_package", v.MLSKeyPackage, WireFormatKeyPackage)
			roundTrip[RatchetTree](t, "ratchet_tree", v.RatchetTree)
			roundTrip[GroupSecrets](t, "group_secrets", v.GroupSecrets)
			roundTrip[Add](t, "add_proposal", v.AddProposal)
			roundTrip[Update](t, "update_proposal", v.UpdateProposal)
			roundTrip[Remove](t, "remove_proposal", v.RemoveProposal)
			roundTrip[PreSharedKey](t, "pre_shared_key_proposal", v.PreSharedKeyProposal)
			roundTrip[ReInit](t, "re_init_proposal", v.ReInitProposal)
			roundTrip[ExternalInit](t, "external_init_proposal", v.ExternalInitProposal)
			roundTrip[GroupContextExtensions](t, "group_context_extensions_proposal", v.GroupContextExtensionsProposal)
			roundTrip[Commit](t, "commit", v.Commit)
			checkPublic(t, "public_message_application", v.PublicMessageApplication, ContentApplication)
			checkPublic(t, "public_message_proposal", v.PublicMessageProposal, ContentProposal)
			checkPublic(t, "public_message_commit", v.PublicMessageCommit, ContentCommit)
			checkMessage(t, "private_message", v.PrivateMessage, WireFormatPrivateMessage)
		})
	}
}

// TestMessagesSignatures goes past the round trip wherever messages.json
// gives what a signature check needs, so that a changed byte in a signed
// structure fails even when it leaves the encoding well-formed:
//   - mls_key_package and add_proposal hold self-signed KeyPackages: their
//     KeyPackage and leaf signatures (§10, §7.2) verify on their own;
//   - ratchet_tree's leaves are key_package-sourced, so theirs do too;
//   - mls_group_info is signed (§12.4.3) by the leaf at its signer index
//     of the same entry's ratchet_tree;
//   - commit's path leaf (source commit) is signed over that GroupInfo's
//     group ID and signer index.
//
// The file's other structures (Welcome, GroupSecrets, the other
// proposals, PublicMessage and PrivateMessage) are encrypted, unsigned,
// or signed over a group context the file does not give: for them the
// byte-exact round trip is all any implementation can check.
func TestMessagesSignatures(t *testing.T) {
	for i, v := range vectortest.Load[messagesVector](t, "messages.json") {
		t.Run(fmt.Sprintf("%d", i), func(t *testing.T) {
			kp := decodeMessage(t, v.MLSKeyPackage).KeyPackage
			verifyKeyPackage(t, lookup(t, kp.CipherSuite), kp)
			var add Add
			if err := wire.Unmarshal(v.AddProposal, &add); err != nil {
				t.Fatal(err)
			}
			verifyKeyPackage(t, lookup(t, add.KeyPackage.CipherSuite), &add.KeyPackage)

			info := decodeMessage(t, v.MLSGroupInfo).GroupInfo
			s := lookup(t, info.GroupContext.CipherSuite)
			var tree RatchetTree
			if err := wire.Unmarshal(v.RatchetTree, &tree); err != nil {
				t.Fatal(err)
			}
			leaves := 0
			for n, node := range tree {
				if n%2 != 0 || node == nil || node.Leaf == nil {
					continue
				}
				leaf := node.Leaf
				if leaf.Source != LeafNodeSourceKeyPackage {
					t.Fatalf("ratchet_tree leaf %d has source %d", n/2, leaf.Source)
				}
				verifyLeaf(t, s, fmt.Sprintf("ratchet_tree leaf %d", n/2), leaf, nil, 0)
				leaves++
			}
			if leaves == 0 {
				t.Fatal("ratchet_tree has no leaves")
			}
			signer := 2 * int(info.Signer)
			if signer >= len(tree) || tree[signer] == nil || tree[signer].Leaf == nil {
				t.Fatalf("mls_group_info: signer %d is not a leaf of ratchet_tree", info.Signer)
			}
			tbs, err := info.MarshalTBS()
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(tree[signer].Leaf.SignatureKey, "GroupInfoTBS", tbs, info.Signature); err != nil {
				t.Errorf("mls_group_info signature: %v", err)
			}

			var c Commit
			if err := wire.Unmarshal(v.Commit, &c); err != nil {
				t.Fatal(err)
			}
			if c.Path == nil {
				t.Fatal("commit has no path")
			}
			verifyLeaf(t, s, "commit path leaf", &c.Path.LeafNode, info.GroupContext.GroupID, info.Signer)
		})
	}
}

// verifyLeaf checks a LeafNode's signature; groupID and leafIndex enter
// its to-be-signed encoding only for the update and commit sources (§7.2).
func verifyLeaf(t *testing.T, s *suite.Suite, what string, leaf *LeafNode, groupID []byte, leafIndex uint32) {
	t.Helper()
	tbs, err := leaf.MarshalTBS(groupID, leafIndex)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyWithLabel(leaf.SignatureKey, "LeafNodeTBS", tbs, leaf.Signature); err != nil {
		t.Errorf("%s signature: %v", what, err)
	}
}
