package mlsgroup

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/framing"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Framing chooses how handshake messages travel.
type Framing uint8

const (
	// FramingDefault follows Config.PublicHandshake.
	FramingDefault Framing = iota
	// FramingPublic sends a PublicMessage (§6.2): signed, not encrypted.
	FramingPublic
	// FramingPrivate sends a PrivateMessage (§6.3).
	FramingPrivate
)

func (f Framing) public(cfg *config) bool {
	switch f {
	case FramingPublic:
		return true
	case FramingPrivate:
		return false
	}
	return cfg.PublicHandshake
}

// canSend reports whether this state may send messages.
func (g *Group) canSend() error {
	switch g.role {
	case roleMember:
		return nil
	case roleReInit:
		return ErrReInitPending
	}
	return errorf(ErrNotMember, "removed from the group in epoch %d", g.ctx.Epoch)
}

// Encrypt protects application data as a PrivateMessage (§6.3, §15) with
// the next key of this member's application ratchet. authenticatedData is
// sent in the clear but authenticated. It fails with ErrPendingProposals
// while proposals of the epoch wait for a commit (§12.4).
func (g *Group) Encrypt(plaintext, authenticatedData []byte) (*Effects, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	if len(g.proposals) > 0 {
		return nil, errorf(ErrPendingProposals, "%d uncommitted", len(g.proposals))
	}
	next := g.withSecrets()
	content := &mls.FramedContent{
		GroupID:           g.ctx.GroupID,
		Epoch:             g.ctx.Epoch,
		Sender:            mls.Sender{Type: mls.SenderMember, LeafIndex: uint32(g.own)},
		AuthenticatedData: authenticatedData,
		ContentType:       mls.ContentApplication,
		ApplicationData:   plaintext,
	}
	msg, _, err := next.protect(content, false)
	if err != nil {
		return nil, err
	}
	return &Effects{Group: next, Message: msg, Kind: KindApplication, Epoch: g.ctx.Epoch}, nil
}

// protect signs content and frames it as a public or private message. g
// must own its secret tree: a private message consumes a key.
func (g *Group) protect(content *mls.FramedContent, public bool) ([]byte, *mls.AuthenticatedContent, error) {
	ac, err := g.sign(content, public)
	if err != nil {
		return nil, nil, err
	}
	msg, err := g.frame(ac)
	if err != nil {
		return nil, nil, err
	}
	return msg, ac, nil
}

// sign signs content for the current epoch (§6.1). It takes the
// FramedContentTBS from the epoch's framing, rather than going through
// framing.Epoch.Sign, to sign with the member's parsed key. Like framer, it
// wants a state of its own.
func (g *Group) sign(content *mls.FramedContent, public bool) (*mls.AuthenticatedContent, error) {
	wf := mls.WireFormatPrivateMessage
	if public {
		wf = mls.WireFormatPublicMessage
	}
	f, err := g.framer()
	if err != nil {
		return nil, err
	}
	tbs, err := f.FramedContentTBS(wf, content)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: FramedContentTBS: %w", err)
	}
	sig, err := g.signer.sign("FramedContentTBS", tbs)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: signing: %w", err)
	}
	return &mls.AuthenticatedContent{
		WireFormat: wf,
		Content:    *content,
		Auth:       mls.FramedContentAuthData{Signature: sig},
	}, nil
}

// frame protects signed content (§6.2, §6.3) and encodes the MLSMessage.
func (g *Group) frame(ac *mls.AuthenticatedContent) ([]byte, error) {
	f, err := g.framer()
	if err != nil {
		return nil, err
	}
	m := &mls.MLSMessage{Version: mls.MLS10, WireFormat: ac.WireFormat}
	if ac.WireFormat == mls.WireFormatPublicMessage {
		m.PublicMessage, err = f.ProtectPublic(ac)
	} else {
		m.PrivateMessage, err = f.ProtectPrivate(ac)
	}
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: protecting message: %w", err)
	}
	// Sized for the ciphertext up front: a 1 KiB application message
	// would otherwise be copied as the encoding grows.
	size := 64
	if pm := m.PrivateMessage; pm != nil {
		size += len(pm.GroupID) + len(pm.AuthenticatedData) + len(pm.EncryptedSenderData) + len(pm.Ciphertext)
	}
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	m.Marshal(b)
	return b.Bytes()
}

// framingError translates what the framing layer reports into this
// package's errors.
func framingError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, framing.ErrInvalidSignature):
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	case errors.Is(err, framing.ErrInvalidMembershipTag):
		return fmt.Errorf("%w: %w", ErrInvalidMembershipTag, err)
	case errors.Is(err, framing.ErrDecrypt):
		return fmt.Errorf("%w: %w", ErrDecrypt, err)
	case errors.Is(err, framing.ErrWrongGroup):
		return fmt.Errorf("%w: %w", ErrWrongGroup, err)
	case errors.Is(err, framing.ErrWrongEpoch):
		return fmt.Errorf("%w: %w", ErrWrongEpoch, err)
	case errors.Is(err, framing.ErrInvalidSender):
		return fmt.Errorf("%w: %w", ErrNotMember, err)
	case errors.Is(err, keyschedule.ErrReplay):
		return fmt.Errorf("%w: %w", ErrReplay, err)
	case errors.Is(err, keyschedule.ErrGenerationTooFar):
		return fmt.Errorf("%w: %w", ErrTooFarAhead, err)
	case errors.Is(err, keyschedule.ErrLeafOutOfRange):
		return fmt.Errorf("%w: %w", ErrNotMember, err)
	case errors.Is(err, ErrNotMember):
		return err
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, framing.ErrApplicationInPublic),
		errors.Is(err, framing.ErrMissingConfirmationTag), errors.Is(err, keyschedule.ErrRatchetExhausted):
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return err
}
