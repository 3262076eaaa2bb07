package main

import (
	"encoding/base64"
	"errors"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// The peer reads three fields of an MLSMessage before mlsgroup does: the
// suite of a Welcome or GroupInfo, to pick the signature key that Join and
// ExternalJoin take, and the group ID of a handshake or application
// message, whose group_id the protocol makes optional. All three sit at
// fixed places after the MLSMessage header (RFC 9420 §6):
//
//	uint16 version; uint16 wire_format;
//	Welcome:   uint16 cipher_suite; ...                          (§12.4.3.1)
//	GroupInfo: GroupContext { uint16 version; uint16 cipher_suite; ... } (§12.4.3)
//	PublicMessage: FramedContent { opaque group_id<V>; ... }     (§6.2)
//	PrivateMessage: { opaque group_id<V>; ... }                  (§6.3)
//
// mlsgroup validates the whole message afterwards.

// Wire formats (§6, registry §17.7).
const (
	wirePublicMessage  = 1
	wirePrivateMessage = 2
	wireWelcome        = 3
	wireGroupInfo      = 4
)

var errShortMessage = errors.New("message too short for an MLSMessage")

func u16(b []byte, off int) (uint16, bool) {
	if len(b) < off+2 {
		return 0, false
	}
	return uint16(b[off])<<8 | uint16(b[off+1]), true
}

func wireFormat(msg []byte, want ...uint16) error {
	wf, ok := u16(msg, 2)
	if !ok {
		return errShortMessage
	}
	for _, w := range want {
		if wf == w {
			return nil
		}
	}
	return errors.New("unexpected wire format for this op")
}

func welcomeSuite(msg []byte) (mlsgroup.CipherSuite, error) {
	if err := wireFormat(msg, wireWelcome); err != nil {
		return 0, errors.New("'welcome' is not an MLSMessage with a Welcome")
	}
	cs, ok := u16(msg, 4)
	if !ok {
		return 0, errShortMessage
	}
	return mlsgroup.CipherSuite(cs), nil
}

func groupInfoSuite(msg []byte) (mlsgroup.CipherSuite, error) {
	if err := wireFormat(msg, wireGroupInfo); err != nil {
		return 0, errors.New("'group_info' is not an MLSMessage with a GroupInfo")
	}
	cs, ok := u16(msg, 6)
	if !ok {
		return 0, errShortMessage
	}
	return mlsgroup.CipherSuite(cs), nil
}

// messageGroupID reads the group_id of a PublicMessage or PrivateMessage:
// a variable-length vector with §2.1.2's 1-, 2- or 4-byte length.
func messageGroupID(msg []byte) ([]byte, error) {
	if err := wireFormat(msg, wirePublicMessage, wirePrivateMessage); err != nil {
		return nil, errors.New("'message' is not a PublicMessage or PrivateMessage (use 'join' for a Welcome)")
	}
	b := msg[4:]
	if len(b) == 0 {
		return nil, errShortMessage
	}
	n, size := 0, 1<<(b[0]>>6)
	if size > 4 || len(b) < size {
		return nil, errors.New("bad group_id length in message")
	}
	n = int(b[0] & 0x3f)
	for _, c := range b[1:size] {
		n = n<<8 | int(c)
	}
	if len(b) < size+n {
		return nil, errShortMessage
	}
	return b[size : size+n], nil
}

func b64String(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
