package mlsgroup

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
)

// GroupOptions tunes CreateGroup. The zero value gives a group without
// GroupContext extensions and a creator leaf with the default
// capabilities and lifetime.
type GroupOptions struct {
	// Extensions are the initial GroupContext extensions (§8.1), such as
	// required_capabilities or external_senders. Every non-default type
	// must be in Leaf.Capabilities.
	Extensions []Extension
	// Leaf shapes the creator's leaf: its capabilities, extensions and
	// lifetime (a key package leaf's, §7.2).
	Leaf KeyPackageOptions
}

// CreateGroup starts a one-member group (§11) with the creator, identity
// under a basic credential signed by signer, at leaf 0 and epoch 0.
// groupID should be unique; a random KDF.Nh-byte value is.
func CreateGroup(cfg Config, groupID, identity []byte, signer *Signer, opts GroupOptions) (*Group, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := signer.suite
	if len(groupID) == 0 {
		return nil, fmt.Errorf("mlsgroup: empty group ID")
	}
	leafPriv, leafPub, err := s.GenerateKeyPair(c.Rand)
	if err != nil {
		return nil, fmt.Errorf("mlsgroup: leaf encryption key: %w", err)
	}
	leaf := mls.LeafNode{
		EncryptionKey: leafPub,
		SignatureKey:  signer.pub,
		Credential:    mls.Credential{Type: mls.CredentialBasic, Identity: bytes.Clone(identity)},
		Capabilities:  opts.Leaf.Capabilities.capabilities(),
		Source:        mls.LeafNodeSourceKeyPackage,
		Lifetime:      opts.Leaf.lifetime(c.now()),
		Extensions:    importExtensions(opts.Leaf.LeafExtensions),
	}
	if err := checkOwnExtensions(&leaf, nil); err != nil {
		return nil, err
	}
	if err := signer.signLeaf(&leaf, nil, 0); err != nil {
		return nil, err
	}
	exts := importExtensions(opts.Extensions)
	if err := mls.ValidateExtensions(exts); err != nil {
		return nil, fmt.Errorf("mlsgroup: GroupContext extensions: %w", err)
	}
	rules, err := leafRules(exts)
	if err != nil {
		return nil, err
	}
	if err := rules.check(&leaf); err != nil {
		return nil, fmt.Errorf("mlsgroup: creator's leaf: %w", err)
	}
	if err := checkExternalSenders(exts, c.Validation); err != nil {
		return nil, err
	}

	tree := ratchettree.New(s, &leaf)
	treeHash, err := tree.TreeHash()
	if err != nil {
		return nil, err
	}
	ctx := &mls.GroupContext{
		Version:                 mls.MLS10,
		CipherSuite:             s.ID(),
		GroupID:                 bytes.Clone(groupID),
		Epoch:                   0,
		TreeHash:                treeHash,
		ConfirmedTranscriptHash: []byte{},
		Extensions:              exts,
	}
	ctxBytes, err := encodeContext(ctx)
	if err != nil {
		return nil, err
	}
	// §11 asks for a random epoch secret; a random init secret run through
	// the schedule gives one, with every derived secret computed the usual
	// way.
	init := make([]byte, s.Nh())
	if _, err := io.ReadFull(c.Rand, init); err != nil {
		return nil, fmt.Errorf("mlsgroup: reading the initial secret: %w", err)
	}
	ep, err := keyschedule.NewEpoch(s, init, nil, nil, ctxBytes)
	clear(init)
	if err != nil {
		return nil, err
	}
	tag := ep.ConfirmationTag(ctx.ConfirmedTranscriptHash)
	interim, err := keyschedule.InterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, tag)
	if err != nil {
		return nil, err
	}
	g := &Group{
		cfg:     c,
		suite:   s,
		signer:  signer,
		role:    roleMember,
		ctx:     ctx,
		tree:    tree,
		own:     0,
		keys:    ratchettree.PrivateKeys{treemath.LeafIndex(0).Node(): secret.New(leafPriv)},
		interim: interim,
		tag:     tag,
	}
	g.enterEpoch(ep)
	return g, nil
}

// enterEpoch installs the secrets of a new epoch: the secret tree is
// derived from the encryption secret, and the secrets only needed to
// enter the epoch are dropped (§9.2).
func (g *Group) enterEpoch(ep *keyschedule.Epoch) {
	g.secrets = keyschedule.NewSecretTree(g.suite, ep.EncryptionSecret.Bytes(), g.tree.NumLeaves())
	g.secrets.SetWindow(g.cfg.window)
	ep.JoinerSecret.Wipe()
	ep.WelcomeSecret.Wipe()
	ep.EncryptionSecret.Wipe()
	g.epoch = ep
}

// checkExternalSenders checks an external_senders extension, if present:
// it decodes (§12.1.8.1) and the application accepts each sender's
// credential (§5.3.1).
func checkExternalSenders(exts []mls.Extension, opts ValidationOptions) error {
	var es mls.ExternalSenders
	if _, err := mls.DecodeExtension(exts, &es); err != nil {
		return errorf(ErrInvalidProposal, "external_senders extension: %v", err)
	}
	if opts.Credentials == nil {
		return nil
	}
	for i, s := range es {
		if err := opts.Credentials(uint16(s.Credential.Type), s.Credential.Identity, s.SignatureKey); err != nil {
			return fmt.Errorf("%w: external sender %d: %w", ErrCredentialRejected, i, err)
		}
	}
	return nil
}
