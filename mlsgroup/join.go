package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// JoinOptions shape Join.
type JoinOptions struct {
	// RatchetTree is the group's tree as a ratchet_tree extension body
	// (§12.4.3.3), for a Welcome whose GroupInfo does not carry it. It is
	// checked against the GroupInfo's tree hash like any other.
	RatchetTree []byte
	// ReInitFrom is the state of the group that a ReInit ended, when the
	// Welcome is to the group that replaces it (§11.2): its resumption PSK
	// is the Welcome's, and its ReInit says what the new group must be.
	ReInitFrom *Group
}

// Join joins a group from a Welcome (§12.4.3.1), finding the private keys
// of the KeyPackage it was sent to in cfg.Storage. signer must be the key
// that signed that KeyPackage. When the Storage holds none of the
// Welcome's KeyPackages, the error is a *NoMatchingKeyPackageError saying
// what it knows of each.
//
// Effects.ConsumedKeyPackage names the KeyPackage whose private keys the
// join used: delete it from the Storage in the batch that saves
// Effects.Group, as a KeyPackage is for one join (§16.8).
func Join(cfg Config, welcome []byte, signer *Signer, opts JoinOptions) (*Effects, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	if c.Storage == nil {
		return nil, errorf(ErrInvalidConfig, "Storage is nil")
	}
	var m mls.MLSMessage
	if err := wire.Unmarshal(welcome, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if m.WireFormat != mls.WireFormatWelcome {
		return nil, errorf(ErrUnexpectedMessage, "wire format %d is not a Welcome", m.WireFormat)
	}
	w := m.Welcome
	s, err := lookupSuite(w.CipherSuite)
	if err != nil {
		return nil, err
	}
	if s.ID() != signer.suite.ID() {
		return nil, fmt.Errorf("%w: Welcome in suite %d, signer of suite %d", ErrInvalidWelcome, s.ID(), signer.suite.ID())
	}

	// Find the entry for a KeyPackage of ours that signer signed: the
	// storage may hold KeyPackages of other identities too.
	var (
		entry    *mls.EncryptedGroupSecrets
		priv     *keyPackagePrivate
		kp       *KeyPackage
		nomk     NoMatchingKeyPackageError
		otherKey []byte
	)
	for i := range w.Secrets {
		ref := w.Secrets[i].NewMember
		data, status, err := c.Storage.KeyPackage(ref)
		if err != nil {
			return nil, fmt.Errorf("mlsgroup: looking up KeyPackage %x: %w", ref, err)
		}
		nomk.Refs = append(nomk.Refs, bytes.Clone(ref))
		nomk.Status = append(nomk.Status, status)
		if status != KeyPackageAvailable {
			continue
		}
		p, err := parseKeyPackagePrivate(data)
		if err != nil {
			return nil, err
		}
		k, err := ParseKeyPackage(p.msg)
		if err != nil {
			return nil, fmt.Errorf("mlsgroup: stored KeyPackage %x: %w", ref, err)
		}
		if !bytes.Equal(k.kp.LeafNode.SignatureKey, signer.pub) {
			otherKey = ref
			continue
		}
		entry, priv, kp = &w.Secrets[i], p, k
		break
	}
	if entry == nil && otherKey != nil {
		return nil, fmt.Errorf("%w: KeyPackage %x is another signer's", ErrInvalidWelcome, otherKey)
	}
	if entry == nil {
		return nil, &nomk
	}
	if kp.kp.CipherSuite != s.ID() {
		return nil, fmt.Errorf("%w: KeyPackage of suite %d, Welcome of %d", ErrInvalidWelcome, kp.kp.CipherSuite, s.ID())
	}

	// GroupSecrets, PSKs, then the GroupInfo.
	ct := entry.EncryptedGroupSecrets
	pt, err := s.DecryptWithLabel(priv.initKey.Bytes(), "Welcome", w.EncryptedGroupInfo, ct.KEMOutput, ct.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: GroupSecrets: %w", ErrDecrypt, err)
	}
	var gs mls.GroupSecrets
	err = wire.Unmarshal(pt, &gs)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("%w: GroupSecrets: %w", ErrMalformed, err)
	}
	if gs.JoinerSecret.Len() != s.Nh() {
		return nil, fmt.Errorf("%w: joiner secret of %d bytes", ErrInvalidWelcome, gs.JoinerSecret.Len())
	}
	pskSecret, err := welcomePSKSecret(c, s, gs.PSKs, opts.ReInitFrom)
	if err != nil {
		return nil, err
	}
	welcomeSecret, err := keyschedule.WelcomeSecret(s, gs.JoinerSecret.Bytes(), pskSecret.Bytes())
	if err != nil {
		return nil, err
	}
	key, nonce := keyschedule.WelcomeKeyNonce(s, welcomeSecret.Bytes())
	giBytes, err := s.Open(key.Bytes(), nonce.Bytes(), nil, w.EncryptedGroupInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: GroupInfo: %w", ErrDecrypt, err)
	}
	var gi mls.GroupInfo
	if err := wire.Unmarshal(giBytes, &gi); err != nil {
		return nil, fmt.Errorf("%w: GroupInfo: %w", ErrMalformed, err)
	}
	if gi.GroupContext.CipherSuite != s.ID() || gi.GroupContext.Version != mls.MLS10 {
		return nil, fmt.Errorf("%w: GroupInfo of suite %d version %d", ErrInvalidWelcome, gi.GroupContext.CipherSuite, gi.GroupContext.Version)
	}
	tree, err := groupInfoTree(c, s, &gi, opts.RatchetTree)
	if err != nil {
		return nil, err
	}

	// Our leaf is the one identical to the KeyPackage's (§12.4.3.1).
	own := treemath.LeafIndex(0)
	found := false
	for l, leaf := range tree.Leaves() {
		// Encryption keys are unique in a valid tree: compare them first.
		if bytes.Equal(leaf.EncryptionKey, kp.kp.LeafNode.EncryptionKey) && leafEqual(leaf, &kp.kp.LeafNode) {
			own, found = l, true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: the tree has no leaf of the KeyPackage", ErrInvalidWelcome)
	}
	keys := ratchettree.PrivateKeys{own.Node(): cloneSecret(priv.leafKey)}
	if !gs.PathSecret.IsZero() {
		lca := treemath.CommonAncestor(own.Node(), treemath.LeafIndex(gi.Signer).Node())
		if err := tree.ImportPathSecret(keys, lca, gs.PathSecret); err != nil {
			return nil, fmt.Errorf("%w: path secret: %w", ErrInvalidWelcome, err)
		}
	}
	if err := tree.VerifyPrivateKeys(keys); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}

	ctx := &gi.GroupContext
	ctxBytes, err := encodeContext(ctx)
	if err != nil {
		return nil, err
	}
	ep, err := keyschedule.NewEpochFromJoiner(s, gs.JoinerSecret.Bytes(), pskSecret.Bytes(), ctxBytes)
	if err != nil {
		return nil, err
	}
	if !ep.VerifyConfirmationTag(ctx.ConfirmedTranscriptHash, gi.ConfirmationTag) {
		return nil, fmt.Errorf("%w: confirmation tag does not verify", ErrInvalidWelcome)
	}
	interim, err := keyschedule.InterimTranscriptHash(s, ctx.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	if err := checkWelcomePSKUsage(gs.PSKs, ctx); err != nil {
		return nil, err
	}
	if opts.ReInitFrom != nil {
		if err := checkReInitWelcome(opts.ReInitFrom, gs.PSKs, ctx); err != nil {
			return nil, err
		}
	}
	g := &Group{
		cfg:     c,
		suite:   s,
		signer:  signer,
		role:    roleMember,
		ctx:     ctx,
		tree:    tree,
		own:     own,
		keys:    keys,
		interim: interim,
		tag:     gi.ConfirmationTag,
	}
	g.enterEpoch(ep)
	return &Effects{Group: g, ConsumedKeyPackage: bytes.Clone(entry.NewMember), Epoch: ctx.Epoch}, nil
}

// groupInfoTree returns the tree a GroupInfo describes, from its
// ratchet_tree extension or else from outOfBand, after checking the
// GroupInfo's signature and the tree as §12.4.3.1 asks.
func groupInfoTree(c *config, s *suite.Suite, gi *mls.GroupInfo, outOfBand []byte) (*ratchettree.Tree, error) {
	var rt mls.RatchetTree
	found, err := mls.DecodeExtension(gi.Extensions, &rt)
	if err != nil {
		return nil, fmt.Errorf("%w: ratchet_tree extension: %w", ErrMalformed, err)
	}
	if !found {
		if outOfBand == nil {
			return nil, fmt.Errorf("%w: no ratchet tree in the GroupInfo, and none given", ErrInvalidWelcome)
		}
		if err := wire.Unmarshal(outOfBand, &rt); err != nil {
			return nil, fmt.Errorf("%w: ratchet tree: %w", ErrMalformed, err)
		}
	}
	tree, err := ratchettree.Import(s, rt)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	signer := tree.Leaf(treemath.LeafIndex(gi.Signer))
	if signer == nil {
		return nil, fmt.Errorf("%w: GroupInfo signer %d is a blank leaf", ErrInvalidWelcome, gi.Signer)
	}
	tbs, err := gi.MarshalTBS()
	if err != nil {
		return nil, err
	}
	if err := s.VerifyWithLabel(signer.SignatureKey, "GroupInfoTBS", tbs, gi.Signature); err != nil {
		return nil, fmt.Errorf("%w: GroupInfo signature", ErrInvalidSignature)
	}
	if err := validateTree(c, s, tree, &gi.GroupContext); err != nil {
		return nil, err
	}
	return tree, nil
}

// validateTree runs §12.4.3.1's checks on a received tree: its hash, parent
// hashes, unmerged leaves, unique keys and leaf signatures (package
// ratchettree), and each leaf's group-dependent checks of §7.3.
func validateTree(c *config, s *suite.Suite, tree *ratchettree.Tree, ctx *mls.GroupContext) error {
	if err := tree.Validate(ctx.GroupID, ctx.TreeHash); err != nil {
		if errors.Is(err, ratchettree.ErrSignature) {
			return fmt.Errorf("%w: %w", ErrInvalidSignature, err)
		}
		return fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	rules, err := leafRules(ctx.Extensions)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	if err := checkExternalSenders(ctx.Extensions, c.Validation); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	now := c.now()
	for l, leaf := range tree.Leaves() {
		if err := validateLeafNode(s, leaf, leafContext{
			now: now, opts: c.Validation, groupID: ctx.GroupID, leaf: uint32(l),
			skipSignature: true, skipLifetime: true,
		}); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", ErrInvalidWelcome, l, err)
		}
		if err := rules.check(leaf); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", ErrInvalidWelcome, l, err)
		}
	}
	if err := checkCredentialTypes(tree); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidWelcome, err)
	}
	return nil
}

