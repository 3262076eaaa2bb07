package mls

import (
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Marshal encodes an Extension (§13).
func (x *Extension) Marshal(b *cryptobyte.Builder) {
	b.AddUint16(uint16(x.Type))
	wire.AddOpaque(b, x.Data)
}

// Unmarshal decodes an Extension. Every extension type is accepted: the
// body is opaque here, and whether an unknown type is acceptable depends on
// where the extension appears (§13, §7.2).
func (x *Extension) Unmarshal(s *cryptobyte.String) error {
	var t uint16
	if !s.ReadUint16(&t) {
		return wire.Errorf("Extension.extension_type")
	}
	x.Type = ExtensionType(t)
	return readOpaque(s, &x.Data, "Extension.extension_data")
}

// FindExtension returns the extension of type t in exts, if any.
func FindExtension(exts []Extension, t ExtensionType) (*Extension, bool) {
	for i := range exts {
		if exts[i].Type == t {
			return &exts[i], true
		}
	}
	return nil, false
}

// ValidateExtensions checks that exts holds at most one extension of each
// type (§13). Every decoder in this package already runs it on each
// extension list it reads, so a decoded structure never holds duplicates;
// encoders do not, so callers building lists can check them here.
func ValidateExtensions(exts []Extension) error {
	seen := make(map[ExtensionType]struct{}, len(exts))
	for _, e := range exts {
		if _, dup := seen[e.Type]; dup {
			return fmt.Errorf("%w %d", ErrDuplicateExtension, e.Type)
		}
		seen[e.Type] = struct{}{}
	}
	return nil
}

// readExtensions reads an Extension extensions<V> and rejects duplicates.
func readExtensions(s *cryptobyte.String, out *[]Extension, field string) error {
	if err := readVector(s, out, field); err != nil {
		return err
	}
	if err := ValidateExtensions(*out); err != nil {
		return fmt.Errorf("%w: %s: %w", wire.ErrMalformed, field, err)
	}
	return nil
}

// Marshal encodes an ExternalPub extension body (§12.4.3.2).
func (x *ExternalPub) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.PublicKey)
}

// Unmarshal decodes an ExternalPub extension body.
func (x *ExternalPub) Unmarshal(s *cryptobyte.String) error {
	return readOpaque(s, &x.PublicKey, "ExternalPub.external_pub")
}

// Marshal encodes an ExternalSender (§12.1.8.1).
func (x *ExternalSender) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, x.SignatureKey)
	x.Credential.Marshal(b)
}

// Unmarshal decodes an ExternalSender.
func (x *ExternalSender) Unmarshal(s *cryptobyte.String) error {
	if err := readOpaque(s, &x.SignatureKey, "ExternalSender.signature_key"); err != nil {
		return err
	}
	return x.Credential.Unmarshal(s)
}

// ExternalSenders is the body of the external_senders extension
// (§12.1.8.1): ExternalSender external_senders<V>.
type ExternalSenders []ExternalSender

// Marshal encodes an external_senders extension body.
func (x *ExternalSenders) Marshal(b *cryptobyte.Builder) {
	addVector(b, *x)
}

// Unmarshal decodes an external_senders extension body.
func (x *ExternalSenders) Unmarshal(s *cryptobyte.String) error {
	return readVector(s, (*[]ExternalSender)(x), "ExternalSenders.external_senders")
}

// Marshal encodes a RequiredCapabilities extension body (§11.1).
func (x *RequiredCapabilities) Marshal(b *cryptobyte.Builder) {
	addUint16s(b, x.Extensions)
	addUint16s(b, x.Proposals)
	addUint16s(b, x.Credentials)
}

// Unmarshal decodes a RequiredCapabilities extension body. Unknown types are
// kept: whether they can be satisfied is for the group to decide.
func (x *RequiredCapabilities) Unmarshal(s *cryptobyte.String) error {
	if err := readUint16s(s, &x.Extensions, "RequiredCapabilities.extension_types"); err != nil {
		return err
	}
	if err := readUint16s(s, &x.Proposals, "RequiredCapabilities.proposal_types"); err != nil {
		return err
	}
	return readUint16s(s, &x.Credentials, "RequiredCapabilities.credential_types")
}

// ApplicationID is the body of the application_id extension (§5.3.3): an
// opaque application-defined identifier of the member.
type ApplicationID []byte

// Marshal encodes an application_id extension body.
func (x *ApplicationID) Marshal(b *cryptobyte.Builder) {
	wire.AddOpaque(b, *x)
}

// Unmarshal decodes an application_id extension body.
func (x *ApplicationID) Unmarshal(s *cryptobyte.String) error {
	return readOpaque(s, (*[]byte)(x), "ApplicationID.application_id")
}

// ExtensionBody is implemented by the extension body types of §17.3:
// ApplicationID, RatchetTree, RequiredCapabilities, ExternalPub and
// ExternalSenders.
type ExtensionBody interface {
	wire.Marshaler
	wire.Unmarshaler
	ExtensionType() ExtensionType
}

// ExtensionType returns ExtApplicationID.
func (*ApplicationID) ExtensionType() ExtensionType { return ExtApplicationID }

// ExtensionType returns ExtRatchetTree.
func (*RatchetTree) ExtensionType() ExtensionType { return ExtRatchetTree }

// ExtensionType returns ExtRequiredCapabilities.
func (*RequiredCapabilities) ExtensionType() ExtensionType { return ExtRequiredCapabilities }

// ExtensionType returns ExtExternalPub.
func (*ExternalPub) ExtensionType() ExtensionType { return ExtExternalPub }

// ExtensionType returns ExtExternalSenders.
func (*ExternalSenders) ExtensionType() ExtensionType { return ExtExternalSenders }

// NewExtension encodes body as an Extension of its type.
func NewExtension(body ExtensionBody) (Extension, error) {
	data, err := wire.Marshal(body)
	if err != nil {
		return Extension{}, err
	}
	return Extension{Type: body.ExtensionType(), Data: data}, nil
}

// DecodeExtension finds the extension of body's type in exts and decodes it
// into body, rejecting trailing bytes. found is false, with a nil error,
// when exts has no such extension.
func DecodeExtension(exts []Extension, body ExtensionBody) (found bool, err error) {
	e, ok := FindExtension(exts, body.ExtensionType())
	if !ok {
		return false, nil
	}
	return true, wire.Unmarshal(e.Data, body)
}
