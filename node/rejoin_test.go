package node_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
	"github.com/spacepanda/spacepanda/p2p"
)

// partition cuts the mocknet links between every peer of a and every
// peer of b, or (heal) makes them again and reconnects.
func partition(t *testing.T, c *nodetest.Cluster, a, b []*nodetest.Peer, heal bool) {
	t.Helper()
	for _, p := range a {
		for _, q := range b {
			if heal {
				if _, err := c.Mock.LinkPeers(p.ID(), q.ID()); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Mock.ConnectPeers(p.ID(), q.ID()); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if err := c.Mock.UnlinkPeers(p.ID(), q.ID()); err != nil {
				t.Fatal(err)
			}
			c.Mock.DisconnectPeers(p.ID(), q.ID())
		}
	}
}

// TestCutOffMemberRejoins is acceptance 3's first half: carol is cut off
// while both sides commit 7 epochs (more than the rewind window of 5) and
// send; neither side can rewind to the other. After the links are back,
// carol finds herself off the group's view and rejoins by external commit
// on her own; she receives what alice and bob sent meanwhile (re-sent to
// her), and what she sent on her dead branch reaches them, each message
// once in every history.
func TestCutOffMemberRejoins(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	c := nodetest.NewMocknet(t, mocknet.LinkOptions{Latency: 20 * time.Millisecond})
	alice, bob, carol := c.Add("alice"), c.Add("bob"), c.Add("carol")
	bob.PublishKeyPackages(ctx)
	carol.PublishKeyPackages(ctx)
	info, err := alice.CreateChannel(ctx, "cut", "")
	if err != nil {
		t.Fatal(err)
	}
	ch := info.ID
	alice.Invite(ctx, ch, bob)
	nodetest.AwaitConverged(ctx, ch, 2, alice, bob)
	alice.Invite(ctx, ch, carol)
	all := []*nodetest.Peer{alice, bob, carol}
	nodetest.AwaitConverged(ctx, ch, 3, all...)
	var want []string
	for _, p := range all {
		body := "before, from " + p.Name
		if _, err := p.Send(ctx, ch, body); err != nil {
			t.Fatal(err)
		}
		want = append(want, body)
	}
	for _, p := range all {
		awaitBodies(ctx, t, p, ch, want)
	}

	partition(t, c, []*nodetest.Peer{carol}, []*nodetest.Peer{alice, bob}, false)
	const epochs = 7
	side := func(ps ...*nodetest.Peer) error {
		for i := range epochs {
			p := ps[i%len(ps)]
			if err := p.Update(ctx, ch); err != nil {
				return fmt.Errorf("%s: update %d: %w", p.Name, i, err)
			}
			if _, err := p.Send(ctx, ch, fmt.Sprintf("%s while apart %d", p.Name, i)); err != nil {
				return fmt.Errorf("%s: send %d: %w", p.Name, i, err)
			}
		}
		return nil
	}
	done := make(chan error, 2)
	go func() { done <- side(alice, bob) }()
	go func() { done <- side(carol) }()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for i := range epochs {
		want = append(want, fmt.Sprintf("%s while apart %d", []*nodetest.Peer{alice, bob}[i%2].Name, i), fmt.Sprintf("carol while apart %d", i))
	}
	a, cr := alice.MustInfo(ch), carol.MustInfo(ch)
	if a.EpochAuthenticator == cr.EpochAuthenticator {
		t.Fatal("the two sides did not fork")
	}
	carol.Await(ctx, "carol to say she is cut off", func() bool {
		return carol.MustInfo(ch).Convergence == node.ConvergenceUnrecoverable
	})
	t.Logf("apart: alice at epoch %d, carol at %d; carol says %q", a.Epoch, cr.Epoch, carol.MustInfo(ch).ConvergenceNote)

	healed := time.Now()
	partition(t, c, []*nodetest.Peer{carol}, []*nodetest.Peer{alice, bob}, true)
	carol.AwaitEvent(ctx, "carol's rejoin", func(e node.Event) bool {
		return e.Type == node.EventRejoined && bytes.Equal(e.Channel, ch)
	})
	nodetest.AwaitConverged(ctx, ch, 3, all...)
	for _, p := range all {
		awaitBodies(ctx, t, p, ch, want)
	}
	t.Logf("healed to converged, every message everywhere: %v", time.Since(healed))
	if n := carol.Rejoins(ch); n != 1 {
		t.Errorf("carol rejoined %d times, want 1", n)
	}
	for _, p := range []*nodetest.Peer{alice, bob} {
		if n := p.Rejoins(ch); n != 0 {
			t.Errorf("%s rejoined %d times", p.Name, n)
		}
	}
	for _, p := range all {
		p.Await(ctx, p.Name+" settled", func() bool { return p.MustInfo(ch).Convergence == node.ConvergenceSettled })
	}
	// The rejoined branch carries on.
	if _, err := carol.Send(ctx, ch, "after, from carol"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "after, from carol")
	for _, p := range all {
		awaitBodies(ctx, t, p, ch, want)
		if got := len(p.History(ch)); got != len(want) {
			t.Errorf("%s has %d messages, want %d", p.Name, got, len(want))
		}
	}
}

// TestInviteeOfLostCommitRejoins: carol is added by alice's commit, and
// joins by its Welcome; then a rival commit of the same epoch that ranks
// first, bob's, reaches the others, who rewind to it (alice adds carol
// again there, with the KeyPackage carol already spent). Carol, whose
// state began on the abandoned branch, has no state to rewind to: she
// rejoins by external commit into the group's view and talks with
// everyone. (So does bob, who cannot take his own rival: it was never
// his staged commit.)
func TestInviteeOfLostCommitRejoins(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewLoopback(t)
	alice, bob, dave, erin, carol := c.Add("alice"), c.Add("bob"), c.Add("dave"), c.Add("erin"), c.Add("carol")
	members := []*nodetest.Peer{alice, bob, dave, erin}
	for _, p := range append(members[1:], carol) {
		p.PublishKeyPackages(ctx)
	}
	info, err := alice.CreateChannel(ctx, "invitee", "")
	if err != nil {
		t.Fatal(err)
	}
	ch := info.ID
	for i, p := range members[1:] {
		alice.Invite(ctx, ch, p)
		nodetest.AwaitConverged(ctx, ch, i+2, members[:i+2]...)
	}
	// A rival by bob of the epoch alice's Add will be made in, where he
	// ranks before her.
	for {
		ra, err := alice.CommitterRank(ctx, ch, leafOf(t, alice, ch, alice))
		if err != nil {
			t.Fatal(err)
		}
		rb, err := alice.CommitterRank(ctx, ch, leafOf(t, alice, ch, bob))
		if err != nil {
			t.Fatal(err)
		}
		if rb < ra {
			break
		}
		if err := dave.Update(ctx, ch); err != nil {
			t.Fatal(err)
		}
		nodetest.AwaitConverged(ctx, ch, len(members), members...)
	}
	rival, err := bob.CommitUnsent(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	alice.Invite(ctx, ch, carol)
	all := append(members, carol)
	nodetest.AwaitConverged(ctx, ch, len(all), all...)
	want := []string{"carol on the branch that loses"}
	if _, err := carol.Send(ctx, ch, want[0]); err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		awaitBodies(ctx, t, p, ch, want)
	}
	for _, p := range []*nodetest.Peer{alice, dave, erin} {
		if err := p.Deliver(ctx, ch, bob.ID(), rival, false); err != nil {
			t.Fatal(err)
		}
		if p.Rewinds(ch) == 0 {
			t.Fatalf("%s did not rewind to the rival", p.Name)
		}
	}
	carol.AwaitEvent(ctx, "carol's rejoin", func(e node.Event) bool {
		return e.Type == node.EventRejoined && bytes.Equal(e.Channel, ch)
	})
	nodetest.AwaitConverged(ctx, ch, len(all), all...)
	for _, p := range []*nodetest.Peer{alice, dave, erin} {
		if n := p.Rejoins(ch); n != 0 {
			t.Errorf("%s, on the winning branch, rejoined %d times", p.Name, n)
		}
	}
	for _, p := range all {
		body := "after, from " + p.Name
		if _, err := p.Send(ctx, ch, body); err != nil {
			t.Fatal(err)
		}
		want = append(want, body)
	}
	for _, p := range all {
		awaitBodies(ctx, t, p, ch, want)
	}
}

// TestGroupInfoRefusedToStrangers: a peer that is no member gets the same
// refusal for a channel the node is in and one it is not, as with sync:
// no view, no GroupInfo, nothing about which channels the node is in. A
// member gets both.
func TestGroupInfoRefusedToStrangers(t *testing.T) {
	ctx := testContext(t, time.Minute)
	c := nodetest.NewLoopback(t)
	alice, bob := c.Add("alice"), c.Add("bob")
	bob.PublishKeyPackages(ctx)
	info, err := alice.CreateChannel(ctx, "private", "")
	if err != nil {
		t.Fatal(err)
	}
	alice.Invite(ctx, info.ID, bob)
	nodetest.AwaitConverged(ctx, info.ID, 2, alice, bob)
	raw := nodetest.RawHost(ctx, t, alice)
	refusal := func(channel []byte) string {
		v, err := raw.GroupView(ctx, alice.ID(), channel, true)
		if !errors.Is(err, p2p.ErrGroupInfoRefused) {
			t.Fatalf("a stranger asked for channel %x: %+v, %v", channel, v, err)
		}
		var r *p2p.RefusedError
		errors.As(err, &r)
		return r.Reason
	}
	known, unknown := refusal(info.ID), refusal(bytes.Repeat([]byte{7}, len(info.ID)))
	if known != unknown {
		t.Errorf("refusals differ:\n  channel it is in:     %s\n  channel it is not in: %s", known, unknown)
	}
	// A member gets alice's view, and a GroupInfo of it to rejoin by,
	// with both members in its tree.
	v, err := bob.GroupViewOf(ctx, info.ID, alice.ID(), true)
	if err != nil {
		t.Fatal(err)
	}
	ai := alice.MustInfo(info.ID)
	if v.Epoch != ai.Epoch || !bytes.Equal(v.Authenticator, node.ViewHash(ai)) {
		t.Fatalf("bob sees alice at %d %x, she is at %d %x", v.Epoch, v.Authenticator, ai.Epoch, node.ViewHash(ai))
	}
	sum, err := bob.InspectGroupInfo(v.GroupInfo)
	if err != nil || sum.Epoch != ai.Epoch || len(sum.Members) != 2 {
		t.Fatalf("GroupInfo: %+v, %v", sum, err)
	}
	if v, err := bob.GroupViewOf(ctx, info.ID, alice.ID(), false); err != nil || v.GroupInfo != nil {
		t.Fatalf("view without GroupInfo: %d bytes of GroupInfo, %v", len(v.GroupInfo), err)
	}
}
