package mlsgroup

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/framing"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/ratchettree"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/wire"
)

// The tests here are messages crafted by a member or an outsider to get
// past one check by relying on another being skipped.

// bindIdentities makes every member vet credentials with a validator that
// knows which key each identity holds, as a node with an authentication
// service would.
func bindIdentities(t *testing.T, members ...*member) {
	t.Helper()
	known := make(map[string][]byte)
	for _, m := range members {
		known[m.name] = m.signer.PublicKey()
	}
	validator := func(_ uint16, identity, key []byte) error {
		if !bytes.Equal(known[string(identity)], key) {
			return errors.New("identity not bound to this key")
		}
		return nil
	}
	for _, m := range members {
		cfg := m.cfg()
		cfg.Validation.Credentials = validator
		data, err := m.g.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if m.g, err = LoadGroup(cfg, data); err != nil {
			t.Fatal(err)
		}
	}
}

// publicMessage signs content with priv as a PublicMessage of f's epoch,
// with confirmation tag tag (for a commit), and encodes it.
func publicMessage(t *testing.T, f *framing.Epoch, content *mls.FramedContent, priv, tag []byte) []byte {
	t.Helper()
	ac, err := f.Sign(mls.WireFormatPublicMessage, content, priv)
	if err != nil {
		t.Fatal(err)
	}
	ac.Auth.ConfirmationTag = tag
	pm, err := f.ProtectPublic(ac)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := wire.Marshal(&mls.MLSMessage{Version: mls.MLS10, WireFormat: mls.WireFormatPublicMessage, PublicMessage: pm})
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestForgedResyncDoesNotEvict is an outsider's external commit that
// claims to be Bob resyncing (§12.4.3.2): it removes Bob's leaf and adds
// a leaf with Bob's identity but the outsider's key. Bob cannot check the
// confirmation tag (the new epoch's secrets are not encrypted to a removed
// leaf), so he must check everything else before believing he is out: the
// path leaf's credential (§7.3, §5.3.1) among them.
func TestForgedResyncDoesNotEvict(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	bindIdentities(t, alice, bob)
	gi, err := alice.g.GroupInfo(GroupInfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eve := newMember(t, "eve", DefaultCipherSuite, 90)
	victim := bob.g.LeafIndex()
	sent, err := ExternalJoin(eve.cfg(), gi, []byte("bob"), eve.signer, ExternalJoinOptions{Resync: &victim})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*member{alice, bob} {
		if r, err := m.g.Process(sent.Message); !errors.Is(err, ErrCredentialRejected) {
			removed := err == nil && r.Group.Removed()
			t.Errorf("%s: err = %v (removed %v), want ErrCredentialRejected", m.name, err, removed)
		}
	}
	if bob.g.Removed() {
		t.Error("Bob's state changed")
	}
}

// TestRejoinWithSameKey is a member joining again by external commit
// with its current signature key and no resync: the tree would hold two
// leaves with one signature key, which §7.3 forbids and which would make
// every later Add and every join fail. ExternalJoin refuses to build it.
func TestRejoinWithSameKey(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	gi, err := alice.g.GroupInfo(GroupInfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	again := newMember(t, "bob", DefaultCipherSuite, 77)
	again.signer = bob.signer
	if _, err := ExternalJoin(again.cfg(), gi, []byte("bob"), again.signer, ExternalJoinOptions{}); !errors.Is(err, ErrInvalidCommit) || !errors.Is(err, ratchettree.ErrDuplicateKey) {
		t.Fatalf("ExternalJoin: err = %v, want ErrInvalidCommit for a duplicate key", err)
	}
	victim := bob.g.LeafIndex()
	sent, err := ExternalJoin(again.cfg(), gi, []byte("bob"), again.signer, ExternalJoinOptions{Resync: &victim})
	if err != nil {
		t.Fatalf("resync with the same key: %v", err)
	}
	alice.process(sent.Message)
}

// TestCommitPathDuplicateSignatureKey is the same duplicate made by a
// member holding two leaves (Bob and Bob's second device, which also has
// Bob's key): the second commits a path whose leaf takes the first's
// signature key, and signs the commit itself with its own key so that the
// sender check passes. The receiver must refuse the tree (§7.3) before it
// gets as far as the confirmation tag.
func TestCommitPathDuplicateSignatureKey(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	bob2 := newMember(t, "bob2", DefaultCipherSuite, 3)
	sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(bob2.keyPackage())}})
	bob2.join(sent.Welcome, JoinOptions{})
	bob.process(sent.Message)

	// Bob's second device builds the commit on a tree where Bob's leaf
	// has its key, so that its own check lets the commit out.
	evil := bob2.g.clone()
	evil.tree = bob2.g.tree.Clone()
	evil.tree.Leaf(bob2.g.own).SignatureKey = bob.signer.PublicKey()
	evil.tree.Leaf(bob.g.own).SignatureKey = bob2.signer.PublicKey()
	evil.signer = bob.signer
	commit, err := evil.Commit(CommitOptions{Path: true, Framing: FramingPublic})
	if err != nil {
		t.Fatal(err)
	}
	var m mls.MLSMessage
	if err := wire.Unmarshal(commit.Message, &m); err != nil {
		t.Fatal(err)
	}
	f, err := bob2.g.withSecrets().framer()
	if err != nil {
		t.Fatal(err)
	}
	msg := publicMessage(t, f, &m.PublicMessage.Content, bob2.signer.priv.Bytes(), m.PublicMessage.Auth.ConfirmationTag)
	if _, err := alice.g.Process(msg); !errors.Is(err, ErrInvalidCommit) || !errors.Is(err, ratchettree.ErrDuplicateKey) {
		t.Fatalf("err = %v, want ErrInvalidCommit for a duplicate key", err)
	}
}

