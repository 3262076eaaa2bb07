package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Marshal encodes a PreSharedKeyID (§8.4).
func (x *PreSharedKeyID) Marshal(b *cryptobyte.Builder) {
	b.AddUint8(uint8(x.Type))
	switch x.Type {
	case PSKExternal:
		wire.AddOpaque(b, x.ID)
	case PSKResumption:
		b.AddUint8(uint8(x.Usage))
		wire.AddOpaque(b, x.GroupID)
		b.AddUint64(x.Epoch)
	default:
		invalidf(b, "PreSharedKeyID.psktype %d", x.Type)
	}
	wire.AddOpaque(b, x.Nonce)
}

// Unmarshal decodes a PreSharedKeyID. The fields the PSK type does not
// carry are left zero. ResumptionPSKUsage has no registry, so a usage
// other than the three of §8.4 is malformed.
func (x *PreSharedKeyID) Unmarshal(s *cryptobyte.String) error {
	var t uint8
	if !s.ReadUint8(&t) {
		return wire.Errorf("PreSharedKeyID.psktype")
	}
	*x = PreSharedKeyID{Type: PSKType(t)}
	switch x.Type {
	case PSKExternal:
		if err := readOpaque(s, &x.ID, "PreSharedKeyID.psk_id"); err != nil {
			return err
		}
	case PSKResumption:
		var usage uint8
		if !s.ReadUint8(&usage) || usage < uint8(ResumptionApplication) || usage > uint8(ResumptionBranch) {
			return wire.Errorf("PreSharedKeyID.usage")
		}
		x.Usage = ResumptionPSKUsage(usage)
		if err := readOpaque(s, &x.GroupID, "PreSharedKeyID.psk_group_id"); err != nil {
			return err
		}
		if !s.ReadUint64(&x.Epoch) {
			return wire.Errorf("PreSharedKeyID.psk_epoch")
		}
	default:
		return wire.Errorf("PreSharedKeyID.psktype %d", t)
	}
	return readOpaque(s, &x.Nonce, "PreSharedKeyID.psk_nonce")
}

// Marshal encodes an Add proposal (§12.1.1).
func (x *Add) Marshal(b *cryptobyte.Builder) { x.KeyPackage.Marshal(b) }

// Unmarshal decodes an Add proposal.
func (x *Add) Unmarshal(s *cryptobyte.String) error { return x.KeyPackage.Unmarshal(s) }

// Marshal encodes an Update proposal (§12.1.2).
func (x *Update) Marshal(b *cryptobyte.Builder) { x.LeafNode.Marshal(b) }

// Unmarshal decodes an Update proposal.
func (x *Update) Unmarshal(s *cryptobyte.String) error { return x.LeafNode.Unmarshal(s) }

// Marshal encodes a Remove proposal (§12.1.3).
func (x *Remove) Marshal(b *cryptobyte.Builder) { b.AddUint32(x.Removed) }

// Unmarshal decodes a Remove proposal.
func (x *Remove) Unmarshal(s *cryptobyte.String) error {
	if !s.ReadUint32(&x.Removed) {
		return wire.Errorf("Remove.removed")
	}
	return nil
}

// Marshal encodes a PreSharedKey proposal (§12.1.4).
func (x *PreSharedKey) Marshal(b *cryptobyte.Builder) { x.PSK.Marshal(b) }

// Unmarshal decodes a PreSharedKey proposal.
func (x *PreSharedKey) Unmarshal(s *cryptobyte.String) error { return x.PSK.Unmarshal(s) }

// Marshal encodes a ReInit proposal (§12.1.5).
func (x *ReInit) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.GroupID)
	b.AddUint16(uint16(x.Version))
	b.AddUint16(uint16(x.CipherSuite))
	addVector(b, x.Extensions)
}

// Unmarshal decodes a ReInit proposal. The version and cipher suite name
// the new group's and may be ones this implementation does not know.
func (x *ReInit) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.GroupID, "ReInit.group_id"); err != nil {
		return err
	}
	var version, cs uint16
	if !s.ReadUint16(&version) {
		return wire.Errorf("ReInit.version")
	}
	if !s.ReadUint16(&cs) {
		return wire.Errorf("ReInit.cipher_suite")
	}
	x.Version, x.CipherSuite = ProtocolVersion(version), suite.ID(cs)
	return readExtensions(s, &x.Extensions, "ReInit.extensions")
}

// Marshal encodes an ExternalInit proposal (§12.1.6).
func (x *ExternalInit) Marshal(b *cryptobyte.Builder) { wire.AddOpaque(b, x.KEMOutput) }

// Unmarshal decodes an ExternalInit proposal.
func (x *ExternalInit) Unmarshal(s *cryptobyte.String) error {
	return readOpaque(s, &x.KEMOutput, "ExternalInit.kem_output")
}

// Marshal encodes a GroupContextExtensions proposal (§12.1.7).
func (x *GroupContextExtensions) Marshal(b *cryptobyte.Builder) { addVector(b, x.Extensions) }

// Unmarshal decodes a GroupContextExtensions proposal.
func (x *GroupContextExtensions) Unmarshal(s *cryptobyte.String) error {
	return readExtensions(s, &x.Extensions, "GroupContextExtensions.extensions")
}

