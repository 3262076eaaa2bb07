package mlsgroup

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/par"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// CommitOptions shape a commit. The zero value commits every pending
// proposal by reference, with an UpdatePath only where one is required
// (§12.4), and a Welcome that carries the ratchet tree.
type CommitOptions struct {
	// Proposals are committed by value, after the pending ones.
	Proposals []Proposal
	// SkipPending leaves the pending proposals out.
	SkipPending bool
	// Path includes an UpdatePath even when no proposal requires one, so
	// that the commit also refreshes this member's keys (§12.4): the
	// post-compromise security of an update at the cost of an HPKE
	// encryption per resolution node.
	Path bool
	// OmitRatchetTree leaves the ratchet_tree extension out of the
	// Welcome's GroupInfo (§12.4.3.3); joiners then need the tree out of
	// band (RatchetTree).
	OmitRatchetTree bool
	// Framing chooses PublicMessage or PrivateMessage for the commit.
	Framing Framing
	// AuthenticatedData goes in the clear, authenticated, with the commit.
	AuthenticatedData []byte
}

// CommitInfo says what a commit changed.
type CommitInfo struct {
	// Epoch is the epoch the commit started.
	Epoch uint64
	// Committer is the leaf of the member who committed; for an external
	// commit, the leaf the joiner took.
	Committer uint32
	// External is set for an external commit (§12.4.3.2).
	External bool
	// Added are the members added, in the order of the commit's Adds.
	Added []Member
	// Removed are the members removed, as they were before the commit.
	Removed []Member
	// Updated are the leaves that Update proposals changed.
	Updated []uint32
	// PreSharedKeys is the number of PSKs injected.
	PreSharedKeys int
	// GroupContextExtensions is set when the extensions changed.
	GroupContextExtensions bool
	// ReInit is set when the commit ended the group to start another
	// (§11.2); the state is then ReInitPending.
	ReInit *ReInitParams
	// SelfRemoved is set when the commit removed this member.
	SelfRemoved bool
}

