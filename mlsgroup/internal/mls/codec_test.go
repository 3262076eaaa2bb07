package mls

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstMessages is the first vector of messages.json.
func firstMessages(t *testing.T) messagesVector {
	t.Helper()
	return vectortest.Load[messagesVector](t, "messages.json")[0]
}

// varintPrefixed returns body as an opaque<V>.
func varintPrefixed(body []byte) []byte {
	var b cryptobyte.Builder
	wire.AddOpaque(&b, body)
	return b.BytesOrPanic()
}

func TestRejectsTrailingByte(t *testing.T) {
	v := firstMessages(t)
	var m MLSMessage
	err := wire.Unmarshal(append(bytes.Clone(v.MLSKeyPackage), 0), &m)
	if !errors.Is(err, wire.ErrTrailingData) {
		t.Errorf("key package with a trailing byte: err = %v, want ErrTrailingData", err)
	}
}

// TestRejectsTruncation checks that no strict prefix of a valid encoding
// decodes: each decoder must notice it ran out of input.
func TestRejectsTruncation(t *testing.T) {
	v := firstMessages(t)
	cases := []struct {
		name string
		data []byte
		new  func() wire.Unmarshaler
	}{
		{"mls_welcome", v.MLSWelcome, func() wire.Unmarshaler { return new(MLSMessage) }},
		{"mls_group_info", v.MLSGroupInfo, func() wire.Unmarshaler { return new(MLSMessage) }},
		{"mls_key_package", v.MLSKeyPackage, func() wire.Unmarshaler { return new(MLSMessage) }},
		{"public_message_commit", v.PublicMessageCommit, func() wire.Unmarshaler { return new(MLSMessage) }},
		{"private_message", v.PrivateMessage, func() wire.Unmarshaler { return new(MLSMessage) }},
		{"ratchet_tree", v.RatchetTree, func() wire.Unmarshaler { return new(RatchetTree) }},
		{"group_secrets", v.GroupSecrets, func() wire.Unmarshaler { return new(GroupSecrets) }},
		{"commit", v.Commit, func() wire.Unmarshaler { return new(Commit) }},
		{"re_init_proposal", v.ReInitProposal, func() wire.Unmarshaler { return new(ReInit) }},
		{"pre_shared_key_proposal", v.PreSharedKeyProposal, func() wire.Unmarshaler { return new(PreSharedKey) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for n := range len(c.data) {
				if err := wire.Unmarshal(c.data[:n], c.new()); !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("prefix of %d/%d bytes: err = %v, want ErrMalformed", n, len(c.data), err)
				}
			}
		})
	}
}

