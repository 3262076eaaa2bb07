package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Marshal encodes a Sender (§6).
func (x *Sender) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(x.Type))
	switch x.Type {
	case SenderMember:
		b.AddUint32(x.LeafIndex)
	case SenderExternal:
		b.AddUint32(x.SenderIndex)
	case SenderNewMemberProposal, SenderNewMemberCommit:
	default:
		invalidf(b, "Sender.sender_type %d", x.Type)
	}
}

// Unmarshal decodes a Sender.
func (x *Sender) Unmarshal(s *cryptobyte.String) error {
	var t uint8
	if !s.ReadUint8(&t) {
		return wire.Errorf("Sender.sender_type")
	}
	*x = Sender{Type: SenderType(t)}
	switch x.Type {
	case SenderMember:
		if !s.ReadUint32(&x.LeafIndex) {
			return wire.Errorf("Sender.leaf_index")
		}
	case SenderExternal:
		if !s.ReadUint32(&x.SenderIndex) {
			return wire.Errorf("Sender.sender_index")
		}
	case SenderNewMemberProposal, SenderNewMemberCommit:
	default:
		return wire.Errorf("Sender.sender_type %d", t)
	}
	return nil
}

// marshalContentBody encodes the select on content_type that FramedContent
// and PrivateMessageContent share.
func marshalContentBody(b *cryptobyte.Builder, ct ContentType, app []byte, p *Proposal, c *Commit) {
	switch {
	case ct == ContentApplication:
		wire.AddOpaque(b, app)
	case ct == ContentProposal && p != nil:
		p.Marshal(b)
	case ct == ContentCommit && c != nil:
		c.Marshal(b)
	default:
		invalidf(b, "content type %d without its content", ct)
	}
}

// readContentBody decodes the select on content_type that FramedContent and
// PrivateMessageContent share, setting exactly the field ct selects.
func readContentBody(s *cryptobyte.String, ct ContentType, app *[]byte, p **Proposal, c **Commit, field string) error {
	*app, *p, *c = nil, nil, nil
	switch ct {
	case ContentApplication:
		return readOpaque(s, app, field+".application_data")
	case ContentProposal:
		*p = new(Proposal)
		return (*p).Unmarshal(s)
	case ContentCommit:
		*c = new(Commit)
		return (*c).Unmarshal(s)
	default:
		return wire.Errorf("%s.content_type %d", field, ct)
	}
}

// Marshal encodes a FramedContent (§6).
func (x *FramedContent) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.GroupID)
	b.AddUint64(x.Epoch)
	x.Sender.Marshal(b)
	wire.AddOpaque(b, x.AuthenticatedData)
	b.AddUint8(uint8(x.ContentType))
	marshalContentBody(b, x.ContentType, x.ApplicationData, x.Proposal, x.Commit)
}

// Unmarshal decodes a FramedContent.
func (x *FramedContent) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.GroupID, "FramedContent.group_id"); err != nil {
		return err
	}
	if !s.ReadUint64(&x.Epoch) {
		return wire.Errorf("FramedContent.epoch")
	}
	if err := x.Sender.Unmarshal(s); err != nil {
		return err
	}
	if err := readOpaque(s, &x.AuthenticatedData, "FramedContent.authenticated_data"); err != nil {
		return err
	}
	var ct uint8
	if !s.ReadUint8(&ct) {
		return wire.Errorf("FramedContent.content_type")
	}
	x.ContentType = ContentType(ct)
	return readContentBody(s, x.ContentType, &x.ApplicationData, &x.Proposal, &x.Commit, "FramedContent")
}

// MarshalAuth encodes a FramedContentAuthData (§6.1) for content of type
// ct: the confirmation tag is on the wire only for commits. It is not a
// plain Marshal because the encoding depends on the enclosing content.
func (x *FramedContentAuthData) MarshalAuth(b *cryptobyte.Builder, ct ContentType) {
	wire.AddOpaque(b, x.Signature)
	if ct == ContentCommit {
		wire.AddOpaque(b, x.ConfirmationTag)
	}
}

// UnmarshalAuth decodes a FramedContentAuthData for content of type ct.
// The confirmation tag is nil unless ct is a commit.
func (x *FramedContentAuthData) UnmarshalAuth(s *cryptobyte.String, ct ContentType) error {
	if err := readOpaque(s, &x.Signature, "FramedContentAuthData.signature"); err != nil {
		return err
	}
	x.ConfirmationTag = nil
	if ct == ContentCommit {
		return readOpaque(s, &x.ConfirmationTag, "FramedContentAuthData.confirmation_tag")
	}
	return nil
}

// Marshal encodes an AuthenticatedContent (§6.1).
func (x *AuthenticatedContent) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(x.WireFormat))
	x.Content.Marshal(b)
	x.Auth.MarshalAuth(b, x.Content.ContentType)
}

