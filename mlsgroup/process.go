package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/framing"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// MessageKind is what a received message carries (§6's ContentType).
type MessageKind uint8

const (
	// KindApplication is application data.
	KindApplication = MessageKind(mls.ContentApplication)
	// KindProposal is a proposal, now cached for a later commit.
	KindProposal = MessageKind(mls.ContentProposal)
	// KindCommit is a commit, now applied: the state is in a new epoch.
	KindCommit = MessageKind(mls.ContentCommit)
)

// SenderType says who sent a message (§6).
type SenderType uint8

// Sender types of §6.
const (
	SenderMember            = SenderType(mls.SenderMember)
	SenderExternal          = SenderType(mls.SenderExternal)
	SenderNewMemberProposal = SenderType(mls.SenderNewMemberProposal)
	SenderNewMemberCommit   = SenderType(mls.SenderNewMemberCommit)
)

// Sender is the sender of a received message.
type Sender struct {
	Type SenderType
	// LeafIndex is a member sender's leaf.
	LeafIndex uint32
	// ExternalIndex is an external sender's index in the external_senders
	// extension.
	ExternalIndex uint32
}

// Process handles an incoming PublicMessage or PrivateMessage (§6, §12):
// application data is decrypted, proposals are validated and cached,
// commits validated and applied (§12.4.2). g is not changed; on error the
// state the caller holds is still the right one.
//
// The echo of this member's staged commit merges it, as MergeCommit does,
// and hands out its Welcome. Echoes of its other messages fail with
// ErrReplay (the key of a PrivateMessage was used up in sending; a proposal
// is already cached), and a commit merged earlier with ErrWrongEpoch: a
// node that sees its own messages come back drops them.
func (g *Group) Process(message []byte) (*Effects, error) {
	return g.process(message)
}

// ProcessOptions adjust one Process call.
type ProcessOptions struct {
	// MaxGenerationsAhead, if not zero, replaces Config's for this
	// message; negative means none: only a sender's next generation is
	// read, anything after a gap fails with ErrTooFarAhead and leaves the
	// ratchet as it was. A receiver whose transport loses runs of
	// messages, and that has another way to fetch them in order, reads
	// that transport in order, so that a later message never moves the
	// ratchet on and pushes the lost ones out of the window.
	MaxGenerationsAhead int
}

// ProcessWith is Process with o.
func (g *Group) ProcessWith(message []byte, o ProcessOptions) (*Effects, error) {
	if o.MaxGenerationsAhead == 0 {
		return g.process(message)
	}
	h := g.clone()
	h.aheadOverride = windowValue(o.MaxGenerationsAhead, 0)
	h.hasAheadOverride = true
	eff, err := h.process(message)
	if eff != nil && eff.Group != nil {
		eff.Group.aheadOverride, eff.Group.hasAheadOverride = 0, false
	}
	return eff, err
}

// withAhead applies the call's window override to t, a tree of this
// call's own, and returns what undoes it.
func (g *Group) withAhead(t *keyschedule.SecretTree) (undo func()) {
	if !g.hasAheadOverride || t == nil {
		return func() {}
	}
	was := t.Window().MaxAhead
	t.SetMaxAhead(g.aheadOverride)
	return func() { t.SetMaxAhead(was) }
}