// TestRejectsMalformed feeds hand-made encodings that break one rule each.
func TestRejectsMalformed(t *testing.T) {
	// A basic credential, empty capabilities and lifetime make the smallest
	// key package leaf: keys "e" and "s", identity "i".
	const leaf = "0165 0173 0001 0169 0000000000 01 0000000000000000 ffffffffffffffff 00 00"
	cases := []struct {
		name string // says which rule (RFC section) is broken
		hex  string
		dec  wire.Unmarshaler
		want string // in the error, naming the field that failed
	}{
		{"varint/non-minimal §2.1.2", "4001 aa", new(ExternalInit), "ExternalInit.kem_output"},
		{"varint/non-minimal 4-byte §2.1.2", "80000001 aa", new(ExternalInit), "ExternalInit.kem_output"},
		{"varint/reserved prefix §2.1.2", "c0000000 00000001 aa", new(ExternalInit), "ExternalInit.kem_output"},
		{"optional/byte 2 §2.1.3", "00 02", new(Commit), "Commit.path"},
		{"optional/path_secret byte 2 §12.4.3.1", "0100 02 00", new(GroupSecrets), "GroupSecrets.path_secret"},
		{"optional/path_secret present but empty §12.4.3.1", "0100 01 00 00", new(GroupSecrets), "present but empty"},
		{"ratchet tree/ends in blank §12.4.3.3", "00", nil, "last node is blank"},
		{"ratchet tree/empty §12.4.3.3", "00", new(RatchetTree), "RatchetTree: empty"},
		{"ratchet tree/only blank §12.4.3.3", "01 00", new(RatchetTree), "last node is blank"},
		{"ratchet tree/bad optional byte §12.4.3.3", "01 02", new(RatchetTree), "RatchetTree.node"},
		{"ratchet tree/parent at leaf index App. C", "05 01 02 00 00 00", new(RatchetTree), "wrong type for its index"},
		{"enum/ContentType 0 §6", "00 0000000000000000 01 00000000 00 00 00", new(FramedContent), "FramedContent.content_type 0"},
		{"enum/ContentType 4 §6", "00 0000000000000000 01 00000000 00 04 00", new(FramedContent), "FramedContent.content_type 4"},
		{"enum/SenderType 5 §6", "05", new(Sender), "Sender.sender_type 5"},
		{"enum/SenderType 0 §6", "00", new(Sender), "Sender.sender_type 0"},
		{"enum/WireFormat 6 §6", "0001 0006", new(MLSMessage), "MLSMessage.wire_format 6"},
		{"enum/WireFormat 0 §6", "0001 0000", new(MLSMessage), "MLSMessage.wire_format 0"},
		{"enum/ProtocolVersion 2 in MLSMessage §6", "0002 0005", new(MLSMessage), "MLSMessage.version"},
		{"enum/ProposalType 8 §12.1", "0008 00", new(Proposal), "Proposal.proposal_type 8"},
		{"enum/ProposalType 0 §12.1", "0000 00", new(Proposal), "Proposal.proposal_type 0"},
		{"enum/CredentialType 3 §5.3", "0003 00", new(Credential), "Credential.credential_type 3"},
		{"enum/LeafNodeSource 4 §7.2", "0165 0173 0001 0169 0000000000 04 00 00", new(LeafNode), "LeafNode.leaf_node_source 4"},
		{"enum/PSKType 3 §8.4", "03 00 00", new(PreSharedKeyID), "PreSharedKeyID.psktype 3"},
		{"enum/ResumptionPSKUsage 4 §8.4", "02 04 00 0000000000000000 00", new(PreSharedKeyID), "PreSharedKeyID.usage"},
		{"enum/NodeType 3 §7.8", "03", new(Node), "Node.node_type 3"},
		{"enum/ProposalOrRefType 3 §12.4", "02 03 00", new(Commit), "ProposalOrRef.type 3"},
		{"enum/PrivateMessage content type 0 §6.3", "00 0000000000000000 00 00 00 00", new(PrivateMessage), "PrivateMessage.content_type 0"},
		{"enum/SenderDataAAD content type 4 §6.3.2", "00 0000000000000000 04", new(SenderDataAAD), "SenderDataAAD.content_type 4"},
		{"enum/PrivateContentAAD content type 4 §6.3.1", "00 0000000000000000 04 00", new(PrivateContentAAD), "PrivateContentAAD.content_type 4"},
		{"uint16 list of odd length §7.2", "01 00 00 00 00 00", new(Capabilities), "Capabilities.versions"},
		{"uint32 list not a multiple of 4 §7.1", "00 00 03 000000", new(ParentNode), "ParentNode.unmerged_leaves"},
		{"duplicate extension type §13", "06 0001 00 0001 00", new(GroupContextExtensions), "GroupContextExtensions.extensions: mls: duplicate extension type 1"},
		{"key package leaf with duplicate extension §13", "0001 0001 00 " + leaf[:len(leaf)-5] + "06 0005 00 0005 00 00 00 00", new(KeyPackage), "LeafNode.extensions: mls: duplicate extension type 5"},
		{"vector overruns input §2.1.2", "05 0102", new(ExternalInit), "ExternalInit.kem_output"},
		{"SenderData short reuse guard §6.3.2", "00000000 00000000 000000", new(SenderData), "SenderData"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := unhex(t, c.hex)
			if c.dec == nil { // a valid one-leaf tree, then a blank node
				body := append(append([]byte{1, 1}, unhex(t, leaf)...), 0)
				data, c.dec = varintPrefixed(body), new(RatchetTree)
				if err := wire.Unmarshal(varintPrefixed(body[:len(body)-1]), new(RatchetTree)); err != nil {
					t.Fatalf("the same tree without its last blank: %v", err)
				}
			}
			err := wire.Unmarshal(data, c.dec)
			if !errors.Is(err, wire.ErrMalformed) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrMalformed about %q", err, c.want)
			}
		})
	}
}

