package mlsgroup

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
)

// ReInit returns the parameters of the group that replaces this one, once
// a commit with a ReInit proposal ended it (§11.2); nil otherwise.
func (g *Group) ReInit() *ReInitParams {
	if g.reinit == nil {
		return nil
	}
	return &ReInitParams{
		GroupID:     bytes.Clone(g.reinit.GroupID),
		CipherSuite: g.reinit.CipherSuite,
		Extensions:  exportExtensions(g.reinit.Extensions),
	}
}

// foreignPSK is a resumption PSK of another group that a group's first
// commit injects: the old group's, when it replaces it after a ReInit.
type foreignPSK struct {
	groupID []byte
	epoch   uint64
	psk     secret.Secret
}

// ReInitGroup creates the group that replaces g after a ReInit (§11.2),
// with the ReInit's group ID, cipher suite and extensions, and commits the
// Adds of kps (fresh KeyPackages of the other members) together with the
// resumption PSK of g's current epoch (usage reinit) that ties the two
// groups. signer must be of the new cipher suite. Effects.Group is the new
// group in epoch 0 with the commit staged; merging it (MergeCommit, or
// Process of its echo) yields the Welcome for the others, who join it with
// JoinOptions.ReInitFrom.
func (g *Group) ReInitGroup(cfg Config, identity []byte, signer *Signer, kps []*KeyPackage, leaf KeyPackageOptions) (*Effects, error) {
	if g.role != roleReInit || g.reinit == nil {
		return nil, errorf(ErrInvalidProposal, "the group was not ended by a ReInit")
	}
	r := g.reinit
	if signer.suite.ID() != r.CipherSuite {
		return nil, fmt.Errorf("%w: signer of suite %d for a group of suite %d", ErrUnsupportedCipherSuite, signer.suite.ID(), r.CipherSuite)
	}
	ng, err := CreateGroup(cfg, r.GroupID, identity, signer, GroupOptions{Extensions: exportExtensions(r.Extensions), Leaf: leaf})
	if err != nil {
		return nil, err
	}
	id, err := ng.pskID(PSKID{}, mls.ResumptionReInit)
	if err != nil {
		return nil, err
	}
	id.GroupID, id.Epoch = bytes.Clone(g.ctx.GroupID), g.ctx.Epoch
	ng.foreign = []foreignPSK{{groupID: id.GroupID, epoch: id.Epoch, psk: g.epoch.ResumptionPSK}}
	proposals := []Proposal{{typ: ProposalPreSharedKey, resolved: &mls.Proposal{Type: mls.ProposalPSK, PreSharedKey: &mls.PreSharedKey{PSK: *id}}}}
	for _, kp := range kps {
		proposals = append(proposals, AddProposal(kp))
	}
	sent, err := ng.Commit(CommitOptions{Proposals: proposals})
	if err != nil {
		return nil, err
	}
	sent.Group.foreign = nil
	return sent, nil
}

// reinitPSK returns the reinit resumption PSK (§11.2) that a Welcome to
// the group replacing old names.
func reinitPSK(old *Group, id *mls.PreSharedKeyID) (secret.Secret, error) {
	if old == nil || id.Usage != mls.ResumptionReInit || !bytes.Equal(id.GroupID, old.ctx.GroupID) || id.Epoch != old.ctx.Epoch {
		return secret.Secret{}, errorf(ErrUnknownPSK, "resumption PSK of group %x epoch %d", id.GroupID, id.Epoch)
	}
	return old.epoch.ResumptionPSK, nil
}

// checkReInitWelcome checks, for a Welcome that injects a reinit PSK, that
// the old group ended with a ReInit and that the new group is what it
// asked for (§12.4.3.1). Whether the members are the same is for the
// application.
func checkReInitWelcome(old *Group, ids []mls.PreSharedKeyID, ctx *mls.GroupContext) error {
	for _, id := range ids {
		if id.Type != mls.PSKResumption || id.Usage != mls.ResumptionReInit {
			continue
		}
		r := old.reinit
		if old.role != roleReInit || r == nil {
			return fmt.Errorf("%w: the old group did not end with a ReInit", ErrInvalidWelcome)
		}
		if !bytes.Equal(ctx.GroupID, r.GroupID) || ctx.Version != r.Version || ctx.CipherSuite != r.CipherSuite ||
			!extensionsEqual(ctx.Extensions, r.Extensions) {
			return fmt.Errorf("%w: the new group does not match the ReInit", ErrInvalidWelcome)
		}
	}
	return nil
}
