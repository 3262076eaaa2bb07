package mlsgroup

import (
	"bytes"
	"errors"
	"testing"
)

// stageAdd has m stage a commit that adds joiner, and persists and
// reloads the staged state as a node that crashed after publishing the
// commit would find it on disk.
func stageAdd(t *testing.T, m, joiner *member) (commit []byte, restarted *Group) {
	t.Helper()
	sent, err := m.g.Commit(CommitOptions{Proposals: []Proposal{AddProposal(joiner.keyPackage())}})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Welcome != nil {
		t.Fatal("Commit handed out the Welcome before the commit was accepted")
	}
	if sent.Kind != KindCommit || sent.Commit != nil || !bytes.Equal(sent.Group.StagedCommit(), sent.Message) {
		t.Fatalf("Commit effects: kind %d, commit info %v, staged commit is the message: %v",
			sent.Kind, sent.Commit, bytes.Equal(sent.Group.StagedCommit(), sent.Message))
	}
	data, err := sent.Group.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	g, err := LoadGroup(m.cfg(), data)
	if err != nil {
		t.Fatal(err)
	}
	return sent.Message, g
}

// TestStagedWelcomeSurvivesRestart: the Welcome of a staged commit is
// part of the persisted state, so a node that restarts between publishing
// its commit and merging it still has the Welcome when it merges (§14),
// and the new member joins with it.
func TestStagedWelcomeSurvivesRestart(t *testing.T) {
	alice := newMember(t, "alice", DefaultCipherSuite, 1)
	bob := newMember(t, "bob", DefaultCipherSuite, 2)
	alice.create("restart")
	commit, g := stageAdd(t, alice, bob)
	if !g.HasStagedCommit() || !bytes.Equal(g.StagedCommit(), commit) {
		t.Fatal("the reloaded state lost its staged commit")
	}
	merged, err := g.MergeCommit()
	if err != nil {
		t.Fatal(err)
	}
	if merged.Welcome == nil {
		t.Fatal("MergeCommit after a restart has no Welcome")
	}
	if !merged.OwnCommit || merged.Kind != KindCommit || merged.Commit == nil || len(merged.Commit.Added) != 1 ||
		string(merged.Commit.Added[0].Identity) != "bob" || merged.Group.Epoch() != 1 {
		t.Fatalf("MergeCommit effects: %+v", merged)
	}
	if merged.Group.StagedCommit() != nil {
		t.Fatal("the merged state still has a staged commit")
	}
	alice.set(merged.Group)
	bob.join(merged.Welcome, JoinOptions{})
	agree(t, alice, bob)
	send(t, bob, "after the restart", alice)
}

// TestEchoHandsOutWelcome: a restarted node republishes StagedCommit, and
// the echo of those bytes merges the commit and hands out the Welcome,
// as MergeCommit does.
func TestEchoHandsOutWelcome(t *testing.T) {
	alice := newMember(t, "alice", DefaultCipherSuite, 1)
	bob := newMember(t, "bob", DefaultCipherSuite, 2)
	alice.create("echo")
	_, g := stageAdd(t, alice, bob)
	r, err := g.Process(g.StagedCommit())
	if err != nil {
		t.Fatal(err)
	}
	if !r.OwnCommit || r.Welcome == nil || r.Commit == nil || len(r.Commit.Added) != 1 || r.Group.Epoch() != 1 {
		t.Fatalf("echo effects: own %v, welcome %v, commit %+v", r.OwnCommit, r.Welcome != nil, r.Commit)
	}
	alice.set(r.Group)
	bob.join(r.Welcome, JoinOptions{})
	agree(t, alice, bob)
}

// TestDiscardedCommitDropsWelcome: when another member's commit wins the
// epoch, the staged commit goes and its Welcome with it: nothing hands it
// out, and the member it would have added cannot join the winning epoch.
func TestDiscardedCommitDropsWelcome(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	carol := newMember(t, "carol", DefaultCipherSuite, 3)
	sent, err := alice.g.Commit(CommitOptions{Proposals: []Proposal{AddProposal(carol.keyPackage())}})
	if err != nil {
		t.Fatal(err)
	}
	win, err := bob.g.Commit(CommitOptions{Path: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := sent.Group.Process(win.Message)
	if err != nil {
		t.Fatal(err)
	}
	if !r.DiscardedCommit || r.Welcome != nil || r.OwnCommit || r.Group.HasStagedCommit() {
		t.Fatalf("losing commit: discarded %v, welcome %v, own %v", r.DiscardedCommit, r.Welcome != nil, r.OwnCommit)
	}
	if _, err := r.Group.MergeCommit(); !errors.Is(err, ErrNoPendingCommit) {
		t.Fatalf("MergeCommit after the loss: err = %v", err)
	}
}

// TestStepEffects: each sending step says what its Message carries, and
// only Join names a KeyPackage to delete.
func TestStepEffects(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	enc, err := alice.g.Encrypt([]byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if enc.Kind != KindApplication || enc.Epoch != 1 || enc.Welcome != nil || enc.ConsumedKeyPackage != nil {
		t.Fatalf("Encrypt effects: %+v", enc)
	}
	alice.set(enc.Group)
	prop, err := alice.g.ProposeUpdate(ProposeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if prop.Kind != KindProposal || prop.ProposalType != ProposalUpdate || prop.ProposalRef == nil {
		t.Fatalf("ProposeUpdate effects: kind %d, type %d, ref %x", prop.Kind, prop.ProposalType, prop.ProposalRef)
	}
	r := bob.process(prop.Message)
	if r.Kind != KindProposal || !bytes.Equal(r.ProposalRef, prop.ProposalRef) || r.ConsumedKeyPackage != nil {
		t.Fatalf("received proposal effects: %+v", r)
	}
}
