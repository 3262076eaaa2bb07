package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/framing"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
)

// TestExternalJoin: a joiner commits itself into the group from a
// GroupInfo with external_pub (§12.4.3.2), with the tree in the GroupInfo
// or out of band, and later resyncs (replacing its own leaf).
func TestExternalJoin(t *testing.T) {
	eachReload(t, func(t *testing.T, reload bool) {
		alice, bob := twoMembers(t, DefaultCipherSuite, reload)
		eve := newMember(t, "eve", DefaultCipherSuite, 5)
		eve.reload = reload

		gi, err := alice.g.GroupInfo(GroupInfoOptions{OmitRatchetTree: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ExternalJoin(eve.cfg(), gi, []byte("eve"), eve.signer, ExternalJoinOptions{}); !errors.Is(err, ErrInvalidWelcome) {
			t.Fatalf("no tree: err = %v, want ErrInvalidWelcome", err)
		}
		tree, err := alice.g.RatchetTree()
		if err != nil {
			t.Fatal(err)
		}
		sent, err := ExternalJoin(eve.cfg(), gi, []byte("eve"), eve.signer, ExternalJoinOptions{RatchetTree: tree})
		if err != nil {
			t.Fatal(err)
		}
		eve.set(sent.Group)
		for _, m := range []*member{alice, bob} {
			r := m.process(sent.Message)
			if !r.Commit.External || r.Sender.Type != SenderNewMemberCommit || r.Commit.Committer != eve.g.LeafIndex() {
				t.Fatalf("%s: %+v", m.name, r.Commit)
			}
		}
		all := []*member{alice, bob, eve}
		agree(t, all...)
		send(t, eve, "hi from eve", alice, bob)
		send(t, bob, "hi eve", alice, eve)

		// Eve lost her state and comes back through a resync commit.
		gi, err = bob.g.GroupInfo(GroupInfoOptions{})
		if err != nil {
			t.Fatal(err)
		}
		old := eve.g.LeafIndex()
		eve2 := newMember(t, "eve", DefaultCipherSuite, 6)
		eve2.signer, eve2.reload = eve.signer, reload
		sent, err = ExternalJoin(eve2.cfg(), gi, []byte("eve"), eve2.signer, ExternalJoinOptions{Resync: &old})
		if err != nil {
			t.Fatal(err)
		}
		eve2.set(sent.Group)
		alice.process(sent.Message)
		r := bob.process(sent.Message)
		if len(r.Commit.Removed) != 1 || r.Commit.Removed[0].LeafIndex != old {
			t.Fatalf("resync removed %+v", r.Commit.Removed)
		}
		agree(t, alice, bob, eve2)
		send(t, eve2, "back", alice, bob)
	})
}

// TestProposalsByReference: proposals from several members, committed by
// reference together with proposals by value (§12.4), a Welcome without
// the ratchet tree (§12.4.3.3), a self-remove proposal (leaving), and
// public handshake messages (§6.2).
func TestProposalsByReference(t *testing.T) {
	eachReload(t, func(t *testing.T, reload bool) {
		alice, bob := twoMembers(t, DefaultCipherSuite, reload)
		carol := newMember(t, "carol", DefaultCipherSuite, 3)
		dave := newMember(t, "dave", DefaultCipherSuite, 4)
		carol.reload, dave.reload = reload, reload

		// Bob proposes Carol; Alice commits it by reference and Dave by
		// value, as a PublicMessage, with the tree left out.
		prop, err := bob.g.Propose(AddProposal(carol.keyPackage()), ProposeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bob.set(prop.Group)
		r := alice.process(prop.Message)
		if r.Kind != KindProposal || r.ProposalType != ProposalAdd || !bytes.Equal(r.ProposalRef, prop.ProposalRef) {
			t.Fatalf("proposal: %+v", r)
		}
		if alice.g.PendingProposals() != 1 {
			t.Fatal("proposal not pending")
		}
		if _, err := alice.g.Encrypt([]byte("x"), nil); !errors.Is(err, ErrPendingProposals) {
			t.Fatalf("encrypt with pending proposals: err = %v", err)
		}
		sent := alice.commit(CommitOptions{
			Proposals:       []Proposal{AddProposal(dave.keyPackage())},
			Framing:         FramingPublic,
			OmitRatchetTree: true,
		})
		r = bob.process(sent.Message)
		if len(r.Commit.Added) != 2 || string(r.Commit.Added[0].Identity) != "carol" || string(r.Commit.Added[1].Identity) != "dave" {
			t.Fatalf("added %+v", r.Commit.Added)
		}
		tree, err := alice.g.RatchetTree()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Join(carol.cfg(), sent.Welcome, carol.signer, JoinOptions{}); !errors.Is(err, ErrInvalidWelcome) {
			t.Fatalf("join without tree: err = %v", err)
		}
		carol.join(sent.Welcome, JoinOptions{RatchetTree: tree})
		dave.join(sent.Welcome, JoinOptions{RatchetTree: tree})
		all := []*member{alice, bob, carol, dave}
		agree(t, all...)
		send(t, dave, "hello", alice, bob, carol)

		// Dave leaves: he proposes his own removal, Carol commits it.
		prop, err = dave.g.Propose(RemoveProposal(dave.g.LeafIndex()), ProposeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dave.set(prop.Group)
		for _, m := range []*member{alice, bob, carol} {
			m.process(prop.Message)
		}
		// A member cannot commit its own removal; its commits leave it out.
		if c, err := dave.g.Commit(CommitOptions{SkipPending: false}); err != nil || c.Group.staged.info.SelfRemoved {
			t.Fatalf("dave's own commit: %v", err)
		}
		sent = carol.commit(CommitOptions{})
		for _, m := range []*member{alice, bob, dave} {
			m.process(sent.Message)
		}
		if !dave.g.Removed() {
			t.Fatal("dave still in")
		}
		agree(t, alice, bob, carol)
		send(t, bob, "bye dave", alice, carol)
	})
}

// TestCommitRace: two members commit in the same epoch; the one the
// delivery service orders first wins (§14). The winner's echo merges its
// staged commit, the loser's is discarded and it follows the winner.
func TestCommitRace(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, true)
	a, err := alice.g.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bob.g.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	alice.set(a.Group)
	bob.set(b.Group)
	if _, err := alice.g.Commit(CommitOptions{}); !errors.Is(err, ErrCommitPending) {
		t.Fatalf("second commit: err = %v", err)
	}
	// The delivery service orders Alice's first and echoes it to her.
	r := alice.process(a.Message)
	if !r.OwnCommit || alice.g.Epoch() != 2 {
		t.Fatalf("echo: own=%v epoch %d", r.OwnCommit, alice.g.Epoch())
	}
	r = bob.process(a.Message)
	if !r.DiscardedCommit || bob.g.HasStagedCommit() {
		t.Fatal("bob's commit not discarded")
	}
	if _, err := alice.g.Process(b.Message); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("losing commit: err = %v", err)
	}
	agree(t, alice, bob)
	send(t, bob, "after the race", alice)
}

// TestPreSharedKeys: external and resumption PSKs injected by proposal
// (§8.4, §12.1.4), and a Welcome carrying an external PSK.
func TestPreSharedKeys(t *testing.T) {
	psk := []byte("a shared secret of the two nodes")
	withPSK := func(m *member) {
		m.pskLookup = func(id []byte) ([]byte, error) {
			if string(id) == "psk-1" {
				return psk, nil
			}
			return nil, fmt.Errorf("unknown")
		}
		m.roundTrip() // reload with the new Config
	}
	alice, bob := twoMembers(t, DefaultCipherSuite, true)
	withPSK(alice)
	carol := newMember(t, "carol", DefaultCipherSuite, 3)
	carol.reload = true
	if _, err := alice.g.Commit(CommitOptions{Proposals: []Proposal{PreSharedKeyProposal(PSKID{External: []byte("psk-1")})}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.g.Propose(PreSharedKeyProposal(PSKID{External: []byte("psk-1")}), ProposeOptions{}); !errors.Is(err, ErrUnknownPSK) {
		t.Fatalf("bob without the PSK: err = %v", err)
	}
	withPSK(bob)
	withPSK(carol)
	sent := alice.commit(CommitOptions{Proposals: []Proposal{
		PreSharedKeyProposal(PSKID{External: []byte("psk-1")}),
		PreSharedKeyProposal(PSKID{Epoch: alice.g.Epoch()}),
	}})
	r := bob.process(sent.Message)
	if r.Commit.PreSharedKeys != 2 {
		t.Fatalf("%d PSKs", r.Commit.PreSharedKeys)
	}
	agree(t, alice, bob)
	// The Welcome carries the external PSK to the joiner (§12.4.3.1).
	sent = alice.commit(CommitOptions{Proposals: []Proposal{
		PreSharedKeyProposal(PSKID{External: []byte("psk-1")}),
		AddProposal(carol.keyPackage()),
	}})
	bob.process(sent.Message)
	carol.join(sent.Welcome, JoinOptions{})
	agree(t, alice, bob, carol)
	// A resumption PSK of a retained past epoch, by proposal.
	prop, err := bob.g.Propose(PreSharedKeyProposal(PSKID{Epoch: bob.g.Epoch() - 1}), ProposeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob.set(prop.Group)
	alice.process(prop.Message)
	if _, err := carol.g.Process(prop.Message); !errors.Is(err, ErrUnknownPSK) {
		t.Fatalf("carol lacks the past epoch: err = %v", err)
	}
	sent = alice.commit(CommitOptions{})
	bob.process(sent.Message)
	agree(t, alice, bob)
}

// TestGroupContextExtensions: a GroupContextExtensions proposal (§12.1.7)
// setting required_capabilities, which then binds new members (§11.1).
func TestGroupContextExtensions(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, true)
	// Require the basic credential and application_id: both supported by
	// everyone (application_id is a default extension).
	rc := requiredCapabilities(t, []uint16{1}, nil, []uint16{1})
	sent := alice.commit(CommitOptions{Proposals: []Proposal{GroupContextExtensionsProposal([]Extension{rc})}})
	r := bob.process(sent.Message)
	if !r.Commit.GroupContextExtensions || len(bob.g.GroupContextExtensions()) != 1 {
		t.Fatal("extensions not changed")
	}
	agree(t, alice, bob)
	// Requiring an extension nobody supports is refused.
	bad := requiredCapabilities(t, []uint16{0xff00}, nil, nil)
	if _, err := alice.g.Commit(CommitOptions{Proposals: []Proposal{GroupContextExtensionsProposal([]Extension{bad})}}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("unsupported requirement: err = %v", err)
	}
	// A KeyPackage that lacks a required capability cannot be added.
	rc = requiredCapabilities(t, nil, nil, []uint16{2})
	carol := newMember(t, "carol", DefaultCipherSuite, 3)
	if _, err := alice.g.Commit(CommitOptions{Proposals: []Proposal{GroupContextExtensionsProposal([]Extension{rc}), AddProposal(carol.keyPackage())}}); !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("x509 required of basic-only members: err = %v", err)
	}
}

// TestReInit: a committed ReInit (§11.2, §12.1.5) ends the group: no one
// may send in it any more.
func TestReInit(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, true)
	params := ReInitParams{GroupID: []byte("next"), CipherSuite: X25519_CHACHA20POLY1305_SHA256_Ed25519}
	prop, err := bob.g.Propose(ReInitProposal(params), ProposeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob.set(prop.Group)
	alice.process(prop.Message)
	sent := alice.commit(CommitOptions{})
	r := bob.process(sent.Message)
	if r.Commit.ReInit == nil || string(r.Commit.ReInit.GroupID) != "next" {
		t.Fatalf("commit info: %+v", r.Commit)
	}
	for _, m := range []*member{alice, bob} {
		if !m.g.ReInitPending() {
			t.Fatalf("%s: not pending reinit", m.name)
		}
		if _, err := m.g.Encrypt([]byte("x"), nil); !errors.Is(err, ErrReInitPending) {
			t.Fatalf("%s: err = %v", m.name, err)
		}
	}

	// Alice starts the new group in the new suite; Bob joins it, tied to
	// the old one by its resumption PSK.
	alice2 := newMember(t, "alice", params.CipherSuite, 11)
	bob2 := newMember(t, "bob", params.CipherSuite, 12)
	alice2.reload, bob2.reload = true, true
	sent, err = alice.g.ReInitGroup(alice2.cfg(), []byte("alice"), alice2.signer, []*KeyPackage{bob2.keyPackage()}, KeyPackageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Welcome != nil {
		t.Fatal("ReInitGroup handed out the Welcome before its commit was merged")
	}
	alice2.set(sent.Group)
	merged, err := alice2.g.MergeCommit()
	if err != nil {
		t.Fatal(err)
	}
	alice2.set(merged.Group)
	if _, err := Join(bob2.cfg(), merged.Welcome, bob2.signer, JoinOptions{}); !errors.Is(err, ErrUnknownPSK) {
		t.Fatalf("join without the old group: err = %v", err)
	}
	j, err := Join(bob2.cfg(), merged.Welcome, bob2.signer, JoinOptions{ReInitFrom: bob.g})
	if err != nil {
		t.Fatal(err)
	}
	bob2.set(j.Group)
	agree(t, alice2, bob2)
	if string(alice2.g.GroupID()) != "next" || alice2.g.CipherSuite() != params.CipherSuite || alice2.g.Epoch() != 1 {
		t.Fatal("the new group is not what the ReInit asked for")
	}
	send(t, bob2, "in the new group", alice2)
}

// TestRejections: messages for another group or epoch, garbage, and
// tampering are refused with the matching error and change nothing.
func TestRejections(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	msg := alice.encrypt("x")
	before, _ := bob.g.MarshalBinary()
	tampered := bytes.Clone(msg)
	tampered[len(tampered)-1] ^= 1
	for name, c := range map[string]struct {
		msg  []byte
		want error
	}{
		"garbage":   {[]byte{1, 2, 3}, ErrMalformed},
		"tampered":  {tampered, ErrDecrypt},
		"welcome":   {mustCommit(t, alice).Welcome, ErrUnexpectedMessage},
		"truncated": {msg[:len(msg)-1], ErrMalformed},
	} {
		if _, err := bob.g.Process(c.msg); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	after, _ := bob.g.MarshalBinary()
	if !bytes.Equal(before, after) {
		t.Fatal("a refused message changed the state")
	}
	// Another group's message.
	other := newMember(t, "other", DefaultCipherSuite, 7)
	other.create("another group")
	if _, err := bob.g.Process(other.encrypt("x")); !errors.Is(err, ErrWrongGroup) {
		t.Errorf("other group: err = %v", err)
	}
	// A handshake message of a past epoch.
	prop, err := alice.g.ProposeUpdate(ProposeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sent := bob.commit(CommitOptions{})
	alice.process(sent.Message)
	if _, err := bob.g.Process(prop.Message); !errors.Is(err, ErrWrongEpoch) {
		t.Errorf("old proposal: err = %v", err)
	}
	// Beyond the window ahead.
	data, err := bob.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	cfg := bob.cfg()
	cfg.MaxGenerationsAhead = 2
	if bob.g, err = LoadGroup(cfg, data); err != nil {
		t.Fatal(err)
	}
	var last []byte
	for range 5 {
		last = alice.encrypt("y")
	}
	if _, err := bob.g.Process(last); !errors.Is(err, ErrTooFarAhead) {
		t.Errorf("too far ahead: err = %v", err)
	}
}

// mustCommit stages and merges a commit of m's that adds a member, and
// returns the merge's Effects (with the Welcome); m's state is unchanged.
func mustCommit(t *testing.T, m *member) *Effects {
	t.Helper()
	carol := newMember(t, "carol", m.g.CipherSuite(), 99)
	sent, err := m.g.Commit(CommitOptions{Proposals: []Proposal{AddProposal(carol.keyPackage())}})
	if err != nil {
		t.Fatal(err)
	}
	merged, err := sent.Group.MergeCommit()
	if err != nil {
		t.Fatal(err)
	}
	return merged
}

func requiredCapabilities(t *testing.T, exts, props, creds []uint16) Extension {
	t.Helper()
	rc := RequiredCapabilities{Extensions: exts, Proposals: props, Credentials: creds}
	e, err := rc.Extension()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestDeletionWindows: the out-of-order window over generations and past
// epochs (§9.2, §15.3) is what Config says, with the documented defaults.
func TestDeletionWindows(t *testing.T) {
	reconfigure := func(m *member, f func(*Config)) {
		t.Helper()
		data, err := m.g.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		cfg := m.cfg()
		f(&cfg)
		if m.g, err = LoadGroup(cfg, data); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("generations", func(t *testing.T) {
		alice, bob := twoMembers(t, DefaultCipherSuite, false)
		reconfigure(bob, func(c *Config) { c.MaxGenerationsBehind = 4 })
		var msgs [][]byte
		for i := range 10 {
			msgs = append(msgs, alice.encrypt(fmt.Sprint(i)))
		}
		bob.process(msgs[9])
		bob.process(msgs[5]) // 4 behind: kept
		if _, err := bob.g.Process(msgs[4]); !errors.Is(err, ErrReplay) {
			t.Fatalf("5 behind: err = %v, want ErrReplay", err)
		}
	})
	t.Run("epochs", func(t *testing.T) {
		for _, c := range []struct {
			past, kept int
		}{{0, DefaultPastEpochs}, {-1, 0}, {4, 4}} {
			alice, bob := twoMembers(t, DefaultCipherSuite, false)
			reconfigure(bob, func(cfg *Config) { cfg.PastEpochs = c.past })
			var late [][]byte
			for range 6 {
				late = append(late, alice.encrypt("late"))
				bob.process(alice.commit(CommitOptions{}).Message)
			}
			for age := 1; age <= 6; age++ {
				_, err := bob.g.Process(late[len(late)-age])
				if ok := err == nil; ok != (age <= c.kept) {
					t.Errorf("PastEpochs=%d: message %d epochs old: err = %v", c.past, age, err)
				}
				if err != nil && !errors.Is(err, ErrWrongEpoch) {
					t.Errorf("PastEpochs=%d: err = %v, want ErrWrongEpoch", c.past, err)
				}
			}
		}
	})
}

// TestCredentialValidation: the Config's credential hook (§5.3.1) decides
// which identities a member accepts, at an Add and at a join.
func TestCredentialValidation(t *testing.T) {
	deny := errors.New("mallory is not welcome")
	policy := ValidationOptions{Credentials: func(_ uint16, id, _ []byte) error {
		if string(id) == "mallory" {
			return deny
		}
		return nil
	}}
	alice := newMember(t, "alice", DefaultCipherSuite, 1)
	alice.create("policy")
	mallory := newMember(t, "mallory", DefaultCipherSuite, 6)
	cfg := alice.cfg()
	cfg.Validation = policy
	data, _ := alice.g.MarshalBinary()
	strict, err := LoadGroup(cfg, data)
	if err != nil {
		t.Fatal(err)
	}
	_, err = strict.Commit(CommitOptions{Proposals: []Proposal{AddProposal(mallory.keyPackage())}})
	if !errors.Is(err, ErrCredentialRejected) || !errors.Is(err, deny) {
		t.Fatalf("add: err = %v", err)
	}
	// Bob, who shares the policy, refuses a group with mallory in it.
	bob := newMember(t, "bob", DefaultCipherSuite, 2)
	sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(mallory.keyPackage()), AddProposal(bob.keyPackage())}})
	bcfg := bob.cfg()
	bcfg.Validation = policy
	if _, err := Join(bcfg, sent.Welcome, bob.signer, JoinOptions{}); !errors.Is(err, ErrCredentialRejected) {
		t.Fatalf("join: err = %v", err)
	}
}

// TestInspectMessage: routing information is readable without keys.
func TestInspectMessage(t *testing.T) {
	alice, _ := twoMembers(t, DefaultCipherSuite, false)
	msg := alice.encrypt("x")
	info, err := InspectMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if info.WireFormat != WireFormatPrivateMessage || !bytes.Equal(info.GroupID, alice.g.GroupID()) ||
		info.Epoch != alice.g.Epoch() || info.Kind != KindApplication {
		t.Fatalf("%+v", info)
	}
	if _, err := InspectMessage(msg[1:]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}

// TestOwnEchoes: the delivery service sends a member its own messages
// back; the staged commit merges, the others are refused as replays.
func TestOwnEchoes(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	msg := alice.encrypt("mine")
	if _, err := alice.g.Process(msg); !errors.Is(err, ErrReplay) {
		t.Fatalf("own application message: err = %v", err)
	}
	prop, err := alice.g.Propose(RemoveProposal(bob.g.LeafIndex()), ProposeOptions{Framing: FramingPublic})
	if err != nil {
		t.Fatal(err)
	}
	alice.set(prop.Group)
	if _, err := alice.g.Process(prop.Message); !errors.Is(err, ErrReplay) {
		t.Fatalf("own proposal: err = %v", err)
	}
	sent, err := alice.g.Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	alice.set(sent.Group)
	r := alice.process(sent.Message)
	if !r.OwnCommit || len(r.Commit.Removed) != 1 {
		t.Fatalf("own commit: %+v", r)
	}
	if _, err := alice.g.Process(sent.Message); !errors.Is(err, ErrWrongEpoch) {
		t.Fatalf("own commit again: err = %v", err)
	}
}

// TestExternalSenderProposal: a party named in external_senders proposes
// a Remove from outside the group (§12.1.8); a member commits it by
// reference.
func TestExternalSenderProposal(t *testing.T) {
	ds := newMember(t, "ds", DefaultCipherSuite, 9)
	ext, err := ExternalSendersExtension([]ExternalSender{{SignatureKey: ds.signer.PublicKey(), Identity: []byte("ds")}})
	if err != nil {
		t.Fatal(err)
	}
	alice := newMember(t, "alice", DefaultCipherSuite, 1)
	bob := newMember(t, "bob", DefaultCipherSuite, 2)
	g, err := CreateGroup(alice.cfg(), []byte("with a ds"), []byte("alice"), alice.signer, GroupOptions{Extensions: []Extension{ext}})
	if err != nil {
		t.Fatal(err)
	}
	alice.set(g)
	sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(bob.keyPackage())}})
	bob.join(sent.Welcome, JoinOptions{})

	msg := externalProposal(t, alice.g, ds.signer, &mls.Proposal{Type: mls.ProposalRemove, Remove: &mls.Remove{Removed: bob.g.LeafIndex()}})
	for _, m := range []*member{alice, bob} {
		r := m.process(msg)
		if r.Sender.Type != SenderExternal || r.ProposalType != ProposalRemove {
			t.Fatalf("%s: %+v", m.name, r)
		}
	}
	sent = alice.commit(CommitOptions{})
	if r := bob.process(sent.Message); !r.Commit.SelfRemoved {
		t.Fatal("bob not removed")
	}
	// An Update cannot come from outside the group.
	leaf := *alice.g.tree.Leaf(0)
	bad := externalProposal(t, alice.g, ds.signer, &mls.Proposal{Type: mls.ProposalUpdate, Update: &mls.Update{LeafNode: leaf}})
	if _, err := alice.g.Process(bad); err == nil {
		t.Fatal("external Update accepted")
	}
}

// externalProposal frames p as a PublicMessage from external sender 0.
func externalProposal(t *testing.T, g *Group, signer *Signer, p *mls.Proposal) []byte {
	t.Helper()
	f, err := framing.New(framing.Config{Suite: g.suite, GroupContext: g.ctx})
	if err != nil {
		t.Fatal(err)
	}
	return publicMessage(t, f, &mls.FramedContent{
		GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch,
		Sender:      mls.Sender{Type: mls.SenderExternal, SenderIndex: 0},
		ContentType: mls.ContentProposal, Proposal: p,
	}, signer.priv.Bytes(), nil)
}

// TestWelcomeWithPathSecret: a commit that adds members and carries a path
// gives each joiner the path secret of the lowest node its path shares
// with the committer's (§12.4.3.1), which must give the tree's keys.
func TestWelcomeWithPathSecret(t *testing.T) {
	eachReload(t, func(t *testing.T, reload bool) {
		alice, bob := twoMembers(t, DefaultCipherSuite, reload)
		var joiners []*member
		var adds []Proposal
		for i, name := range []string{"carol", "dave", "erin"} {
			m := newMember(t, name, DefaultCipherSuite, uint64(20+i))
			m.reload = reload
			joiners = append(joiners, m)
			adds = append(adds, AddProposal(m.keyPackage()))
		}
		sent := alice.commit(CommitOptions{Proposals: adds, Path: true})
		bob.process(sent.Message)
		for _, m := range joiners {
			m.join(sent.Welcome, JoinOptions{})
		}
		all := append([]*member{alice, bob}, joiners...)
		agree(t, all...)
		// Remove and add in one commit (path required), then every member
		// commits once: each path must reach everyone.
		frank := newMember(t, "frank", DefaultCipherSuite, 30)
		frank.reload = reload
		sent = joiners[0].commit(CommitOptions{Proposals: []Proposal{RemoveProposal(bob.g.LeafIndex()), AddProposal(frank.keyPackage())}})
		for _, m := range []*member{alice, bob, joiners[1], joiners[2]} {
			m.process(sent.Message)
		}
		frank.join(sent.Welcome, JoinOptions{})
		all = []*member{alice, joiners[0], joiners[1], joiners[2], frank}
		agree(t, all...)
		for _, committer := range all {
			sent := committer.commit(CommitOptions{})
			for _, m := range all {
				if m != committer {
					m.process(sent.Message)
				}
			}
			agree(t, all...)
		}
		send(t, frank, "hi all", alice, joiners[0], joiners[1], joiners[2])
	})
}