// Commit creates a commit (§12.4.1) of the pending proposals and
// opts.Proposals, and stages it: the returned state is still in the
// current epoch, with the commit's handshake key used up. Persist it, send
// Effects.Message to the group, then MergeCommit once the commit is
// accepted, or DiscardCommit if another commit of the epoch won.
//
// Commit returns no Welcome. The Welcome for the members the commit adds
// is kept in the staged commit, and so in the persisted state, and handed
// out only when the commit is merged (by MergeCommit, or by Process of the
// commit's echo): new members must not get a Welcome to an epoch the
// delivery service may still refuse (§14), and a node that crashes after
// publishing the commit still has the Welcome when it merges.
func (g *Group) Commit(opts CommitOptions) (*Effects, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	if g.staged != nil {
		return nil, ErrCommitPending
	}
	self := mls.Sender{Type: mls.SenderMember, LeafIndex: uint32(g.own)}
	var (
		entries   []proposalEntry
		orRefs    []mls.ProposalOrRef
		forcePath = opts.Path
	)
	if !opts.SkipPending {
		for _, c := range g.selectPending() {
			if c.sender == self && c.proposal.Type == mls.ProposalUpdate {
				// An update of one's own leaf cannot be committed by
				// oneself (§12.2); the commit's path refreshes the leaf.
				forcePath = true
				continue
			}
			entries = append(entries, proposalEntry{p: c.proposal, sender: c.sender, ref: c.ref, cached: c})
			orRefs = append(orRefs, mls.ProposalOrRef{Reference: c.ref})
		}
	}
	for _, p := range opts.Proposals {
		wp, err := p.wire(g)
		if err != nil {
			return nil, err
		}
		entries = append(entries, proposalEntry{p: wp, sender: self})
		orRefs = append(orRefs, mls.ProposalOrRef{Proposal: wp})
	}
	a, err := g.applyProposals(entries, self, false)
	if err != nil {
		return nil, err
	}
	if err := g.checkPSKsAvailable(a.psks); err != nil {
		return nil, err
	}

	newCtx := &mls.GroupContext{
		Version:                 g.ctx.Version,
		CipherSuite:             g.ctx.CipherSuite,
		GroupID:                 g.ctx.GroupID,
		Epoch:                   g.ctx.Epoch + 1,
		ConfirmedTranscriptHash: g.ctx.ConfirmedTranscriptHash,
		Extensions:              a.extensions,
	}
	commit := &mls.Commit{Proposals: orRefs}
	var path *ratchettree.Path
	if a.pathRequired || forcePath {
		leaf := templateLeaf(g.tree.Leaf(g.own))
		path, err = a.tree.GeneratePath(g.cfg.Rand, g.own, leaf, g.ctx.GroupID, g.signer.priv.Bytes())
		if err != nil {
			return nil, fmt.Errorf("mlsgroup: update path: %w", err)
		}
		if newCtx.TreeHash, err = a.tree.TreeHash(); err != nil {
			return nil, err
		}
		provisional, err := encodeContext(newCtx)
		if err != nil {
			return nil, err
		}
		if commit.Path, err = path.Encrypt(provisional, a.added); err != nil {
			return nil, fmt.Errorf("mlsgroup: update path: %w", err)
		}
	} else if newCtx.TreeHash, err = a.tree.TreeHash(); err != nil {
		return nil, err
	}
	if err := checkCredentialTypes(a.tree); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}

	cur := g.withSecrets()
	content := &mls.FramedContent{
		GroupID:           g.ctx.GroupID,
		Epoch:             g.ctx.Epoch,
		Sender:            self,
		AuthenticatedData: opts.AuthenticatedData,
		ContentType:       mls.ContentCommit,
		Commit:            commit,
	}
	ac, err := cur.sign(content, opts.Framing.public(g.cfg))
	if err != nil {
		return nil, err
	}
	var commitSecret []byte
	if path != nil {
		commitSecret = path.CommitSecret().Bytes()
	}
	next, ep, err := g.nextEpoch(newCtx, ac, a, g.epoch.InitSecret.Bytes(), commitSecret, false)
	if err != nil {
		return nil, err
	}
	msg, err := cur.frame(ac)
	if err != nil {
		return nil, err
	}
	next.own = g.own
	if path != nil {
		next.keys = path.PrivateKeys()
	} else {
		next.keys = g.keys.Clone()
		next.keys.Prune(a.tree)
	}
	var welcome []byte
	if len(a.added) > 0 {
		if welcome, err = next.welcome(ep, a, path, !opts.OmitRatchetTree); err != nil {
			return nil, err
		}
	}
	next.enterEpoch(ep)
	info := g.commitInfo(a, uint32(g.own), false)
	cur.staged = &stagedCommit{message: msg, next: next, info: info, welcome: welcome}
	return &Effects{Group: cur, Message: msg, Kind: KindCommit, Epoch: g.ctx.Epoch}, nil
}

