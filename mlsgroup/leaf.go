package mlsgroup

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Capabilities are what a member supports beyond RFC 9420's defaults
// (§7.2): the non-default extension, proposal and credential types it
// lists in its leaves, next to every cipher suite and the basic
// credential, which it always lists.
type Capabilities struct {
	Extensions  []uint16
	Proposals   []uint16
	Credentials []uint16
}

// capabilities lists this implementation's defaults plus extra.
func (extra Capabilities) capabilities() mls.Capabilities {
	c := defaultCapabilities()
	for _, e := range extra.Extensions {
		if t := mls.ExtensionType(e); !slices.Contains(c.Extensions, t) {
			c.Extensions = append(c.Extensions, t)
		}
	}
	for _, p := range extra.Proposals {
		if t := mls.ProposalType(p); !slices.Contains(c.Proposals, t) {
			c.Proposals = append(c.Proposals, t)
		}
	}
	for _, cr := range extra.Credentials {
		if t := mls.CredentialType(cr); !slices.Contains(c.Credentials, t) {
			c.Credentials = append(c.Credentials, t)
		}
	}
	return c
}

// groupLeafRules are the checks of §7.3 that depend on the group: its
// required_capabilities and non-default GroupContext extensions, which
// every leaf must list (§11.1, §13.4).
type groupLeafRules struct {
	required *mls.RequiredCapabilities
	exts     []mls.ExtensionType // non-default GroupContext extension types
}

func leafRules(exts []mls.Extension) (groupLeafRules, error) {
	var r groupLeafRules
	var rc mls.RequiredCapabilities
	found, err := mls.DecodeExtension(exts, &rc)
	if err != nil {
		return r, errorf(ErrInvalidProposal, "required_capabilities: %v", err)
	}
	if found {
		r.required = &rc
	}
	for _, e := range exts {
		if !isDefaultExtension(e.Type) {
			r.exts = append(r.exts, e.Type)
		}
	}
	return r, nil
}

// check reports whether leaf supports what the group requires.
func (r groupLeafRules) check(leaf *mls.LeafNode) error {
	caps := &leaf.Capabilities
	for _, t := range r.exts {
		if !slices.Contains(caps.Extensions, t) {
			return fmt.Errorf("%w: does not support GroupContext extension %d", ErrInvalidLeafNode, t)
		}
	}
	if rc := r.required; rc != nil {
		for _, t := range rc.Extensions {
			if !isDefaultExtension(t) && !slices.Contains(caps.Extensions, t) {
				return fmt.Errorf("%w: lacks required extension %d", ErrInvalidLeafNode, t)
			}
		}
		for _, t := range rc.Proposals {
			if !isDefaultProposal(t) && !slices.Contains(caps.Proposals, t) {
				return fmt.Errorf("%w: lacks required proposal type %d", ErrInvalidLeafNode, t)
			}
		}
		for _, t := range rc.Credentials {
			if !slices.Contains(caps.Credentials, t) {
				return fmt.Errorf("%w: lacks required credential type %d", ErrInvalidLeafNode, t)
			}
		}
	}
	return nil
}

// isDefaultProposal reports whether t is one of RFC 9420's own proposal
// types, which need not be listed (§7.2).
func isDefaultProposal(t mls.ProposalType) bool {
	return t >= mls.ProposalAdd && t <= mls.ProposalGroupContextExtensions
}

// checkCredentialTypes runs §7.3's rule that every credential type in use
// is supported by every member, over the whole tree at once: that covers
// both directions of the rule for each leaf, new or old.
func checkCredentialTypes(t *ratchettree.Tree) error {
	var inUse []mls.CredentialType
	for _, leaf := range t.Leaves() {
		if !slices.Contains(inUse, leaf.Credential.Type) {
			inUse = append(inUse, leaf.Credential.Type)
		}
	}
	if len(inUse) == 1 && inUse[0] == mls.CredentialBasic {
		// Every leaf lists its own credential type (checked per leaf),
		// so a group of basic credentials needs no further pass.
		return nil
	}
	for l, leaf := range t.Leaves() {
		for _, ct := range inUse {
			if !slices.Contains(leaf.Capabilities.Credentials, ct) {
				return fmt.Errorf("%w: leaf %d does not support credential type %d, which the group uses", ErrInvalidLeafNode, l, ct)
			}
		}
	}
	return nil
}

// templateLeaf is the leaf this member puts into the tree at a commit
// or update: its current credential, keys and capabilities.
func templateLeaf(leaf *mls.LeafNode) mls.LeafNode {
	t := *leaf
	t.Extensions = slices.Clone(leaf.Extensions)
	return t
}

// leafEqual reports whether two leaves encode identically.
func leafEqual(a, b *mls.LeafNode) bool {
	ea, err1 := wire.Marshal(&mls.Node{Leaf: a})
	eb, err2 := wire.Marshal(&mls.Node{Leaf: b})
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
}
