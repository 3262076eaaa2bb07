package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/framing"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// ExternalJoinOptions shape ExternalJoin.
type ExternalJoinOptions struct {
	// RatchetTree is the group's tree (a ratchet_tree extension body),
	// for a GroupInfo that does not carry it.
	RatchetTree []byte
	// Resync removes this leaf in the same commit: the joiner's own old
	// appearance in the group, which it replaces (§12.4.3.2).
	Resync *uint32
	// PreSharedKeys are external PSKs to inject.
	PreSharedKeys [][]byte
	// Leaf shapes the joiner's leaf (capabilities, extensions).
	Leaf KeyPackageOptions
	// AuthenticatedData goes in the clear, authenticated, with the commit.
	AuthenticatedData []byte
}

// ExternalJoin joins a group by external commit (§12.4.3.2) from a
// GroupInfo with an external_pub extension: the joiner, identity under a
// basic credential signed by signer, takes the leftmost free leaf. The
// commit in Effects.Message is a PublicMessage for the group; Effects.Group
// is the joiner's state in the epoch it starts, to keep once the delivery
// service accepts the commit.
func ExternalJoin(cfg Config, groupInfo, identity []byte, signer *Signer, opts ExternalJoinOptions) (*Effects, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	gi, s, err := decodeGroupInfo(groupInfo)
	if err != nil {
		return nil, err
	}
	if s.ID() != signer.suite.ID() || gi.GroupContext.Version != mls.MLS10 {
		return nil, fmt.Errorf("%w: GroupInfo of suite %d, signer of suite %d", ErrInvalidWelcome, s.ID(), signer.suite.ID())
	}
	var ep mls.ExternalPub
	found, err := mls.DecodeExtension(gi.Extensions, &ep)
	if err != nil {
		return nil, fmt.Errorf("%w: external_pub: %w", ErrMalformed, err)
	}
	if !found {
		return nil, fmt.Errorf("%w: GroupInfo without external_pub", ErrInvalidWelcome)
	}
	tree, err := groupInfoTree(c, s, gi, opts.RatchetTree)
	if err != nil {
		return nil, err
	}
	kemOutput, initSecret, err := s.ExportSender(ep.PublicKey, []byte(keyschedule.ExternalInitExportContext), s.Nh())
	if err != nil {
		return nil, fmt.Errorf("%w: external_pub: %w", ErrInvalidWelcome, err)
	}

	// The group as the joiner sees it before the commit: no secrets but
	// the transcript, which the GroupInfo's confirmation tag continues.
	ctx := &gi.GroupContext
	interim, err := keyschedule.InterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	pre := &Group{cfg: c, suite: s, signer: signer, role: roleMember, ctx: ctx, tree: tree, interim: interim}

	sender := mls.Sender{Type: mls.SenderNewMemberCommit}
	proposals := []*mls.Proposal{{Type: mls.ProposalExternalInit, ExternalInit: &mls.ExternalInit{KEMOutput: kemOutput}}}
	if opts.Resync != nil {
		proposals = append(proposals, &mls.Proposal{Type: mls.ProposalRemove, Remove: &mls.Remove{Removed: *opts.Resync}})
	}
	for _, id := range opts.PreSharedKeys {
		pid, err := pre.pskID(PSKID{External: id}, 0)
		if err != nil {
			return nil, err
		}
		proposals = append(proposals, &mls.Proposal{Type: mls.ProposalPSK, PreSharedKey: &mls.PreSharedKey{PSK: *pid}})
	}
	entries := make([]proposalEntry, len(proposals))
	orRefs := make([]mls.ProposalOrRef, len(proposals))
	for i, p := range proposals {
		entries[i] = proposalEntry{p: p, sender: sender}
		orRefs[i] = mls.ProposalOrRef{Proposal: p}
	}
	a, err := pre.applyProposals(entries, sender, true)
	if err != nil {
		return nil, err
	}
	if opts.Resync != nil {
		if old := a.removed[0]; !bytes.Equal(old.Identity, identity) {
			return nil, errorf(ErrInvalidProposal, "resync of leaf %d, which has another identity", old.LeafIndex)
		}
	}

	own := a.tree.FreeLeaf()
	leafTemplate, err := externalLeafTemplate(signer, identity, opts.Leaf)
	if err != nil {
		return nil, err
	}
	if err := a.rules.check(&leafTemplate); err != nil {
		return nil, fmt.Errorf("mlsgroup: joiner's leaf: %w", err)
	}
	path, err := a.tree.GeneratePath(c.Rand, own, leafTemplate, ctx.GroupID, signer.priv.Bytes())
	if errors.Is(err, ratchettree.ErrDuplicateKey) {
		// Another leaf has the joiner's signature key (§7.3): a member
		// joining again with its key must resync.
		return nil, fmt.Errorf("%w: joiner's leaf: %w", ErrInvalidCommit, err)
	}
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: update path: %w", err)
	}
	newCtx := &mls.GroupContext{
		Version:                 ctx.Version,
		CipherSuite:             ctx.CipherSuite,
		GroupID:                 ctx.GroupID,
		Epoch:                   ctx.Epoch + 1,
		ConfirmedTranscriptHash: ctx.ConfirmedTranscriptHash,
		Extensions:              a.extensions,
	}
	if newCtx.TreeHash, err = a.tree.TreeHash(); err != nil {
		return nil, err
	}
	provisional, err := encodeContext(newCtx)
	if err != nil {
		return nil, err
	}
	commit := &mls.Commit{Proposals: orRefs}
	if commit.Path, err = path.Encrypt(provisional, nil); err != nil {
		return nil, fmt.Errorf("mlsgroup: update path: %w", err)
	}
	if err := checkCredentialTypes(a.tree); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}

	f, err := framing.New(framing.Config{Suite: s, GroupContext: ctx})
	if err != nil {
		return nil, err
	}
	ac, err := f.Sign(mls.WireFormatPublicMessage, &mls.FramedContent{
		GroupID:           ctx.GroupID,
		Epoch:             ctx.Epoch,
		Sender:            sender,
		AuthenticatedData: opts.AuthenticatedData,
		ContentType:       mls.ContentCommit,
		Commit:            commit,
	}, signer.priv.Bytes())
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: signing: %w", err)
	}
	next, epoch, err := pre.nextEpoch(newCtx, ac, a, initSecret, path.CommitSecret().Bytes(), false)
	clear(initSecret)
	if err != nil {
		return nil, err
	}
	pm, err := f.ProtectPublic(ac)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: protecting message: %w", err)
	}
	msg, err := wire.Marshal(&mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatPublicMessage, PublicMessage: pm})
	if err != nil {
		return nil, err
	}
	next.own = own
	next.keys = path.PrivateKeys()
	next.enterEpoch(epoch)
	return &Effects{Group: next, Message: msg, Kind: KindCommit, Epoch: gi.GroupContext.Epoch}, nil
}

// externalLeafTemplate is the leaf an external joiner's path starts from:
// its credential, signature key, capabilities and extensions. GeneratePath
// gives it its encryption key and signs it.
func externalLeafTemplate(signer *Signer, identity []byte, opts KeyPackageOptions) (mls.LeafNode, error) {
	leaf := mls.LeafNode{
		SignatureKey: signer.pub,
		Credential:   mls.Credential{Type: mls.CredentialBasic, Identity: bytes.Clone(identity)},
		Capabilities: opts.Capabilities.capabilities(),
		Source:       mls.LeafNodeSourceCommit,
		Extensions:   importExtensions(opts.LeafExtensions),
	}
	if err := checkOwnExtensions(&leaf, nil); err != nil {
		return leaf, err
	}
	return leaf, nil
}
