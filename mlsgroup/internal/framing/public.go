package framing

import (
	"crypto/hmac"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
)

// signLabel is the SignWithLabel label of §6.1.
const signLabel = "FramedContentTBS"

// tbs encodes §6.1's FramedContentTBS of content to be sent as wf. It is
// mls.MarshalFramedContentTBS with the GroupContext encoded once per epoch
// rather than per message, in a buffer sized for the content up front: it
// runs for every message sent and received, and re-encoding the context
// and regrowing the buffer made up a fifth of the bytes allocated per
// message. TestTBSMatchesMLS keeps the two encodings the same.
func (e *Epoch) tbs(wf mls.WireFormat, c *mls.FramedContent) ([]byte, error) {
	size := 32 + len(c.GroupID) + len(c.AuthenticatedData) + len(c.ApplicationData) + len(e.groupContext)
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	b.AddUint16(uint16(mls.MLS10))
	b.AddUint16(uint16(wf))
	c.Marshal(b)
	switch c.Sender.Type {
	case mls.SenderMember, mls.SenderNewMemberCommit:
		b.AddBytes(e.groupContext)
	}
	tbs, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: FramedContentTBS: %w", ErrEncoding, err)
	}
	return tbs, nil
}

// Sign signs content that is to be sent as wf (§6.1) with the sender's
// signature private key. The content must be for this epoch of the group
// and fit its sender type. A commit's confirmation tag is left for the
// caller to set before protecting it.
func (e *Epoch) Sign(wf mls.WireFormat, content *mls.FramedContent, signaturePriv []byte) (*mls.AuthenticatedContent, error) {
	if wf != mls.WireFormatPublicMessage && wf != mls.WireFormatPrivateMessage {
		return nil, fmt.Errorf("%w: wire format %d carries no framed content", ErrWrongWireFormat, wf)
	}
	if wf == mls.WireFormatPublicMessage && content.ContentType == mls.ContentApplication {
		return nil, ErrApplicationInPublic
	}
	if err := e.checkGroup(content.GroupID, content.Epoch); err != nil {
		return nil, fmt.Errorf("framing: signing: %w", err)
	}
	if err := checkSender(content); err != nil {
		return nil, fmt.Errorf("framing: signing: %w", err)
	}
	tbs, err := e.tbs(wf, content)
	if err != nil {
		return nil, err
	}
	sig, err := e.suite.SignWithLabel(signaturePriv, signLabel, tbs)
	if err != nil {
		return nil, fmt.Errorf("framing: signing FramedContentTBS: %w", err)
	}
	return &mls.AuthenticatedContent{
		WireFormat: wf,
		Content:    *content,
		Auth:       mls.FramedContentAuthData{Signature: sig},
	}, nil
}

// verify checks the signature of ac, whose FramedContentTBS is tbs, with
// the key lookup returns for its sender.
func (e *Epoch) verify(ac *mls.AuthenticatedContent, tbs []byte, lookup SignatureKeyFunc) error {
	pub, err := lookup(&ac.Content)
	if err != nil {
		return fmt.Errorf("framing: signature key of sender: %w", err)
	}
	if err := e.suite.VerifyWithLabel(pub, signLabel, tbs, ac.Auth.Signature); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	}
	return nil
}

// membershipTag is §6.2's MAC(membership_key, AuthenticatedContentTBM).
func (e *Epoch) membershipTag(tbs []byte, ac *mls.AuthenticatedContent) ([]byte, error) {
	if e.membershipKey.IsZero() {
		return nil, fmt.Errorf("%w: no membership key", ErrNotConfigured)
	}
	tbm, err := mls.MarshalAuthenticatedContentTBM(tbs, &ac.Auth, ac.Content.ContentType)
	if err != nil {
		return nil, fmt.Errorf("%w: AuthenticatedContentTBM: %w", ErrEncoding, err)
	}
	return e.suite.MAC(e.membershipKey.Bytes(), tbm), nil
}

// ProtectPublic encodes signed content as a PublicMessage (§6.2), adding
// the membership tag when the sender is a member. Application data cannot
// be sent this way (§6).
func (e *Epoch) ProtectPublic(ac *mls.AuthenticatedContent) (*mls.PublicMessage, error) {
	if ac.Content.ContentType == mls.ContentApplication {
		return nil, ErrApplicationInPublic
	}
	if ac.WireFormat != mls.WireFormatPublicMessage {
		return nil, fmt.Errorf("%w: signed for %d, protecting as PublicMessage", ErrWrongWireFormat, ac.WireFormat)
	}
	if err := e.checkGroup(ac.Content.GroupID, ac.Content.Epoch); err != nil {
		return nil, fmt.Errorf("framing: protecting PublicMessage: %w", err)
	}
	if err := checkSender(&ac.Content); err != nil {
		return nil, fmt.Errorf("framing: protecting PublicMessage: %w", err)
	}
	if err := checkAuth(ac); err != nil {
		return nil, fmt.Errorf("framing: protecting PublicMessage: %w", err)
	}
	pm := &mls.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.Type == mls.SenderMember {
		tbs, err := e.tbs(ac.WireFormat, &ac.Content)
		if err != nil {
			return nil, err
		}
		tag, err := e.membershipTag(tbs, ac)
		if err != nil {
			return nil, err
		}
		pm.MembershipTag = tag
	}
	return pm, nil
}

// UnprotectPublic checks a PublicMessage (§6.2) and returns its content:
// it must be for this epoch of the group, not carry application data, carry
// a valid membership tag if its sender is a member, and be signed by the
// key lookup returns for its sender. The commit's confirmation tag is left
// to the caller, who alone can compute it.
func (e *Epoch) UnprotectPublic(pm *mls.PublicMessage, lookup SignatureKeyFunc) (*mls.AuthenticatedContent, error) {
	c := &pm.Content
	if err := e.checkGroup(c.GroupID, c.Epoch); err != nil {
		return nil, fmt.Errorf("framing: PublicMessage: %w", err)
	}
	if c.ContentType == mls.ContentApplication {
		return nil, ErrApplicationInPublic
	}
	if err := checkSender(c); err != nil {
		return nil, fmt.Errorf("framing: PublicMessage: %w", err)
	}
	ac := &mls.AuthenticatedContent{WireFormat: mls.WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
	if err := checkAuth(ac); err != nil {
		return nil, fmt.Errorf("framing: PublicMessage: %w", err)
	}
	tbs, err := e.tbs(ac.WireFormat, c)
	if err != nil {
		return nil, err
	}
	// The membership tag comes first: it is cheaper than the signature and
	// keeps non-members from making us verify signatures.
	if c.Sender.Type == mls.SenderMember {
		want, err := e.membershipTag(tbs, ac)
		if err != nil {
			return nil, err
		}
		if !hmac.Equal(want, pm.MembershipTag) {
			return nil, ErrInvalidMembershipTag
		}
	}
	if err := e.verify(ac, tbs, lookup); err != nil {
		return nil, err
	}
	return ac, nil
}
