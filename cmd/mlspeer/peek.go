package main

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// The peer reads three fields of an MLSMessage before mlsgroup does: the
// KeyPackageRefs of a Welcome, to pick the signature key that Join takes,
// the suite of a GroupInfo, to pick the one ExternalJoin takes, and the group ID of a handshake or application
// message, whose group_id the protocol makes optional. All three sit at
// fixed places after the MLSMessage header (RFC 9420 §6):
//
//	uint16 version; uint16 wire_format;
//	Welcome:   uint16 cipher_suite; EncryptedGroupSecrets secrets<V>; ... (§12.4.3.1)
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

// welcomeRefs lists the KeyPackageRefs a Welcome's secrets are for, in
// order (§12.4.3.1):
//
//	Welcome: uint16 cipher_suite; EncryptedGroupSecrets secrets<V>; ...
//	EncryptedGroupSecrets: opaque new_member<V>;
//	                       HPKECiphertext { opaque kem_output<V>; opaque ciphertext<V>; }
func welcomeRefs(msg []byte) ([][]byte, error) {
	if err := wireFormat(msg, wireWelcome); err != nil {
		return nil, errors.New("'welcome' is not an MLSMessage with a Welcome")
	}
	if len(msg) < 6 {
		return nil, errShortMessage
	}
	secrets, _, err := readVector(msg[6:])
	if err != nil {
		return nil, fmt.Errorf("secrets of the Welcome: %w", err)
	}
	var refs [][]byte
	for len(secrets) > 0 {
		ref, rest, err := readVector(secrets)
		if err != nil {
			return nil, fmt.Errorf("secret %d of the Welcome: %w", len(refs), err)
		}
		for range 2 { // kem_output, ciphertext
			if _, rest, err = readVector(rest); err != nil {
				return nil, fmt.Errorf("secret %d of the Welcome: %w", len(refs), err)
			}
		}
		refs, secrets = append(refs, ref), rest
	}
	return refs, nil
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

// messageGroupID reads the group_id of a PublicMessage or PrivateMessage.
func messageGroupID(msg []byte) ([]byte, error) {
	if err := wireFormat(msg, wirePublicMessage, wirePrivateMessage); err != nil {
		return nil, errors.New("'message' is not a PublicMessage or PrivateMessage (use 'join' for a Welcome)")
	}
	id, _, err := readVector(msg[4:])
	if err != nil {
		return nil, fmt.Errorf("group_id: %w", err)
	}
	return id, nil
}

// readVector reads a variable-length vector with §2.1.2's 1-, 2- or 4-byte
// length, returning it and what follows.
func readVector(b []byte) (v, rest []byte, err error) {
	if len(b) == 0 {
		return nil, nil, errShortMessage
	}
	n, size := 0, 1<<(b[0]>>6)
	if size > 4 || len(b) < size {
		return nil, nil, errors.New("bad vector length")
	}
	n = int(b[0] & 0x3f)
	for _, c := range b[1:size] {
		n = n<<8 | int(c)
	}
	if len(b)-size < n {
		return nil, nil, errShortMessage
	}
	return b[size : size+n], b[size+n:], nil
}

func b64String(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
