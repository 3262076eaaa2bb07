package p2p

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// relayedOnly is a connection gater that lets only relayed connections
// to or from one peer through.
type relayedOnly struct{ p peer.ID }

func relayed(a ma.Multiaddr) bool { return strings.Contains(a.String(), "/p2p-circuit") }

func (g relayedOnly) InterceptPeerDial(peer.ID) bool { return true }
func (g relayedOnly) InterceptAddrDial(p peer.ID, a ma.Multiaddr) bool {
	return p != g.p || relayed(a)
}
func (g relayedOnly) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g relayedOnly) InterceptSecured(_ network.Direction, p peer.ID, c network.ConnMultiaddrs) bool {
	return p != g.p || relayed(c.RemoteMultiaddr())
}
func (g relayedOnly) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

// TestWelcomeOverRelay: a Welcome reaches a host that the sender can only
// reach through a circuit relay v2, as between hosts behind symmetric NATs
// (internal/netlab's TestNATTraversal runs that through real NATs). go-libp2p
// refuses streams over relayed ("limited") connections unless asked; before
// p2p asked, SendWelcome waited for a direct connection that never came.
func TestWelcomeOverRelay(t *testing.T) {
	relay := newHost(t, func() Config {
		c := testConfig(t)
		c.RelayService, c.Reachability = true, ReachabilityPublic
		return c
	}())
	got := make(chan []byte, 1)
	invitee := newHost(t, func() Config {
		c := testConfig(t)
		c.HolePunching, c.Reachability = true, ReachabilityPrivate
		c.StaticRelays = relay.Addrs()[:1]
		c.WelcomeHandler = func(_ context.Context, _ peer.ID, w []byte) error {
			got <- w
			return nil
		}
		return c
	}())
	// On loopback the two could always connect directly, as the DHT and
	// identify soon make them; the sender's gater refuses that, as the NATs
	// of the real case do.
	sender := newHost(t, func() Config {
		c := testConfig(t)
		hst, err := libp2p.New(libp2p.Identity(c.Identity), libp2p.ListenAddrStrings(loopbackAddrs...),
			libp2p.ConnectionGater(relayedOnly{invitee.ID()}), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { hst.Close() })
		return Config{Host: hst, DHTMode: DHTServer, StreamTimeout: 10 * time.Second, Logger: testLogger()}
	}())

	// The invitee takes a reservation on its relay at once (it is told it
	// is unreachable); dialling the circuit works once it has. On loopback
	// the invitee does not advertise the circuit (go-libp2p prefers public
	// relay addresses), so the test writes it out.
	circuit := relay.Addrs()[0] + "/p2p-circuit/p2p/" + invitee.ID().String()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitFor(t, 20*time.Second, "a connection over the invitee's relay", func() bool {
		dial, stop := context.WithTimeout(ctx, 2*time.Second)
		defer stop()
		return sender.Connect(dial, circuit) == nil
	})
	addrs := sender.ConnAddrs(invitee.ID())
	if len(addrs) == 0 || slices.ContainsFunc(addrs, func(a string) bool { return !strings.Contains(a, "/p2p-circuit") }) {
		t.Fatalf("the sender's connections to the invitee are %q, want relayed only", addrs)
	}
	if err := sender.SendWelcome(ctx, invitee.ID(), []byte("welcome over a relay")); err != nil {
		t.Fatalf("SendWelcome over the relay: %v", err)
	}
	select {
	case w := <-got:
		if string(w) != "welcome over a relay" {
			t.Fatalf("the invitee got %q", w)
		}
	default:
		t.Fatal("SendWelcome returned before the handler had the Welcome")
	}
}

// TestReachabilityConfig: Reachability shapes a built host, so an
// injected one refuses it, and values outside the three are refused.
func TestReachabilityConfig(t *testing.T) {
	c := testConfig(t)
	c.Reachability = Reachability(7)
	if _, err := c.validate(); !errors.Is(err, ErrConfig) {
		t.Errorf("Reachability 7: %v, want ErrConfig", err)
	}
	h := newHost(t, testConfig(t))
	c = Config{Host: h.host, Reachability: ReachabilityPublic}
	if _, err := c.validate(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "Reachability") {
		t.Errorf("Reachability with an injected Host: %v, want ErrConfig naming it", err)
	}
}