func (g *Group) process(message []byte) (*Effects, error) {
	var m mls.MLSMessage
	if err := wire.Unmarshal(message, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	switch m.WireFormat {
	case mls.WireFormatPublicMessage, mls.WireFormatPrivateMessage:
	default:
		return nil, errorf(ErrUnexpectedMessage, "wire format %d", m.WireFormat)
	}
	switch g.role {
	case roleMember:
		return g.stepMember(&m, message)
	case roleReInit:
		return g.stepEnded(&m, ErrReInitPending)
	default:
		return g.stepEnded(&m, errorf(ErrNotMember, "removed in epoch %d", g.ctx.Epoch))
	}
}

// stepMember processes a message as a member of the current epoch.
func (g *Group) stepMember(m *mls.MLSMessage, raw []byte) (*Effects, error) {
	if g.staged != nil && bytes.Equal(raw, g.staged.message) {
		// The delivery service echoed this member's own commit: it won
		// the epoch. Its keys were used up in sending, so it is merged,
		// not decrypted, and its Welcome may now leave.
		return g.MergeCommit()
	}
	// A PrivateMessage consumes a key, so it gets a secret tree of its
	// own; a PublicMessage changes nothing until its content is applied.
	var next *Group
	if pm := m.PrivateMessage; pm != nil {
		if pm.Epoch != g.ctx.Epoch || !bytes.Equal(pm.GroupID, g.ctx.GroupID) {
			return g.receivePast(pm)
		}
		next = g.withSecrets()
	} else {
		c := &m.PublicMessage.Content
		if err := g.checkEpoch(c.GroupID, c.Epoch); err != nil {
			return nil, err
		}
		next = g.clone()
	}
	f, err := next.framer()
	if err != nil {
		return nil, err
	}
	var ac *mls.AuthenticatedContent
	if m.PrivateMessage != nil {
		undo := g.withAhead(next.secrets)
		ac, err = f.UnprotectPrivate(m.PrivateMessage, g.senderKey)
		undo()
	} else {
		ac, err = f.UnprotectPublic(m.PublicMessage, g.senderKey)
	}
	if err != nil {
		return nil, framingError(err)
	}
	c := &ac.Content
	out := &Effects{
		Group:             next,
		Kind:              MessageKind(c.ContentType),
		Epoch:             c.Epoch,
		Sender:            Sender{Type: SenderType(c.Sender.Type), LeafIndex: c.Sender.LeafIndex, ExternalIndex: c.Sender.SenderIndex},
		AuthenticatedData: c.AuthenticatedData,
	}
	if out.Sender.Type != SenderMember {
		out.Sender.LeafIndex = 0
	}
	switch c.ContentType {
	case mls.ContentApplication:
		out.Plaintext = c.ApplicationData
	case mls.ContentProposal:
		if err := next.receiveProposal(ac, out); err != nil {
			return nil, err
		}
	case mls.ContentCommit:
		if c.Sender.Type == mls.SenderMember && leafOf(c.Sender) == g.own {
			return nil, errorf(ErrUnexpectedMessage, "a commit from this member's own leaf that is not its staged commit")
		}
		ng, info, err := next.processCommit(ac)
		if err != nil {
			return nil, err
		}
		out.Group, out.Commit = ng, info
		out.DiscardedCommit = g.staged != nil
	}
	return out, nil
}

// stepEnded processes a message in a state that may no longer take part
// in the group: only late application messages can still be read.
func (g *Group) stepEnded(m *mls.MLSMessage, refusal error) (*Effects, error) {
	pm := m.PrivateMessage
	if pm == nil || pm.ContentType != mls.ContentApplication {
		return nil, refusal
	}
	if pm.Epoch == g.ctx.Epoch && bytes.Equal(pm.GroupID, g.ctx.GroupID) {
		next := g.withSecrets()
		f, err := next.framer()
		if err != nil {
			return nil, err
		}
		ac, err := f.UnprotectPrivate(pm, g.senderKey)
		if err != nil {
			return nil, framingError(err)
		}
		return applicationReceived(next, ac), nil
	}
	return g.receivePast(pm)
}

func applicationReceived(next *Group, ac *mls.AuthenticatedContent) *Effects {
	c := &ac.Content
	return &Effects{
		Group:             next,
		Kind:              KindApplication,
		Epoch:             c.Epoch,
		Sender:            Sender{Type: SenderMember, LeafIndex: c.Sender.LeafIndex},
		AuthenticatedData: c.AuthenticatedData,
		Plaintext:         c.ApplicationData,
	}
}

// receivePast decrypts a late application message of a retained epoch
// (§15.3). Handshake messages of other epochs are refused: proposals and
// commits only make sense in the epoch they were sent in.
func (g *Group) receivePast(pm *mls.PrivateMessage) (*Effects, error) {
	if !bytes.Equal(pm.GroupID, g.ctx.GroupID) {
		return nil, ErrWrongGroup
	}
	idx := -1
	for i, p := range g.past {
		if p.ctx.Epoch == pm.Epoch {
			idx = i
		}
	}
	if idx < 0 || pm.ContentType != mls.ContentApplication {
		return nil, errorf(ErrWrongEpoch, "epoch %d, current %d", pm.Epoch, g.ctx.Epoch)
	}
	old := g.past[idx]
	st := old.secrets.Clone()
	f, err := framing.New(framing.Config{
		Suite:            g.suite,
		GroupContext:     old.ctx,
		SenderDataSecret: old.senderData,
		SecretTree:       st,
		Rand:             g.cfg.Rand,
		PadTo:            g.cfg.PadTo,
	})
	if err != nil {
		return nil, err
	}
	undo := g.withAhead(st)
	defer undo()
	ac, err := f.UnprotectPrivate(pm, func(c *mls.FramedContent) ([]byte, error) {
		l := c.Sender.LeafIndex
		if c.Sender.Type != mls.SenderMember || int(l) >= len(old.sigKeys) || old.sigKeys[l] == nil {
			return nil, errorf(ErrNotMember, "leaf %d in epoch %d", l, old.ctx.Epoch)
		}
		return old.sigKeys[l], nil
	})
	if err != nil {
		return nil, framingError(err)
	}
	next := g.clone()
	next.past = append([]*pastEpoch(nil), g.past...)
	p := *old
	p.secrets = st
	next.past[idx] = &p
	return applicationReceived(next, ac), nil
}

// checkEpoch checks that a handshake message is for the current epoch.
func (g *Group) checkEpoch(groupID []byte, epoch uint64) error {
	if !bytes.Equal(groupID, g.ctx.GroupID) {
		return ErrWrongGroup
	}
	if epoch != g.ctx.Epoch {
		return errorf(ErrWrongEpoch, "handshake message for epoch %d, current %d", epoch, g.ctx.Epoch)
	}
	return nil
}

// senderKey is the signature key that must have signed c (§6.1).
func (g *Group) senderKey(c *mls.FramedContent) ([]byte, error) {
	switch c.Sender.Type {
	case mls.SenderMember:
		leaf := g.tree.Leaf(leafOf(c.Sender))
		if leaf == nil {
			return nil, errorf(ErrNotMember, "leaf %d is blank", c.Sender.LeafIndex)
		}
		return leaf.SignatureKey, nil
	case mls.SenderExternal:
		var es mls.ExternalSenders
		found, err := mls.DecodeExtension(g.ctx.Extensions, &es)
		if err != nil || !found || int(c.Sender.SenderIndex) >= len(es) {
			return nil, errorf(ErrNotMember, "no external sender %d", c.Sender.SenderIndex)
		}
		return es[c.Sender.SenderIndex].SignatureKey, nil
	case mls.SenderNewMemberProposal:
		if c.Proposal == nil || c.Proposal.Add == nil {
			return nil, errorf(ErrMalformed, "new member proposal that is not an Add")
		}
		return c.Proposal.Add.KeyPackage.LeafNode.SignatureKey, nil
	case mls.SenderNewMemberCommit:
		if c.Commit == nil || c.Commit.Path == nil {
			return nil, errorf(ErrInvalidCommit, "external commit without a path")
		}
		return c.Commit.Path.LeafNode.SignatureKey, nil
	}
	return nil, errorf(ErrMalformed, "sender type %d", c.Sender.Type)
}

// receiveProposal validates a received proposal on its own (§12.1) and
// caches it in g, which the caller owns.
func (g *Group) receiveProposal(ac *mls.AuthenticatedContent, out *Effects) error {
	c := &ac.Content
	e := proposalEntry{p: c.Proposal, sender: c.Sender}
	if err := g.checkProposal(&e); err != nil {
		return err
	}
	ref, err := mls.ProposalRef(g.suite, ac)
	if err != nil {
		return err
	}
	for _, p := range g.proposals {
		if bytes.Equal(p.ref, ref) {
			return errorf(ErrReplay, "proposal already received")
		}
	}
	g.proposals = append(append([]*cachedProposal(nil), g.proposals...), &cachedProposal{ref: ref, proposal: c.Proposal, sender: c.Sender})
	out.ProposalType = ProposalType(c.Proposal.Type)
	out.ProposalRef = ref
	return nil
}

// findProposal returns the cached proposal with reference ref.
func (g *Group) findProposal(ref []byte) *cachedProposal {
	for _, p := range g.proposals {
		if bytes.Equal(p.ref, ref) {
			return p
		}
	}
	return nil
}

// processCommit validates and applies a commit from another member or an
// external joiner (§12.4.2). g owns its secret tree (the commit's key is
// consumed from it) and becomes the past epoch of the result.
func (g *Group) processCommit(ac *mls.AuthenticatedContent) (*Group, *CommitInfo, error) {
	commit := ac.Content.Commit
	sender := ac.Content.Sender
	external := sender.Type == mls.SenderNewMemberCommit
	entries := make([]proposalEntry, 0, len(commit.Proposals))
	for i, por := range commit.Proposals {
		if por.Proposal != nil {
			entries = append(entries, proposalEntry{p: por.Proposal, sender: sender})
			continue
		}
		if external {
			return nil, nil, errorf(ErrInvalidCommit, "external commit with a proposal by reference")
		}
		c := g.findProposal(por.Reference)
		if c == nil {
			return nil, nil, errorf(ErrInvalidCommit, "proposal %d: unknown reference %x", i, por.Reference)
		}
		entries = append(entries, proposalEntry{p: c.proposal, sender: c.sender, ref: c.ref, cached: c})
	}
	a, err := g.applyProposals(entries, sender, external)
	if err != nil {
		return nil, nil, err
	}
	if (a.pathRequired || external) && commit.Path == nil {
		return nil, nil, errorf(ErrInvalidCommit, "no path, which the proposals require")
	}
	if err := g.checkPSKsAvailable(a.psks); err != nil {
		return nil, nil, err
	}
	if external && len(a.removed) == 1 {
		// A resync (§12.4.3.2) replaces the joiner's old leaf: the new
		// credential must be the old one's.
		old, leaf := a.removed[0], &commit.Path.LeafNode
		if old.CredentialType != uint16(leaf.Credential.Type) || !bytes.Equal(old.Identity, leaf.Credential.Identity) {
			return nil, nil, errorf(ErrInvalidCommit, "external commit removes leaf %d of another identity", old.LeafIndex)
		}
	}
	committer := leafOf(sender)
	if external {
		committer = a.tree.FreeLeaf()
	}
	var keys ratchettree.PrivateKeys
	if !a.selfRemoved {
		keys = g.keys.Clone()
		if a.ownUpdate != nil && !a.ownUpdate.updateKey.IsZero() {
			keys[g.own.Node()] = cloneSecret(a.ownUpdate.updateKey)
		}
		keys.Prune(a.tree)
	}
	newCtx := &mls.GroupContext{
		Version:                 g.ctx.Version,
		CipherSuite:             g.ctx.CipherSuite,
		GroupID:                 g.ctx.GroupID,
		Epoch:                   g.ctx.Epoch + 1,
		ConfirmedTranscriptHash: g.ctx.ConfirmedTranscriptHash,
		Extensions:              a.extensions,
	}
	// Everything that can be checked without the new epoch's secrets is
	// checked even by a member the commit removes: otherwise anyone who
	// can sign a commit could make one member alone believe it was
	// removed.
	var commitSecret []byte
	if up := commit.Path; up != nil {
		leaf := &up.LeafNode
		if err := validateLeafNode(g.suite, leaf, leafContext{
			now: g.cfg.now(), opts: g.cfg.Validation, groupID: g.ctx.GroupID, leaf: uint32(committer),
			source: mls.LeafNodeSourceCommit, skipSignature: true,
		}); err != nil {
			return nil, nil, fmt.Errorf("%w: path leaf: %w", ErrInvalidCommit, err)
		}
		if err := a.rules.check(leaf); err != nil {
			return nil, nil, fmt.Errorf("%w: path leaf: %w", ErrInvalidCommit, err)
		}
		if !external {
			if err := checkSuccession(g.cfg.Validation, g.tree.Leaf(committer), leaf); err != nil {
				return nil, nil, fmt.Errorf("%w: path leaf: %w", ErrInvalidCommit, err)
			}
		}
		if err := a.tree.MergePath(committer, up, g.ctx.GroupID); err != nil {
			return nil, nil, treeError(err)
		}
		if newCtx.TreeHash, err = a.tree.TreeHash(); err != nil {
			return nil, nil, err
		}
		if !a.selfRemoved {
			provisional, err := encodeContext(newCtx)
			if err != nil {
				return nil, nil, err
			}
			dp, err := a.tree.DecryptPath(keys, g.own, committer, up, a.added, provisional)
			if err != nil {
				return nil, nil, treeError(err)
			}
			commitSecret = dp.CommitSecret.Bytes()
		}
	} else if newCtx.TreeHash, err = a.tree.TreeHash(); err != nil {
		return nil, nil, err
	}
	if err := checkCredentialTypes(a.tree); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}

	initSecret := g.epoch.InitSecret.Bytes()
	if external {
		priv, _, err := g.epoch.ExternalKeyPair()
		if err != nil {
			return nil, nil, err
		}
		initSecret, err = g.suite.ExportReceiver(priv.Bytes(), a.externalInit.KEMOutput, []byte(keyschedule.ExternalInitExportContext), g.suite.Nh())
		if err != nil {
			return nil, nil, fmt.Errorf("%w: ExternalInit: %w", ErrInvalidCommit, err)
		}
	}
	if a.selfRemoved {
		// What is left to check, the confirmation tag, needs the new
		// epoch's secrets, which a removed member does not get.
		n := g.clone()
		n.role = roleRemoved
		n.proposals = nil
		n.staged = nil
		info := g.commitInfo(a, uint32(committer), external)
		return n, info, nil
	}
	next, ep, err := g.nextEpoch(newCtx, ac, a, initSecret, commitSecret, true)
	if err != nil {
		return nil, nil, err
	}
	next.own = g.own
	next.keys = keys
	next.enterEpoch(ep)
	info := g.commitInfo(a, uint32(committer), external)
	return g.successor(next), info, nil
}