// TestPrivateMessageContentPadding checks §6.3.1's padding: any number of
// zero bytes after the auth data, and nothing else.
func TestPrivateMessageContentPadding(t *testing.T) {
	const body = "0161 0173" // application_data "a", signature "s"
	for _, c := range []struct {
		padding string
		ok      bool
	}{{"", true}, {"00", true}, {"0000000000", true}, {"01", false}, {"000001", false}, {"800000", false}} {
		data := unhex(t, body+c.padding)
		pmc, err := UnmarshalPrivateMessageContent(data, ContentApplication)
		if !c.ok {
			if !errors.Is(err, wire.ErrMalformed) {
				t.Errorf("padding %q: err = %v, want ErrMalformed", c.padding, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("padding %q: %v", c.padding, err)
			continue
		}
		if pmc.PaddingLen != len(c.padding)/2 || string(pmc.ApplicationData) != "a" || string(pmc.Auth.Signature) != "s" {
			t.Errorf("padding %q: decoded %+v", c.padding, pmc)
		}
		if got, err := MarshalPrivateMessageContent(ContentApplication, pmc); err != nil || !bytes.Equal(got, data) {
			t.Errorf("padding %q: re-encoded %x, %v; want %x", c.padding, got, err, data)
		}
	}
	// The confirmation tag is part of the auth data only for commits: with
	// a proposal, the bytes it would take are (non-zero) padding.
	commit := unhex(t, "00 00 0173 0174")
	if pmc, err := UnmarshalPrivateMessageContent(commit, ContentCommit); err != nil || string(pmc.Auth.ConfirmationTag) != "t" {
		t.Errorf("commit content: %+v, %v", pmc, err)
	}
	if _, err := UnmarshalPrivateMessageContent(unhex(t, "0003 00000000 0173 0174"), ContentProposal); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("proposal content with a confirmation tag: err = %v, want ErrMalformed", err)
	}
	if _, err := UnmarshalPrivateMessageContent(unhex(t, "00"), 0); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("content type 0: err = %v, want ErrMalformed", err)
	}
}

// TestEncodeRejectsInvalid checks that values with no encoding are refused
// rather than encoded as something else.
func TestEncodeRejectsInvalid(t *testing.T) {
	cases := []struct {
		name string
		m    wire.Marshaler
	}{
		{"proposal without body", &Proposal{Type: ProposalAdd}},
		{"proposal of unknown type", &Proposal{Type: 99, Remove: &Remove{}}},
		{"proposal or ref with both", &ProposalOrRef{Proposal: &Proposal{Type: ProposalRemove, Remove: &Remove{}}, Reference: []byte{1}}},
		{"proposal or ref with neither", &ProposalOrRef{}},
		{"node with both", &Node{Leaf: &LeafNode{}, Parent: &ParentNode{}}},
		{"node with neither", &Node{}},
		{"empty ratchet tree", &RatchetTree{}},
		{"all-blank ratchet tree", &RatchetTree{nil, nil, nil}},
		{"ratchet tree with a parent at a leaf index", &RatchetTree{{Parent: &ParentNode{}}}},
		{"message of unknown wire format", &MLSMessage{Version: MLS10, WireFormat: 9}},
		{"message without body", &MLSMessage{Version: MLS10, WireFormat: WireFormatWelcome}},
		{"sender of unknown type", &Sender{Type: 9}},
		{"credential of unknown type", &Credential{Type: 9}},
		{"leaf of unknown source", &LeafNode{Credential: Credential{Type: CredentialBasic}, Source: 9}},
		{"psk of unknown type", &PreSharedKeyID{Type: 9}},
		{"commit content without commit", &FramedContent{Sender: Sender{Type: SenderMember}, ContentType: ContentCommit}},
		{"content of unknown type", &FramedContent{Sender: Sender{Type: SenderMember}, ContentType: 9}},
	}
	for _, c := range cases {
		if _, err := wire.Marshal(c.m); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s: err = %v, want ErrInvalidValue", c.name, err)
		}
	}
	if _, err := MarshalPrivateMessageContent(ContentApplication, &PrivateMessageContent{PaddingLen: -1}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("negative padding: err = %v, want ErrInvalidValue", err)
	}
	content := &FramedContent{Sender: Sender{Type: SenderMember}, ContentType: ContentApplication}
	if _, err := MarshalFramedContentTBS(WireFormatPublicMessage, content, nil); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("member FramedContentTBS without a group context: err = %v, want ErrInvalidValue", err)
	}
	content.Sender = Sender{Type: SenderExternal}
	if _, err := MarshalFramedContentTBS(WireFormatPublicMessage, content, nil); err != nil {
		t.Errorf("external FramedContentTBS without a group context: %v", err)
	}
}

