package framing

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/keyschedule"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// suite1Fixture is the suite 1 vector of message-protection.json, the
// group the negative tests below tamper with.
func suite1Fixture(t *testing.T) *fixture {
	t.Helper()
	for _, v := range loadProtectionVectors(t) {
		if v.CipherSuite == uint16(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519) {
			return newFixture(t, v)
		}
	}
	t.Fatal("no suite 1 vector")
	return nil
}

// protect signs and protects content of type ct from leaf 1 with a fresh
// Epoch, as wf.
func (f *fixture) protect(wf mls.WireFormat, ct mls.ContentType) (pub *mls.PublicMessage, priv *mls.PrivateMessage) {
	t := f.t
	t.Helper()
	e := f.epoch(nil, 0)
	ac, err := e.Sign(wf, f.content(ct, []byte("aad")), f.sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	if ct == mls.ContentCommit {
		ac.Auth.ConfirmationTag = bytes.Repeat([]byte{7}, f.suite.Nh())
	}
	if wf == mls.WireFormatPublicMessage {
		pub, err = e.ProtectPublic(ac)
	} else {
		priv, err = e.ProtectPrivate(ac)
	}
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

func flipLast(b []byte) []byte {
	b = bytes.Clone(b)
	b[len(b)-1] ^= 1
	return b
}

// TestUnprotectPrivateTampered checks that changing any part of a
// PrivateMessage that an AEAD covers fails decryption (§6.3.1, §6.3.2).
func TestUnprotectPrivateTampered(t *testing.T) {
	f := suite1Fixture(t)
	orig := decodeMessage(t, f.v.ApplicationPriv, mls.WireFormatPrivateMessage).PrivateMessage
	cases := []struct {
		name   string
		tamper func(pm *mls.PrivateMessage)
	}{
		// The sender data key comes from the first Nh bytes of the
		// ciphertext, so the last byte fails the content and the first the
		// sender data.
		{"ciphertext end", func(pm *mls.PrivateMessage) { pm.Ciphertext = flipLast(pm.Ciphertext) }},
		{"ciphertext start", func(pm *mls.PrivateMessage) {
			pm.Ciphertext = bytes.Clone(pm.Ciphertext)
			pm.Ciphertext[0] ^= 1
		}},
		{"encrypted sender data", func(pm *mls.PrivateMessage) { pm.EncryptedSenderData = flipLast(pm.EncryptedSenderData) }},
		{"authenticated data", func(pm *mls.PrivateMessage) { pm.AuthenticatedData = append(bytes.Clone(pm.AuthenticatedData), 0) }},
		{"content type", func(pm *mls.PrivateMessage) { pm.ContentType = mls.ContentProposal }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pm := *orig
			tc.tamper(&pm)
			_, err := f.epoch(nil, 0).UnprotectPrivate(&pm, f.lookup())
			wantErr(t, "tampered PrivateMessage", err, ErrDecrypt)
		})
	}
	// The untouched message still decrypts, so the failures above are the
	// tampering's.
	if _, err := f.epoch(nil, 0).UnprotectPrivate(orig, f.lookup()); err != nil {
		t.Fatal(err)
	}
}

// TestUnprotectPublicMembershipTag checks §6.2's membership tag: a changed
// tag, or content changed under it, is rejected before the signature.
func TestUnprotectPublicMembershipTag(t *testing.T) {
	f := suite1Fixture(t)
	orig := decodeMessage(t, f.v.ProposalPub, mls.WireFormatPublicMessage).PublicMessage
	cases := []struct {
		name   string
		tamper func(pm *mls.PublicMessage)
	}{
		{"tag", func(pm *mls.PublicMessage) { pm.MembershipTag = flipLast(pm.MembershipTag) }},
		{"tag missing", func(pm *mls.PublicMessage) { pm.MembershipTag = nil }},
		{"authenticated data", func(pm *mls.PublicMessage) { pm.Content.AuthenticatedData = []byte("x") }},
		{"signature", func(pm *mls.PublicMessage) { pm.Auth.Signature = flipLast(pm.Auth.Signature) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pm := *orig
			tc.tamper(&pm)
			_, err := f.epoch(nil, 0).UnprotectPublic(&pm, f.lookup())
			wantErr(t, "tampered PublicMessage", err, ErrInvalidMembershipTag)
		})
	}
	t.Run("wrong membership key", func(t *testing.T) {
		e := f.epoch(nil, 0)
		e.membershipKey = secret.New(make([]byte, f.suite.Nh()))
		_, err := e.UnprotectPublic(orig, f.lookup())
		wantErr(t, "other membership key", err, ErrInvalidMembershipTag)
	})
}

// TestUnprotectWrongSignatureKey checks §6.1's signature: content that
// passes the membership tag or decrypts must still be signed by the
// sender's key.
func TestUnprotectWrongSignatureKey(t *testing.T) {
	f := suite1Fixture(t)
	otherPriv, otherPub, err := f.suite.GenerateSignatureKey(rand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	pub := decodeMessage(t, f.v.CommitPub, mls.WireFormatPublicMessage).PublicMessage
	priv := decodeMessage(t, f.v.CommitPriv, mls.WireFormatPrivateMessage).PrivateMessage

	t.Run("public, other verification key", func(t *testing.T) {
		_, err := f.epoch(nil, 0).UnprotectPublic(pub, keyOf(otherPub))
		wantErr(t, "UnprotectPublic", err, ErrInvalidSignature)
	})
	t.Run("private, other verification key", func(t *testing.T) {
		_, err := f.epoch(nil, 0).UnprotectPrivate(priv, keyOf(otherPub))
		wantErr(t, "UnprotectPrivate", err, ErrInvalidSignature)
	})
	t.Run("signed with other key", func(t *testing.T) {
		f.sigPriv = otherPriv
		pm, _ := f.protect(mls.WireFormatPublicMessage, mls.ContentProposal)
		_, err := f.epoch(nil, 0).UnprotectPublic(pm, f.lookup())
		wantErr(t, "UnprotectPublic", err, ErrInvalidSignature)
		_, cm := f.protect(mls.WireFormatPrivateMessage, mls.ContentCommit)
		_, err = f.epoch(nil, 0).UnprotectPrivate(cm, f.lookup())
		wantErr(t, "UnprotectPrivate", err, ErrInvalidSignature)
	})
	t.Run("no key for sender", func(t *testing.T) {
		errBlank := errors.New("blank leaf")
		blank := func(*mls.FramedContent) ([]byte, error) { return nil, errBlank }
		_, err := f.epoch(nil, 0).UnprotectPrivate(priv, blank)
		wantErr(t, "UnprotectPrivate", err, errBlank)
		_, err = f.epoch(nil, 0).UnprotectPublic(pub, blank)
		wantErr(t, "UnprotectPublic", err, errBlank)
	})
}

// TestUnprotectPrivateReplay checks that a PrivateMessage decrypts once:
// its key is deleted on use (§9.2).
func TestUnprotectPrivateReplay(t *testing.T) {
	f := suite1Fixture(t)
	for _, raw := range [][]byte{f.v.ApplicationPriv, f.v.ProposalPriv} {
		pm := decodeMessage(t, raw, mls.WireFormatPrivateMessage).PrivateMessage
		e := f.epoch(nil, 0)
		if _, err := e.UnprotectPrivate(pm, f.lookup()); err != nil {
			t.Fatal(err)
		}
		_, err := e.UnprotectPrivate(pm, f.lookup())
		wantErr(t, "second UnprotectPrivate", err, keyschedule.ErrReplay)
	}
}

// TestApplicationInPublic checks §6: application data is never a
// PublicMessage, neither sent nor received.
func TestApplicationInPublic(t *testing.T) {
	f := suite1Fixture(t)
	e := f.epoch(nil, 0)
	c := f.content(mls.ContentApplication, nil)
	_, err := e.Sign(mls.WireFormatPublicMessage, c, f.sigPriv)
	wantErr(t, "Sign", err, ErrApplicationInPublic)

	// Content signed some other way still cannot be protected, nor a
	// received one unprotected, even with a valid tag and signature.
	tbs, err := mls.MarshalFramedContentTBS(mls.WireFormatPublicMessage, c, &f.gc)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := f.suite.SignWithLabel(f.sigPriv, "FramedContentTBS", tbs)
	if err != nil {
		t.Fatal(err)
	}
	ac := &mls.AuthenticatedContent{WireFormat: mls.WireFormatPublicMessage, Content: *c, Auth: mls.FramedContentAuthData{Signature: sig}}
	_, err = e.ProtectPublic(ac)
	wantErr(t, "ProtectPublic", err, ErrApplicationInPublic)
	tbm, err := mls.MarshalAuthenticatedContentTBM(tbs, &ac.Auth, ac.Content.ContentType)
	if err != nil {
		t.Fatal(err)
	}
	pm := &mls.PublicMessage{Content: *c, Auth: ac.Auth, MembershipTag: f.suite.MAC(f.v.MembershipKey, tbm)}
	_, err = e.UnprotectPublic(pm, f.lookup())
	wantErr(t, "UnprotectPublic", err, ErrApplicationInPublic)
}

// TestWrongGroupOrEpoch checks that messages, and content to be signed,
// are bound to the Epoch's group and epoch.
func TestWrongGroupOrEpoch(t *testing.T) {
	f := suite1Fixture(t)
	pub := decodeMessage(t, f.v.ProposalPub, mls.WireFormatPublicMessage).PublicMessage
	priv := decodeMessage(t, f.v.ProposalPriv, mls.WireFormatPrivateMessage).PrivateMessage
	otherGroup := flipLast(f.v.GroupID)

	p := *pub
	p.Content.GroupID = otherGroup
	_, err := f.epoch(nil, 0).UnprotectPublic(&p, f.lookup())
	wantErr(t, "PublicMessage group", err, ErrWrongGroup)
	p = *pub
	p.Content.Epoch++
	_, err = f.epoch(nil, 0).UnprotectPublic(&p, f.lookup())
	wantErr(t, "PublicMessage epoch", err, ErrWrongEpoch)

	q := *priv
	q.GroupID = otherGroup
	_, err = f.epoch(nil, 0).UnprotectPrivate(&q, f.lookup())
	wantErr(t, "PrivateMessage group", err, ErrWrongGroup)
	q = *priv
	q.Epoch--
	_, err = f.epoch(nil, 0).UnprotectPrivate(&q, f.lookup())
	wantErr(t, "PrivateMessage epoch", err, ErrWrongEpoch)

	c := f.content(mls.ContentProposal, nil)
	c.GroupID = otherGroup
	_, err = f.epoch(nil, 0).Sign(mls.WireFormatPrivateMessage, c, f.sigPriv)
	wantErr(t, "Sign group", err, ErrWrongGroup)
}

// TestPrivateSender checks §6.3.2's sender rules: only members send
// PrivateMessages, from a leaf the group has.
func TestPrivateSender(t *testing.T) {
	f := suite1Fixture(t)
	t.Run("leaf out of range", func(t *testing.T) {
		// A sender whose tree has four leaves writes as leaf 3; the
		// receiver's group has two.
		e, err := New(Config{
			Suite:            f.suite,
			GroupContext:     &f.gc,
			SenderDataSecret: secret.New(bytes.Clone(f.v.SenderDataSecret)),
			SecretTree:       keyschedule.NewSecretTree(f.suite, f.v.EncryptionSecret, 4),
			Rand:             rand.NewChaCha8([32]byte{}),
		})
		if err != nil {
			t.Fatal(err)
		}
		c := f.content(mls.ContentApplication, nil)
		c.Sender.LeafIndex = 3
		ac, err := e.Sign(mls.WireFormatPrivateMessage, c, f.sigPriv)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := e.ProtectPrivate(ac)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.epoch(nil, 0).UnprotectPrivate(pm, f.lookup())
		wantErr(t, "UnprotectPrivate", err, ErrInvalidSender)
	})
	t.Run("external sender", func(t *testing.T) {
		e := f.epoch(nil, 0)
		c := f.content(mls.ContentProposal, nil)
		c.Sender = mls.Sender{Type: mls.SenderExternal}
		ac, err := e.Sign(mls.WireFormatPrivateMessage, c, f.sigPriv)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.ProtectPrivate(ac)
		wantErr(t, "ProtectPrivate", err, ErrInvalidSender)
	})
}

// TestSenderContentRules checks §6.1's pairing of sender types with
// content types.
func TestSenderContentRules(t *testing.T) {
	f := suite1Fixture(t)
	add := &mls.Proposal{Type: mls.ProposalAdd, Add: &mls.Add{}}
	remove := &mls.Proposal{Type: mls.ProposalRemove, Remove: &mls.Remove{}}
	cases := []struct {
		name   string
		sender mls.SenderType
		c      *mls.FramedContent
		ok     bool
	}{
		{"member application", mls.SenderMember, f.content(mls.ContentApplication, nil), true},
		{"external proposal", mls.SenderExternal, f.content(mls.ContentProposal, nil), true},
		{"external commit content", mls.SenderExternal, f.content(mls.ContentCommit, nil), false},
		{"new member add", mls.SenderNewMemberProposal, &mls.FramedContent{ContentType: mls.ContentProposal, Proposal: add}, true},
		{"new member remove", mls.SenderNewMemberProposal, &mls.FramedContent{ContentType: mls.ContentProposal, Proposal: remove}, false},
		{"new member commit", mls.SenderNewMemberCommit, f.content(mls.ContentCommit, nil), true},
		{"new member commit proposal", mls.SenderNewMemberCommit, f.content(mls.ContentProposal, nil), false},
		{"new member commit application", mls.SenderNewMemberCommit, f.content(mls.ContentApplication, nil), false},
	}
	for _, tc := range cases {
		tc.c.Sender = mls.Sender{Type: tc.sender}
		err := checkSender(tc.c)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrInvalidSender) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestProtectMisuse checks that content is protected only as what it was
// signed for, and commits only once their confirmation tag is set.
func TestProtectMisuse(t *testing.T) {
	f := suite1Fixture(t)
	e := f.epoch(nil, 0)
	pubAC, err := e.Sign(mls.WireFormatPublicMessage, f.content(mls.ContentProposal, nil), f.sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.ProtectPrivate(pubAC)
	wantErr(t, "ProtectPrivate of PublicMessage content", err, ErrWrongWireFormat)
	privAC, err := e.Sign(mls.WireFormatPrivateMessage, f.content(mls.ContentProposal, nil), f.sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.ProtectPublic(privAC)
	wantErr(t, "ProtectPublic of PrivateMessage content", err, ErrWrongWireFormat)
	_, err = e.Sign(mls.WireFormatWelcome, f.content(mls.ContentProposal, nil), f.sigPriv)
	wantErr(t, "Sign as Welcome", err, ErrWrongWireFormat)

	for _, wf := range []mls.WireFormat{mls.WireFormatPublicMessage, mls.WireFormatPrivateMessage} {
		ac, err := e.Sign(wf, f.content(mls.ContentCommit, nil), f.sigPriv)
		if err != nil {
			t.Fatal(err)
		}
		if wf == mls.WireFormatPublicMessage {
			_, err = e.ProtectPublic(ac)
		} else {
			_, err = e.ProtectPrivate(ac)
		}
		wantErr(t, "commit without confirmation tag", err, ErrMissingConfirmationTag)
	}

	bare, err := New(Config{Suite: f.suite, GroupContext: &f.gc})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := bare.Sign(mls.WireFormatPrivateMessage, f.content(mls.ContentApplication, nil), f.sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bare.ProtectPrivate(ac)
	wantErr(t, "ProtectPrivate without secret tree", err, ErrNotConfigured)
	pubAC.Content.Sender.LeafIndex = vectorSender
	_, err = bare.ProtectPublic(pubAC)
	wantErr(t, "ProtectPublic without membership key", err, ErrNotConfigured)
}

// TestPadding checks §6.3.1's padding: outgoing plaintext is padded with
// zeros to a multiple of PadTo, and a receiver rejects non-zero padding.
func TestPadding(t *testing.T) {
	f := suite1Fixture(t)
	for _, padTo := range []int{0, 1, 7, 32, 100} {
		e := f.epoch(nil, padTo)
		ac, err := e.Sign(mls.WireFormatPrivateMessage, f.content(mls.ContentApplication, nil), f.sigPriv)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := e.ProtectPrivate(ac)
		if err != nil {
			t.Fatal(err)
		}
		sd, err := f.epoch(nil, 0).openSenderData(pm)
		if err != nil {
			t.Fatal(err)
		}
		n := f.paddingOf(pm, sd)
		unpadded, err := mls.MarshalPrivateMessageContent(pm.ContentType, &mls.PrivateMessageContent{ApplicationData: ac.Content.ApplicationData, Auth: ac.Auth})
		if err != nil {
			t.Fatal(err)
		}
		block := padTo
		if block == 0 {
			block = DefaultPadTo
		}
		if (len(unpadded)+n)%block != 0 || n >= block {
			t.Errorf("PadTo %d: %d-byte content padded by %d", padTo, len(unpadded), n)
		}
	}

	// Non-zero padding, sealed the way ProtectPrivate seals.
	e := f.epoch(nil, 0)
	ac, err := e.Sign(mls.WireFormatPrivateMessage, f.content(mls.ContentApplication, nil), f.sigPriv)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := mls.MarshalPrivateMessageContent(mls.ContentApplication, &mls.PrivateMessageContent{ApplicationData: ac.Content.ApplicationData, Auth: ac.Auth})
	if err != nil {
		t.Fatal(err)
	}
	pt = append(pt, 0, 0, 1)
	aad, err := wire.Marshal(&mls.PrivateContentAAD{GroupID: f.v.GroupID, Epoch: f.v.Epoch, ContentType: mls.ContentApplication})
	if err != nil {
		t.Fatal(err)
	}
	gen, key, nonce, err := e.tree.Next(vectorSender, keyschedule.Application)
	if err != nil {
		t.Fatal(err)
	}
	sd := mls.SenderData{LeafIndex: vectorSender, Generation: gen}
	ct, err := f.suite.Seal(key.Bytes(), guardNonce(nonce, sd.ReuseGuard), aad, pt)
	if err != nil {
		t.Fatal(err)
	}
	esd, err := e.sealSenderData(&sd, f.v.GroupID, f.v.Epoch, mls.ContentApplication, ct)
	if err != nil {
		t.Fatal(err)
	}
	pm := &mls.PrivateMessage{GroupID: f.v.GroupID, Epoch: f.v.Epoch, ContentType: mls.ContentApplication, EncryptedSenderData: esd, Ciphertext: ct}
	_, err = f.epoch(nil, 0).UnprotectPrivate(pm, f.lookup())
	wantErr(t, "non-zero padding", err, wire.ErrMalformed)
}

func TestPaddingLength(t *testing.T) {
	for _, tc := range []struct{ n, padTo, want int }{
		{0, 1, 0}, {5, 1, 0}, {0, 32, 0}, {1, 32, 31}, {31, 32, 1}, {32, 32, 0}, {33, 32, 31}, {1100, 7, 6},
	} {
		if got := padding(tc.n, tc.padTo); got != tc.want {
			t.Errorf("padding(%d, %d) = %d, want %d", tc.n, tc.padTo, got, tc.want)
		}
	}
}

// BenchmarkProtectUnprotect1KiB is one 1 KiB application message through
// Sign, ProtectPrivate and UnprotectPrivate in suite 1, sender and receiver
// each with its own secret tree from the same encryption secret.
func BenchmarkProtectUnprotect1KiB(b *testing.B) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	rnd := rand.NewChaCha8([32]byte{42})
	rndBytes := func(n int) []byte {
		out := make([]byte, n)
		rnd.Read(out)
		return out
	}
	sigPriv, sigPub, err := s.GenerateSignatureKey(rnd)
	if err != nil {
		b.Fatal(err)
	}
	gc := &mls.GroupContext{
		Version:                 mls.MLS10,
		CipherSuite:             s.ID(),
		GroupID:                 rndBytes(16),
		Epoch:                   7,
		TreeHash:                rndBytes(s.Nh()),
		ConfirmedTranscriptHash: rndBytes(s.Nh()),
	}
	encryptionSecret, senderDataSecret := rndBytes(s.Nh()), rndBytes(s.Nh())
	const nLeaves, leaf = 8, 5
	newEpoch := func() *Epoch {
		e, err := New(Config{
			Suite:            s,
			GroupContext:     gc,
			SenderDataSecret: secret.New(bytes.Clone(senderDataSecret)),
			SecretTree:       keyschedule.NewSecretTree(s, encryptionSecret, nLeaves),
			Rand:             rnd,
		})
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	sender, receiver := newEpoch(), newEpoch()
	content := &mls.FramedContent{
		GroupID:         gc.GroupID,
		Epoch:           gc.Epoch,
		Sender:          mls.Sender{Type: mls.SenderMember, LeafIndex: leaf},
		ContentType:     mls.ContentApplication,
		ApplicationData: rndBytes(1024),
	}
	lookup := func(c *mls.FramedContent) ([]byte, error) {
		if c.Sender.LeafIndex != leaf {
			return nil, errors.New("unknown sender")
		}
		return sigPub, nil
	}

	b.ReportAllocs()
	for b.Loop() {
		ac, err := sender.Sign(mls.WireFormatPrivateMessage, content, sigPriv)
		if err != nil {
			b.Fatal(err)
		}
		pm, err := sender.ProtectPrivate(ac)
		if err != nil {
			b.Fatal(err)
		}
		got, err := receiver.UnprotectPrivate(pm, lookup)
		if err != nil {
			b.Fatal(err)
		}
		if len(got.Content.ApplicationData) != len(content.ApplicationData) {
			b.Fatal("application data length changed")
		}
	}
	nsPerOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(1e9/nsPerOp, "msgs/s")
}

// TestTBSMatchesMLS checks that Epoch's FramedContentTBS, with its
// GroupContext encoded in advance, is package mls's encoding (§6.1) for
// every sender type, with the context only where §6.1 puts it.
func TestTBSMatchesMLS(t *testing.T) {
	f := suite1Fixture(t)
	e := f.epoch(nil, 0)
	for _, st := range []mls.SenderType{mls.SenderMember, mls.SenderExternal, mls.SenderNewMemberProposal, mls.SenderNewMemberCommit} {
		for _, ct := range []mls.ContentType{mls.ContentApplication, mls.ContentProposal, mls.ContentCommit} {
			for _, wf := range []mls.WireFormat{mls.WireFormatPublicMessage, mls.WireFormatPrivateMessage} {
				c := f.content(ct, []byte("aad"))
				c.Sender = mls.Sender{Type: st, LeafIndex: 1, SenderIndex: 2}
				got, err := e.tbs(wf, c)
				if err != nil {
					t.Fatal(err)
				}
				want, err := mls.MarshalFramedContentTBS(wf, c, &f.gc)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("sender %d content %d wire format %d:\n got %x\nwant %x", st, ct, wf, got, want)
				}
			}
		}
	}
}

// BenchmarkSignVerify1KiB is the signature work alone of
// BenchmarkProtectUnprotect1KiB (SignWithLabel and VerifyWithLabel of a
// FramedContentTBS with 1 KiB of application data): the floor that framing
// adds its symmetric work and encoding to.
func BenchmarkSignVerify1KiB(b *testing.B) {
	s, err := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	if err != nil {
		b.Fatal(err)
	}
	rnd := rand.NewChaCha8([32]byte{42})
	sigPriv, sigPub, err := s.GenerateSignatureKey(rnd)
	if err != nil {
		b.Fatal(err)
	}
	tbs := make([]byte, 1024+160)
	rnd.Read(tbs)
	b.ReportAllocs()
	for b.Loop() {
		sig, err := s.SignWithLabel(sigPriv, "FramedContentTBS", tbs)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.VerifyWithLabel(sigPub, "FramedContentTBS", tbs, sig); err != nil {
			b.Fatal(err)
		}
	}
	nsPerOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(1e9/nsPerOp, "msgs/s")
}
