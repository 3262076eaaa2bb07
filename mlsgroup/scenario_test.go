package mlsgroup

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
)

// eachReload runs f with state round trips off and on: with them on,
// every member persists and reloads its storage and group state after
// every step, which must change nothing.
func eachReload(t *testing.T, f func(t *testing.T, reload bool)) {
	for _, reload := range []bool{false, true} {
		t.Run(fmt.Sprintf("reload=%v", reload), func(t *testing.T) { f(t, reload) })
	}
}

// twoMembers makes a group of alice and bob, bob joined from a Welcome.
func twoMembers(t *testing.T, cs CipherSuite, reload bool) (alice, bob *member) {
	t.Helper()
	alice = newMember(t, "alice", cs, 1)
	bob = newMember(t, "bob", cs, 2)
	alice.reload, bob.reload = reload, reload
	alice.create("group-" + t.Name())
	kp := bob.keyPackage()
	sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(kp)}})
	bob.join(sent.Welcome, JoinOptions{})
	agree(t, alice, bob)
	return alice, bob
}

// TestJoinFlow is the seed's first blocked scenario at the MLS layer
// (§12.4.3.1), one storage per member: Alice creates a group, Bob makes a
// KeyPackage, Alice adds him, Bob joins from the Welcome with the private
// keys his own storage holds, and the two exchange messages. Every suite,
// the post-quantum X-Wing suite 83 included.
func TestJoinFlow(t *testing.T) {
	for _, cs := range suite.IDs() {
		t.Run(fmt.Sprintf("suite%d", cs), func(t *testing.T) {
			eachReload(t, func(t *testing.T, reload bool) {
				alice, bob := twoMembers(t, cs, reload)
				send(t, alice, "hello bob", bob)
				send(t, bob, "hello alice", alice)
			})
		})
	}
}

// TestMessageExchange is the seed's second scenario: more than 100
// messages each way (§15), part of them delivered out of order within the
// window (§9.2), and a replay refused.
func TestMessageExchange(t *testing.T) {
	eachReload(t, func(t *testing.T, reload bool) {
		alice, bob := twoMembers(t, DefaultCipherSuite, reload)
		r := rand.New(rand.NewPCG(1, 2))
		for round := range 3 {
			for _, dir := range [][2]*member{{alice, bob}, {bob, alice}} {
				from, to := dir[0], dir[1]
				var msgs [][]byte
				var texts []string
				for i := range 40 {
					text := fmt.Sprintf("%s %d/%d", from.name, round, i)
					msgs = append(msgs, from.encrypt(text))
					texts = append(texts, text)
				}
				// Shuffle within blocks of 8: reordering well inside the
				// default window of 32.
				order := make([]int, len(msgs))
				for i := range order {
					order[i] = i
				}
				for b := 0; b < len(order); b += 8 {
					blk := order[b:min(b+8, len(order))]
					r.Shuffle(len(blk), func(i, j int) { blk[i], blk[j] = blk[j], blk[i] })
				}
				for _, i := range order {
					got := to.process(msgs[i])
					if string(got.Plaintext) != texts[i] {
						t.Fatalf("%s got %q, want %q", to.name, got.Plaintext, texts[i])
					}
				}
				if _, err := to.g.Process(msgs[order[0]]); !errors.Is(err, ErrReplay) {
					t.Fatalf("replay: err = %v, want ErrReplay", err)
				}
			}
		}
	})
}

// TestThreeMembers is the seed's third scenario: a three-member group,
// joins, messages in all directions, updates by commit and by proposal, a
// remove, and messages afterwards.
func TestThreeMembers(t *testing.T) {
	eachReload(t, func(t *testing.T, reload bool) {
		alice := newMember(t, "alice", DefaultCipherSuite, 1)
		bob := newMember(t, "bob", DefaultCipherSuite, 2)
		carol := newMember(t, "carol", DefaultCipherSuite, 3)
		for _, m := range []*member{alice, bob, carol} {
			m.reload = reload
		}
		alice.create("three")
		sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(bob.keyPackage()), AddProposal(carol.keyPackage())}})
		bob.join(sent.Welcome, JoinOptions{})
		carol.join(sent.Welcome, JoinOptions{})
		all := []*member{alice, bob, carol}
		agree(t, all...)
		everyone := func() {
			for _, from := range all {
				var to []*member
				for _, m := range all {
					if m != from {
						to = append(to, m)
					}
				}
				send(t, from, "from "+from.name, to...)
			}
		}
		everyone()

		// Bob updates with an empty commit (a path, §12.4).
		sent = bob.commit(CommitOptions{})
		alice.process(sent.Message)
		carol.process(sent.Message)
		agree(t, all...)
		everyone()

		// Carol proposes an update; Alice commits it by reference.
		prop, err := carol.g.ProposeUpdate(ProposeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		carol.set(prop.Group)
		alice.process(prop.Message)
		bob.process(prop.Message)
		sent = alice.commit(CommitOptions{})
		for _, m := range []*member{bob, carol} {
			r := m.process(sent.Message)
			if len(r.Commit.Updated) != 1 || r.Commit.Updated[0] != carol.g.LeafIndex() {
				t.Fatalf("%s: commit updated %v", m.name, r.Commit.Updated)
			}
		}
		agree(t, all...)
		everyone()

		// Alice removes Bob.
		sent = alice.commit(CommitOptions{Proposals: []Proposal{RemoveProposal(bob.g.LeafIndex())}})
		late := bob.encrypt("sent before the remove landed")
		r := bob.process(sent.Message)
		if !r.Commit.SelfRemoved || !bob.g.Removed() || bob.g.Active() {
			t.Fatal("bob does not know he was removed")
		}
		carol.process(sent.Message)
		all = []*member{alice, carol}
		agree(t, all...)
		// A message Bob sent in the old epoch still reads (§15.3).
		if got := carol.process(late); string(got.Plaintext) != "sent before the remove landed" || got.Epoch != 3 {
			t.Fatalf("late message: %q epoch %d", got.Plaintext, got.Epoch)
		}
		everyone()
		msg := alice.encrypt("bob cannot read this")
		if _, err := bob.g.Process(msg); !errors.Is(err, ErrWrongEpoch) {
			t.Fatalf("removed member: err = %v, want ErrWrongEpoch", err)
		}
		if _, err := bob.g.Encrypt([]byte("x"), nil); !errors.Is(err, ErrNotMember) {
			t.Fatalf("removed member sends: err = %v, want ErrNotMember", err)
		}
		if len(alice.g.Members()) != 2 {
			t.Fatalf("%d members", len(alice.g.Members()))
		}
	})
}

