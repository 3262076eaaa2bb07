// Package framing turns FramedContent into protected messages and back
// (RFC 9420 §6): it signs and verifies content (§6.1), adds and checks the
// membership tag of a PublicMessage (§6.2), and encrypts and decrypts a
// PrivateMessage with keys from the epoch's secret tree (§6.3, §9).
//
// Sending is two steps, Sign and then ProtectPublic or ProtectPrivate,
// because a commit's confirmation tag depends on its signature: the
// committer signs, hashes the signed commit into the next epoch's confirmed
// transcript hash (§8.2), computes the tag from that, stores it in the
// AuthenticatedContent, and only then protects it. Receiving is one step (UnprotectPublic,
// UnprotectPrivate) that returns content only once every check this layer
// can make has passed. Confirmation tags, and which senders may send which
// proposals, need state beyond one epoch's framing keys and are left to the
// caller.
package framing

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Errors. Failures to decode a decrypted plaintext keep package wire's
// sentinels, and secret tree failures (a replayed generation, say) keep
// package keyschedule's.
var (
	// ErrInvalidSignature means a FramedContent signature did not verify
	// (§6.1).
	ErrInvalidSignature = errors.New("framing: invalid signature")
	// ErrInvalidMembershipTag means a member's PublicMessage carries a
	// membership tag that does not match (§6.2).
	ErrInvalidMembershipTag = errors.New("framing: invalid membership tag")
	// ErrDecrypt means a PrivateMessage's sender data or content did not
	// decrypt (§6.3).
	ErrDecrypt = errors.New("framing: decryption failed")
	// ErrWrongGroup means a message is for another group.
	ErrWrongGroup = errors.New("framing: message for another group")
	// ErrWrongEpoch means a message is for another epoch of the group.
	ErrWrongEpoch = errors.New("framing: message for another epoch")
	// ErrWrongWireFormat means content was signed for one wire format and
	// is being sent or received in another (the signature covers it, §6.1).
	ErrWrongWireFormat = errors.New("framing: content signed for another wire format")
	// ErrApplicationInPublic means application data was to be sent, or
	// arrived, as a PublicMessage, which §6 forbids.
	ErrApplicationInPublic = errors.New("framing: application data in a PublicMessage")
	// ErrInvalidSender means the sender may not send this content in this
	// form: a non-member in a PrivateMessage (§6.3.2), a content type its
	// sender type does not allow (§6.1), or a leaf the group does not have.
	ErrInvalidSender = errors.New("framing: invalid sender")
	// ErrMissingConfirmationTag means a commit was to be protected before
	// its confirmation tag was set (§6.1).
	ErrMissingConfirmationTag = errors.New("framing: commit without confirmation tag")
	// ErrNotConfigured means the Epoch lacks a key or input the operation
	// needs (say, a secret tree to protect a PrivateMessage with).
	ErrNotConfigured = errors.New("framing: epoch not configured for this operation")
	// ErrEncoding means a structure could not be encoded.
	ErrEncoding = errors.New("framing: encoding failed")
)

// DefaultPadTo is the padding block used when Config.PadTo is zero.
// Rounding every PrivateMessageContent up to 32 bytes hides the exact
// length of short messages, such as one-word chat lines, for at most 31
// bytes of overhead; applications that need more length hiding pick a
// larger block.
const DefaultPadTo = 32

// Config is what Epoch needs to protect and unprotect messages in one epoch
// of a group. Only Suite and GroupContext are required: the other fields
// are needed only by the operations that use them, so a new member signing
// an external commit, say, can leave them unset.
type Config struct {
	Suite *suite.Suite
	// GroupContext is the group's context in this epoch: member and
	// new-member-commit signatures cover it (§6.1), and messages are
	// checked against its group ID and epoch.
	GroupContext *mls.GroupContext

	// MembershipKey is the epoch's membership_key (§8), for member
	// PublicMessages.
	MembershipKey secret.Secret
	// SenderDataSecret is the epoch's sender_data_secret (§6.3.2).
	SenderDataSecret secret.Secret
	// SecretTree yields the content keys of PrivateMessages (§9). Epoch
	// consumes keys from it, so it must not be shared with other users.
	SecretTree *keyschedule.SecretTree
	// Rand supplies the reuse guards of outgoing PrivateMessages (§6.3.1).
	Rand io.Reader
	// PadTo is the block size outgoing PrivateMessageContent is padded up
	// to a multiple of with zero bytes (§6.3.1); zero means DefaultPadTo and
	// one turns padding off.
	PadTo int
}

