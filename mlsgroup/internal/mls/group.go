package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Marshal encodes a GroupContext (§8.1).
func (x *GroupContext) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(x.Version))
	b.AddUint16(uint16(x.CipherSuite))
	wire.AddOpaque(b, x.GroupID)
	b.AddUint64(x.Epoch)
	wire.AddOpaque(b, x.TreeHash)
	wire.AddOpaque(b, x.ConfirmedTranscriptHash)
	addVector(b, x.Extensions)
}

// Unmarshal decodes a GroupContext. Version and cipher suite are kept as
// sent; checking them against the group is the caller's job.
func (x *GroupContext) Unmarshal(s *cryptobyte.String) error {
	var version, cs uint16
	if !s.ReadUint16(&version) {
		return wire.Errorf("GroupContext.version")
	}
	if !s.ReadUint16(&cs) {
		return wire.Errorf("GroupContext.cipher_suite")
	}
	x.Version, x.CipherSuite = ProtocolVersion(version), suite.ID(cs)
	if err := readOpaque(s, &x.GroupID, "GroupContext.group_id"); err != nil {
		return err
	}
	if !s.ReadUint64(&x.Epoch) {
		return wire.Errorf("GroupContext.epoch")
	}
	if err := readOpaque(s, &x.TreeHash, "GroupContext.tree_hash"); err != nil {
		return err
	}
	if err := readOpaque(s, &x.ConfirmedTranscriptHash, "GroupContext.confirmed_transcript_hash"); err != nil {
		return err
	}
	return readExtensions(s, &x.Extensions, "GroupContext.extensions")
}

// Marshal encodes a GroupInfo (§12.4.3).
func (x *GroupInfo) Marshal(b *cryptobyte.Builder) {
	x.marshalTBS(b)
	wire.AddOpaque(b, x.Signature)
}

// marshalTBS encodes the GroupInfoTBS: every field but the signature.
func (x *GroupInfo) marshalTBS(b *cryptobyte.Builder) {
	x.GroupContext.Marshal(b)
	addVector(b, x.Extensions)
	wire.AddOpaque(b, x.ConfirmationTag)
	b.AddUint32(x.Signer)
}

// Unmarshal decodes a GroupInfo.
func (x *GroupInfo) Unmarshal(s *cryptobyte.String) error {
	if err := x.GroupContext.Unmarshal(s); err != nil {
		return err
	}
	if err := readExtensions(s, &x.Extensions, "GroupInfo.extensions"); err != nil {
		return err
	}
	if err := readOpaque(s, &x.ConfirmationTag, "GroupInfo.confirmation_tag"); err != nil {
		return err
	}
	if !s.ReadUint32(&x.Signer) {
		return wire.Errorf("GroupInfo.signer")
	}
	return readOpaque(s, &x.Signature, "GroupInfo.signature")
}

// MarshalTBS returns the GroupInfoTBS of §12.4.3, the content of the
// GroupInfo's signature.
func (x *GroupInfo) MarshalTBS() ([]byte, error) {
	return marshal(x.marshalTBS)
}

// Marshal encodes a GroupSecrets (§12.4.3.1). A zero PathSecret is encoded
// as absent.
func (x *GroupSecrets) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.JoinerSecret.Bytes())
	if x.PathSecret.IsZero() {
		b.AddUint8(0)
	} else {
		b.AddUint8(1)
		wire.AddOpaque(b, x.PathSecret.Bytes())
	}
	addVector(b, x.PSKs)
}

// Unmarshal decodes a GroupSecrets. A path secret that is present but empty
// is malformed: it would be indistinguishable from an absent one once
// decoded, and no suite has empty secrets.
func (x *GroupSecrets) Unmarshal(s *cryptobyte.String) error {
	var joiner []byte
	if err := readOpaque(s, &joiner, "GroupSecrets.joiner_secret"); err != nil {
		return err
	}
	x.JoinerSecret = secret.New(joiner)
	var present bool
	if err := readOptional(s, &present, "GroupSecrets.path_secret"); err != nil {
		return err
	}
	x.PathSecret = secret.Secret{}
	if present {
		var path []byte
		if err := readOpaque(s, &path, "GroupSecrets.path_secret"); err != nil {
			return err
		}
		if len(path) == 0 {
			return wire.Errorf("GroupSecrets.path_secret: present but empty")
		}
		x.PathSecret = secret.New(path)
	}
	return readVector(s, &x.PSKs, "GroupSecrets.psks")
}

// Marshal encodes an EncryptedGroupSecrets (§12.4.3.1).
func (x *EncryptedGroupSecrets) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.NewMember)
	x.EncryptedGroupSecrets.Marshal(b)
}

// Unmarshal decodes an EncryptedGroupSecrets.
func (x *EncryptedGroupSecrets) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.NewMember, "EncryptedGroupSecrets.new_member"); err != nil {
		return err
	}
	return x.EncryptedGroupSecrets.Unmarshal(s)
}

// Marshal encodes a Welcome (§12.4.3.1).
func (x *Welcome) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(x.CipherSuite))
	addVector(b, x.Secrets)
	wire.AddOpaque(b, x.EncryptedGroupInfo)
}

// Unmarshal decodes a Welcome.
func (x *Welcome) Unmarshal(s *cryptobyte.String) error {
	var cs uint16
	if !s.ReadUint16(&cs) {
		return wire.Errorf("Welcome.cipher_suite")
	}
	x.CipherSuite = suite.ID(cs)
	if err := readVector(s, &x.Secrets, "Welcome.secrets"); err != nil {
		return err
	}
	return readOpaque(s, &x.EncryptedGroupInfo, "Welcome.encrypted_group_info")
}
