package mlsgroup

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/framing"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Group is one member's state of an MLS group in one epoch: a value.
// Every operation leaves its receiver unchanged and returns the state that
// follows, together with what the caller must persist, send or deliver;
// the caller replaces its state with the new one only once it has
// persisted it (see the package documentation).
//
// States derived from one another share the memory they have in common,
// which is never modified in place; a Group is not safe for concurrent
// use, and neither are two states derived from one another.
type Group struct {
	cfg    *config
	suite  *suite.Suite
	signer *Signer
	role   role

	ctx  *mls.GroupContext
	tree *ratchettree.Tree
	own  treemath.LeafIndex
	keys ratchettree.PrivateKeys
	// epoch holds the epoch's secrets, less those consumed on entry
	// (joiner, welcome and encryption secrets, §9.2).
	epoch   *keyschedule.Epoch
	secrets *keyschedule.SecretTree
	// aheadOverride replaces the window's MaxAhead for one ProcessWith
	// call; never part of a state handed out.
	aheadOverride    uint32
	hasAheadOverride bool
	interim          []byte // interim transcript hash
	tag              []byte // confirmation tag of the commit that began the epoch

	proposals []*cachedProposal // received or sent this epoch
	past      []*pastEpoch      // newest first
	staged    *stagedCommit
	reinit    *mls.ReInit // set in roleReInit: the committed ReInit
	// foreign holds another group's resumption PSK for this group's first
	// commit (ReInitGroup); it is never persisted.
	foreign []foreignPSK
	// framing caches the epoch's framing (see framer); it is never
	// persisted.
	framing *epochFraming
}

// epochFraming is the framing of one epoch without a secret tree, kept so
// that messages do not rebuild it and re-encode the GroupContext each time.
// It is valid for the states whose context, epoch secrets and config are
// the ones it was made from: all three are replaced, never changed in place,
// so comparing pointers tells.
type epochFraming struct {
	ctx   *mls.GroupContext
	keys  *keyschedule.Epoch
	cfg   *config
	epoch *framing.Epoch
}

// role is what a state may still do; each has its own step function for
// incoming messages (see Process).
type role uint8

const (
	// roleMember: a member of the current epoch.
	roleMember role = 1
	// roleRemoved: a commit removed this member. It can read late
	// application messages of the epochs it kept, and nothing else.
	roleRemoved role = 2
	// roleReInit: a commit with a ReInit (§11.2) ended the group; it
	// waits for the Welcome to the new one and sends nothing.
	roleReInit role = 3
)

// pastEpoch is what a superseded epoch keeps: enough to decrypt and verify
// its late application messages, and its resumption PSK (§8.6).
type pastEpoch struct {
	ctx        *mls.GroupContext
	sigKeys    [][]byte // signature key of each leaf, nil if blank
	senderData secret.Secret
	secrets    *keyschedule.SecretTree
	resumption secret.Secret
}

// cachedProposal is a proposal of the current epoch, kept so that a commit
// can include it by reference (§12.1).
type cachedProposal struct {
	ref      []byte
	proposal *mls.Proposal
	sender   mls.Sender
	// updateKey is the private encryption key of this member's own Update
	// proposal, installed if a commit includes it.
	updateKey secret.Secret
}

// stagedCommit is a commit this member created and has not yet merged:
// the message it sent, the state of the epoch it starts, and the Welcome
// that may leave only once it is merged.
type stagedCommit struct {
	message []byte
	next    *Group // no past epochs or proposals: Merge fills them in
	info    *CommitInfo
	welcome []byte // nil if the commit adds no one
}

// Member is a member of the group as the ratchet tree shows it.
type Member struct {
	// LeafIndex is the member's leaf in the ratchet tree.
	LeafIndex uint32
	// CredentialType is the credential type (§5.3): 1 basic, 2 x509.
	CredentialType uint16
	// Identity is the identity of a basic credential.
	Identity []byte
	// Certificates is the chain of an x509 credential, leaf first.
	Certificates [][]byte
	// SignatureKey is the member's signature public key.
	SignatureKey []byte
	// EncryptionKey is the HPKE public key of the member's leaf.
	EncryptionKey []byte
}

