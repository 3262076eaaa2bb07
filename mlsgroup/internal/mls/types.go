// Package mls holds the wire structures of RFC 9420 (§6, §7, §10 to §12 and
// the extensions of §17.3) and their TLS presentation codecs.
//
// The types are plain data: they carry no behaviour beyond encoding and
// decoding (Marshal / Unmarshal, see package wire), plus the to-be-signed
// and to-be-hashed encodings that other layers sign or hash. Validation that
// needs keys or group state lives above this package.
//
// Decoding is strict (wire's rules) and copies every byte string out of the
// input, so a decoded value owns its memory and re-encodes to exactly the
// input. Beyond wire's rules, decoders reject enum values that select a
// layout the RFC does not define (content, sender, wire format, proposal,
// credential, leaf source, PSK and node types), extension lists holding a
// type twice (§13; ValidateExtensions runs the same check on lists built
// locally) and ratchet trees ending in a blank node (§12.4.3.3). Encoders
// fail with ErrInvalidValue on values that have no encoding, such as a
// union whose selected field is nil.
package mls

import (
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
)

// ProtocolVersion is §6's ProtocolVersion.
type ProtocolVersion uint16

// MLS10 is the only protocol version defined (mls10).
const MLS10 ProtocolVersion = 1

// ContentType is §6's ContentType.
type ContentType uint8

const (
	ContentApplication ContentType = 1
	ContentProposal    ContentType = 2
	ContentCommit      ContentType = 3
)

// SenderType is §6's SenderType.
type SenderType uint8

const (
	SenderMember            SenderType = 1
	SenderExternal          SenderType = 2
	SenderNewMemberProposal SenderType = 3
	SenderNewMemberCommit   SenderType = 4
)

// WireFormat is §6's WireFormat (registry §17.2).
type WireFormat uint16

const (
	WireFormatPublicMessage  WireFormat = 1
	WireFormatPrivateMessage WireFormat = 2
	WireFormatWelcome        WireFormat = 3
	WireFormatGroupInfo      WireFormat = 4
	WireFormatKeyPackage     WireFormat = 5
)

// ExtensionType is §13.3's ExtensionType (registry §17.3).
type ExtensionType uint16

const (
	ExtApplicationID        ExtensionType = 1
	ExtRatchetTree          ExtensionType = 2
	ExtRequiredCapabilities ExtensionType = 3
	ExtExternalPub          ExtensionType = 4
	ExtExternalSenders      ExtensionType = 5
)

// ProposalType is §12.1's ProposalType (registry §17.4).
type ProposalType uint16

const (
	ProposalAdd                    ProposalType = 1
	ProposalUpdate                 ProposalType = 2
	ProposalRemove                 ProposalType = 3
	ProposalPSK                    ProposalType = 4
	ProposalReInit                 ProposalType = 5
	ProposalExternalInit           ProposalType = 6
	ProposalGroupContextExtensions ProposalType = 7
)

// CredentialType is §5.3's CredentialType (registry §17.5).
type CredentialType uint16

const (
	CredentialBasic CredentialType = 1
	CredentialX509  CredentialType = 2
)

// LeafNodeSource is §7.2's LeafNodeSource.
type LeafNodeSource uint8

const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// NodeType is §7.8's NodeType.
type NodeType uint8

const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// PSKType is §8.4's PSKType.
type PSKType uint8

const (
	PSKExternal   PSKType = 1
	PSKResumption PSKType = 2
)

// ResumptionPSKUsage is §8.4's ResumptionPSKUsage.
type ResumptionPSKUsage uint8

const (
	ResumptionApplication ResumptionPSKUsage = 1
	ResumptionReInit      ResumptionPSKUsage = 2
	ResumptionBranch      ResumptionPSKUsage = 3
)

// ProposalOrRefType is §12.4's ProposalOrRefType.
type ProposalOrRefType uint8

const (
	ProposalOrRefProposal  ProposalOrRefType = 1
	ProposalOrRefReference ProposalOrRefType = 2
)

// Extension is §13's Extension: a type and opaque data.
type Extension struct {
	Type ExtensionType
	Data []byte
}

// Credential is §5.3's Credential. Identity is set for basic credentials,
// Certificates (each the DER of one certificate) for x509.
type Credential struct {
	Type         CredentialType
	Identity     []byte
	Certificates [][]byte
}

// Capabilities is §7.2's Capabilities.
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []suite.ID
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

// Lifetime is §7.2's Lifetime, in seconds since the Unix epoch.
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// LeafNode is §7.2's LeafNode. Lifetime is meaningful only when Source is
// LeafNodeSourceKeyPackage, ParentHash only when it is LeafNodeSourceCommit.
type LeafNode struct {
	EncryptionKey []byte // HPKEPublicKey
	SignatureKey  []byte // SignaturePublicKey
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      Lifetime
	ParentHash    []byte
	Extensions    []Extension
	Signature     []byte
}

// KeyPackage is §10's KeyPackage.
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite suite.ID
	InitKey     []byte // HPKEPublicKey
	LeafNode    LeafNode
	Extensions  []Extension
	Signature   []byte
}

// ParentNode is §7.1's ParentNode.
type ParentNode struct {
	EncryptionKey  []byte
	ParentHash     []byte
	UnmergedLeaves []uint32
}

// Node is §7.8's Node: exactly one of Leaf and Parent is set.
type Node struct {
	Leaf   *LeafNode
	Parent *ParentNode
}

