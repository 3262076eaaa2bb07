package mlsgroup

import (
	"bytes"
	"fmt"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/par"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// applied is a proposal list validated (§12.2) and applied (§12.3) to a
// copy of the group's tree and extensions: the provisional state of a
// commit before its path.
type applied struct {
	tree       *ratchettree.Tree
	extensions []mls.Extension
	rules      groupLeafRules

	added    []treemath.LeafIndex
	addedKPs []*mls.KeyPackage
	removed  []Member
	updated  []treemath.LeafIndex
	psks     []mls.PreSharedKeyID

	externalInit *mls.ExternalInit
	reinit       *mls.ReInit
	pathRequired bool
	selfRemoved  bool
	// ownUpdate is this member's Update proposal, if the list has it.
	ownUpdate *cachedProposal
}

// applyProposals validates a commit's proposal list (§12.1, §12.2) for a
// commit by committer, and applies it to a copy of the tree (§12.3). g is
// not changed.
func (g *Group) applyProposals(entries []proposalEntry, committer mls.Sender, external bool) (*applied, error) {
	a := &applied{extensions: g.ctx.Extensions}
	var (
		updates, removes, adds, psks []*proposalEntry
		gce, reinit, extInit         []*proposalEntry
	)
	for i := range entries {
		e := &entries[i]
		switch e.p.Type {
		case mls.ProposalAdd:
			adds = append(adds, e)
		case mls.ProposalUpdate:
			updates = append(updates, e)
		case mls.ProposalRemove:
			removes = append(removes, e)
		case mls.ProposalPSK:
			psks = append(psks, e)
		case mls.ProposalReInit:
			reinit = append(reinit, e)
		case mls.ProposalExternalInit:
			extInit = append(extInit, e)
		case mls.ProposalGroupContextExtensions:
			gce = append(gce, e)
		default:
			return nil, errorf(ErrInvalidProposal, "unknown proposal type %d", e.p.Type)
		}
		if err := checkProposalSender(e); err != nil {
			return nil, err
		}
	}

	// §12.2's rules on the shape of the list.
	if external {
		if len(extInit) != 1 {
			return nil, errorf(ErrInvalidProposal, "external commit with %d ExternalInit proposals, want 1", len(extInit))
		}
		if len(removes) > 1 || len(adds)+len(updates)+len(reinit)+len(gce) > 0 {
			return nil, errorf(ErrInvalidProposal, "external commit with proposals other than ExternalInit, one Remove and PreSharedKeys")
		}
		a.externalInit = extInit[0].p.ExternalInit
	} else if len(extInit) > 0 {
		return nil, errorf(ErrInvalidProposal, "ExternalInit outside an external commit")
	}
	if len(reinit) > 0 && len(entries) > 1 {
		return nil, errorf(ErrInvalidProposal, "ReInit together with other proposals")
	}
	if len(gce) > 1 {
		return nil, errorf(ErrInvalidProposal, "%d GroupContextExtensions proposals", len(gce))
	}
	a.pathRequired = len(entries) == 0 || len(updates)+len(removes)+len(extInit)+len(gce) > 0

	// GroupContextExtensions first: the new extensions govern the rest.
	if len(gce) == 1 {
		exts := gce[0].p.GroupContextExtensions.Extensions
		if err := mls.ValidateExtensions(exts); err != nil {
			return nil, fmt.Errorf("%w: GroupContextExtensions: %w", ErrInvalidProposal, err)
		}
		if err := checkExternalSenders(exts, g.cfg.Validation); err != nil {
			return nil, err
		}
		a.extensions = exts
	}
	rules, err := leafRules(a.extensions)
	if err != nil {
		return nil, err
	}
	a.rules = rules

	tree := g.tree.Clone()
	a.tree = tree
	touched := make(map[treemath.LeafIndex]bool)
	now := g.cfg.now()
	for _, e := range updates {
		l := leafOf(e.sender)
		if e.sender == committer {
			return nil, errorf(ErrInvalidProposal, "Update from the committer, leaf %d", l)
		}
		if touched[l] {
			return nil, errorf(ErrInvalidProposal, "two Update or Remove proposals for leaf %d", l)
		}
		touched[l] = true
		old := tree.Leaf(l)
		if old == nil {
			return nil, errorf(ErrInvalidProposal, "Update from blank leaf %d", l)
		}
		leaf := &e.p.Update.LeafNode
		if err := validateLeafNode(g.suite, leaf, leafContext{
			now: now, opts: g.cfg.Validation, groupID: g.ctx.GroupID, leaf: uint32(l), source: mls.LeafNodeSourceUpdate,
		}); err != nil {
			return nil, fmt.Errorf("%w: Update from leaf %d: %w", ErrInvalidProposal, l, err)
		}
		if err := rules.check(leaf); err != nil {
			return nil, fmt.Errorf("%w: Update from leaf %d: %w", ErrInvalidProposal, l, err)
		}
		if bytes.Equal(leaf.EncryptionKey, old.EncryptionKey) {
			return nil, errorf(ErrInvalidProposal, "Update from leaf %d keeps its encryption key", l)
		}
		if err := checkSuccession(g.cfg.Validation, old, leaf); err != nil {
			return nil, fmt.Errorf("%w: Update from leaf %d: %w", ErrInvalidProposal, l, err)
		}
		if err := tree.UpdateLeaf(l, leaf); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		a.updated = append(a.updated, l)
		if l == g.own {
			a.ownUpdate = e.cached
		}
	}
	for _, e := range removes {
		l := treemath.LeafIndex(e.p.Remove.Removed)
		if !external && committer.Type == mls.SenderMember && l == leafOf(committer) {
			return nil, errorf(ErrInvalidProposal, "Remove of the committer, leaf %d", l)
		}
		if touched[l] {
			return nil, errorf(ErrInvalidProposal, "two Update or Remove proposals for leaf %d", l)
		}
		touched[l] = true
		leaf := tree.Leaf(l)
		if leaf == nil {
			return nil, errorf(ErrInvalidProposal, "Remove of blank leaf %d", l)
		}
		a.removed = append(a.removed, memberOf(l, leaf))
		if err := tree.RemoveLeaf(l); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		if l == g.own {
			a.selfRemoved = true
		}
	}
	if len(adds) > 0 {
		kps := make([]*mls.KeyPackage, len(adds))
		for i, e := range adds {
			kps[i] = &e.p.Add.KeyPackage
		}
		if err := par.Do(len(kps), func(i int) error {
			if err := validateKeyPackage(g.suite, kps[i], now, g.cfg.Validation); err != nil {
				return fmt.Errorf("%w: Add %d: %w", ErrInvalidProposal, i, err)
			}
			if err := rules.check(&kps[i].LeafNode); err != nil {
				return fmt.Errorf("%w: Add %d: %w", ErrInvalidProposal, i, err)
			}
			return nil
		}); err != nil {
			return nil, err
		}
		for _, kp := range kps {
			a.added = append(a.added, tree.AddLeaf(&kp.LeafNode))
		}
		a.addedKPs = kps
	}
	if len(gce) == 1 {
		// New requirements bind every member, not just the new ones
		// (§12.1.7).
		for l, leaf := range tree.Leaves() {
			if err := rules.check(leaf); err != nil {
				return nil, fmt.Errorf("%w: GroupContextExtensions: leaf %d: %w", ErrInvalidProposal, l, err)
			}
		}
	}
	if len(adds)+len(updates) > 0 {
		// Adds of a client already in the group, two Adds of one client,
		// or a key reused anywhere in the tree (§7.3, §12.2).
		if err := tree.VerifyUniqueKeys(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		if err := checkCredentialTypes(tree); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
	}

	for i, e := range psks {
		id := &e.p.PreSharedKey.PSK
		if len(id.Nonce) != g.suite.Nh() {
			return nil, errorf(ErrInvalidProposal, "PreSharedKey %d: psk_nonce of %d bytes, want %d", i, len(id.Nonce), g.suite.Nh())
		}
		if id.Type == mls.PSKResumption && id.Usage != mls.ResumptionApplication && !g.resumes(id) {
			return nil, errorf(ErrInvalidProposal, "PreSharedKey %d: resumption usage %d outside reinit or branch", i, id.Usage)
		}
		for _, prev := range a.psks {
			if pskIDEqual(&prev, id) {
				return nil, errorf(ErrInvalidProposal, "PreSharedKey %d repeats a PSK", i)
			}
		}
		a.psks = append(a.psks, *id)
	}
	if len(reinit) == 1 {
		r := reinit[0].p.ReInit
		if r.Version < g.ctx.Version {
			return nil, errorf(ErrInvalidProposal, "ReInit to version %d, below the group's %d", r.Version, g.ctx.Version)
		}
		if err := mls.ValidateExtensions(r.Extensions); err != nil {
			return nil, fmt.Errorf("%w: ReInit: %w", ErrInvalidProposal, err)
		}
		a.reinit = r
	}
	return a, nil
}

// checkProposalSender applies §12.1.8's rules on who may send what: an
// external sender only the types of the registry's "Ext" column, a new
// member only an Add, and an Update only a member.
func checkProposalSender(e *proposalEntry) error {
	t := e.p.Type
	switch e.sender.Type {
	case mls.SenderMember:
		return nil
	case mls.SenderExternal:
		switch t {
		case mls.ProposalAdd, mls.ProposalRemove, mls.ProposalPSK, mls.ProposalReInit, mls.ProposalGroupContextExtensions:
			return nil
		}
	case mls.SenderNewMemberProposal:
		if t == mls.ProposalAdd {
			return nil
		}
	case mls.SenderNewMemberCommit:
		switch t {
		case mls.ProposalExternalInit, mls.ProposalRemove, mls.ProposalPSK:
			return nil
		}
	}
	return errorf(ErrInvalidProposal, "sender type %d may not propose type %d", e.sender.Type, t)
}

// validateKeyPackage runs §10.1's checks for a KeyPackage to be added to a
// group of suite s.
func validateKeyPackage(s *suite.Suite, kp *mls.KeyPackage, now time.Time, opts ValidationOptions) error {
	if kp.Version != mls.MLS10 {
		return fmt.Errorf("%w: protocol version %d", ErrInvalidKeyPackage, kp.Version)
	}
	if kp.CipherSuite != s.ID() {
		return fmt.Errorf("%w: cipher suite %d in a group of %d", ErrInvalidKeyPackage, kp.CipherSuite, s.ID())
	}
	if err := validateLeafNode(s, &kp.LeafNode, leafContext{now: now, opts: opts, source: mls.LeafNodeSourceKeyPackage}); err != nil {
		return err
	}
	tbs, err := kp.MarshalTBS()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	if err := s.VerifyWithLabel(kp.LeafNode.SignatureKey, "KeyPackageTBS", tbs, kp.Signature); err != nil {
		return fmt.Errorf("%w: KeyPackage signature", ErrInvalidSignature)
	}
	if bytes.Equal(kp.InitKey, kp.LeafNode.EncryptionKey) {
		return fmt.Errorf("%w: init_key equals the leaf's encryption_key", ErrInvalidKeyPackage)
	}
	if err := mls.ValidateExtensions(kp.Extensions); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	return nil
}

// pskIDEqual compares two PreSharedKeyIDs by encoding.
func pskIDEqual(a, b *mls.PreSharedKeyID) bool {
	ea, err1 := wire.Marshal(a)
	eb, err2 := wire.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
}

// resumes reports whether id is the reinit PSK of the group this one
// replaces, which only its first commit may inject (§11.2).
func (g *Group) resumes(id *mls.PreSharedKeyID) bool {
	for _, f := range g.foreign {
		if id.Usage == mls.ResumptionReInit && bytes.Equal(id.GroupID, f.groupID) && id.Epoch == f.epoch {
			return true
		}
	}
	return false
}
