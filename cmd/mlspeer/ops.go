package main

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

const implementation = "spacepanda mlsgroup"

// supportedSuites are the cipher suites ping advertises: RFC 9420's seven
// and the X-Wing suite 83 of draft-ietf-mls-pq-ciphersuites.
var supportedSuites = []uint16{1, 2, 3, 4, 5, 6, 7, 83}

func (p *peer) ping(*request) (any, error) {
	return pingResponse{OK: true, Implementation: implementation, Suites: supportedSuites}, nil
}

// suiteOf is the request's suite, 1 if absent, as in the ts-mls peer.
func suiteOf(r *request) mlsgroup.CipherSuite {
	if r.Suite == nil {
		return mlsgroup.DefaultCipherSuite
	}
	return mlsgroup.CipherSuite(*r.Suite)
}

// keyPackageTiming maps the request's lifetime fields to NewKeyPackage's
// anchor time and options: not_before/not_after are absolute (unix
// seconds, not_before 0 if absent), lifetime_s runs from now, and neither
// means mlsgroup's default lifetime.
func (p *peer) keyPackageTiming(r *request) (time.Time, mlsgroup.KeyPackageOptions, error) {
	now := p.now()
	switch {
	case r.NotBefore != nil || r.NotAfter != nil:
		if r.NotAfter == nil {
			return now, mlsgroup.KeyPackageOptions{}, errors.New("'not_before' needs 'not_after'")
		}
		var nb uint64
		if r.NotBefore != nil {
			nb = *r.NotBefore
		}
		if *r.NotAfter <= nb {
			return now, mlsgroup.KeyPackageOptions{}, errors.New("'not_after' must be later than 'not_before'")
		}
		if nb > math.MaxInt64 || *r.NotAfter-nb > uint64(math.MaxInt64/int64(time.Second)) {
			return now, mlsgroup.KeyPackageOptions{}, errors.New("lifetime longer than this peer can express (292 years)")
		}
		// Anchored at not_before with no backdating, NewKeyPackage's
		// lifetime is exactly [not_before, not_after].
		return time.Unix(int64(nb), 0), mlsgroup.KeyPackageOptions{
			Lifetime: time.Duration(*r.NotAfter-nb) * time.Second,
			Backdate: -1,
		}, nil
	case r.LifetimeS != nil:
		if *r.LifetimeS == 0 || *r.LifetimeS > uint64(math.MaxInt64/int64(time.Second)) {
			return now, mlsgroup.KeyPackageOptions{}, fmt.Errorf("'lifetime_s' %d out of range", *r.LifetimeS)
		}
		return now, mlsgroup.KeyPackageOptions{
			Lifetime: time.Duration(*r.LifetimeS) * time.Second,
			Backdate: -1,
		}, nil
	}
	return now, mlsgroup.KeyPackageOptions{}, nil
}

func (p *peer) keyPackage(r *request) (any, error) {
	identity, err := r.needIdentity()
	if err != nil {
		return nil, err
	}
	at, opts, err := p.keyPackageTiming(r)
	if err != nil {
		return nil, err
	}
	signer, err := p.signer(identity, suiteOf(r))
	if err != nil {
		return nil, err
	}
	opts.Capabilities = capabilities
	kp, err := mlsgroup.NewKeyPackage(p.storage, identity, signer, opts, p.rand, at)
	if err != nil {
		return nil, err
	}
	p.kpSigners[string(kp.Ref())] = signer
	return keyPackageResponse{KeyPackage: kp.Bytes(), KeyPackageRef: kp.Ref()}, nil
}

// group is one membership: the current state and how its handshake
// messages travel by default (public_handshake).
type group struct {
	state           *mlsgroup.Group
	publicHandshake bool
}

// config is the mlsgroup Config of every group of the peer: the one
// Storage, the peer's randomness and clock. ts-mls accepts any lifetime
// length, so the peer does too (ValidationOptions' zero value).
func (p *peer) config(publicHandshake bool) mlsgroup.Config {
	return mlsgroup.Config{Storage: p.storage, Rand: p.rand, Now: p.now, PublicHandshake: publicHandshake}
}

// capabilities are what the peer's leaves advertise beyond mlsgroup's
// defaults: the x509 credential type (RFC 9420 §5.3), which mlsgroup
// carries and whose validation it leaves to the application. This peer
// validates no credential (its ValidationOptions are the zero value), so
// it takes x509 members as it takes basic ones; groups that require both
// in required_capabilities (§11.1), as Wire's do, then accept it.
var capabilities = mlsgroup.Capabilities{Credentials: []uint16{credentialX509}}

const credentialX509 = 2

