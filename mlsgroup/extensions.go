package mlsgroup

import (
	"bytes"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
)

// Extension types of RFC 9420 (§17.3).
const (
	ExtensionApplicationID        uint16 = uint16(mls.ExtApplicationID)
	ExtensionRatchetTree          uint16 = uint16(mls.ExtRatchetTree)
	ExtensionRequiredCapabilities uint16 = uint16(mls.ExtRequiredCapabilities)
	ExtensionExternalPub          uint16 = uint16(mls.ExtExternalPub)
	ExtensionExternalSenders      uint16 = uint16(mls.ExtExternalSenders)
)

// RequiredCapabilities is the required_capabilities GroupContext extension
// (§11.1): what every member must support.
type RequiredCapabilities struct {
	Extensions  []uint16
	Proposals   []uint16
	Credentials []uint16
}

// Extension encodes r as an Extension.
func (r RequiredCapabilities) Extension() (Extension, error) {
	body := mls.RequiredCapabilities{}
	for _, e := range r.Extensions {
		body.Extensions = append(body.Extensions, mls.ExtensionType(e))
	}
	for _, p := range r.Proposals {
		body.Proposals = append(body.Proposals, mls.ProposalType(p))
	}
	for _, c := range r.Credentials {
		body.Credentials = append(body.Credentials, mls.CredentialType(c))
	}
	return newExtension(&body)
}

// ExternalSender is a party allowed to send proposals to the group from
// outside it (§12.1.8.1): its signature key and basic credential.
type ExternalSender struct {
	SignatureKey []byte
	Identity     []byte
}

// ExternalSendersExtension encodes the external_senders GroupContext
// extension (§12.1.8.1).
func ExternalSendersExtension(senders []ExternalSender) (Extension, error) {
	body := make(mls.ExternalSenders, len(senders))
	for i, s := range senders {
		body[i] = mls.ExternalSender{
			SignatureKey: bytes.Clone(s.SignatureKey),
			Credential:   mls.Credential{Type: mls.CredentialBasic, Identity: bytes.Clone(s.Identity)},
		}
	}
	return newExtension(&body)
}

// ApplicationIDExtension encodes the application_id leaf extension
// (§5.3.3).
func ApplicationIDExtension(id []byte) (Extension, error) {
	body := mls.ApplicationID(bytes.Clone(id))
	return newExtension(&body)
}

func newExtension(body mls.ExtensionBody) (Extension, error) {
	e, err := mls.NewExtension(body)
	if err != nil {
		return Extension{}, fmt.Errorf("mlsgroup: encoding extension: %w", err)
	}
	return Extension{Type: uint16(e.Type), Data: e.Data}, nil
}
