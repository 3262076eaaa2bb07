package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// Marshal encodes a KeyPackage (§10).
func (x *KeyPackage) Marshal(b *cryptobyte.Builder) {
	x.marshalTBS(b)
	wire.AddOpaque(b, x.Signature)
}

// marshalTBS encodes the KeyPackageTBS: every field but the signature.
func (x *KeyPackage) marshalTBS(b *cryptobyte.Builder) {
	b.AddUint16(uint16(x.Version))
	b.AddUint16(uint16(x.CipherSuite))
	wire.AddOpaque(b, x.InitKey)
	x.LeafNode.Marshal(b)
	addVector(b, x.Extensions)
}

// Unmarshal decodes a KeyPackage. Version and cipher suite are kept as sent
// for the caller to check (§10.1).
func (x *KeyPackage) Unmarshal(s *cryptobyte.String) error {
	var version, cs uint16
	if !s.ReadUint16(&version) {
		return wire.Errorf("KeyPackage.version")
	}
	if !s.ReadUint16(&cs) {
		return wire.Errorf("KeyPackage.cipher_suite")
	}
	x.Version, x.CipherSuite = ProtocolVersion(version), suite.ID(cs)
	if err := readOpaque(s, &x.InitKey, "KeyPackage.init_key"); err != nil {
		return err
	}
	if err := x.LeafNode.Unmarshal(s); err != nil {
		return err
	}
	if err := readExtensions(s, &x.Extensions, "KeyPackage.extensions"); err != nil {
		return err
	}
	return readOpaque(s, &x.Signature, "KeyPackage.signature")
}

// MarshalTBS returns the KeyPackageTBS of §10, the content of the key
// package's signature.
func (x *KeyPackage) MarshalTBS() ([]byte, error) {
	return marshal(x.marshalTBS)
}

// KeyPackageRef is §5.2's KeyPackageRef: RefHash("MLS 1.0 KeyPackage
// Reference", KeyPackage) in the suite s.
func KeyPackageRef(s *suite.Suite, kp *KeyPackage) ([]byte, error) {
	data, err := wire.Marshal(kp)
	if err != nil {
		return nil, err
	}
	return s.RefHash("MLS 1.0 KeyPackage Reference", data), nil
}
