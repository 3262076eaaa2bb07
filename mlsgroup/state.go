package mlsgroup

import (
	"bytes"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// stateVersion versions Group.MarshalBinary. A change of layout bumps it,
// and LoadGroup keeps reading the versions a node may have on disk:
// version 1 lacks the staged commit's Welcome, which a state written by
// an older node lost (its caller sent the Welcome with the commit).
const (
	stateVersion   = 2
	stateVersionV1 = 1
)

// MarshalBinary encodes the group state for the node's store. The result
// holds the group's secrets and this member's private keys (and its
// signature key): store it as such. The layout, in the TLS presentation
// language:
//
//	uint8 version = 2;
//	opaque signer<V>;                       /* Signer.MarshalBinary */
//	uint8 role;
//	GroupContext context;
//	optional<Node> ratchet_tree<V>;
//	uint32 own_leaf;
//	struct { uint32 node; opaque key<V>; } private_keys<V>;
//	opaque epoch_secrets<V>;                /* keyschedule.Epoch */
//	opaque secret_tree<V>;                  /* keyschedule.SecretTree */
//	opaque interim_transcript_hash<V>;
//	opaque confirmation_tag<V>;
//	optional<ReInit> reinit;
//	CachedProposal proposals<V>;
//	PastEpoch past_epochs<V>;
//	optional<StagedCommit> staged;
//
// where a StagedCommit holds the commit message, the new epoch's state in
// this same layout (without proposals, past epochs or staged commit), its
// CommitInfo and, from version 2, an optional<opaque welcome<V>>: the
// Welcome that leaves once the commit is merged (§14). Version 1 is the
// same without the Welcome.
func (g *Group) MarshalBinary() ([]byte, error) {
	var b cryptobyte.Builder
	if err := g.marshal(&b); err != nil {
		return nil, err
	}
	return b.Bytes()
}

func (g *Group) marshal(b *cryptobyte.Builder) error {
	signer, err := g.signer.MarshalBinary()
	if err != nil {
		return err
	}
	epoch, err := g.epoch.MarshalBinary()
	if err != nil {
		return err
	}
	st, err := g.secrets.MarshalBinary()
	if err != nil {
		return err
	}
	rt := g.tree.RatchetTree()
	b.AddUint8(stateVersion)
	wire.AddOpaque(b, signer)
	b.AddUint8(uint8(g.role))
	g.ctx.Marshal(b)
	rt.Marshal(b)
	b.AddUint32(uint32(g.own))
	addPrivateKeys(b, g.keys)
	wire.AddOpaque(b, epoch)
	wire.AddOpaque(b, st)
	wire.AddOpaque(b, g.interim)
	wire.AddOpaque(b, g.tag)
	if g.reinit != nil {
		b.AddUint8(1)
		g.reinit.Marshal(b)
	} else {
		b.AddUint8(0)
	}
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for _, p := range g.proposals {
			wire.AddOpaque(b, p.ref)
			p.proposal.Marshal(b)
			p.sender.Marshal(b)
			wire.AddOpaque(b, p.updateKey.Bytes())
		}
	})
	var perr error
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for _, p := range g.past {
			if err := p.marshal(b); err != nil {
				perr = err
			}
		}
	})
	if perr != nil {
		return perr
	}
	if g.staged == nil {
		b.AddUint8(0)
		return nil
	}
	b.AddUint8(1)
	wire.AddOpaque(b, g.staged.message)
	var next cryptobyte.Builder
	if err := g.staged.next.marshal(&next); err != nil {
		return err
	}
	nb, err := next.Bytes()
	if err != nil {
		return err
	}
	wire.AddOpaque(b, nb)
	g.staged.info.marshal(b)
	if g.staged.welcome == nil {
		b.AddUint8(0)
	} else {
		b.AddUint8(1)
		wire.AddOpaque(b, g.staged.welcome)
	}
	return nil
}

