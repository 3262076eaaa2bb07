package mlsgroup

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
)

// ProposalType is a proposal type (§12.1, registry §17.4).
type ProposalType uint16

// The proposal types of RFC 9420.
const (
	ProposalAdd                    = ProposalType(mls.ProposalAdd)
	ProposalUpdate                 = ProposalType(mls.ProposalUpdate)
	ProposalRemove                 = ProposalType(mls.ProposalRemove)
	ProposalPreSharedKey           = ProposalType(mls.ProposalPSK)
	ProposalReInit                 = ProposalType(mls.ProposalReInit)
	ProposalExternalInit           = ProposalType(mls.ProposalExternalInit)
	ProposalGroupContextExtensions = ProposalType(mls.ProposalGroupContextExtensions)
)

// Proposal is a change to the group a member asks for (§12.1): sent on its
// own with Propose, or carried in a commit by value with CommitOptions.
// Build one with AddProposal, RemoveProposal and the like. Update
// proposals come from ProposeUpdate, since they need this member's keys.
type Proposal struct {
	typ        ProposalType
	keyPackage *KeyPackage
	removed    uint32
	psk        *PSKID
	extensions []Extension
	reinit     *ReInitParams
	resolved   *mls.Proposal // built by this package, sent as is
}

// Type is the proposal's type.
func (p Proposal) Type() ProposalType { return p.typ }

// AddProposal asks to add the owner of kp (§12.1.1).
func AddProposal(kp *KeyPackage) Proposal { return Proposal{typ: ProposalAdd, keyPackage: kp} }

// RemoveProposal asks to remove the member at leaf (§12.1.3). A member
// proposing its own removal asks to leave.
func RemoveProposal(leaf uint32) Proposal { return Proposal{typ: ProposalRemove, removed: leaf} }

// PreSharedKeyProposal asks to inject a PSK into the next epoch (§12.1.4);
// a fresh nonce is drawn when the proposal is made.
func PreSharedKeyProposal(id PSKID) Proposal {
	return Proposal{typ: ProposalPreSharedKey, psk: &id}
}

// GroupContextExtensionsProposal asks to replace the GroupContext's
// extensions with exts (§12.1.7).
func GroupContextExtensionsProposal(exts []Extension) Proposal {
	return Proposal{typ: ProposalGroupContextExtensions, extensions: exts}
}

// ReInitProposal asks to end this group and start another with the given
// parameters (§12.1.5, §11.2).
func ReInitProposal(params ReInitParams) Proposal {
	return Proposal{typ: ProposalReInit, reinit: &params}
}

// PSKID names a pre-shared key (§8.4): an external one by its ID, or the
// resumption PSK of an epoch of this group.
type PSKID struct {
	// External is the ID of an external PSK; nil for a resumption PSK.
	External []byte
	// Epoch is the epoch whose resumption PSK is meant (§8.6), when
	// External is nil. It must be the current epoch or a retained one.
	Epoch uint64
}

// ReInitParams are the parameters of the group that replaces this one
// after a ReInit (§12.1.5).
type ReInitParams struct {
	GroupID     []byte
	CipherSuite CipherSuite
	Extensions  []Extension
}

// wire builds the proposal's wire form for group g, drawing PSK nonces
// from g's randomness.
func (p Proposal) wire(g *Group) (*mls.Proposal, error) {
	if p.resolved != nil {
		return p.resolved, nil
	}
	switch p.typ {
	case ProposalAdd:
		if p.keyPackage == nil {
			return nil, errorf(ErrInvalidProposal, "Add without a KeyPackage")
		}
		kp := p.keyPackage.kp
		return &mls.Proposal{Type: mls.ProposalAdd, Add: &mls.Add{KeyPackage: kp}}, nil
	case ProposalRemove:
		return &mls.Proposal{Type: mls.ProposalRemove, Remove: &mls.Remove{Removed: p.removed}}, nil
	case ProposalPreSharedKey:
		id, err := g.pskID(*p.psk, mls.ResumptionApplication)
		if err != nil {
			return nil, err
		}
		return &mls.Proposal{Type: mls.ProposalPSK, PreSharedKey: &mls.PreSharedKey{PSK: *id}}, nil
	case ProposalGroupContextExtensions:
		return &mls.Proposal{Type: mls.ProposalGroupContextExtensions, GroupContextExtensions: &mls.GroupContextExtensions{
			Extensions: importExtensions(p.extensions),
		}}, nil
	case ProposalReInit:
		r := p.reinit
		return &mls.Proposal{Type: mls.ProposalReInit, ReInit: &mls.ReInit{
			GroupID:     bytes.Clone(r.GroupID),
			Version:     mls.MLS10,
			CipherSuite: r.CipherSuite,
			Extensions:  importExtensions(r.Extensions),
		}}, nil
	}
	return nil, errorf(ErrInvalidProposal, "type %d cannot be proposed this way", p.typ)
}