// selectPending picks the pending proposals a commit includes: all of
// them, except that where several Updates and Removes name one leaf, the
// first Remove wins, or else the latest Update (§12.2's advice to
// committers), and that a request to remove this member is left out, as it
// cannot commit its own removal.
func (g *Group) selectPending() []*cachedProposal {
	target := func(c *cachedProposal) (treemath.LeafIndex, bool) {
		switch c.proposal.Type {
		case mls.ProposalUpdate:
			return leafOf(c.sender), true
		case mls.ProposalRemove:
			return treemath.LeafIndex(c.proposal.Remove.Removed), true
		}
		return 0, false
	}
	chosen := make(map[treemath.LeafIndex]*cachedProposal)
	for _, c := range g.proposals {
		l, ok := target(c)
		if !ok {
			continue
		}
		if prev := chosen[l]; prev == nil || prev.proposal.Type == mls.ProposalUpdate {
			chosen[l] = c
		}
	}
	var out []*cachedProposal
	for _, c := range g.proposals {
		if l, ok := target(c); ok && (chosen[l] != c || (c.proposal.Type == mls.ProposalRemove && l == g.own)) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// nextEpoch computes what a commit leads to once its content ac is signed
// and its path settled: the transcript hashes, the GroupContext and the
// key schedule of the new epoch (§8, §12.4.1, §12.4.2). It sets ac's
// confirmation tag for a commit being sent and checks it for one received. The returned state lacks own and keys, and the epoch is not
// yet entered: the committer's Welcome needs its joiner secret.
func (g *Group) nextEpoch(newCtx *mls.GroupContext, ac *mls.AuthenticatedContent, a *applied, initSecret, commitSecret []byte, received bool) (*Group, *keyschedule.Epoch, error) {
	s := g.suite
	confirmed, err := keyschedule.ConfirmedTranscriptHash(s, g.interim, ac)
	if err != nil {
		return nil, nil, err
	}
	newCtx.ConfirmedTranscriptHash = confirmed
	ctxBytes, err := encodeContext(newCtx)
	if err != nil {
		return nil, nil, err
	}
	pskSecret, err := g.pskSecret(a.psks)
	if err != nil {
		return nil, nil, err
	}
	ep, err := keyschedule.NewEpoch(s, initSecret, commitSecret, pskSecret.Bytes(), ctxBytes)
	if err != nil {
		return nil, nil, err
	}
	if !received {
		ac.Auth.ConfirmationTag = ep.ConfirmationTag(confirmed)
	} else if !ep.VerifyConfirmationTag(confirmed, ac.Auth.ConfirmationTag) {
		return nil, nil, errorf(ErrInvalidCommit, "confirmation tag does not verify")
	}
	interim, err := keyschedule.InterimTranscriptHash(s, confirmed, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	next := &Group{
		cfg:     g.cfg,
		suite:   s,
		signer:  g.signer,
		role:    roleMember,
		ctx:     newCtx,
		tree:    a.tree,
		interim: interim,
		tag:     ac.Auth.ConfirmationTag,
	}
	if a.reinit != nil {
		next.role = roleReInit
		next.reinit = a.reinit
	}
	return next, ep, nil
}

// commitInfo summarizes an applied commit.
func (g *Group) commitInfo(a *applied, committer uint32, external bool) *CommitInfo {
	info := &CommitInfo{
		Epoch:                  g.ctx.Epoch + 1,
		Committer:              committer,
		External:               external,
		Removed:                a.removed,
		PreSharedKeys:          len(a.psks),
		GroupContextExtensions: !extensionsEqual(a.extensions, g.ctx.Extensions),
		SelfRemoved:            a.selfRemoved,
	}
	for _, l := range a.added {
		if leaf := a.tree.Leaf(l); leaf != nil {
			info.Added = append(info.Added, memberOf(l, leaf))
		}
	}
	for _, l := range a.updated {
		info.Updated = append(info.Updated, uint32(l))
	}
	if a.reinit != nil {
		info.ReInit = &ReInitParams{
			GroupID:     bytes.Clone(a.reinit.GroupID),
			CipherSuite: a.reinit.CipherSuite,
			Extensions:  exportExtensions(a.reinit.Extensions),
		}
	}
	return info
}

func extensionsEqual(a, b []mls.Extension) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// MergeCommit moves to the epoch of the staged commit, once the delivery
// service has accepted it (§14). The Effects carry the commit's
// CommitInfo and, if it adds members, their Welcome: persist Group, and
// delete the old state, before sending the Welcome, as the old epoch's
// secrets must not outlive it (§9.2).
func (g *Group) MergeCommit() (*Effects, error) {
	if g.staged == nil {
		return nil, ErrNoPendingCommit
	}
	return &Effects{
		Group:   g.successor(g.staged.next),
		Welcome: g.staged.welcome,
		Kind:    KindCommit,
		Epoch:   g.ctx.Epoch,
		Sender:  Sender{Type: SenderMember, LeafIndex: uint32(g.own)},
		Commit:  g.staged.info, OwnCommit: true,
	}, nil
}

// StagedCommit is the MLSMessage of the staged commit, nil if there is
// none: a node that restarted with a staged state publishes it again, and
// Process recognises its echo by these bytes.
func (g *Group) StagedCommit() []byte {
	if g.staged == nil {
		return nil
	}
	return bytes.Clone(g.staged.message)
}

// DiscardCommit drops the staged commit, as when another member's commit
// for the epoch won: the returned state stays in the current epoch.
func (g *Group) DiscardCommit() (*Group, error) {
	if g.staged == nil {
		return nil, ErrNoPendingCommit
	}
	c := g.clone()
	c.staged = nil
	return c, nil
}

// welcome builds the Welcome for the members a commit adds (§12.4.3.1):
// the new epoch's GroupInfo encrypted under the welcome key, and for each
// new member its GroupSecrets (the joiner secret, the path secret of the
// lowest node its path shares with the committer's, and the PSKs)
// encrypted to its init key. g is the new epoch's state.
func (g *Group) welcome(ep *keyschedule.Epoch, a *applied, path *ratchettree.Path, withTree bool) ([]byte, error) {
	s := g.suite
	gi, err := g.signedGroupInfo(ep, withTree, true)
	if err != nil {
		return nil, err
	}
	giBytes, err := wire.Marshal(gi)
	if err != nil {
		return nil, err
	}
	key, nonce := keyschedule.WelcomeKeyNonce(s, ep.WelcomeSecret.Bytes())
	encGI, err := s.Seal(key.Bytes(), nonce.Bytes(), nil, giBytes)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: encrypting GroupInfo: %w", err)
	}
	w := &mls.Welcome{CipherSuite: s.ID(), Secrets: make([]mls.EncryptedGroupSecrets, len(a.added)), EncryptedGroupInfo: encGI}
	// Every new member's GroupSecrets takes the encrypted GroupInfo, and
	// with it the whole tree, as context: encode that once.
	ec, err := s.NewEncryptContext("Welcome", encGI)
	if err != nil {
		return nil, err
	}
	err = par.Do(len(a.added), func(i int) error {
		kp := a.addedKPs[i]
		gs := mls.GroupSecrets{JoinerSecret: ep.JoinerSecret, PSKs: a.psks}
		if path != nil {
			lca := treemath.CommonAncestor(g.own.Node(), a.added[i].Node())
			if ps, ok := path.PathSecret(lca); ok {
				gs.PathSecret = ps
			}
		}
		pt, err := wire.Marshal(&gs)
		if err != nil {
			return err
		}
		ref, err := mls.KeyPackageRef(s, kp)
		if err != nil {
			return err
		}
		kem, ct, err := ec.Encrypt(kp.InitKey, pt)
		clear(pt)
		if err != nil {
			return fmt.Errorf("mlsgroup: encrypting GroupSecrets for Add %d: %w", i, err)
		}
		w.Secrets[i] = mls.EncryptedGroupSecrets{NewMember: ref, EncryptedGroupSecrets: mls.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return wire.Marshal(&mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatWelcome, Welcome: w})
}

// signedGroupInfo builds and signs the GroupInfo of g's epoch (§12.4.3),
// whose secrets are ep: with the ratchet_tree extension if withTree, and
// external_pub (§12.4.3.2) if withExternalPub.
func (g *Group) signedGroupInfo(ep *keyschedule.Epoch, withTree, withExternalPub bool) (*mls.GroupInfo, error) {
	gi := &mls.GroupInfo{
		GroupContext:    *g.ctx,
		ConfirmationTag: g.tag,
		Signer:          uint32(g.own),
	}
	if withTree {
		rt := g.tree.RatchetTree()
		ext, err := mls.NewExtension(&rt)
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, ext)
	}
	if withExternalPub {
		_, pub, err := ep.ExternalKeyPair()
		if err != nil {
			return nil, err
		}
		ext, err := mls.NewExtension(&mls.ExternalPub{PublicKey: pub})
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, ext)
	}
	tbs, err := gi.MarshalTBS()
	if err != nil {
		return nil, err
	}
	if gi.Signature, err = g.signer.sign("GroupInfoTBS", tbs); err != nil {
		return nil, fmt.Errorf("mlsgroup: signing GroupInfo: %w", err)
	}
	return gi, nil
}

// GroupInfoOptions shape GroupInfo. The zero value includes the ratchet
// tree and the external public key, all a joiner by external commit needs.
type GroupInfoOptions struct {
	// OmitRatchetTree leaves out the ratchet_tree extension.
	OmitRatchetTree bool
	// OmitExternalPub leaves out external_pub, so the GroupInfo cannot be
	// used for an external commit.
	OmitExternalPub bool
}

// GroupInfo returns a signed GroupInfo of the current epoch (§12.4.3) as
// an MLSMessage, for a joiner by external commit (§12.4.3.2).
func (g *Group) GroupInfo(opts GroupInfoOptions) ([]byte, error) {
	if err := g.canSend(); err != nil {
		return nil, err
	}
	gi, err := g.signedGroupInfo(g.epoch, !opts.OmitRatchetTree, !opts.OmitExternalPub)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(&mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatGroupInfo, GroupInfo: gi})
}

// checkPSKsAvailable fails unless every PSK of a commit can be found.
func (g *Group) checkPSKsAvailable(ids []mls.PreSharedKeyID) error {
	_, err := g.pskSecret(ids)
	return err
}

// pskSecret looks up the PSKs a commit injects and chains them into the
// psk_secret (§8.4): external ones through the Config, resumption ones
// from this epoch or a retained one (§8.6).
func (g *Group) pskSecret(ids []mls.PreSharedKeyID) (secret.Secret, error) {
	if len(ids) == 0 {
		return secret.Secret{}, nil
	}
	psks := make([]keyschedule.PSK, len(ids))
	for i := range ids {
		v, err := g.lookupPSK(&ids[i])
		if err != nil {
			return secret.Secret{}, err
		}
		if psks[i], err = keyschedule.NewPSK(&ids[i], v); err != nil {
			return secret.Secret{}, err
		}
	}
	return keyschedule.PSKSecret(g.suite, psks)
}

func (g *Group) lookupPSK(id *mls.PreSharedKeyID) (secret.Secret, error) {
	switch id.Type {
	case mls.PSKExternal:
		return lookupExternalPSK(g.cfg, id.ID)
	case mls.PSKResumption:
		for _, f := range g.foreign {
			if bytes.Equal(id.GroupID, f.groupID) && id.Epoch == f.epoch {
				return f.psk, nil
			}
		}
		if !bytes.Equal(id.GroupID, g.ctx.GroupID) {
			return secret.Secret{}, errorf(ErrUnknownPSK, "resumption PSK of another group")
		}
		if id.Epoch == g.ctx.Epoch && g.epoch != nil {
			return g.epoch.ResumptionPSK, nil
		}
		for _, p := range g.past {
			if p.ctx.Epoch == id.Epoch {
				return p.resumption, nil
			}
		}
		return secret.Secret{}, errorf(ErrUnknownPSK, "resumption PSK of epoch %d is not retained", id.Epoch)
	}
	return secret.Secret{}, errorf(ErrUnknownPSK, "PSK type %d", id.Type)
}

func lookupExternalPSK(c *config, id []byte) (secret.Secret, error) {
	if c.ExternalPSK == nil {
		return secret.Secret{}, errorf(ErrUnknownPSK, "external PSK %x: no ExternalPSK in Config", id)
	}
	v, err := c.ExternalPSK(bytes.Clone(id))
	if err != nil {
		return secret.Secret{}, fmt.Errorf("%w: external PSK %x: %w", ErrUnknownPSK, id, err)
	}
	return secret.New(bytes.Clone(v)), nil
}
