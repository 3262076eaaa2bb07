package framing

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// hexBytes is a hex string of the vectors.
type hexBytes = vectortest.HexBytes

// protectionVector is one entry of message-protection.json (FORMATS.md,
// "Message Protection").
type protectionVector struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	TreeHash                hexBytes `json:"tree_hash"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	SignaturePriv           hexBytes `json:"signature_priv"`
	SignaturePub            hexBytes `json:"signature_pub"`
	EncryptionSecret        hexBytes `json:"encryption_secret"`
	SenderDataSecret        hexBytes `json:"sender_data_secret"`
	MembershipKey           hexBytes `json:"membership_key"`
	Proposal                hexBytes `json:"proposal"`
	ProposalPub             hexBytes `json:"proposal_pub"`
	ProposalPriv            hexBytes `json:"proposal_priv"`
	Commit                  hexBytes `json:"commit"`
	CommitPub               hexBytes `json:"commit_pub"`
	CommitPriv              hexBytes `json:"commit_priv"`
	Application             hexBytes `json:"application"`
	ApplicationPriv         hexBytes `json:"application_priv"`
}

func loadProtectionVectors(t testing.TB) []protectionVector {
	return vectortest.Load[protectionVector](t, "message-protection.json")
}

// vectorSender is the sender of every message of the vectors: leaf 1 of a
// two-member group.
const (
	vectorSender = 1
	vectorLeaves = 2
)

// fixture is the group of one vector, from which tests make Epochs that
// each own a fresh secret tree.
type fixture struct {
	t       testing.TB
	v       protectionVector
	suite   *suite.Suite
	gc      mls.GroupContext
	sigPriv []byte
}

func newFixture(t testing.TB, v protectionVector) *fixture {
	t.Helper()
	s, err := suite.Lookup(suite.ID(v.CipherSuite))
	if err != nil {
		t.Fatal(err)
	}
	priv := []byte(v.SignaturePriv)
	// README.md: some P-521 private keys lost their leading zero byte.
	if s.ID() == suite.MLS256DHKEMP521AES256GCMSHA512P521 && len(priv) == 65 {
		priv = append([]byte{0}, priv...)
	}
	return &fixture{
		t:     t,
		v:     v,
		suite: s,
		gc: mls.GroupContext{
			Version:                 mls.MLS10,
			CipherSuite:             s.ID(),
			GroupID:                 v.GroupID,
			Epoch:                   v.Epoch,
			TreeHash:                v.TreeHash,
			ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
		},
		sigPriv: priv,
	}
}

// epoch returns an Epoch with a fresh secret tree, drawing reuse guards
// from rnd (a seeded generator if nil) and padding to padTo.
func (f *fixture) epoch(rnd io.Reader, padTo int) *Epoch {
	f.t.Helper()
	c := Config{
		Suite:            f.suite,
		GroupContext:     &f.gc,
		MembershipKey:    secret.New(bytes.Clone(f.v.MembershipKey)),
		SenderDataSecret: secret.New(bytes.Clone(f.v.SenderDataSecret)),
		SecretTree:       keyschedule.NewSecretTree(f.suite, f.v.EncryptionSecret, vectorLeaves),
		Rand:             rand.NewChaCha8([32]byte{byte(f.v.CipherSuite)}),
		PadTo:            padTo,
	}
	if rnd != nil {
		c.Rand = rnd
	}
	e, err := New(c)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

// keyOf is the SignatureKeyFunc of a group whose only sender is leaf 1.
func keyOf(pub []byte) SignatureKeyFunc {
	return func(c *mls.FramedContent) ([]byte, error) {
		if c.Sender.Type != mls.SenderMember || c.Sender.LeafIndex != vectorSender {
			return nil, fmt.Errorf("no member at %+v", c.Sender)
		}
		return pub, nil
	}
}

func (f *fixture) lookup() SignatureKeyFunc { return keyOf(f.v.SignaturePub) }

// content is the FramedContent that carries one of the vector's raw values.
func (f *fixture) content(ct mls.ContentType, authenticatedData []byte) *mls.FramedContent {
	f.t.Helper()
	c := &mls.FramedContent{
		GroupID:           f.v.GroupID,
		Epoch:             f.v.Epoch,
		Sender:            mls.Sender{Type: mls.SenderMember, LeafIndex: vectorSender},
		AuthenticatedData: authenticatedData,
		ContentType:       ct,
	}
	var err error
	switch ct {
	case mls.ContentApplication:
		c.ApplicationData = f.v.Application
	case mls.ContentProposal:
		c.Proposal = new(mls.Proposal)
		err = wire.Unmarshal(f.v.Proposal, c.Proposal)
	case mls.ContentCommit:
		c.Commit = new(mls.Commit)
		err = wire.Unmarshal(f.v.Commit, c.Commit)
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// checkContent checks that unprotected content is the vector's raw value,
// sent by leaf 1 in the vector's group and epoch as wf.
func (f *fixture) checkContent(ac *mls.AuthenticatedContent, wf mls.WireFormat, ct mls.ContentType) {
	t := f.t
	t.Helper()
	c := &ac.Content
	if ac.WireFormat != wf {
		t.Errorf("wire format %d, want %d", ac.WireFormat, wf)
	}
	if !bytes.Equal(c.GroupID, f.v.GroupID) || c.Epoch != f.v.Epoch {
		t.Errorf("group %x epoch %d, want %x %d", c.GroupID, c.Epoch, f.v.GroupID, f.v.Epoch)
	}
	if c.Sender != (mls.Sender{Type: mls.SenderMember, LeafIndex: vectorSender}) {
		t.Errorf("sender %+v, want member %d", c.Sender, vectorSender)
	}
	if c.ContentType != ct {
		t.Fatalf("content type %d, want %d", c.ContentType, ct)
	}
	var got, want []byte
	var err error
	switch ct {
	case mls.ContentApplication:
		got, want = c.ApplicationData, f.v.Application
	case mls.ContentProposal:
		got, err = wire.Marshal(c.Proposal)
		want = f.v.Proposal
	case mls.ContentCommit:
		got, err = wire.Marshal(c.Commit)
		want = f.v.Commit
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("content:\n got %x\nwant %x", got, want)
	}
}

func decodeMessage(t testing.TB, raw []byte, wf mls.WireFormat) *mls.MLSMessage {
	t.Helper()
	var m mls.MLSMessage
	if err := wire.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.WireFormat != wf {
		t.Fatalf("wire format %d, want %d", m.WireFormat, wf)
	}
	return &m
}

func encodeMessage(t testing.TB, m *mls.MLSMessage) []byte {
	t.Helper()
	raw, err := wire.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// deterministicSignatures reports whether the suite's signatures depend
// only on key and message (EdDSA), so that re-signing the vectors' content
// must give their exact bytes.
func deterministicSignatures(id suite.ID) bool {
	switch id {
	case suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519,
		suite.MLS128DHKEMX25519CHACHA20POLY1305SHA256Ed25519,
		suite.MLS256DHKEMX448AES256GCMSHA512Ed448,
		suite.MLS256DHKEMX448CHACHA20POLY1305SHA512Ed448:
		return true
	}
	return false
}

// TestMessageProtectionVectors runs message-protection.json (RFC 9420 §6,
// §6.1, §6.2, §6.3, §6.3.1, §6.3.2) as FORMATS.md says, for every suite:
// unprotect the given messages, then protect the raw values and unprotect
// the result. Where signatures are deterministic, re-protecting with the
// vector's reuse guard, padding and authenticated data must also give the
// vector's messages byte for byte.
func TestMessageProtectionVectors(t *testing.T) {
	for i, v := range loadProtectionVectors(t) {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			cases := []struct {
				name      string
				ct        mls.ContentType
				pub, priv []byte
			}{
				{"proposal", mls.ContentProposal, v.ProposalPub, v.ProposalPriv},
				{"commit", mls.ContentCommit, v.CommitPub, v.CommitPriv},
				{"application", mls.ContentApplication, nil, v.ApplicationPriv},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					f := newFixture(t, v)
					if tc.pub != nil {
						f.checkPublicVector(tc.ct, tc.pub)
					} else {
						f.checkPublicApplicationRejected()
					}
					f.checkPrivateVector(tc.ct, tc.priv)
				})
			}
		})
	}
}

// checkPublicVector unprotects the vector's PublicMessage, then protects
// its content again and unprotects that.
func (f *fixture) checkPublicVector(ct mls.ContentType, raw []byte) {
	t := f.t
	t.Helper()
	pm := decodeMessage(t, raw, mls.WireFormatPublicMessage).PublicMessage
	e := f.epoch(nil, 0)
	ac, err := e.UnprotectPublic(pm, f.lookup())
	if err != nil {
		t.Fatalf("unprotecting vector PublicMessage: %v", err)
	}
	f.checkContent(ac, mls.WireFormatPublicMessage, ct)

	mine, err := e.Sign(mls.WireFormatPublicMessage, f.content(ct, pm.Content.AuthenticatedData), f.sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	// The confirmation tag is the committer's to compute (§8.1); the
	// vector's is as good as any for framing.
	mine.Auth.ConfirmationTag = pm.Auth.ConfirmationTag
	out, err := e.ProtectPublic(mine)
	if err != nil {
		t.Fatal(err)
	}
	sent := encodeMessage(t, &mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatPublicMessage, PublicMessage: out})
	if deterministicSignatures(f.suite.ID()) && !bytes.Equal(sent, raw) {
		t.Errorf("re-protected PublicMessage:\n got %x\nwant %x", sent, raw)
	}
	back, err := f.epoch(nil, 0).UnprotectPublic(decodeMessage(t, sent, mls.WireFormatPublicMessage).PublicMessage, f.lookup())
	if err != nil {
		t.Fatalf("unprotecting own PublicMessage: %v", err)
	}
	f.checkContent(back, mls.WireFormatPublicMessage, ct)
	if !bytes.Equal(back.Auth.ConfirmationTag, pm.Auth.ConfirmationTag) {
		t.Errorf("confirmation tag %x, want %x", back.Auth.ConfirmationTag, pm.Auth.ConfirmationTag)
	}
}

// checkPublicApplicationRejected is FORMATS.md's "protecting as a
// PublicMessage fails" for application data (§6).
func (f *fixture) checkPublicApplicationRejected() {
	t := f.t
	t.Helper()
	e := f.epoch(nil, 0)
	if _, err := e.Sign(mls.WireFormatPublicMessage, f.content(mls.ContentApplication, nil), f.sigPriv); err != ErrApplicationInPublic {
		t.Errorf("signing application data as PublicMessage: %v, want %v", err, ErrApplicationInPublic)
	}
}

// checkPrivateVector unprotects the vector's PrivateMessage, then protects
// its content again and unprotects that.
func (f *fixture) checkPrivateVector(ct mls.ContentType, raw []byte) {
	t := f.t
	t.Helper()
	pm := decodeMessage(t, raw, mls.WireFormatPrivateMessage).PrivateMessage
	ac, err := f.epoch(nil, 0).UnprotectPrivate(pm, f.lookup())
	if err != nil {
		t.Fatalf("unprotecting vector PrivateMessage: %v", err)
	}
	f.checkContent(ac, mls.WireFormatPrivateMessage, ct)

	// The vector's reuse guard, generation and padding, to reproduce it.
	probe := f.epoch(nil, 0)
	sd, err := probe.openSenderData(pm)
	if err != nil {
		t.Fatal(err)
	}
	if sd.LeafIndex != vectorSender {
		t.Errorf("sender data leaf %d, want %d", sd.LeafIndex, vectorSender)
	}
	if sd.Generation != 0 {
		t.Fatalf("sender data generation %d, want 0", sd.Generation)
	}
	if n := f.paddingOf(pm, sd); n != 0 {
		t.Fatalf("vector has %d bytes of padding; re-protecting it assumes none", n)
	}

	sender := f.epoch(bytes.NewReader(sd.ReuseGuard[:]), 1)
	mine, err := sender.Sign(mls.WireFormatPrivateMessage, f.content(ct, pm.AuthenticatedData), f.sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	mine.Auth.ConfirmationTag = ac.Auth.ConfirmationTag
	out, err := sender.ProtectPrivate(mine)
	if err != nil {
		t.Fatal(err)
	}
	sent := encodeMessage(t, &mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatPrivateMessage, PrivateMessage: out})
	if deterministicSignatures(f.suite.ID()) && !bytes.Equal(sent, raw) {
		t.Errorf("re-protected PrivateMessage:\n got %x\nwant %x", sent, raw)
	}
	back, err := f.epoch(nil, 0).UnprotectPrivate(decodeMessage(t, sent, mls.WireFormatPrivateMessage).PrivateMessage, f.lookup())
	if err != nil {
		t.Fatalf("unprotecting own PrivateMessage: %v", err)
	}
	f.checkContent(back, mls.WireFormatPrivateMessage, ct)
	if !bytes.Equal(back.Auth.ConfirmationTag, ac.Auth.ConfirmationTag) {
		t.Errorf("confirmation tag %x, want %x", back.Auth.ConfirmationTag, ac.Auth.ConfirmationTag)
	}
}

// paddingOf decrypts pm's content with a fresh tree and returns its
// padding length.
func (f *fixture) paddingOf(pm *mls.PrivateMessage, sd *mls.SenderData) int {
	t := f.t
	t.Helper()
	e := f.epoch(nil, 0)
	key, nonce, err := e.tree.Get(vectorSender, ratchetKind(pm.ContentType), sd.Generation)
	if err != nil {
		t.Fatal(err)
	}
	aad, err := wire.Marshal(&mls.PrivateContentAAD{GroupID: pm.GroupID, Epoch: pm.Epoch, ContentType: pm.ContentType, AuthenticatedData: pm.AuthenticatedData})
	if err != nil {
		t.Fatal(err)
	}
	pt, err := f.suite.Open(key.Bytes(), guardNonce(nonce, sd.ReuseGuard), aad, pm.Ciphertext)
	if err != nil {
		t.Fatal(err)
	}
	pmc, err := mls.UnmarshalPrivateMessageContent(pt, pm.ContentType)
	if err != nil {
		t.Fatal(err)
	}
	return pmc.PaddingLen
}