// TestRatchetTreeTrimsTrailingBlanks checks that a tree padded to full
// width encodes without its trailing blanks (§12.4.3.3).
func TestRatchetTreeTrimsTrailingBlanks(t *testing.T) {
	leaf := &Node{Leaf: &LeafNode{Credential: Credential{Type: CredentialBasic}, Source: LeafNodeSourceUpdate}}
	full, err := wire.Marshal(&RatchetTree{leaf, nil, nil})
	if err != nil {
		t.Fatal(err)
	}
	short, err := wire.Marshal(&RatchetTree{leaf})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(full, short) {
		t.Errorf("padded tree encodes as %x, want %x", full, short)
	}
}

// TestDecodeCopies checks that decoded byte strings do not alias the input.
func TestDecodeCopies(t *testing.T) {
	data := unhex(t, "0001 03 616263")
	var c Credential
	if err := wire.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	clear(data)
	if string(c.Identity) != "abc" {
		t.Errorf("identity changed with the input: %q", c.Identity)
	}
}

func TestExtensionBodies(t *testing.T) {
	leaf := &Node{Leaf: &LeafNode{Credential: Credential{Type: CredentialBasic, Identity: []byte("a")}, Source: LeafNodeSourceUpdate}}
	bodies := []struct {
		body  ExtensionBody
		empty func() ExtensionBody
	}{
		{&ApplicationID{'i', 'd'}, func() ExtensionBody { return new(ApplicationID) }},
		{&RatchetTree{leaf}, func() ExtensionBody { return new(RatchetTree) }},
		{&RequiredCapabilities{Extensions: []ExtensionType{ExtExternalSenders}, Proposals: []ProposalType{0x0a0a}, Credentials: []CredentialType{CredentialX509}},
			func() ExtensionBody { return new(RequiredCapabilities) }},
		{&ExternalPub{PublicKey: []byte("pk")}, func() ExtensionBody { return new(ExternalPub) }},
		{&ExternalSenders{{SignatureKey: []byte("sk"), Credential: Credential{Type: CredentialX509, Certificates: [][]byte{{1}, {2, 3}}}}},
			func() ExtensionBody { return new(ExternalSenders) }},
	}
	var exts []Extension
	for _, b := range bodies {
		e, err := NewExtension(b.body)
		if err != nil {
			t.Fatal(err)
		}
		exts = append(exts, e)
	}
	if err := ValidateExtensions(exts); err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		got := b.empty()
		found, err := DecodeExtension(exts, got)
		if !found || err != nil {
			t.Fatalf("extension %d: found %v, %v", b.body.ExtensionType(), found, err)
		}
		want, _ := wire.Marshal(b.body)
		if enc, err := wire.Marshal(got); err != nil || !bytes.Equal(enc, want) {
			t.Errorf("extension %d: decoded body re-encodes as %x, want %x", b.body.ExtensionType(), enc, want)
		}
	}
	if found, err := DecodeExtension(exts[1:], new(ApplicationID)); found || err != nil {
		t.Errorf("missing extension: found %v, %v", found, err)
	}
	if _, ok := FindExtension(exts, 0xff); ok {
		t.Error("FindExtension found an absent type")
	}
	if err := ValidateExtensions(append(exts, exts[2])); !errors.Is(err, ErrDuplicateExtension) {
		t.Errorf("duplicate: err = %v, want ErrDuplicateExtension", err)
	}
	exts[0].Data = append(exts[0].Data, 0)
	if _, err := DecodeExtension(exts, new(ApplicationID)); !errors.Is(err, wire.ErrTrailingData) {
		t.Errorf("extension with trailing data: err = %v, want ErrTrailingData", err)
	}
}

func TestGroupSecretsPathSecret(t *testing.T) {
	for _, gs := range []*GroupSecrets{
		{JoinerSecret: secret.New([]byte{1, 2})},
		{JoinerSecret: secret.New([]byte{1, 2}), PathSecret: secret.New([]byte{3}),
			PSKs: []PreSharedKeyID{{Type: PSKResumption, Usage: ResumptionBranch, GroupID: []byte{4}, Epoch: 5, Nonce: []byte{6}}}},
	} {
		data, err := wire.Marshal(gs)
		if err != nil {
			t.Fatal(err)
		}
		var got GroupSecrets
		if err := wire.Unmarshal(data, &got); err != nil {
			t.Fatal(err)
		}
		if !got.JoinerSecret.Equal(gs.JoinerSecret) || !got.PathSecret.Equal(gs.PathSecret) || len(got.PSKs) != len(gs.PSKs) {
			t.Errorf("decoded GroupSecrets differ from encoded ones")
		}
	}
}