// signer returns the signature key of identity in suite, made on first
// use: one key per identity and suite, which all its KeyPackages, groups
// and external joins share.
func (p *peer) signer(identity []byte, cs mlsgroup.CipherSuite) (*mlsgroup.Signer, error) {
	k := signerKey{string(identity), cs}
	if s, ok := p.signers[k]; ok {
		return s, nil
	}
	s, err := mlsgroup.GenerateSigner(cs, p.rand)
	if err != nil {
		return nil, err
	}
	p.signers[k] = s
	return s, nil
}

// welcomeSigner is the key of the first KeyPackage of this peer's that the
// Welcome names and that the Storage still holds, which is the entry
// mlsgroup.Join then takes for that key.
func (p *peer) welcomeSigner(welcome []byte) (*mlsgroup.Signer, error) {
	refs, err := welcomeRefs(welcome)
	if err != nil {
		return nil, err
	}
	var used *mlsgroup.Signer
	for _, ref := range refs {
		s, ok := p.kpSigners[string(ref)]
		if !ok {
			continue
		}
		if _, status, err := p.storage.KeyPackage(ref); err == nil && status == mlsgroup.KeyPackageAvailable {
			return s, nil
		}
		used = cmp.Or(used, s)
	}
	if used != nil {
		// Join then says what became of the KeyPackage.
		return used, nil
	}
	return nil, errors.New("the Welcome names no KeyPackage of this peer")
}

func (p *peer) group(r *request) (*group, error) {
	id, err := r.needGroupID()
	if err != nil {
		return nil, err
	}
	return p.groupByID(id)
}

func (p *peer) groupByID(id []byte) (*group, error) {
	g, ok := p.groups[string(id)]
	if !ok {
		return nil, fmt.Errorf("unknown group %s", b64String(id))
	}
	return g, nil
}

// addGroup records a new membership; the peer holds one per group ID.
func (p *peer) addGroup(state *mlsgroup.Group, publicHandshake *bool) error {
	id := state.GroupID()
	if _, ok := p.groups[string(id)]; ok {
		return fmt.Errorf("group %s already exists in this peer", b64String(id))
	}
	p.groups[string(id)] = &group{state: state, publicHandshake: publicHandshake != nil && *publicHandshake}
	return nil
}

func (p *peer) createGroup(r *request) (any, error) {
	id, err := r.needGroupID()
	if err != nil {
		return nil, err
	}
	identity, err := r.needIdentity()
	if err != nil {
		return nil, err
	}
	if _, ok := p.groups[string(id)]; ok {
		return nil, fmt.Errorf("group %s already exists in this peer", b64String(id))
	}
	signer, err := p.signer(identity, suiteOf(r))
	if err != nil {
		return nil, err
	}
	public := r.PublicHandshake != nil && *r.PublicHandshake
	leaf := mlsgroup.KeyPackageOptions{Capabilities: capabilities}
	state, err := mlsgroup.CreateGroup(p.config(public), id, identity, signer, mlsgroup.GroupOptions{Leaf: leaf})
	if err != nil {
		return nil, err
	}
	if err := p.addGroup(state, r.PublicHandshake); err != nil {
		return nil, err
	}
	return createGroupResponse{Epoch: state.Epoch(), LeafIndex: state.LeafIndex()}, nil
}

// framing is the request's "public" option for a handshake message.
func framing(r *request) mlsgroup.Framing {
	switch {
	case r.Public == nil:
		return mlsgroup.FramingDefault
	case *r.Public:
		return mlsgroup.FramingPublic
	}
	return mlsgroup.FramingPrivate
}

func parseKeyPackages(msgs []b64, field string) ([]mlsgroup.Proposal, error) {
	var out []mlsgroup.Proposal
	for i, m := range msgs {
		kp, err := mlsgroup.ParseKeyPackage(m)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		out = append(out, mlsgroup.AddProposal(kp))
	}
	return out, nil
}

func removeProposals(leaves []uint32) []mlsgroup.Proposal {
	var out []mlsgroup.Proposal
	for _, l := range leaves {
		out = append(out, mlsgroup.RemoveProposal(l))
	}
	return out
}

// commitWith commits the group's pending proposals and extra, and applies
// the commit at once: the peer plays its own delivery service.
func (p *peer) commitWith(r *request, extra []mlsgroup.Proposal, path bool) (any, error) {
	withTree, err := r.includeTree()
	if err != nil {
		return nil, err
	}
	g, err := p.group(r)
	if err != nil {
		return nil, err
	}
	sent, err := g.state.Commit(mlsgroup.CommitOptions{
		Proposals:       extra,
		Path:            path,
		OmitRatchetTree: !withTree,
		Framing:         framing(r),
	})
	if err != nil {
		return nil, err
	}
	// The Welcome comes with the merge, not the commit (§14).
	merged, err := sent.Group.MergeCommit()
	if err != nil {
		return nil, err
	}
	g.state = merged.Group
	return commitResponse{Commit: sent.Message, Welcome: merged.Welcome, Epoch: merged.Group.Epoch()}, nil
}