func addPrivateKeys(b *cryptobyte.Builder, keys ratchettree.PrivateKeys) {
	nodes := make([]treemath.NodeIndex, 0, len(keys))
	for x := range keys {
		nodes = append(nodes, x)
	}
	slices.Sort(nodes)
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for _, x := range nodes {
			b.AddUint32(uint32(x))
			wire.AddOpaque(b, keys[x].Bytes())
		}
	})
}

func (p *pastEpoch) marshal(b *cryptobyte.Builder) error {
	st, err := p.secrets.MarshalBinary()
	if err != nil {
		return err
	}
	p.ctx.Marshal(b)
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for _, k := range p.sigKeys {
			if k == nil {
				b.AddUint8(0)
				continue
			}
			b.AddUint8(1)
			wire.AddOpaque(b, k)
		}
	})
	wire.AddOpaque(b, p.senderData.Bytes())
	wire.AddOpaque(b, st)
	wire.AddOpaque(b, p.resumption.Bytes())
	return nil
}

func marshalMember(b *cryptobyte.Builder, m *Member) {
	b.AddUint32(m.LeafIndex)
	b.AddUint16(m.CredentialType)
	wire.AddOpaque(b, m.Identity)
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for _, c := range m.Certificates {
			wire.AddOpaque(b, c)
		}
	})
	wire.AddOpaque(b, m.SignatureKey)
	wire.AddOpaque(b, m.EncryptionKey)
}

func readMember(s *cryptobyte.String, m *Member) bool {
	var certs cryptobyte.String
	if !s.ReadUint32(&m.LeafIndex) || !s.ReadUint16(&m.CredentialType) ||
		!wire.ReadOpaqueCopy(s, &m.Identity) || !wire.ReadVector(s, &certs) {
		return false
	}
	for !certs.Empty() {
		var c []byte
		if !wire.ReadOpaqueCopy(&certs, &c) {
			return false
		}
		m.Certificates = append(m.Certificates, c)
	}
	return wire.ReadOpaqueCopy(s, &m.SignatureKey) && wire.ReadOpaqueCopy(s, &m.EncryptionKey)
}

func (c *CommitInfo) marshal(b *cryptobyte.Builder) {
	b.AddUint64(c.Epoch)
	b.AddUint32(c.Committer)
	wire.AddBool(b, c.External)
	for _, list := range [][]Member{c.Added, c.Removed} {
		wire.AddVector(b, func(b *cryptobyte.Builder) {
			for i := range list {
				marshalMember(b, &list[i])
			}
		})
	}
	wire.AddVector(b, func(b *cryptobyte.Builder) {
		for _, l := range c.Updated {
			b.AddUint32(l)
		}
	})
	b.AddUint32(uint32(c.PreSharedKeys))
	wire.AddBool(b, c.GroupContextExtensions)
	wire.AddBool(b, c.SelfRemoved)
	if c.ReInit == nil {
		b.AddUint8(0)
		return
	}
	b.AddUint8(1)
	r := mls.ReInit{GroupID: c.ReInit.GroupID, Version: mls.MLS10, CipherSuite: c.ReInit.CipherSuite, Extensions: importExtensions(c.ReInit.Extensions)}
	r.Marshal(b)
}

func (c *CommitInfo) unmarshal(s *cryptobyte.String) bool {
	var psks uint32
	if !s.ReadUint64(&c.Epoch) || !s.ReadUint32(&c.Committer) || !wire.ReadBool(s, &c.External) {
		return false
	}
	for _, list := range []*[]Member{&c.Added, &c.Removed} {
		var body cryptobyte.String
		if !wire.ReadVector(s, &body) {
			return false
		}
		for !body.Empty() {
			var m Member
			if !readMember(&body, &m) {
				return false
			}
			*list = append(*list, m)
		}
	}
	var upd cryptobyte.String
	if !wire.ReadVector(s, &upd) {
		return false
	}
	for !upd.Empty() {
		var l uint32
		if !upd.ReadUint32(&l) {
			return false
		}
		c.Updated = append(c.Updated, l)
	}
	var present bool
	if !s.ReadUint32(&psks) || !wire.ReadBool(s, &c.GroupContextExtensions) || !wire.ReadBool(s, &c.SelfRemoved) ||
		!wire.ReadOptional(s, &present) {
		return false
	}
	c.PreSharedKeys = int(psks)
	if present {
		var r mls.ReInit
		if r.Unmarshal(s) != nil {
			return false
		}
		c.ReInit = &ReInitParams{GroupID: r.GroupID, CipherSuite: r.CipherSuite, Extensions: exportExtensions(r.Extensions)}
	}
	return true
}

