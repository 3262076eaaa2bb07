package framing

import (
	"errors"
	"fmt"
	"io"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/treemath"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// ratchetKind is the secret tree ratchet that content of type ct is
// encrypted with (§6.3.1).
func ratchetKind(ct mls.ContentType) keyschedule.RatchetKind {
	if ct == mls.ContentApplication {
		return keyschedule.Application
	}
	return keyschedule.Handshake
}

// guardNonce returns the content nonce: the key schedule's nonce with the
// reuse guard XORed into its first four bytes (§6.3.1). It copies, since
// the secret tree's nonce must not be changed in place.
func guardNonce(nonce secret.Secret, guard [4]byte) []byte {
	n := append([]byte(nil), nonce.Bytes()...)
	for i, g := range guard {
		n[i] ^= g
	}
	return n
}

// padding is how many zero bytes bring a plaintext of n bytes up to a
// multiple of padTo.
func padding(n, padTo int) int {
	return (padTo - n%padTo) % padTo
}

// privateKeys checks that e can encrypt or decrypt PrivateMessages.
func (e *Epoch) privateKeys() error {
	if e.tree == nil || e.senderData.IsZero() {
		return fmt.Errorf("%w: PrivateMessage needs a secret tree and sender_data_secret", ErrNotConfigured)
	}
	return nil
}

// ProtectPrivate encrypts signed content as a PrivateMessage (§6.3): the
// content, auth data and padding under the next key of the sender's
// handshake or application ratchet, with a fresh reuse guard in the nonce
// (§6.3.1), then the sender data under a key derived from the content
// ciphertext (§6.3.2). Only members can send PrivateMessages.
func (e *Epoch) ProtectPrivate(ac *mls.AuthenticatedContent) (*mls.PrivateMessage, error) {
	c := &ac.Content
	if ac.WireFormat != mls.WireFormatPrivateMessage {
		return nil, fmt.Errorf("%w: signed for %d, protecting as PrivateMessage", ErrWrongWireFormat, ac.WireFormat)
	}
	if err := e.checkGroup(c.GroupID, c.Epoch); err != nil {
		return nil, fmt.Errorf("framing: protecting PrivateMessage: %w", err)
	}
	if c.Sender.Type != mls.SenderMember {
		return nil, fmt.Errorf("%w: sender type %d in a PrivateMessage", ErrInvalidSender, c.Sender.Type)
	}
	if err := checkAuth(ac); err != nil {
		return nil, fmt.Errorf("framing: protecting PrivateMessage: %w", err)
	}
	if err := e.privateKeys(); err != nil {
		return nil, err
	}
	if e.rand == nil {
		return nil, fmt.Errorf("%w: PrivateMessage needs Rand for the reuse guard", ErrNotConfigured)
	}

	// The plaintext is encoded into a buffer with room for the padding and
	// the AEAD tag, and encrypted in place. Proposals and commits have no
	// cheap size estimate; the buffer grows for them as it must.
	size := len(c.ApplicationData) + len(ac.Auth.Signature) + len(ac.Auth.ConfirmationTag) + 16
	pt, err := mls.AppendPrivateMessageContent(make([]byte, 0, size+e.padTo+suite.AEADOverhead), c.ContentType, &mls.PrivateMessageContent{
		ApplicationData: c.ApplicationData,
		Proposal:        c.Proposal,
		Commit:          c.Commit,
		Auth:            ac.Auth,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: PrivateMessageContent: %w", ErrEncoding, err)
	}
	// Padding is zero bytes after the auth data (§6.3.1), so appending them
	// is the same as encoding with PaddingLen set.
	pt = append(pt, make([]byte, padding(len(pt), e.padTo))...)
	aad, err := e.contentAAD(c.GroupID, c.Epoch, c.ContentType, c.AuthenticatedData)
	if err != nil {
		return nil, err
	}

	sd := mls.SenderData{LeafIndex: c.Sender.LeafIndex}
	if _, err := io.ReadFull(e.rand, sd.ReuseGuard[:]); err != nil {
		return nil, fmt.Errorf("framing: reading reuse guard: %w", err)
	}
	gen, key, nonce, err := e.tree.Next(treemath.LeafIndex(sd.LeafIndex), ratchetKind(c.ContentType))
	if err != nil {
		return nil, fmt.Errorf("framing: content key: %w", err)
	}
	sd.Generation = gen
	ct, err := e.suite.AppendSeal(pt[:0], key.Bytes(), guardNonce(nonce, sd.ReuseGuard), aad, pt)
	key.Wipe()
	nonce.Wipe()
	if err != nil {
		return nil, fmt.Errorf("framing: encrypting PrivateMessageContent: %w", err)
	}

	esd, err := e.sealSenderData(&sd, c.GroupID, c.Epoch, c.ContentType, ct)
	if err != nil {
		return nil, err
	}
	return &mls.PrivateMessage{
		GroupID:             c.GroupID,
		Epoch:               c.Epoch,
		ContentType:         c.ContentType,
		AuthenticatedData:   c.AuthenticatedData,
		EncryptedSenderData: esd,
		Ciphertext:          ct,
	}, nil
}

// contentAAD encodes §6.3.1's PrivateContentAAD.
func (e *Epoch) contentAAD(groupID []byte, epoch uint64, ct mls.ContentType, authenticatedData []byte) ([]byte, error) {
	aad, err := marshalSized(&mls.PrivateContentAAD{
		GroupID:           groupID,
		Epoch:             epoch,
		ContentType:       ct,
		AuthenticatedData: authenticatedData,
	}, 4+len(groupID)+8+1+4+len(authenticatedData))
	if err != nil {
		return nil, fmt.Errorf("%w: PrivateContentAAD: %w", ErrEncoding, err)
	}
	return aad, nil
}

// senderDataAAD encodes §6.3.2's SenderDataAAD.
func senderDataAAD(groupID []byte, epoch uint64, ct mls.ContentType) ([]byte, error) {
	aad, err := marshalSized(&mls.SenderDataAAD{GroupID: groupID, Epoch: epoch, ContentType: ct}, 4+len(groupID)+8+1)
	if err != nil {
		return nil, fmt.Errorf("%w: SenderDataAAD: %w", ErrEncoding, err)
	}
	return aad, nil
}

// sealSenderData encrypts sender data under the key and nonce derived from
// the content ciphertext (§6.3.2).
func (e *Epoch) sealSenderData(sd *mls.SenderData, groupID []byte, epoch uint64, ct mls.ContentType, ciphertext []byte) ([]byte, error) {
	pt, err := marshalSized(sd, 4+4+len(sd.ReuseGuard)+suite.AEADOverhead)
	if err != nil {
		return nil, fmt.Errorf("%w: SenderData: %w", ErrEncoding, err)
	}
	aad, err := senderDataAAD(groupID, epoch, ct)
	if err != nil {
		return nil, err
	}
	key, nonce := keyschedule.SenderDataKeyNonce(e.suite, e.senderData.Bytes(), ciphertext)
	defer key.Wipe()
	defer nonce.Wipe()
	esd, err := e.suite.AppendSeal(pt[:0], key.Bytes(), nonce.Bytes(), aad, pt)
	if err != nil {
		return nil, fmt.Errorf("framing: encrypting SenderData: %w", err)
	}
	return esd, nil
}

// openSenderData decrypts and decodes the sender data of pm (§6.3.2).
func (e *Epoch) openSenderData(pm *mls.PrivateMessage) (*mls.SenderData, error) {
	aad, err := senderDataAAD(pm.GroupID, pm.Epoch, pm.ContentType)
	if err != nil {
		return nil, err
	}
	key, nonce := keyschedule.SenderDataKeyNonce(e.suite, e.senderData.Bytes(), pm.Ciphertext)
	defer key.Wipe()
	defer nonce.Wipe()
	pt, err := e.suite.Open(key.Bytes(), nonce.Bytes(), aad, pm.EncryptedSenderData)
	if err != nil {
		return nil, fmt.Errorf("%w: SenderData: %w", ErrDecrypt, err)
	}
	sd := new(mls.SenderData)
	if err := wire.Unmarshal(pt, sd); err != nil {
		return nil, fmt.Errorf("framing: decoding SenderData: %w", err)
	}
	return sd, nil
}

// UnprotectPrivate decrypts a PrivateMessage (§6.3) and returns its
// content: it must be for this epoch of the group, come from a leaf the
// group has, decrypt under the key of the generation its sender data names,
// carry all-zero padding and be signed by the key lookup returns for its
// sender.
//
// The content key is taken from the secret tree, which deletes it (§9.2),
// so a replayed message fails with keyschedule.ErrReplay. The tree deletes
// it even when decryption then fails, so a tampered copy that arrives first
// costs the genuine message its key. The content returned shares pm's
// byte slices.
func (e *Epoch) UnprotectPrivate(pm *mls.PrivateMessage, lookup SignatureKeyFunc) (*mls.AuthenticatedContent, error) {
	if err := e.checkGroup(pm.GroupID, pm.Epoch); err != nil {
		return nil, fmt.Errorf("framing: PrivateMessage: %w", err)
	}
	if err := e.privateKeys(); err != nil {
		return nil, err
	}
	sd, err := e.openSenderData(pm)
	if err != nil {
		return nil, err
	}

	key, nonce, err := e.tree.Get(treemath.LeafIndex(sd.LeafIndex), ratchetKind(pm.ContentType), sd.Generation)
	if errors.Is(err, keyschedule.ErrLeafOutOfRange) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSender, err)
	}
	if err != nil {
		return nil, fmt.Errorf("framing: content key: %w", err)
	}
	aad, err := e.contentAAD(pm.GroupID, pm.Epoch, pm.ContentType, pm.AuthenticatedData)
	if err != nil {
		return nil, err
	}
	pt, err := e.suite.Open(key.Bytes(), guardNonce(nonce, sd.ReuseGuard), aad, pm.Ciphertext)
	key.Wipe()
	nonce.Wipe()
	if err != nil {
		return nil, fmt.Errorf("%w: PrivateMessageContent: %w", ErrDecrypt, err)
	}
	pmc, err := mls.UnmarshalPrivateMessageContent(pt, pm.ContentType)
	if err != nil {
		return nil, fmt.Errorf("framing: decoding PrivateMessageContent: %w", err)
	}

	ac := &mls.AuthenticatedContent{
		WireFormat: mls.WireFormatPrivateMessage,
		Content: mls.FramedContent{
			GroupID:           pm.GroupID,
			Epoch:             pm.Epoch,
			Sender:            mls.Sender{Type: mls.SenderMember, LeafIndex: sd.LeafIndex},
			AuthenticatedData: pm.AuthenticatedData,
			ContentType:       pm.ContentType,
			ApplicationData:   pmc.ApplicationData,
			Proposal:          pmc.Proposal,
			Commit:            pmc.Commit,
		},
		Auth: pmc.Auth,
	}
	if err := checkAuth(ac); err != nil {
		return nil, fmt.Errorf("framing: PrivateMessage: %w", err)
	}
	tbs, err := e.tbs(ac.WireFormat, &ac.Content)
	if err != nil {
		return nil, err
	}
	if err := e.verify(ac, tbs, lookup); err != nil {
		return nil, err
	}
	return ac, nil
}