func (p *peer) add(r *request) (any, error) {
	if len(r.KeyPackages) == 0 {
		return nil, errors.New("need non-empty 'key_packages'")
	}
	adds, err := parseKeyPackages(r.KeyPackages, "key_packages")
	if err != nil {
		return nil, err
	}
	return p.commitWith(r, adds, false)
}

func (p *peer) remove(r *request) (any, error) {
	leaves, err := r.removed()
	if err != nil {
		return nil, err
	}
	return p.commitWith(r, removeProposals(leaves), false)
}

// update is a commit with an UpdatePath and no new proposals (pending ones
// ride along), which refreshes the committer's leaf and direct path.
func (p *peer) update(r *request) (any, error) {
	return p.commitWith(r, nil, true)
}

func (p *peer) commit(r *request) (any, error) {
	extra, err := parseKeyPackages(r.Add, "add")
	if err != nil {
		return nil, err
	}
	return p.commitWith(r, append(extra, removeProposals(r.Remove)...), false)
}

func (p *peer) propose(r *request, prop mlsgroup.Proposal) (any, error) {
	g, err := p.group(r)
	if err != nil {
		return nil, err
	}
	sent, err := g.state.Propose(prop, mlsgroup.ProposeOptions{Framing: framing(r)})
	if err != nil {
		return nil, err
	}
	g.state = sent.Group
	return proposalResponse{Proposal: sent.Message}, nil
}

func (p *peer) proposeAdd(r *request) (any, error) {
	if r.KeyPackage == nil {
		return nil, errors.New("missing 'key_package'")
	}
	kp, err := mlsgroup.ParseKeyPackage(r.KeyPackage)
	if err != nil {
		return nil, fmt.Errorf("key_package: %w", err)
	}
	return p.propose(r, mlsgroup.AddProposal(kp))
}

func (p *peer) proposeRemove(r *request) (any, error) {
	if r.LeafIndex == nil {
		return nil, errors.New("need 'leaf_index'")
	}
	return p.propose(r, mlsgroup.RemoveProposal(*r.LeafIndex))
}

func (p *peer) join(r *request) (any, error) {
	tree, err := r.treeBytes()
	if err != nil {
		return nil, err
	}
	if r.Welcome == nil {
		return nil, errors.New("missing 'welcome'")
	}
	signer, err := p.welcomeSigner(r.Welcome)
	if err != nil {
		return nil, err
	}
	public := r.PublicHandshake != nil && *r.PublicHandshake
	joined, err := mlsgroup.Join(p.config(public), r.Welcome, signer, mlsgroup.JoinOptions{RatchetTree: tree})
	if err != nil {
		return nil, err
	}
	if err := p.addGroup(joined.Group, r.PublicHandshake); err != nil {
		return nil, err
	}
	// A KeyPackage is for one join (§16.8).
	p.storage.ConsumeKeyPackage(joined.ConsumedKeyPackage)
	g := joined.Group
	return joinResponse{GroupID: g.GroupID(), Epoch: g.Epoch(), LeafIndex: g.LeafIndex()}, nil
}

func (p *peer) externalJoin(r *request) (any, error) {
	tree, err := r.treeBytes()
	if err != nil {
		return nil, err
	}
	if r.GroupInfo == nil {
		return nil, errors.New("missing 'group_info'")
	}
	identity, err := r.needIdentity()
	if err != nil {
		return nil, err
	}
	cs, err := groupInfoSuite(r.GroupInfo)
	if err != nil {
		return nil, err
	}
	signer, err := p.signer(identity, cs)
	if err != nil {
		return nil, err
	}
	public := r.PublicHandshake != nil && *r.PublicHandshake
	sent, err := mlsgroup.ExternalJoin(p.config(public), r.GroupInfo, identity, signer, mlsgroup.ExternalJoinOptions{
		RatchetTree: tree,
		Leaf:        mlsgroup.KeyPackageOptions{Capabilities: capabilities},
	})
	if err != nil {
		return nil, err
	}
	g := sent.Group
	if err := p.addGroup(g, r.PublicHandshake); err != nil {
		return nil, err
	}
	return externalJoinResponse{Commit: sent.Message, GroupID: g.GroupID(), Epoch: g.Epoch(), LeafIndex: g.LeafIndex()}, nil
}