// LoadGroup decodes a state that Group.MarshalBinary wrote, for use with
// cfg. It checks the state's consistency (the tree against its hash, the
// private keys against the tree), so a corrupted store is an error rather
// than a group that misbehaves later.
func LoadGroup(cfg Config, data []byte) (*Group, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := cryptobyte.String(data)
	g, err := readGroup(c, &s)
	if err != nil {
		return nil, err
	}
	if !s.Empty() {
		return nil, errorf(ErrInvalidState, "trailing bytes")
	}
	return g, nil
}

func stateErr(what string) error { return errorf(ErrInvalidState, "%s", what) }

func readGroup(c *config, s *cryptobyte.String) (*Group, error) {
	var (
		version, role  uint8
		signer, ep, st []byte
		own            uint32
		g              = &Group{cfg: c, ctx: new(mls.GroupContext)}
	)
	if !s.ReadUint8(&version) || (version != stateVersion && version != stateVersionV1) {
		return nil, stateErr("version")
	}
	if !wire.ReadOpaque(s, &signer) || !s.ReadUint8(&role) {
		return nil, stateErr("header")
	}
	var err error
	if g.signer, err = ParseSigner(signer); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	g.suite = g.signer.suite
	g.role = roleOf(role)
	if g.role == 0 {
		return nil, stateErr("role")
	}
	if err := g.ctx.Unmarshal(s); err != nil {
		return nil, fmt.Errorf("%w: group context: %w", ErrInvalidState, err)
	}
	if g.ctx.CipherSuite != g.suite.ID() {
		return nil, stateErr("cipher suite")
	}
	var rt mls.RatchetTree
	if err := rt.Unmarshal(s); err != nil {
		return nil, fmt.Errorf("%w: ratchet tree: %w", ErrInvalidState, err)
	}
	if g.tree, err = ratchettree.Import(g.suite, rt); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if h, err := g.tree.TreeHash(); err != nil || !bytes.Equal(h, g.ctx.TreeHash) {
		return nil, stateErr("tree hash")
	}
	if !s.ReadUint32(&own) || g.tree.Leaf(treemath.LeafIndex(own)) == nil {
		return nil, stateErr("own leaf")
	}
	g.own = treemath.LeafIndex(own)
	if g.keys, err = readPrivateKeys(s); err != nil {
		return nil, err
	}
	if err := g.tree.VerifyPrivateKeys(g.keys); err != nil && g.role != roleRemoved {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if !wire.ReadOpaque(s, &ep) || !wire.ReadOpaque(s, &st) ||
		!wire.ReadOpaqueCopy(s, &g.interim) || !wire.ReadOpaqueCopy(s, &g.tag) {
		return nil, stateErr("epoch")
	}
	g.epoch = new(keyschedule.Epoch)
	if err := g.epoch.UnmarshalBinary(ep); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	if g.secrets, err = readSecretTree(c, st); err != nil {
		return nil, err
	}
	var present bool
	if !wire.ReadOptional(s, &present) {
		return nil, stateErr("reinit")
	}
	if present {
		g.reinit = new(mls.ReInit)
		if err := g.reinit.Unmarshal(s); err != nil {
			return nil, fmt.Errorf("%w: reinit: %w", ErrInvalidState, err)
		}
	}
	if err := g.readProposals(s); err != nil {
		return nil, err
	}
	if err := g.readPast(s); err != nil {
		return nil, err
	}
	if !wire.ReadOptional(s, &present) {
		return nil, stateErr("staged commit")
	}
	if present {
		var msg, next []byte
		if !wire.ReadOpaqueCopy(s, &msg) || !wire.ReadOpaque(s, &next) {
			return nil, stateErr("staged commit")
		}
		ns := cryptobyte.String(next)
		n, err := readGroup(c, &ns)
		if err != nil {
			return nil, err
		}
		if !ns.Empty() || n.staged != nil || len(n.past) > 0 || len(n.proposals) > 0 {
			return nil, stateErr("staged commit state")
		}
		info := new(CommitInfo)
		if !info.unmarshal(s) {
			return nil, stateErr("staged commit info")
		}
		g.staged = &stagedCommit{message: msg, next: n, info: info}
		if version >= 2 {
			if !wire.ReadOptional(s, &present) || (present && !wire.ReadOpaqueCopy(s, &g.staged.welcome)) {
				return nil, stateErr("staged commit welcome")
			}
		}
	}
	return g, nil
}

func roleOf(r uint8) role {
	switch role(r) {
	case roleMember, roleRemoved, roleReInit:
		return role(r)
	}
	return 0
}

func readPrivateKeys(s *cryptobyte.String) (ratchettree.PrivateKeys, error) {
	var body cryptobyte.String
	if !wire.ReadVector(s, &body) {
		return nil, stateErr("private keys")
	}
	keys := make(ratchettree.PrivateKeys)
	prev := int64(-1)
	for !body.Empty() {
		var x uint32
		var k []byte
		if !body.ReadUint32(&x) || !wire.ReadOpaqueCopy(&body, &k) || int64(x) <= prev {
			return nil, stateErr("private key")
		}
		prev = int64(x)
		keys[treemath.NodeIndex(x)] = secret.New(k)
	}
	return keys, nil
}

func readSecretTree(c *config, data []byte) (*keyschedule.SecretTree, error) {
	st := new(keyschedule.SecretTree)
	if err := st.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidState, err)
	}
	st.SetWindow(c.window)
	return st, nil
}