func memberOf(l treemath.LeafIndex, leaf *mls.LeafNode) Member {
	m := Member{
		LeafIndex:      uint32(l),
		CredentialType: uint16(leaf.Credential.Type),
		Identity:       bytes.Clone(leaf.Credential.Identity),
		SignatureKey:   bytes.Clone(leaf.SignatureKey),
		EncryptionKey:  bytes.Clone(leaf.EncryptionKey),
	}
	for _, c := range leaf.Credential.Certificates {
		m.Certificates = append(m.Certificates, bytes.Clone(c))
	}
	return m
}

// GroupID is the group's ID.
func (g *Group) GroupID() []byte { return bytes.Clone(g.ctx.GroupID) }

// Epoch is the current epoch.
func (g *Group) Epoch() uint64 { return g.ctx.Epoch }

// CipherSuite is the group's cipher suite.
func (g *Group) CipherSuite() CipherSuite { return g.suite.ID() }

// LeafIndex is this member's leaf.
func (g *Group) LeafIndex() uint32 { return uint32(g.own) }

// Active reports whether this state is a member that may send: not removed
// and not waiting for a reinitialization.
func (g *Group) Active() bool { return g.role == roleMember }

// Removed reports whether a commit removed this member from the group.
func (g *Group) Removed() bool { return g.role == roleRemoved }

// ReInitPending reports whether a commit ended the group with a ReInit
// (§11.2); ReInit then describes the group that replaces it.
func (g *Group) ReInitPending() bool { return g.role == roleReInit }

// Members lists the members, by leaf index.
func (g *Group) Members() []Member {
	var out []Member
	for l, leaf := range g.tree.Leaves() {
		out = append(out, memberOf(l, leaf))
	}
	return out
}

// Member returns the member at leaf, if that leaf is not blank.
func (g *Group) Member(leaf uint32) (Member, bool) {
	ln := g.tree.Leaf(treemath.LeafIndex(leaf))
	if ln == nil {
		return Member{}, false
	}
	return memberOf(treemath.LeafIndex(leaf), ln), true
}

// EpochAuthenticator is the epoch_authenticator of the current epoch
// (§8.7): members who compare it out of band detect an impersonator.
func (g *Group) EpochAuthenticator() []byte {
	return bytes.Clone(g.epoch.EpochAuthenticator.Bytes())
}

// TreeHash is the tree hash of the current ratchet tree (§7.8).
func (g *Group) TreeHash() []byte { return bytes.Clone(g.ctx.TreeHash) }

// ConfirmedTranscriptHash is the confirmed transcript hash of the current
// epoch (§8.2).
func (g *Group) ConfirmedTranscriptHash() []byte {
	return bytes.Clone(g.ctx.ConfirmedTranscriptHash)
}

// GroupContextExtensions are the extensions of the current GroupContext
// (§8.1), as encoded Extension structs' types and data.
func (g *Group) GroupContextExtensions() []Extension {
	return exportExtensions(g.ctx.Extensions)
}

// PendingProposals is the number of proposals received or sent in this
// epoch that no commit has included yet.
func (g *Group) PendingProposals() int { return len(g.proposals) }

// HasStagedCommit reports whether a commit created by this member awaits
// MergeCommit or DiscardCommit.
func (g *Group) HasStagedCommit() bool { return g.staged != nil }

// Export is the MLS-Exporter of the current epoch (§8.5): a secret of
// length bytes for label and context, the same for every member.
func (g *Group) Export(label string, context []byte, length int) ([]byte, error) {
	s, err := g.epoch.Export(label, context, length)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: exporter: %w", err)
	}
	return s.Bytes(), nil
}