// welcomePSKSecret resolves a Welcome's PSKs (§8.4): external ones through
// the Config, and the reinit PSK of the group the new one replaces. A
// joiner knows no other resumption PSK: they name a group it is not in.
func welcomePSKSecret(c *config, s *suite.Suite, ids []mls.PreSharedKeyID, reinitFrom *Group) (secret.Secret, error) {
	if len(ids) == 0 {
		return secret.Secret{}, nil
	}
	psks := make([]keyschedule.PSK, len(ids))
	for i := range ids {
		var (
			v   secret.Secret
			err error
		)
		if ids[i].Type == mls.PSKExternal {
			v, err = lookupExternalPSK(c, ids[i].ID)
		} else {
			v, err = reinitPSK(reinitFrom, &ids[i])
		}
		if err != nil {
			return secret.Secret{}, err
		}
		if psks[i], err = keyschedule.NewPSK(&ids[i], v); err != nil {
			return secret.Secret{}, err
		}
	}
	return keyschedule.PSKSecret(s, psks)
}

// checkWelcomePSKUsage applies §12.4.3.1's rule that a reinit or branch
// PSK is the only one of its kind and comes with epoch 1.
func checkWelcomePSKUsage(ids []mls.PreSharedKeyID, ctx *mls.GroupContext) error {
	special := 0
	for _, id := range ids {
		if id.Type == mls.PSKResumption && (id.Usage == mls.ResumptionReInit || id.Usage == mls.ResumptionBranch) {
			special++
		}
	}
	if special > 1 || (special == 1 && ctx.Epoch != 1) {
		return fmt.Errorf("%w: reinit or branch PSK misused", ErrInvalidWelcome)
	}
	return nil
}
