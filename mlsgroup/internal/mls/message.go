package mls

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// body returns the field of x that WireFormat selects, nil if it is unset
// or the wire format is unknown.
func (x *MLSMessage) body() wire.Marshaler {
	var m wire.Marshaler
	switch x.WireFormat {
	case WireFormatPublicMessage:
		if x.PublicMessage != nil {
			m = x.PublicMessage
		}
	case WireFormatPrivateMessage:
		if x.PrivateMessage != nil {
			m = x.PrivateMessage
		}
	case WireFormatWelcome:
		if x.Welcome != nil {
			m = x.Welcome
		}
	case WireFormatGroupInfo:
		if x.GroupInfo != nil {
			m = x.GroupInfo
		}
	case WireFormatKeyPackage:
		if x.KeyPackage != nil {
			m = x.KeyPackage
		}
	}
	return m
}

// Marshal encodes an MLSMessage (§6).
func (x *MLSMessage) Marshal(b *cryptobyte.Builder) {
	body := x.body()
	if body == nil {
		invalidf(b, "MLSMessage: wire format %d without its body", x.WireFormat)
		return
	}
	b.AddUint16(uint16(x.Version))
	b.AddUint16(uint16(x.WireFormat))
	body.Marshal(b)
}

// Unmarshal decodes an MLSMessage. The version must be mls10, because the
// layout of everything after it is version-specific; a wire format outside
// §17.2's initial registry is malformed because its body cannot be
// delimited.
func (x *MLSMessage) Unmarshal(s *cryptobyte.String) error {
	var version, wf uint16
	if !s.ReadUint16(&version) || ProtocolVersion(version) != MLS10 {
		return wire.Errorf("MLSMessage.version")
	}
	if !s.ReadUint16(&wf) {
		return wire.Errorf("MLSMessage.wire_format")
	}
	*x = MLSMessage{Version: MLS10, WireFormat: WireFormat(wf)}
	var body wire.Unmarshaler
	switch x.WireFormat {
	case WireFormatPublicMessage:
		x.PublicMessage = new(PublicMessage)
		body = x.PublicMessage
	case WireFormatPrivateMessage:
		x.PrivateMessage = new(PrivateMessage)
		body = x.PrivateMessage
	case WireFormatWelcome:
		x.Welcome = new(Welcome)
		body = x.Welcome
	case WireFormatGroupInfo:
		x.GroupInfo = new(GroupInfo)
		body = x.GroupInfo
	case WireFormatKeyPackage:
		x.KeyPackage = new(KeyPackage)
		body = x.KeyPackage
	default:
		return wire.Errorf("MLSMessage.wire_format %d", wf)
	}
	return body.Unmarshal(s)
}