// TestIdentityChange is a member renaming itself to another member in its
// commit's path leaf, then in an Update: by default a member's credential
// must keep its type and identity (§5.3.1), and an application that allows
// changes says which through ValidationOptions.Succession.
func TestIdentityChange(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	rename := func(g *Group) *Group {
		evil := g.clone()
		evil.tree = g.tree.Clone()
		evil.tree.Leaf(g.own).Credential.Identity = []byte("alice")
		return evil
	}
	sent, err := rename(bob.g).Commit(CommitOptions{Path: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Process(sent.Message); !errors.Is(err, ErrInvalidCommit) || !errors.Is(err, ErrCredentialRejected) {
		t.Fatalf("commit renaming Bob: err = %v, want ErrCredentialRejected", err)
	}
	prop, err := rename(bob.g).ProposeUpdate(ProposeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.g.Process(prop.Message); !errors.Is(err, ErrInvalidProposal) || !errors.Is(err, ErrCredentialRejected) {
		t.Fatalf("Update renaming Bob: err = %v, want ErrCredentialRejected", err)
	}

	// An application that allows the rename accepts the same commit.
	cfg := alice.cfg()
	var asked [][]byte
	cfg.Validation.Succession = func(_ uint16, old []byte, _ uint16, next []byte) error {
		asked = append(asked, old, next)
		return nil
	}
	data, err := alice.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	lenient, err := LoadGroup(cfg, data)
	if err != nil {
		t.Fatal(err)
	}
	r, err := lenient.Process(sent.Message)
	if err != nil {
		t.Fatalf("with a Succession rule that allows it: %v", err)
	}
	if len(asked) != 2 || string(asked[0]) != "bob" || string(asked[1]) != "alice" {
		t.Errorf("Succession asked about %q, want bob then alice", asked)
	}
	if m, _ := r.Group.Member(bob.g.LeafIndex()); string(m.Identity) != "alice" {
		t.Errorf("Bob's leaf now presents %q", m.Identity)
	}
}

// TestSenderLeafIndexOutOfRange is a member's proposal whose sender
// leaf_index is its own plus 2^31: doubled to a node index, it wraps round
// to the member's real leaf. It must name no member (§6.3.2).
func TestSenderLeafIndexOutOfRange(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	carol := newMember(t, "carol", DefaultCipherSuite, 80)
	g := alice.g.withSecrets()
	f, err := g.framer()
	if err != nil {
		t.Fatal(err)
	}
	msg := publicMessage(t, f, &mls.FramedContent{
		GroupID: g.ctx.GroupID, Epoch: g.ctx.Epoch,
		Sender:      mls.Sender{Type: mls.SenderMember, LeafIndex: 1<<31 + uint32(alice.g.own)},
		ContentType: mls.ContentProposal,
		Proposal:    &mls.Proposal{Type: mls.ProposalAdd, Add: &mls.Add{KeyPackage: carol.keyPackage().kp}},
	}, alice.signer.priv.Bytes(), nil)
	if r, err := bob.g.Process(msg); !errors.Is(err, ErrNotMember) {
		t.Fatalf("err = %v (sender %+v), want ErrNotMember", err, r)
	}
	if _, ok := bob.g.Member(1<<31 + uint32(alice.g.own)); ok {
		t.Error("Member(2^31) names a member")
	}
}