// Epoch protects and unprotects the messages of one epoch of a group. Its
// PrivateMessage methods change the secret tree, so an Epoch is not safe
// for concurrent use.
type Epoch struct {
	suite   *suite.Suite
	groupID []byte
	epoch   uint64
	// groupContext is the encoded GroupContext, which every member
	// signature covers: encoded once here rather than per message.
	groupContext  []byte
	membershipKey secret.Secret
	senderData    secret.Secret
	tree          *keyschedule.SecretTree
	rand          io.Reader
	padTo         int
}

// New returns an Epoch for c. It keeps c's secrets and secret tree, not
// copies; the GroupContext it encodes at once, so later changes to it do
// not change what signatures cover.
func New(c Config) (*Epoch, error) {
	if c.Suite == nil || c.GroupContext == nil {
		return nil, fmt.Errorf("%w: Suite and GroupContext are required", ErrNotConfigured)
	}
	if c.GroupContext.CipherSuite != c.Suite.ID() {
		return nil, fmt.Errorf("%w: group context is for cipher suite %d, not %d", ErrNotConfigured, c.GroupContext.CipherSuite, c.Suite.ID())
	}
	if c.PadTo < 0 {
		return nil, fmt.Errorf("%w: negative PadTo", ErrNotConfigured)
	}
	gc, err := wire.Marshal(c.GroupContext)
	if err != nil {
		return nil, fmt.Errorf("%w: GroupContext: %w", ErrEncoding, err)
	}
	padTo := c.PadTo
	if padTo == 0 {
		padTo = DefaultPadTo
	}
	return &Epoch{
		suite:         c.Suite,
		groupID:       bytes.Clone(c.GroupContext.GroupID),
		epoch:         c.GroupContext.Epoch,
		groupContext:  gc,
		membershipKey: c.MembershipKey,
		senderData:    c.SenderDataSecret,
		tree:          c.SecretTree,
		rand:          c.Rand,
		padTo:         padTo,
	}, nil
}

// WithSecretTree returns a copy of e that takes PrivateMessage keys from
// t. The copy shares e's encoded GroupContext and secrets, so a group state
// that owns a new secret tree after each message can frame it without
// encoding the context again.
func (e *Epoch) WithSecretTree(t *keyschedule.SecretTree) *Epoch {
	c := *e
	c.tree = t
	return &c
}

// FramedContentTBS encodes the FramedContentTBS (§6.1) of content sent as
// wf in this epoch, which the sender signs.
func (e *Epoch) FramedContentTBS(wf mls.WireFormat, content *mls.FramedContent) ([]byte, error) {
	return e.tbs(wf, content)
}

// marshalSized encodes m into a buffer of size bytes, a caller's upper
// estimate, so that the encoding is one allocation.
func marshalSized(m wire.Marshaler, size int) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	m.Marshal(b)
	return b.Bytes()
}

// SignatureKeyFunc returns the signature public key that must have signed
// content, as §6.1 assigns it by sender type: a member's is in its leaf of
// the ratchet tree, an external sender's in the external_senders extension,
// a new member's in the content itself. It returns an error for a sender
// that has no key, such as a blank leaf (§6.3.2).
type SignatureKeyFunc func(content *mls.FramedContent) ([]byte, error)

// checkGroup checks that a message belongs to this epoch of this group.
func (e *Epoch) checkGroup(groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, e.groupID) {
		return ErrWrongGroup
	}
	if epoch != e.epoch {
		return fmt.Errorf("%w: epoch %d, current %d", ErrWrongEpoch, epoch, e.epoch)
	}
	return nil
}

// checkSender applies §6.1's rules on which sender types may send which
// content types. Which proposal types an external sender may send depends
// on group policy and is left to the caller.
func checkSender(c *mls.FramedContent) error {
	ok := false
	switch c.Sender.Type {
	case mls.SenderMember:
		ok = true
	case mls.SenderExternal:
		ok = c.ContentType == mls.ContentProposal
	case mls.SenderNewMemberProposal:
		ok = c.ContentType == mls.ContentProposal && c.Proposal != nil && c.Proposal.Type == mls.ProposalAdd
	case mls.SenderNewMemberCommit:
		ok = c.ContentType == mls.ContentCommit
	}
	if !ok {
		return fmt.Errorf("%w: sender type %d may not send content type %d", ErrInvalidSender, c.Sender.Type, c.ContentType)
	}
	return nil
}

// checkAuth checks that the auth data has the shape the content type asks
// for: the codecs carry a confirmation tag only for commits, so a commit
// without one would be sent with an empty tag.
func checkAuth(ac *mls.AuthenticatedContent) error {
	if ac.Content.ContentType == mls.ContentCommit && len(ac.Auth.ConfirmationTag) == 0 {
		return ErrMissingConfirmationTag
	}
	return nil
}