// pskID builds a PreSharedKeyID with a fresh nonce (§8.4).
func (g *Group) pskID(id PSKID, usage mls.ResumptionPSKUsage) (*mls.PreSharedKeyID, error) {
	nonce := make([]byte, g.suite.Nh())
	if _, err := io.ReadFull(g.cfg.Rand, nonce); err != nil {
		return nil, fmt.Errorf("mlsgroup: reading PSK nonce: %w", err)
	}
	if id.External != nil {
		return &mls.PreSharedKeyID{Type: mls.PSKExternal, ID: bytes.Clone(id.External), Nonce: nonce}, nil
	}
	return &mls.PreSharedKeyID{
		Type: mls.PSKResumption, Usage: usage,
		GroupID: bytes.Clone(g.ctx.GroupID), Epoch: id.Epoch, Nonce: nonce,
	}, nil
}

// ProposeOptions shape a proposal message.
type ProposeOptions struct {
	// Framing chooses PublicMessage or PrivateMessage.
	Framing Framing
	// AuthenticatedData goes in the clear, authenticated, with the
	// proposal.
	AuthenticatedData []byte
}

// Propose sends p on its own as a proposal message (§12.1), to be
// committed later by reference. The proposal is cached in the returned
// state as well, so that this member's own next commit includes it.
func (g *Group) Propose(p Proposal, opts ProposeOptions) (*Effects, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	wp, err := p.wire(g)
	if err != nil {
		return nil, err
	}
	if err := g.checkOwnProposal(wp); err != nil {
		return nil, err
	}
	return g.sendProposal(wp, secret.Secret{}, opts)
}

// ProposeUpdate sends an Update proposal (§12.1.2) that gives this
// member's leaf a fresh encryption key. The private key stays in the
// returned state until a commit includes the proposal.
func (g *Group) ProposeUpdate(opts ProposeOptions) (*Effects, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	priv, pub, err := g.suite.GenerateKeyPair(g.cfg.Rand)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: update key: %w", err)
	}
	leaf := templateLeaf(g.tree.Leaf(g.own))
	leaf.EncryptionKey = pub
	leaf.Source = mls.LeafNodeSourceUpdate
	leaf.Lifetime = mls.Lifetime{}
	leaf.ParentHash = nil
	if err := g.signer.signLeaf(&leaf, g.ctx.GroupID, uint32(g.own)); err != nil {
		return nil, err
	}
	wp := &mls.Proposal{Type: mls.ProposalUpdate, Update: &mls.Update{LeafNode: leaf}}
	return g.sendProposal(wp, secret.New(priv), opts)
}

// checkOwnProposal runs the checks on a proposal this member is about to
// send that it would run on one it received, so that it does not send
// what the others will refuse.
func (g *Group) checkOwnProposal(p *mls.Proposal) error {
	self := mls.Sender{Type: mls.SenderMember, LeafIndex: uint32(g.own)}
	return g.checkProposal(&proposalEntry{p: p, sender: self})
}

// checkProposal validates one proposal on its own (§12.1): the checks that
// depend on the rest of the list and on who commits wait for the commit.
func (g *Group) checkProposal(e *proposalEntry) error {
	if e.p.Type == mls.ProposalExternalInit {
		return errorf(ErrInvalidProposal, "ExternalInit outside an external commit")
	}
	noCommitter := mls.Sender{Type: mls.SenderMember, LeafIndex: ^uint32(0)}
	a, err := g.applyProposals([]proposalEntry{*e}, noCommitter, false)
	if err != nil {
		return err
	}
	return g.checkPSKsAvailable(a.psks)
}

// sendProposal frames p, caches it and returns the message.
func (g *Group) sendProposal(p *mls.Proposal, updateKey secret.Secret, opts ProposeOptions) (*Effects, error) {
	next := g.withSecrets()
	content := &mls.FramedContent{
		GroupID:           g.ctx.GroupID,
		Epoch:             g.ctx.Epoch,
		Sender:            mls.Sender{Type: mls.SenderMember, LeafIndex: uint32(g.own)},
		AuthenticatedData: opts.AuthenticatedData,
		ContentType:       mls.ContentProposal,
		Proposal:          p,
	}
	msg, ac, err := next.protect(content, opts.Framing.public(g.cfg))
	if err != nil {
		return nil, err
	}
	ref, err := mls.ProposalRef(g.suite, ac)
	if err != nil {
		return nil, err
	}
	next.proposals = append(append([]*cachedProposal(nil), g.proposals...), &cachedProposal{
		ref: ref, proposal: p, sender: content.Sender, updateKey: updateKey,
	})
	return &Effects{Group: next, Message: msg, ProposalRef: ref, Kind: KindProposal, Epoch: g.ctx.Epoch, ProposalType: ProposalType(p.Type)}, nil
}

// proposalEntry is one proposal of a commit, with who proposed it.
type proposalEntry struct {
	p      *mls.Proposal
	sender mls.Sender
	ref    []byte          // nil when sent by value
	cached *cachedProposal // for this member's own Update
}

// leafOf is the leaf of a member sender.
func leafOf(s mls.Sender) treemath.LeafIndex { return treemath.LeafIndex(s.LeafIndex) }