// RatchetTree is the body of the ratchet_tree extension (§12.4.3.3):
// optional<Node> ratchet_tree<V>, indexed by node (Appendix C); a nil entry
// is a blank node. Its encoding must not end in a blank node.
type RatchetTree []*Node

// HPKECiphertext is §7.6's HPKECiphertext.
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// UpdatePathNode is §7.6's UpdatePathNode.
type UpdatePathNode struct {
	EncryptionKey       []byte
	EncryptedPathSecret []HPKECiphertext
}

// UpdatePath is §7.6's UpdatePath.
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// PreSharedKeyID is §8.4's PreSharedKeyID. ID is set for external PSKs;
// Usage, GroupID and Epoch for resumption PSKs.
type PreSharedKeyID struct {
	Type    PSKType
	ID      []byte
	Usage   ResumptionPSKUsage
	GroupID []byte
	Epoch   uint64
	Nonce   []byte
}

// Add is §12.1.1's Add proposal.
type Add struct{ KeyPackage KeyPackage }

// Update is §12.1.2's Update proposal.
type Update struct{ LeafNode LeafNode }

// Remove is §12.1.3's Remove proposal.
type Remove struct{ Removed uint32 }

// PreSharedKey is §12.1.4's PreSharedKey proposal.
type PreSharedKey struct{ PSK PreSharedKeyID }

// ReInit is §12.1.5's ReInit proposal.
type ReInit struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite suite.ID
	Extensions  []Extension
}

// ExternalInit is §12.1.6's ExternalInit proposal.
type ExternalInit struct{ KEMOutput []byte }

// GroupContextExtensions is §12.1.7's GroupContextExtensions proposal.
type GroupContextExtensions struct{ Extensions []Extension }

// Proposal is §12.1's Proposal: the field matching Type is set.
type Proposal struct {
	Type                   ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
}

// ProposalOrRef is §12.4's ProposalOrRef: Proposal is set for an inline
// proposal, Reference (a ProposalRef, §5.2) otherwise.
type ProposalOrRef struct {
	Proposal  *Proposal
	Reference []byte
}

// Commit is §12.4's Commit. Path is nil when absent.
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

// GroupContext is §8.1's GroupContext.
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             suite.ID
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              []Extension
}

// Sender is §6's Sender. LeafIndex is set for SenderMember, SenderIndex
// (an index into external_senders) for SenderExternal.
type Sender struct {
	Type        SenderType
	LeafIndex   uint32
	SenderIndex uint32
}

// FramedContent is §6's FramedContent: the field matching ContentType is set
// (ApplicationData may be empty).
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte
	Proposal          *Proposal
	Commit            *Commit
}

// FramedContentAuthData is §6.1's FramedContentAuthData. ConfirmationTag is
// present exactly when the content is a commit.
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte
}

// AuthenticatedContent is §6.1's AuthenticatedContent.
type AuthenticatedContent struct {
	WireFormat WireFormat
	Content    FramedContent
	Auth       FramedContentAuthData
}

// PublicMessage is §6.2's PublicMessage. MembershipTag is present exactly
// when the sender is a member.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte
}

// PrivateMessage is §6.3's PrivateMessage.
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// PrivateMessageContent is §6.3.1's PrivateMessageContent: the content
// matching the enclosing PrivateMessage's ContentType, the auth data, and
// PaddingLen zero bytes of padding.
type PrivateMessageContent struct {
	ApplicationData []byte
	Proposal        *Proposal
	Commit          *Commit
	Auth            FramedContentAuthData
	PaddingLen      int
}

// PrivateContentAAD is §6.3.1's PrivateContentAAD.
type PrivateContentAAD struct {
	GroupID           []byte
	Epoch             uint64
	ContentType       ContentType
	AuthenticatedData []byte
}

// SenderData is §6.3.2's SenderData.
type SenderData struct {
	LeafIndex  uint32
	Generation uint32
	ReuseGuard [4]byte
}

// SenderDataAAD is §6.3.2's SenderDataAAD.
type SenderDataAAD struct {
	GroupID     []byte
	Epoch       uint64
	ContentType ContentType
}

// GroupInfo is §12.4.3's GroupInfo.
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      []Extension
	ConfirmationTag []byte
	Signer          uint32
	Signature       []byte
}

// GroupSecrets is §12.4.3.1's GroupSecrets. PathSecret is zero when absent.
type GroupSecrets struct {
	JoinerSecret secret.Secret
	PathSecret   secret.Secret
	PSKs         []PreSharedKeyID
}

// EncryptedGroupSecrets is §12.4.3.1's EncryptedGroupSecrets.
type EncryptedGroupSecrets struct {
	NewMember             []byte // KeyPackageRef
	EncryptedGroupSecrets HPKECiphertext
}

// Welcome is §12.4.3.1's Welcome.
type Welcome struct {
	CipherSuite        suite.ID
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// MLSMessage is §6's MLSMessage: the field matching WireFormat is set.
type MLSMessage struct {
	Version        ProtocolVersion
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// ExternalPub is the external_pub extension (§12.4.3.2).
type ExternalPub struct{ PublicKey []byte }

// ExternalSender is one entry of the external_senders extension (§12.1.8.1).
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

// RequiredCapabilities is the required_capabilities extension (§11.1).
type RequiredCapabilities struct {
	Extensions  []ExtensionType
	Proposals   []ProposalType
	Credentials []CredentialType
}