// TestJoinWithoutKey: a Welcome for a KeyPackage whose private keys are
// not in the joiner's storage fails with ErrNoMatchingKeyPackage, naming
// the ref and saying why: never held, already consumed or expired.
func TestJoinWithoutKey(t *testing.T) {
	alice := newMember(t, "alice", DefaultCipherSuite, 1)
	bob := newMember(t, "bob", DefaultCipherSuite, 2)
	alice.create("no-key")
	kp := bob.keyPackage()
	sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(kp)}})

	check := func(joiner *member, welcome []byte, st *MemoryStorage, ref []byte, want KeyPackageStatus) {
		t.Helper()
		cfg := joiner.cfg()
		cfg.Storage = st
		_, err := Join(cfg, welcome, joiner.signer, JoinOptions{})
		var nomk *NoMatchingKeyPackageError
		if !errors.Is(err, ErrNoMatchingKeyPackage) || !errors.As(err, &nomk) {
			t.Fatalf("err = %v, want a NoMatchingKeyPackageError", err)
		}
		if len(nomk.Refs) != 1 || !bytes.Equal(nomk.Refs[0], ref) || nomk.Status[0] != want {
			t.Fatalf("error names %x with status %v, want %x with %d", nomk.Refs, nomk.Status, ref, want)
		}
		if !bytes.Contains([]byte(err.Error()), []byte(fmt.Sprintf("%x", ref))) {
			t.Fatalf("error %q does not name the ref", err)
		}
	}
	// Another provider than the one that made the KeyPackage: the bug
	// this project exists to end.
	check(bob, sent.Welcome, new(MemoryStorage), kp.Ref(), KeyPackageUnknown)

	j, err := Join(bob.cfg(), sent.Welcome, bob.signer, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob.st.ConsumeKeyPackage(j.ConsumedKeyPackage)
	check(bob, sent.Welcome, bob.st, kp.Ref(), KeyPackageConsumed)

	carol := newMember(t, "carol", DefaultCipherSuite, 3)
	kp = carol.keyPackage()
	sent = alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(kp)}})
	carol.st.ExpireKeyPackages(uint64(testNow.Add(DefaultKeyPackageLifetime + time.Hour).Unix()))
	check(carol, sent.Welcome, carol.st, kp.Ref(), KeyPackageExpired)
}

// TestAddExpiredKeyPackage: an Add of a KeyPackage outside its lifetime is
// refused (§10.1, §7.3), at proposal and at commit.
func TestAddExpiredKeyPackage(t *testing.T) {
	alice := newMember(t, "alice", DefaultCipherSuite, 1)
	bob := newMember(t, "bob", DefaultCipherSuite, 2)
	alice.create("expired")
	kp := bob.keyPackage()
	alice.now = testNow.Add(DefaultKeyPackageLifetime + time.Minute)
	_, err := alice.g.Commit(CommitOptions{Proposals: []Proposal{AddProposal(kp)}})
	if !errors.Is(err, ErrKeyPackageExpired) || !errors.Is(err, ErrInvalidProposal) {
		t.Fatalf("commit: err = %v, want ErrKeyPackageExpired", err)
	}
	if _, err := alice.g.Propose(AddProposal(kp), ProposeOptions{}); !errors.Is(err, ErrKeyPackageExpired) {
		t.Fatalf("propose: err = %v, want ErrKeyPackageExpired", err)
	}
	alice.now = testNow.Add(-2 * time.Hour) // before not_before
	if _, err := alice.g.Commit(CommitOptions{Proposals: []Proposal{AddProposal(kp)}}); !errors.Is(err, ErrKeyPackageExpired) {
		t.Fatalf("not yet valid: err = %v, want ErrKeyPackageExpired", err)
	}
}