// RatchetTree is the current ratchet tree as the body of a ratchet_tree
// extension (§12.4.3.3), for a joiner who gets it out of band.
func (g *Group) RatchetTree() ([]byte, error) {
	rt := g.tree.RatchetTree()
	return wire.Marshal(&rt)
}

// Extension is an MLS extension (§13): its type and encoded body.
type Extension struct {
	Type uint16
	Data []byte
}

func exportExtensions(exts []mls.Extension) []Extension {
	var out []Extension
	for _, e := range exts {
		out = append(out, Extension{Type: uint16(e.Type), Data: bytes.Clone(e.Data)})
	}
	return out
}

func importExtensions(exts []Extension) []mls.Extension {
	var out []mls.Extension
	for _, e := range exts {
		out = append(out, mls.Extension{Type: mls.ExtensionType(e.Type), Data: bytes.Clone(e.Data)})
	}
	return out
}

// clone returns a shallow copy of g: the parts a transition replaces are
// replaced in the copy, never modified in place.
func (g *Group) clone() *Group {
	c := *g
	return &c
}

// withSecrets returns a copy of g whose secret tree may be changed: the
// one part of a state that every message changes.
func (g *Group) withSecrets() *Group {
	c := g.clone()
	c.secrets = g.secrets.Clone()
	return c
}

// framer returns the framing of the current epoch over g's secret tree,
// which it changes: call it on a state that owns its secret tree.
//
// The framing is cached in g, which is why framer wants a state of its
// own: the cache passes on to the states copied from g in the same epoch.
func (g *Group) framer() (*framing.Epoch, error) {
	if c := g.framing; c != nil && c.ctx == g.ctx && c.keys == g.epoch && c.cfg == g.cfg {
		return c.epoch.WithSecretTree(g.secrets), nil
	}
	f, err := framing.New(framing.Config{
		Suite:            g.suite,
		GroupContext:     g.ctx,
		MembershipKey:    g.epoch.MembershipKey,
		SenderDataSecret: g.epoch.SenderDataSecret,
		SecretTree:       g.secrets,
		Rand:             g.cfg.Rand,
		PadTo:            g.cfg.PadTo,
	})
	if err != nil {
		return nil, err
	}
	g.framing = &epochFraming{ctx: g.ctx, keys: g.epoch, cfg: g.cfg, epoch: f.WithSecretTree(nil)}
	return f, nil
}

// encodeContext encodes a GroupContext, the form signatures, HPKE contexts
// and the key schedule take.
func encodeContext(ctx *mls.GroupContext) ([]byte, error) {
	b, err := wire.Marshal(ctx)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: encoding GroupContext: %w", err)
	}
	return b, nil
}

// pastFrom turns the current epoch of g into a pastEpoch, for the state
// that follows a commit.
func (g *Group) pastFrom() *pastEpoch {
	p := &pastEpoch{
		ctx:        g.ctx,
		sigKeys:    make([][]byte, g.tree.NumLeaves()),
		senderData: g.epoch.SenderDataSecret,
		secrets:    g.secrets,
		resumption: g.epoch.ResumptionPSK,
	}
	for l, leaf := range g.tree.Leaves() {
		p.sigKeys[l] = leaf.SignatureKey
	}
	return p
}

// successor assembles the state that follows g once a commit took effect:
// next carries the new epoch, g the epochs that are kept.
func (g *Group) successor(next *Group) *Group {
	n := next.clone()
	n.cfg = g.cfg
	n.proposals = nil
	n.staged = nil
	keep := g.cfg.pastEpochs
	if keep > 0 && g.epoch != nil {
		past := []*pastEpoch{g.pastFrom()}
		past = append(past, g.past...)
		if len(past) > keep {
			past = past[:keep]
		}
		n.past = past
	} else {
		n.past = nil
	}
	return n
}