// Unmarshal decodes an AuthenticatedContent. The wire format is checked
// against the registry, as MLSMessage's is; whether it may carry framed
// content is for the caller.
func (x *AuthenticatedContent) Unmarshal(s *cryptobyte.String) error {
	var wf uint16
	if !s.ReadUint16(&wf) || !knownWireFormat(WireFormat(wf)) {
		return wire.Errorf("AuthenticatedContent.wire_format")
	}
	x.WireFormat = WireFormat(wf)
	if err := x.Content.Unmarshal(s); err != nil {
		return err
	}
	return x.Auth.UnmarshalAuth(s, x.Content.ContentType)
}

// ConfirmedTranscriptHashInput returns §8.2's ConfirmedTranscriptHashInput
// for a commit: wire_format, content and signature.
func (x *AuthenticatedContent) ConfirmedTranscriptHashInput() ([]byte, error) {
	return marshal(func(b *cryptobyte.Builder) {
		b.AddUint16(uint16(x.WireFormat))
		x.Content.Marshal(b)
		wire.AddOpaque(b, x.Auth.Signature)
	})
}

// InterimTranscriptHashInput returns §8.2's InterimTranscriptHashInput: the
// confirmation tag as an opaque MAC<V>.
func InterimTranscriptHashInput(confirmationTag []byte) ([]byte, error) {
	return marshal(func(b *cryptobyte.Builder) { wire.AddOpaque(b, confirmationTag) })
}

// MarshalFramedContentTBS returns §6.1's FramedContentTBS, the content of
// a framed message's signature. ctx binds member and new-member-commit
// messages to the group's current state and must be set for those senders;
// it is ignored, and may be nil, for the others.
func MarshalFramedContentTBS(wf WireFormat, c *FramedContent, ctx *GroupContext) ([]byte, error) {
	return marshal(func(b *cryptobyte.Builder) {
		b.AddUint16(uint16(MLS10))
		b.AddUint16(uint16(wf))
		c.Marshal(b)
		switch c.Sender.Type {
		case SenderMember, SenderNewMemberCommit:
			if ctx == nil {
				invalidf(b, "FramedContentTBS: sender type %d needs the group context", c.Sender.Type)
				return
			}
			ctx.Marshal(b)
		}
	})
}

// MarshalAuthenticatedContentTBM returns §6.2's AuthenticatedContentTBM,
// the input of the membership tag: the FramedContentTBS (as returned by
// MarshalFramedContentTBS) followed by the auth data for content type ct.
func MarshalAuthenticatedContentTBM(tbs []byte, auth *FramedContentAuthData, ct ContentType) ([]byte, error) {
	return marshal(func(b *cryptobyte.Builder) {
		b.AddBytes(tbs)
		auth.MarshalAuth(b, ct)
	})
}

// Marshal encodes a PublicMessage (§6.2).
func (x *PublicMessage) Marshal(b *cryptobyte.Builder) {
	x.Content.Marshal(b)
	x.Auth.MarshalAuth(b, x.Content.ContentType)
	if x.Content.Sender.Type == SenderMember {
		wire.AddOpaque(b, x.MembershipTag)
	}
}

// Unmarshal decodes a PublicMessage. The membership tag is nil unless the
// sender is a member.
func (x *PublicMessage) Unmarshal(s *cryptobyte.String) error {
	if err := x.Content.Unmarshal(s); err != nil {
		return err
	}
	if err := x.Auth.UnmarshalAuth(s, x.Content.ContentType); err != nil {
		return err
	}
	x.MembershipTag = nil
	if x.Content.Sender.Type == SenderMember {
		return readOpaque(s, &x.MembershipTag, "PublicMessage.membership_tag")
	}
	return nil
}

// Marshal encodes a PrivateMessage (§6.3).
func (x *PrivateMessage) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.GroupID)
	b.AddUint64(x.Epoch)
	b.AddUint8(uint8(x.ContentType))
	wire.AddOpaque(b, x.AuthenticatedData)
	wire.AddOpaque(b, x.EncryptedSenderData)
	wire.AddOpaque(b, x.Ciphertext)
}

// Unmarshal decodes a PrivateMessage. The content type is checked here
// although the content is encrypted: the plaintext cannot be parsed
// without a known one.
func (x *PrivateMessage) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.GroupID, "PrivateMessage.group_id"); err != nil {
		return err
	}
	if !s.ReadUint64(&x.Epoch) {
		return wire.Errorf("PrivateMessage.epoch")
	}
	if err := readContentType(s, &x.ContentType, "PrivateMessage.content_type"); err != nil {
		return err
	}
	if err := readOpaque(s, &x.AuthenticatedData, "PrivateMessage.authenticated_data"); err != nil {
		return err
	}
	if err := readOpaque(s, &x.EncryptedSenderData, "PrivateMessage.encrypted_sender_data"); err != nil {
		return err
	}
	return readOpaque(s, &x.Ciphertext, "PrivateMessage.ciphertext")
}