// treeError translates the ratchet tree's errors on a received commit.
func treeError(err error) error {
	switch {
	case errors.Is(err, ratchettree.ErrSignature):
		return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
	case errors.Is(err, ratchettree.ErrNoPrivateKey), errors.Is(err, ratchettree.ErrKeyMismatch):
		return fmt.Errorf("%w: %w: %w", ErrInvalidCommit, ErrDecrypt, err)
	}
	return fmt.Errorf("%w: %w", ErrInvalidCommit, err)
}

// cloneSecret copies key material, so that wiping one copy leaves the
// other intact.
func cloneSecret(s secret.Secret) secret.Secret { return secret.New(bytes.Clone(s.Bytes())) }

// MessageInfo is what can be read of an MLSMessage without any keys.
type MessageInfo struct {
	// WireFormat is §6's wire format: 1 PublicMessage, 2 PrivateMessage,
	// 3 Welcome, 4 GroupInfo, 5 KeyPackage.
	WireFormat uint16
	// GroupID and Epoch are set for PublicMessages, PrivateMessages and
	// GroupInfos.
	GroupID []byte
	Epoch   uint64
	// Kind is set for PublicMessages and PrivateMessages.
	Kind MessageKind
}

// Wire formats of §6, as MessageInfo.WireFormat reports them.
const (
	WireFormatPublicMessage  = uint16(mls.WireFormatPublicMessage)
	WireFormatPrivateMessage = uint16(mls.WireFormatPrivateMessage)
	WireFormatWelcome        = uint16(mls.WireFormatWelcome)
	WireFormatGroupInfo      = uint16(mls.WireFormatGroupInfo)
	WireFormatKeyPackage     = uint16(mls.WireFormatKeyPackage)
)

// InspectMessage decodes an MLSMessage far enough to route it: which
// group and epoch it is for, before any state is involved. Nothing in it
// is authenticated until Process has accepted the message.
func InspectMessage(message []byte) (*MessageInfo, error) {
	var m mls.MLSMessage
	if err := wire.Unmarshal(message, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	info := &MessageInfo{WireFormat: uint16(m.WireFormat)}
	switch {
	case m.PublicMessage != nil:
		c := &m.PublicMessage.Content
		info.GroupID, info.Epoch, info.Kind = c.GroupID, c.Epoch, MessageKind(c.ContentType)
	case m.PrivateMessage != nil:
		pm := m.PrivateMessage
		info.GroupID, info.Epoch, info.Kind = pm.GroupID, pm.Epoch, MessageKind(pm.ContentType)
	case m.GroupInfo != nil:
		info.GroupID, info.Epoch = m.GroupInfo.GroupContext.GroupID, m.GroupInfo.GroupContext.Epoch
	}
	return info, nil
}
