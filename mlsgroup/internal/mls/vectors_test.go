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

// TestMessagesKeyPackageSignatures goes past the round trip where
// messages.json allows it: each KeyPackage there is self-signed, so its
// leaf and KeyPackage signatures (§7.2, §10) must verify over the
// to-be-signed encodings this package builds. A changed byte anywhere in
// a KeyPackage then fails, not only one that breaks the encoding. (The
// file's other structures carry signatures or ciphertexts whose keys and
// contexts it does not give; for them the byte-exact round trip is the
// check.)
func TestMessagesKeyPackageSignatures(t *testing.T) {
	for i, v := range vectortest.Load[messagesVector](t, "messages.json") {
		var m MLSMessage
		if err := wire.Unmarshal(v.MLSKeyPackage, &m); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		kp := m.KeyPackage
		s, err := suite.Lookup(kp.CipherSuite)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		tbs, err := kp.MarshalTBS()
		if err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyWithLabel(kp.LeafNode.SignatureKey, "KeyPackageTBS", tbs, kp.Signature); err != nil {
			t.Errorf("%d: KeyPackage signature: %v", i, err)
		}
		if tbs, err = kp.LeafNode.MarshalTBS(nil, 0); err != nil {
			t.Fatal(err)
		}
		if err := s.VerifyWithLabel(kp.LeafNode.SignatureKey, "LeafNodeTBS", tbs, kp.LeafNode.Signature); err != nil {
			t.Errorf("%d: leaf node signature: %v", i, err)
		}
	}
}