func (g *Group) readProposals(s *cryptobyte.String) error {
	var body cryptobyte.String
	if !wire.ReadVector(s, &body) {
		return stateErr("proposals")
	}
	for !body.Empty() {
		p := &cachedProposal{proposal: new(mls.Proposal)}
		var key []byte
		if !wire.ReadOpaqueCopy(&body, &p.ref) || p.proposal.Unmarshal(&body) != nil ||
			p.sender.Unmarshal(&body) != nil || !wire.ReadOpaqueCopy(&body, &key) {
			return stateErr("proposal")
		}
		if len(key) > 0 {
			p.updateKey = secret.New(key)
		}
		g.proposals = append(g.proposals, p)
	}
	return nil
}

func (g *Group) readPast(s *cryptobyte.String) error {
	var body cryptobyte.String
	if !wire.ReadVector(s, &body) {
		return stateErr("past epochs")
	}
	for !body.Empty() {
		p := &pastEpoch{ctx: new(mls.GroupContext)}
		var keys cryptobyte.String
		if p.ctx.Unmarshal(&body) != nil || !wire.ReadVector(&body, &keys) {
			return stateErr("past epoch")
		}
		for !keys.Empty() {
			var present bool
			var k []byte
			if !wire.ReadOptional(&keys, &present) || (present && !wire.ReadOpaqueCopy(&keys, &k)) {
				return stateErr("past epoch signature keys")
			}
			p.sigKeys = append(p.sigKeys, k)
		}
		var sd, st, res []byte
		if !wire.ReadOpaqueCopy(&body, &sd) || !wire.ReadOpaque(&body, &st) || !wire.ReadOpaqueCopy(&body, &res) {
			return stateErr("past epoch secrets")
		}
		p.senderData, p.resumption = secret.New(sd), secret.New(res)
		var err error
		if p.secrets, err = readSecretTree(g.cfg, st); err != nil {
			return err
		}
		g.past = append(g.past, p)
	}
	return nil
}
