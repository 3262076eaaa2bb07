package mlsgroup

import (
	"bytes"
	"testing"
)

// fuzzTarget is a receiving member in a three-member group, and messages
// that are valid for it: application data, proposals and commits, as
// PrivateMessages and PublicMessages, plus a Welcome and a GroupInfo.
func fuzzTarget(f *testing.F) (*Group, [][]byte) {
	alice := newMember(f, "alice", DefaultCipherSuite, 1)
	bob := newMember(f, "bob", DefaultCipherSuite, 2)
	carol := newMember(f, "carol", DefaultCipherSuite, 3)
	alice.create("fuzz")
	sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(bob.keyPackage()), AddProposal(carol.keyPackage())}})
	bob.join(sent.Welcome, JoinOptions{})
	carol.join(sent.Welcome, JoinOptions{})
	// An epoch with a path, so that the tree has parent nodes.
	sent = carol.commit(CommitOptions{})
	alice.process(sent.Message)
	bob.process(sent.Message)

	var seeds [][]byte
	seeds = append(seeds, alice.encrypt("hello"), carol.encrypt(""))
	upd, err := alice.g.ProposeUpdate(ProposeOptions{})
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, upd.Message)
	for _, framing := range []Framing{FramingPrivate, FramingPublic} {
		dave := newMember(f, "dave", DefaultCipherSuite, 4)
		c, err := carol.g.Commit(CommitOptions{Proposals: []Proposal{AddProposal(dave.keyPackage()), RemoveProposal(0)}, Framing: framing})
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, c.Message, c.Welcome)
		p, err := carol.g.Propose(RemoveProposal(alice.g.LeafIndex()), ProposeOptions{Framing: framing})
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, p.Message)
	}
	gi, err := alice.g.GroupInfo(GroupInfoOptions{})
	if err != nil {
		f.Fatal(err)
	}
	eve := newMember(f, "eve", DefaultCipherSuite, 5)
	ext, err := ExternalJoin(eve.cfg(), gi, []byte("eve"), eve.signer, ExternalJoinOptions{})
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, gi, ext.Message)
	// Check that the seeds are what they claim: each one is accepted.
	for i, s := range seeds[:3] {
		if _, err := bob.g.Process(s); err != nil {
			f.Fatalf("seed %d: %v", i, err)
		}
	}
	return bob.g, seeds
}

// FuzzProcess feeds arbitrary bytes to a live group as an incoming
// message: Process must never panic, and never change the state it was
// called on, whatever it returns.
func FuzzProcess(f *testing.F) {
	g, seeds := fuzzTarget(f)
	for _, s := range seeds {
		f.Add(s)
	}
	before, err := g.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := g.Process(msg)
		if err == nil && r.Group == nil {
			t.Fatal("no state after success")
		}
		after, err := g.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Fatal("Process changed the state it was called on")
		}
	})
}