func (p *peer) process(r *request) (any, error) {
	if r.Message == nil {
		return nil, errors.New("missing 'message'")
	}
	id := []byte(r.GroupID)
	if id == nil {
		var err error
		if id, err = messageGroupID(r.Message); err != nil {
			return nil, err
		}
	}
	g, err := p.groupByID(id)
	if err != nil {
		return nil, err
	}
	prevEpoch := g.state.Epoch()
	rcv, err := g.state.Process(r.Message)
	if err != nil {
		return nil, err
	}
	g.state = rcv.Group
	epoch := g.state.Epoch()
	switch rcv.Kind {
	case mlsgroup.KindApplication:
		return applicationResponse{Type: "application", Plaintext: rcv.Plaintext}, nil
	case mlsgroup.KindProposal:
		return processResponse{Type: "proposal", Epoch: &epoch}, nil
	case mlsgroup.KindCommit:
		removed := g.state.Removed()
		if !removed && epoch != prevEpoch+1 {
			return nil, fmt.Errorf("commit moved the epoch from %d to %d", prevEpoch, epoch)
		}
		return processResponse{Type: "commit", Epoch: &epoch, Removed: &removed}, nil
	}
	return nil, fmt.Errorf("unknown message kind %d", rcv.Kind)
}

func (p *peer) encrypt(r *request) (any, error) {
	g, err := p.group(r)
	if err != nil {
		return nil, err
	}
	if r.Plaintext == nil {
		return nil, errors.New("missing 'plaintext'")
	}
	sent, err := g.state.Encrypt(r.Plaintext, r.AuthenticatedData)
	if err != nil {
		return nil, err
	}
	g.state = sent.Group
	return messageResponse{Message: sent.Message}, nil
}

func (p *peer) export(r *request) (any, error) {
	g, err := p.group(r)
	if err != nil {
		return nil, err
	}
	label, length := "", 32
	if r.Label != nil {
		label = *r.Label
	}
	if r.Length != nil {
		length = *r.Length
	}
	secret, err := g.state.Export(label, r.Context, length)
	if err != nil {
		return nil, err
	}
	return exportResponse{Secret: secret, Epoch: g.state.Epoch()}, nil
}

// credentialTypes names credential types as the ts-mls peer does.
var credentialTypes = map[uint16]string{1: "basic", 2: "x509"}

func (p *peer) state(r *request) (any, error) {
	g, err := p.group(r)
	if err != nil {
		return nil, err
	}
	s := g.state
	resp := stateResponse{
		Epoch:                   s.Epoch(),
		CipherSuite:             uint16(s.CipherSuite()),
		LeafIndex:               s.LeafIndex(),
		Active:                  s.Active(),
		Status:                  status(s),
		Members:                 []member{},
		EpochAuthenticator:      s.EpochAuthenticator(),
		TreeHash:                s.TreeHash(),
		ConfirmedTranscriptHash: s.ConfirmedTranscriptHash(),
		PendingProposals:        s.PendingProposals(),
	}
	for _, m := range s.Members() {
		out := member{LeafIndex: m.LeafIndex, SignatureKey: m.SignatureKey}
		var ok bool
		if out.CredentialType, ok = credentialTypes[m.CredentialType]; !ok {
			out.CredentialType = fmt.Sprint(m.CredentialType)
		}
		if m.CredentialType == 1 {
			id := string(m.Identity)
			out.Identity, out.IdentityB64 = &id, m.Identity
		}
		resp.Members = append(resp.Members, out)
	}
	return resp, nil
}

// status names the membership's state as the ts-mls peer does.
func status(g *mlsgroup.Group) string {
	switch {
	case g.Removed():
		return "removedFromGroup"
	case g.ReInitPending():
		return "suspendedPendingReinit"
	}
	return "active"
}

func (p *peer) groupInfo(r *request) (any, error) {
	g, err := p.group(r)
	if err != nil {
		return nil, err
	}
	gi, err := g.state.GroupInfo(mlsgroup.GroupInfoOptions{})
	if err != nil {
		return nil, err
	}
	return groupInfoResponse{GroupInfo: gi}, nil
}

func (p *peer) ratchetTree(r *request) (any, error) {
	g, err := p.group(r)
	if err != nil {
		return nil, err
	}
	tree, err := g.state.RatchetTree()
	if err != nil {
		return nil, err
	}
	return ratchetTreeResponse{RatchetTree: tree}, nil
}

func (p *peer) dropGroup(r *request) (any, error) {
	id, err := r.needGroupID()
	if err != nil {
		return nil, err
	}
	if _, err := p.groupByID(id); err != nil {
		return nil, err
	}
	delete(p.groups, string(id))
	return emptyResponse{}, nil
}
