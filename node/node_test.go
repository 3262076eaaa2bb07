package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/spacepanda/spacepanda/keypkgdir"
	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
	"github.com/spacepanda/spacepanda/store"
)

func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// bodies are the message bodies of a history, in order.
func bodies(h []node.Message) []string {
	out := make([]string, len(h))
	for i, m := range h {
		out[i] = m.Body
	}
	return out
}

// awaitBodies waits until p's history of ch holds every body in want,
// each exactly once.
func awaitBodies(ctx context.Context, t *testing.T, p *nodetest.Peer, ch []byte, want []string) {
	t.Helper()
	p.Await(ctx, fmt.Sprintf("%d messages", len(want)), func() bool {
		return len(p.History(ch)) >= len(want)
	})
	got := bodies(p.History(ch))
	count := make(map[string]int)
	for _, b := range got {
		count[b]++
	}
	for _, w := range want {
		if count[w] != 1 {
			t.Fatalf("%s: message %q is in the history %d times; history has %d messages", p.Name, w, count[w], len(got))
		}
	}
}

// TestInviteWithRealKeyPackage: the KeyPackage an inviter uses is fetched
// from the DHT, and the invitee joins with the private keys its own store
// holds (the one provider).
func TestInviteJoinAndTalk(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	alice, bob := c.Add("alice"), c.Add("bob")
	bob.PublishKeyPackages(ctx)

	info, err := alice.CreateChannel(ctx, "general", "about everything")
	if err != nil {
		t.Fatal(err)
	}
	ch := info.ID
	if err := alice.Node.Invite(ctx, ch, bob.ID()); err != nil {
		t.Fatal(err)
	}
	ev := bob.AwaitEvent(ctx, "the invitation", func(e node.Event) bool { return e.Type == node.EventInvitation })
	if ev.Invitation.Name != "general" || ev.Invitation.Inviter != alice.ID() || len(ev.Invitation.Members) != 2 {
		t.Fatalf("invitation = %+v", ev.Invitation)
	}
	if _, err := bob.Info(ch); !errors.Is(err, node.ErrUnknownChannel) {
		t.Fatalf("before accepting, bob's channel info: %v, want ErrUnknownChannel", err)
	}
	if _, err := bob.Accept(ctx, ev.Invitation.ID); err != nil {
		t.Fatal(err)
	}
	// Bob's self-update after joining moves the channel one epoch on.
	nodetest.AwaitConverged(ctx, ch, 2, alice, bob)
	bi, _ := bob.Info(ch)
	if bi.Epoch < 2 || bi.Name != "general" || bi.Topic != "about everything" {
		t.Fatalf("bob's channel after the self-update: %+v", bi)
	}

	// 200 messages each way, interleaved.
	var want []string
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, p := range []*nodetest.Peer{alice, bob} {
		for i := range 200 {
			want = append(want, fmt.Sprintf("%s %d", p.Name, i))
		}
		wg.Go(func() {
			for i := range 200 {
				if _, err := p.Send(ctx, ch, fmt.Sprintf("%s %d", p.Name, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	awaitBodies(ctx, t, alice, ch, want)
	awaitBodies(ctx, t, bob, ch, want)
	// Each author's own messages are in its order.
	for _, p := range []*nodetest.Peer{alice, bob} {
		var mine []string
		for _, m := range p.History(ch) {
			if m.Sender == p.ID() {
				mine = append(mine, m.Body)
			}
		}
		for i, b := range mine {
			if b != fmt.Sprintf("%s %d", p.Name, i) {
				t.Fatalf("%s's own message %d is %q", p.Name, i, b)
			}
		}
	}
	members, err := bob.Members(ch)
	if err != nil || len(members) != 2 {
		t.Fatalf("members = %v, %v", members, err)
	}
	if !slices.ContainsFunc(members, func(m node.Member) bool { return m.Self && m.Peer == bob.ID() }) {
		t.Fatalf("bob is not marked as self in %v", members)
	}
}

// TestThreeParty: joins, messages in all directions, a remove, a leave and
// self-updates.
func TestThreeParty(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c := nodetest.NewLoopback(t)
	alice, bob, carol := c.Add("alice"), c.Add("bob"), c.Add("carol")
	bob.PublishKeyPackages(ctx)
	carol.PublishKeyPackages(ctx)
	info, err := alice.CreateChannel(ctx, "three", "")
	if err != nil {
		t.Fatal(err)
	}
	ch := info.ID
	alice.Invite(ctx, ch, bob)
	nodetest.AwaitConverged(ctx, ch, 2, alice, bob)
	bob.Invite(ctx, ch, carol)
	nodetest.AwaitConverged(ctx, ch, 3, alice, bob, carol)

	var want []string
	for _, p := range []*nodetest.Peer{alice, bob, carol} {
		for i := range 5 {
			body := fmt.Sprintf("%s says %d", p.Name, i)
			want = append(want, body)
			if _, err := p.Send(ctx, ch, body); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range []*nodetest.Peer{alice, bob, carol} {
		awaitBodies(ctx, t, p, ch, want)
	}
	for _, p := range []*nodetest.Peer{alice, bob, carol} {
		if err := p.Update(ctx, ch); err != nil {
			t.Fatalf("%s updating: %v", p.Name, err)
		}
	}
	nodetest.AwaitConverged(ctx, ch, 3, alice, bob, carol)

	// Carol leaves: a proposal that another member commits.
	if err := carol.Leave(ctx, ch); err != nil {
		t.Fatal(err)
	}
	carol.AwaitEvent(ctx, "carol's leave committed", func(e node.Event) bool { return e.Type == node.EventChannelLeft })
	nodetest.AwaitConverged(ctx, ch, 2, alice, bob)
	if ci, _ := carol.Info(ch); ci.State != "left" {
		t.Fatalf("carol's channel state = %q, want left", ci.State)
	}
	alice.AwaitEvent(ctx, "carol left", func(e node.Event) bool {
		return e.Type == node.EventMemberLeft && e.Peer == carol.ID()
	})

	// Alice removes Bob.
	if err := alice.Remove(ctx, ch, bob.ID()); err != nil {
		t.Fatal(err)
	}
	bob.AwaitEvent(ctx, "bob removed", func(e node.Event) bool { return e.Type == node.EventChannelLeft })
	if _, err := bob.Send(ctx, ch, "still here?"); !errors.Is(err, node.ErrNotMember) {
		t.Fatalf("a removed member's send: %v, want ErrNotMember", err)
	}
	if ai, _ := alice.Info(ch); ai.Members != 1 {
		t.Fatalf("alice's channel has %d members, want 1", ai.Members)
	}
}

// TestRestartBetweenPublishAndInvite: Bob's node is closed and reopened
// after publishing its KeyPackages; their private keys are in its store,
// so the Welcome made for them still joins.
func TestRestartBetweenPublishAndInvite(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	alice, bob := c.Add("alice"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	bob.Restart()
	info, err := alice.CreateChannel(ctx, "after restart", "")
	if err != nil {
		t.Fatal(err)
	}
	alice.Invite(ctx, info.ID, bob)
	nodetest.AwaitConverged(ctx, info.ID, 2, alice, bob)
	if _, err := bob.Send(ctx, info.ID, "hello"); err != nil {
		t.Fatal(err)
	}
	awaitBodies(ctx, t, alice, info.ID, []string{"hello"})
}

// TestInviteeOffline: the Welcome waits in Alice's outbox until Bob comes
// online.
func TestInviteeOffline(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	alice, bob := c.Add("alice"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	bob.Stop()
	info, err := alice.CreateChannel(ctx, "offline", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Node.Invite(ctx, info.ID, bob.ID()); err != nil {
		t.Fatal(err)
	}
	bob.Start()
	ev := bob.AwaitEvent(ctx, "the invitation", func(e node.Event) bool { return e.Type == node.EventInvitation })
	if _, err := bob.Accept(ctx, ev.Invitation.ID); err != nil {
		t.Fatal(err)
	}
	nodetest.AwaitConverged(ctx, info.ID, 2, alice, bob)
}

// TestOfflineMemberCatchesUp: Carol is away during 100 messages and 3
// commits, and has all of them after she returns.
func TestOfflineMemberCatchesUp(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c := nodetest.NewLoopback(t)
	alice, bob, carol := c.Add("alice"), c.Add("bob"), c.Add("carol")
	bob.PublishKeyPackages(ctx)
	carol.PublishKeyPackages(ctx)
	info, err := alice.CreateChannel(ctx, "catch-up", "")
	if err != nil {
		t.Fatal(err)
	}
	ch := info.ID
	alice.Invite(ctx, ch, bob)
	alice.Invite(ctx, ch, carol)
	nodetest.AwaitConverged(ctx, ch, 3, alice, bob, carol)
	carol.Stop()
	var want []string
	for i := range 100 {
		p := []*nodetest.Peer{alice, bob}[i%2]
		body := fmt.Sprintf("while carol was away %d", i)
		want = append(want, body)
		if _, err := p.Send(ctx, ch, body); err != nil {
			t.Fatal(err)
		}
		if i%34 == 33 {
			if err := p.Update(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
	}
	ai, _ := alice.Info(ch)
	carol.Start()
	carol.Await(ctx, "carol to reach alice's epoch", func() bool {
		ci, err := carol.Info(ch)
		return err == nil && ci.Epoch >= ai.Epoch
	})
	awaitBodies(ctx, t, carol, ch, want)
	if _, err := carol.Send(ctx, ch, "back"); err != nil {
		t.Fatal(err)
	}
	awaitBodies(ctx, t, alice, ch, append(want, "back"))
}

// TestRestartAll: every node restarted mid-conversation resumes with all
// history and keeps talking.
func TestRestartAll(t *testing.T) {
	t.Run("loopback", func(t *testing.T) { testRestartAll(t, nodetest.NewLoopback(t)) })
	// The testnet restarts nodes on mocknet, where a host cannot be made
	// again for the same key.
	t.Run("mocknet", func(t *testing.T) { testRestartAll(t, nodetest.NewMocknet(t, mocknet.LinkOptions{})) })
}

func testRestartAll(t *testing.T, c *nodetest.Cluster) {
	ctx := testContext(t, 2*time.Minute)
	alice, bob := c.Add("alice"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	info, err := alice.CreateChannel(ctx, "restart", "")
	if err != nil {
		t.Fatal(err)
	}
	ch := info.ID
	alice.Invite(ctx, ch, bob)
	nodetest.AwaitConverged(ctx, ch, 2, alice, bob)
	want := []string{"before 1", "before 2"}
	for _, b := range want {
		if _, err := alice.Send(ctx, ch, b); err != nil {
			t.Fatal(err)
		}
	}
	awaitBodies(ctx, t, bob, ch, want)
	alice.Restart()
	bob.Restart()
	for _, p := range []*nodetest.Peer{alice, bob} {
		awaitBodies(ctx, t, p, ch, want)
	}
	if _, err := bob.Send(ctx, ch, "after"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, ch, "after too"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "after", "after too")
	awaitBodies(ctx, t, alice, ch, want)
	awaitBodies(ctx, t, bob, ch, want)
}

// TestSecondProcessLocked: the data directory is the node's alone.
func TestSecondOpenLocked(t *testing.T) {
	ctx := testContext(t, time.Minute)
	c := nodetest.NewLoopback(t)
	alice := c.Add("alice")
	_, err := node.Open(ctx, node.Config{DataDir: alice.Dir, ListenAddrs: nodetest.Loopback})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("a second Open on the same directory: %v, want store.ErrLocked", err)
	}
}

// TestInviteWithoutKeyPackages: a peer that published nothing is a typed
// error, within the fetch bound.
func TestInviteWithoutKeyPackages(t *testing.T) {
	ctx := testContext(t, time.Minute)
	c := nodetest.NewLoopback(t)
	c.Configure = func(_ string, cfg *node.Config) { cfg.FetchTimeout = 3 * time.Second }
	alice, bob := c.Add("alice"), c.Add("bob")
	info, err := alice.CreateChannel(ctx, "x", "")
	if err != nil {
		t.Fatal(err)
	}
	// bob's publisher may race this; a peer ID no node has is certain.
	_ = bob
	err = alice.Node.Invite(ctx, info.ID, "12D3KooWPjceQrSwdWXPyLLeABRXmuqt69Rg3sBYbU1Nft9HyQ6X")
	if !errors.Is(err, keypkgdir.ErrNoKeyPackages) {
		t.Fatalf("inviting a peer with no KeyPackages: %v, want keypkgdir.ErrNoKeyPackages", err)
	}
	if _, err := alice.Send(ctx, info.ID, "the node keeps running"); err != nil {
		t.Fatal(err)
	}
}

// leafOf is p's leaf in channel, as viewer sees it.
func leafOf(t *testing.T, viewer *nodetest.Peer, channel []byte, p *nodetest.Peer) uint32 {
	t.Helper()
	ms, err := viewer.Members(channel)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Peer == p.ID() {
			return m.Leaf
		}
	}
	t.Fatalf("%s is no member", p.Name)
	return 0
}