// body returns the field of x that Type selects, nil if it is unset or the
// type is unknown.
func (x *Proposal) body() wire.Marshaler {
	var m wire.Marshaler
	switch x.Type {
	case ProposalAdd:
		if x.Add != nil {
			m = x.Add
		}
	case ProposalUpdate:
		if x.Update != nil {
			m = x.Update
		}
	case ProposalRemove:
		if x.Remove != nil {
			m = x.Remove
		}
	case ProposalPSK:
		if x.PreSharedKey != nil {
			m = x.PreSharedKey
		}
	case ProposalReInit:
		if x.ReInit != nil {
			m = x.ReInit
		}
	case ProposalExternalInit:
		if x.ExternalInit != nil {
			m = x.ExternalInit
		}
	case ProposalGroupContextExtensions:
		if x.GroupContextExtensions != nil {
			m = x.GroupContextExtensions
		}
	}
	return m
}

// Marshal encodes a Proposal (§12.1).
func (x *Proposal) Marshal(b *cryptobyte.Builder) {
	body := x.body()
	if body == nil {
		invalidf(b, "Proposal: type %d without its body", x.Type)
		return
	}
	b.AddUint16(uint16(x.Type))
	body.Marshal(b)
}

// Unmarshal decodes a Proposal. A proposal type outside §17.4's initial
// registry is malformed: its body has no length prefix, so it cannot be
// skipped.
func (x *Proposal) Unmarshal(s *cryptobyte.String) error {
	var t uint16
	if !s.ReadUint16(&t) {
		return wire.Errorf("Proposal.proposal_type")
	}
	*x = Proposal{Type: ProposalType(t)}
	var body wire.Unmarshaler
	switch x.Type {
	case ProposalAdd:
		x.Add = new(Add)
		body = x.Add
	case ProposalUpdate:
		x.Update = new(Update)
		body = x.Update
	case ProposalRemove:
		x.Remove = new(Remove)
		body = x.Remove
	case ProposalPSK:
		x.PreSharedKey = new(PreSharedKey)
		body = x.PreSharedKey
	case ProposalReInit:
		x.ReInit = new(ReInit)
		body = x.ReInit
	case ProposalExternalInit:
		x.ExternalInit = new(ExternalInit)
		body = x.ExternalInit
	case ProposalGroupContextExtensions:
		x.GroupContextExtensions = new(GroupContextExtensions)
		body = x.GroupContextExtensions
	default:
		return wire.Errorf("Proposal.proposal_type %d", t)
	}
	return body.Unmarshal(s)
}

// Marshal encodes a ProposalOrRef (§12.4).
func (x *ProposalOrRef) Marshal(b *cryptobyte.Builder) {
	switch {
	case x.Proposal != nil && x.Reference == nil:
		b.AddUint8(uint8(ProposalOrRefProposal))
		x.Proposal.Marshal(b)
	case x.Proposal == nil && x.Reference != nil:
		b.AddUint8(uint8(ProposalOrRefReference))
		wire.AddOpaque(b, x.Reference)
	default:
		invalidf(b, "ProposalOrRef: exactly one of Proposal and Reference must be set")
	}
}

// Unmarshal decodes a ProposalOrRef. A reference is never nil once decoded,
// even when empty, so that it re-encodes as a reference.
func (x *ProposalOrRef) Unmarshal(s *cryptobyte.String) error {
	var t uint8
	if !s.ReadUint8(&t) {
		return wire.Errorf("ProposalOrRef.type")
	}
	*x = ProposalOrRef{}
	switch ProposalOrRefType(t) {
	case ProposalOrRefProposal:
		x.Proposal = new(Proposal)
		return x.Proposal.Unmarshal(s)
	case ProposalOrRefReference:
		return readOpaque(s, &x.Reference, "ProposalOrRef.reference")
	default:
		return wire.Errorf("ProposalOrRef.type %d", t)
	}
}

// Marshal encodes a Commit (§12.4).
func (x *Commit) Marshal(b *cryptobyte.Builder) {
	addVector(b, x.Proposals)
	if x.Path == nil {
		b.AddUint8(0)
		return
	}
	b.AddUint8(1)
	x.Path.Marshal(b)
}

// Unmarshal decodes a Commit.
func (x *Commit) Unmarshal(s *cryptobyte.String) error {
	if err := readVector(s, &x.Proposals, "Commit.proposals"); err != nil {
		return err
	}
	var present bool
	if err := readOptional(s, &present, "Commit.path"); err != nil {
		return err
	}
	x.Path = nil
	if present {
		x.Path = new(UpdatePath)
		return x.Path.Unmarshal(s)
	}
	return nil
}

// ProposalRef is §5.2's ProposalRef: RefHash("MLS 1.0 Proposal Reference",
// AuthenticatedContent) in the suite s, over the AuthenticatedContent that
// carried the proposal.
func ProposalRef(s *suite.Suite, ac *AuthenticatedContent) ([]byte, error) {
	data, err := wire.Marshal(ac)
	if err != nil {
		return nil, err
	}
	return s.RefHash("MLS 1.0 Proposal Reference", data), nil
}
