package node_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
	"github.com/spacepanda/spacepanda/p2p"
)

// TestStrangerWelcomeIsPending: anyone can send a Welcome; it waits for
// the user, and declining it joins nothing.
func TestStrangerWelcomeIsPending(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	mallory, bob := c.Add("mallory"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	info, err := mallory.CreateChannel(ctx, "free stuff", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := mallory.Node.Invite(ctx, info.ID, bob.ID()); err != nil {
		t.Fatal(err)
	}
	ev := bob.AwaitEvent(ctx, "the invitation", func(e node.Event) bool { return e.Type == node.EventInvitation })
	if _, err := bob.Info(info.ID); !errors.Is(err, node.ErrUnknownChannel) {
		t.Fatalf("a stranger's Welcome was joined: %v", err)
	}
	if len(bob.Invitations()) != 1 {
		t.Fatalf("invitations = %v", bob.Invitations())
	}
	if err := bob.Decline(ev.Invitation.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, ev.Invitation.ID); !errors.Is(err, node.ErrUnknownInvitation) {
		t.Fatalf("accepting a declined invitation: %v", err)
	}
	if len(bob.Invitations()) != 0 {
		t.Fatalf("invitations after declining = %v", bob.Invitations())
	}
	// Restart: the declined invitation stays gone.
	bob.Restart()
	if len(bob.Invitations()) != 0 {
		t.Fatalf("invitations after a restart = %v", bob.Invitations())
	}
}

// TestWelcomeFlood: one peer cannot make a node keep more than the cap of
// pending invitations, and garbage Welcomes are refused; the node keeps
// running.
func TestWelcomeFlood(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	c.Configure = func(_ string, cfg *node.Config) { cfg.MaxInvitationsPerPeer = 2 }
	mallory, bob := c.Add("mallory"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	if err := mallory.Host().SendWelcome(ctx, bob.ID(), []byte("not a Welcome")); !errors.Is(err, p2p.ErrWelcomeRejected) {
		t.Fatalf("a garbage Welcome: %v, want ErrWelcomeRejected", err)
	}
	for range 4 {
		info, err := mallory.CreateChannel(ctx, "flood", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := mallory.Node.Invite(ctx, info.ID, bob.ID()); err != nil {
			t.Fatal(err)
		}
	}
	// The two past the cap are refused: mallory's outbox hears so.
	mallory.Await(ctx, "two Welcomes refused", func() bool { return countEvents([]*nodetest.Peer{mallory}, node.EventError) >= 2 })
	if n := len(bob.Invitations()); n != 2 {
		t.Fatalf("bob keeps %d invitations from one peer, want the cap of 2", n)
	}
	info, err := bob.CreateChannel(ctx, "still fine", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, info.ID, "alive"); err != nil {
		t.Fatal(err)
	}
}

// TestMessageOfAnotherChannel: a message of one channel published on
// another's topic is dropped; the channel goes on.
func TestMessageOfAnotherChannel(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	alice, bob := c.Add("alice"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	one, err := alice.CreateChannel(ctx, "one", "")
	if err != nil {
		t.Fatal(err)
	}
	two, err := alice.CreateChannel(ctx, "two", "")
	if err != nil {
		t.Fatal(err)
	}
	alice.Invite(ctx, one.ID, bob)
	nodetest.AwaitConverged(ctx, one.ID, 2, alice, bob)
	// A real message of channel two, caught by a bare host on channel
	// two's topic and published by it on channel one's, where nothing in
	// its own way validates it.
	raw := nodetest.RawHost(ctx, t, alice, bob)
	two2, err := raw.JoinChannel(two.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	one2, err := raw.JoinChannel(one.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, two.ID, "for channel two"); err != nil {
		t.Fatal(err)
	}
	stray, err := two2.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := one2.Publish(ctx, stray.Data); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, one.ID, "after the stray"); err != nil {
		t.Fatal(err)
	}
	awaitBodies(ctx, t, bob, one.ID, []string{"after the stray"})
	for _, m := range bob.History(one.ID) {
		if m.Body == "for channel two" {
			t.Fatal("a message of another channel is in the history")
		}
	}
}

// TestSyncRefusalSaysNothing: a peer that is no member, asking to sync a
// channel this node is in and one it is not, gets the same refusal: the
// answer does not tell which channels a node is in.
func TestSyncRefusalSaysNothing(t *testing.T) {
	ctx := testContext(t, time.Minute)
	c := nodetest.NewLoopback(t)
	alice := c.Add("alice")
	info, err := alice.CreateChannel(ctx, "private", "")
	if err != nil {
		t.Fatal(err)
	}
	raw := nodetest.RawHost(ctx, t, alice)
	refusal := func(channel []byte) string {
		err := raw.Sync(ctx, alice.ID(), channel, nil, func(p2p.SyncEntry) error { return nil })
		if err == nil {
			t.Fatalf("a stranger synced channel %x", channel)
		}
		return err.Error()
	}
	known, unknown := refusal(info.ID), refusal(bytes.Repeat([]byte{7}, len(info.ID)))
	if known != unknown {
		t.Errorf("refusals differ:\n  channel it is in:     %s\n  channel it is not in: %s", known, unknown)
	}
}

// TestLoneMemberSends: with no other member online, publishing stalls
// (each message waits for a topic peer), and the queue of persisted
// messages fills. The channel goes on all the same: sends are persisted
// and answered, and members catch up through sync. (It stopped: the
// loop blocked on the full queue, and with it every send, receive and
// operation of the channel.)
func TestLoneMemberSends(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	c.Configure = func(_ string, cfg *node.Config) { cfg.P2P.PublishWait = time.Hour }
	alice := c.Add("alice")
	info, err := alice.CreateChannel(ctx, "alone", "")
	if err != nil {
		t.Fatal(err)
	}
	const n = node.PublishQueue + 100
	sem := make(chan struct{}, 64)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := alice.Send(ctx, info.ID, fmt.Sprint(i))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := len(alice.History(info.ID)); got != n {
		t.Fatalf("history holds %d messages, want %d", got, n)
	}
}

// TestWelcomeFloodManyPeers: the bound on pending invitations holds over
// all peers together, since a fresh peer ID costs nothing. (Found by
// review: each new identity could make the node keep 8 more.)
func TestWelcomeFloodManyPeers(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	c.Configure = func(name string, cfg *node.Config) {
		if name == "bob" {
			cfg.MaxInvitations = 2
		}
	}
	s1, bob := c.Add("s1"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	strangers := []*nodetest.Peer{s1, c.Add("s2"), c.Add("s3")}
	for _, s := range strangers {
		info, err := s.CreateChannel(ctx, "free stuff", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Node.Invite(ctx, info.ID, bob.ID()); err != nil {
			t.Fatal(err)
		}
	}
	bob.Await(ctx, "the third stranger's Welcome refused", func() bool { return countEvents(strangers, node.EventError) >= 1 })
	if n := len(bob.Invitations()); n != 2 {
		t.Fatalf("bob keeps %d invitations from three peers, want the cap of 2", n)
	}
}

// TestForgedBindingRefused: a member's modified client commits the Add of
// a KeyPackage that carries bob's identity (his genuine binding, copied)
// on a key of its own, to pass for bob. Every honest member refuses the
// commit when it comes (the credential's binding does not name the key
// it signs with), nobody is added, and the channel goes on.
func TestForgedBindingRefused(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	alice, mallory, bob := c.Add("alice"), c.Add("mallory"), c.Add("bob")
	mallory.PublishKeyPackages(ctx)
	bob.PublishKeyPackages(ctx)
	info, err := alice.CreateChannel(ctx, "forge", "")
	if err != nil {
		t.Fatal(err)
	}
	alice.Invite(ctx, info.ID, mallory)
	nodetest.AwaitConverged(ctx, info.ID, 2, alice, mallory)
	before := alice.MustInfo(info.ID).Epoch

	bobs, err := mallory.FetchKeyPackage(ctx, bob.ID())
	if err != nil {
		t.Fatal(err)
	}
	signer, err := mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := mlsgroup.NewKeyPackage(&mlsgroup.MemoryStorage{}, bobs.Identity(), signer,
		mlsgroup.KeyPackageOptions{Lifetime: time.Hour, Capabilities: mlsgroup.Capabilities{Extensions: []uint16{node.ExtChannelMeta}}}, rand.Reader, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := mallory.PublishAddUnchecked(ctx, info.ID, forged); err != nil {
		t.Fatal(err)
	}
	alice.Await(ctx, "alice to refuse the forged commit", func() bool { return alice.RefusedCommits(info.ID) >= 1 })
	if i := alice.MustInfo(info.ID); i.Epoch != before || i.Members != 2 {
		t.Fatalf("after the forged Add: epoch %d (was %d), %d members", i.Epoch, before, i.Members)
	}
	if err := alice.Update(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	nodetest.AwaitConverged(ctx, info.ID, 2, alice, mallory)
	ms, err := alice.Members(info.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Peer == bob.ID() {
			t.Fatalf("bob is a member by a forged binding: %v", ms)
		}
	}
}