// readContentType reads a ContentType and rejects values outside §6.
func readContentType(s *cryptobyte.String, out *ContentType, field string) error {
	var ct uint8
	if !s.ReadUint8(&ct) {
		return wire.Errorf("%s", field)
	}
	switch c := ContentType(ct); c {
	case ContentApplication, ContentProposal, ContentCommit:
		*out = c
		return nil
	}
	return wire.Errorf("%s %d", field, ct)
}

// MarshalPrivateMessageContent encodes §6.3.1's PrivateMessageContent for
// content type ct, followed by c.PaddingLen zero bytes of padding.
func MarshalPrivateMessageContent(ct ContentType, c *PrivateMessageContent) ([]byte, error) {
	return AppendPrivateMessageContent(nil, ct, c)
}

// AppendPrivateMessageContent is MarshalPrivateMessageContent appending to
// dst, so that a sender can encode into a buffer with room for the padding
// and the AEAD tag and encrypt there without copying the content again.
func AppendPrivateMessageContent(dst []byte, ct ContentType, c *PrivateMessageContent) ([]byte, error) {
	b := cryptobyte.NewBuilder(dst)
	marshalContentBody(b, ct, c.ApplicationData, c.Proposal, c.Commit)
	c.Auth.MarshalAuth(b, ct)
	if c.PaddingLen < 0 {
		invalidf(b, "PrivateMessageContent: negative padding length")
	} else {
		b.AddBytes(make([]byte, c.PaddingLen))
	}
	return b.Bytes()
}

// UnmarshalPrivateMessageContent decodes a decrypted PrivateMessageContent
// of content type ct. The padding is whatever follows the auth data; it
// must be all zeros (§6.3.1).
//
// Application data is not copied: it aliases data, which is the freshly
// decrypted plaintext the caller owns, so that a message's payload is not
// copied once more on the way to the application.
func UnmarshalPrivateMessageContent(data []byte, ct ContentType) (*PrivateMessageContent, error) {
	s := cryptobyte.String(data)
	c := new(PrivateMessageContent)
	if ct == ContentApplication {
		if !wire.ReadOpaque(&s, &c.ApplicationData) {
			return nil, wire.Errorf("PrivateMessageContent.application_data")
		}
	} else if err := readContentBody(&s, ct, &c.ApplicationData, &c.Proposal, &c.Commit, "PrivateMessageContent"); err != nil {
		return nil, err
	}
	if err := c.Auth.UnmarshalAuth(&s, ct); err != nil {
		return nil, err
	}
	for _, v := range s {
		if v != 0 {
			return nil, wire.Errorf("PrivateMessageContent.padding: non-zero byte")
		}
	}
	c.PaddingLen = len(s)
	return c, nil
}

// Marshal encodes a PrivateContentAAD (§6.3.1).
func (x *PrivateContentAAD) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.GroupID)
	b.AddUint64(x.Epoch)
	b.AddUint8(uint8(x.ContentType))
	wire.AddOpaque(b, x.AuthenticatedData)
}

// Unmarshal decodes a PrivateContentAAD.
func (x *PrivateContentAAD) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.GroupID, "PrivateContentAAD.group_id"); err != nil {
		return err
	}
	if !s.ReadUint64(&x.Epoch) {
		return wire.Errorf("PrivateContentAAD.epoch")
	}
	if err := readContentType(s, &x.ContentType, "PrivateContentAAD.content_type"); err != nil {
		return err
	}
	return readOpaque(s, &x.AuthenticatedData, "PrivateContentAAD.authenticated_data")
}

// Marshal encodes a SenderData (§6.3.2).
func (x *SenderData) Marshal(b *cryptobyte.Builder) {
	b.AddUint32(x.LeafIndex)
	b.AddUint32(x.Generation)
	b.AddBytes(x.ReuseGuard[:])
}

// Unmarshal decodes a SenderData.
func (x *SenderData) Unmarshal(s *cryptobyte.String) error {
	if !s.ReadUint32(&x.LeafIndex) || !s.ReadUint32(&x.Generation) || !s.CopyBytes(x.ReuseGuard[:]) {
		return wire.Errorf("SenderData")
	}
	return nil
}

// Marshal encodes a SenderDataAAD (§6.3.2).
func (x *SenderDataAAD) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.GroupID)
	b.AddUint64(x.Epoch)
	b.AddUint8(uint8(x.ContentType))
}

// Unmarshal decodes a SenderDataAAD.
func (x *SenderDataAAD) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.GroupID, "SenderDataAAD.group_id"); err != nil {
		return err
	}
	if !s.ReadUint64(&x.Epoch) {
		return wire.Errorf("SenderDataAAD.epoch")
	}
	return readContentType(s, &x.ContentType, "SenderDataAAD.content_type")
}

// knownWireFormat reports whether wf is in §17.2's initial registry.
func knownWireFormat(wf WireFormat) bool {
	return wf >= WireFormatPublicMessage && wf <= WireFormatKeyPackage
}
