package netlab_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/netlab"
	"github.com/spacepanda/spacepanda/internal/proctest"
)

// natPort is where every daemon of the lab listens, TCP and QUIC: each
// is alone in its namespace, so the ports cannot collide, and a fixed one
// makes the daemons' logs easy to read.
const natPort = "4001"

// TestNATTraversal runs real spacepandad processes through real NATs: a
// public relay (also the bootstrap node and AutoNAT server) and alice and
// bob, each behind a router of its own of the subtest's NAT type. Neither
// NATed node can dial the other: each router drops what arrives
// unasked, and the nodes' own addresses are on private LANs. So alice's
// invite reaches bob over a circuit through the relay (found through the
// DHT: neither is told the relay's address), and any direct connection
// between them can only come from a hole punch (DCUtR) over that circuit.
// The channel then works both ways. The test logs which connection the
// two ended on; behind endpoint-independent NATs it must be direct,
// behind symmetric ones it cannot be.
func TestNATTraversal(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skipf("no network namespaces here: %v", err)
	}
	for _, nat := range []netlab.NAT{netlab.EndpointIndependent, netlab.Symmetric} {
		// In parallel: each lab is its own, and most of each run is
		// waiting (AutoNAT's start, and behind symmetric NATs the sync
		// that carries messages the relay cannot gossip).
		t.Run(nat.String(), func(t *testing.T) {
			t.Parallel()
			natTraversal(t, nat)
		})
	}
}

func natTraversal(t *testing.T, nat netlab.NAT) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	// The lab's cleanup runs after the daemons' (cleanups run last first),
	// so no daemon outlives its namespace.
	l := newLab(t)
	pub, err := l.AddPublic("relay")
	if err != nil {
		t.Fatal(err)
	}
	aliceNS, aliceRouter, err := l.AddNATed("alice", nat)
	if err != nil {
		t.Fatal(err)
	}
	bobNS, bobRouter, err := l.AddNATed("bob", nat)
	if err != nil {
		t.Fatal(err)
	}

	relay := proctest.New(t, "relay",
		"--listen", "/ip4/"+pub.Addr+"/tcp/"+natPort, "--listen", "/ip4/"+pub.Addr+"/udp/"+natPort+"/quic-v1",
		"--relay-service", "--autonat-service", "--reachability", "public", "--hole-punching=false", "--port-map=false")
	relay.Prefix = pub.Prefix()
	relay.Start(ctx)
	relayID := relay.ID(ctx).PeerID
	boot := []string{
		"--bootstrap", "/ip4/" + pub.Addr + "/udp/" + natPort + "/quic-v1/p2p/" + relayID,
		"--bootstrap", "/ip4/" + pub.Addr + "/tcp/" + natPort + "/p2p/" + relayID,
	}
	natted := func(name string, h *netlab.Host) *proctest.Daemon {
		d := proctest.New(t, name, append([]string{
			"--listen", "/ip4/0.0.0.0/udp/" + natPort + "/quic-v1", "--listen", "/ip4/0.0.0.0/tcp/" + natPort,
			"--port-map=false"}, boot...)...)
		d.Prefix = h.Prefix()
		d.Start(ctx)
		return d
	}
	alice, bob := natted("alice", aliceNS), natted("bob", bobNS)
	bobID := bob.ID(ctx).PeerID

	// Each NATed node learns from AutoNAT that it is unreachable and takes
	// a reservation on the relay, which it then advertises.
	for _, d := range []*proctest.Daemon{alice, bob} {
		proctest.Await(ctx, t, d.Name+"'s relay address", func() bool {
			return slices.ContainsFunc(d.ID(ctx).Addrs, func(a string) bool {
				return strings.Contains(a, "/p2p/"+relayID+"/p2p-circuit")
			})
		})
	}
	t.Logf("%s: both NATed nodes hold relay reservations after %v", nat, time.Since(start).Round(time.Millisecond))

	// Watch alice's connections to bob from before the invite on, to see
	// the relayed one that comes first.
	var (
		mu   sync.Mutex
		seen = map[string]time.Duration{} // "relayed"/"direct" -> first seen
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for watchCtx.Err() == nil {
			for _, kind := range connKinds(watchCtx, alice, bobID) {
				mu.Lock()
				if _, ok := seen[kind]; !ok {
					seen[kind] = time.Since(start)
				}
				mu.Unlock()
			}
			select {
			case <-watchCtx.Done():
			case <-tick.C:
			}
		}
	}()

	var ch struct{ Channel string }
	alice.CLI(ctx, &ch, "channel", "create", "nat")
	alice.Invite(ctx, ch.Channel, bobID)
	bob.AcceptFrom(ctx, ch.Channel)
	t.Logf("%s: bob joined after %v", nat, time.Since(start).Round(time.Millisecond))
	var sent []string
	for _, m := range []struct {
		d    *proctest.Daemon
		text string
	}{{bob, "hi alice"}, {alice, "hi bob"}} {
		var r struct{ ID string }
		m.d.CLI(ctx, &r, "send", ch.Channel, m.text)
		sent = append(sent, r.ID)
	}
	for _, d := range []*proctest.Daemon{alice, bob} {
		proctest.Await(ctx, t, d.Name+" has both messages", func() bool {
			ids := map[string]bool{}
			for _, m := range d.History(ctx, ch.Channel) {
				ids[m.ID] = true
			}
			return ids[sent[0]] && ids[sent[1]]
		})
	}
	t.Logf("%s: both messages in both histories after %v", nat, time.Since(start).Round(time.Millisecond))
	stopWatch()
	<-watched

	// What alice's connections to bob are now, and where a direct one
	// comes from: bob's router, the only way into bob's LAN.
	var now []string
	for _, p := range peers(ctx, alice) {
		if p.PeerID == bobID {
			now = p.Addrs
		}
	}
	direct := slices.ContainsFunc(now, func(a string) bool { return !strings.Contains(a, "/p2p-circuit") })
	mu.Lock()
	first := func(kind string) string {
		if d, ok := seen[kind]; ok {
			return d.Round(time.Millisecond).String()
		}
		return "never"
	}
	t.Logf("%s: alice's connections to bob at the end: %q; first seen relayed at %s, direct at %s",
		nat, now, first("relayed"), first("direct"))
	_, everDirect := seen["direct"]
	mu.Unlock()
	for _, a := range now {
		if !strings.Contains(a, "/p2p-circuit") && !strings.HasPrefix(a, "/ip4/"+bobRouter.Addr+"/") {
			t.Errorf("%s: alice has a direct connection to bob from %s, not from bob's router %s", nat, a, bobRouter.Addr)
		}
	}
	// And from bob's side, a direct connection comes from alice's router.
	for _, p := range peers(ctx, bob) {
		if p.PeerID != alice.ID(ctx).PeerID {
			continue
		}
		for _, a := range p.Addrs {
			if !strings.Contains(a, "/p2p-circuit") && !strings.HasPrefix(a, "/ip4/"+aliceRouter.Addr+"/") {
				t.Errorf("%s: bob has a direct connection to alice from %s, not from alice's router %s", nat, a, aliceRouter.Addr)
			}
		}
	}
	switch nat {
	case netlab.EndpointIndependent:
		if !direct {
			t.Errorf("%s: alice and bob still have no direct connection: %q", nat, now)
		}
	case netlab.Symmetric:
		if direct || everDirect {
			t.Errorf("%s: alice and bob got a direct connection through symmetric NATs: %q", nat, now)
		}
	}
	fmt.Printf("NAT traversal: %s NATs: direct connection %v (%v)\n", nat, direct, time.Since(start).Round(time.Millisecond))
}

type peer struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

func peers(ctx context.Context, d *proctest.Daemon) []peer {
	var ps []peer
	d.CLI(ctx, &ps, "peers")
	return ps
}

// connKinds says what d's connections to id are, "relayed" or "direct",
// without failing the test when ctx ends (the watcher's does).
func connKinds(ctx context.Context, d *proctest.Daemon, id string) []string {
	out, code := d.Run(ctx, "", "peers")
	var ps []peer
	if code != 0 || ctx.Err() != nil || json.Unmarshal(out, &ps) != nil {
		return nil
	}
	var kinds []string
	for _, p := range ps {
		if p.PeerID != id {
			continue
		}
		for _, a := range p.Addrs {
			if strings.Contains(a, "/p2p-circuit") {
				kinds = append(kinds, "relayed")
			} else {
				kinds = append(kinds, "direct")
			}
		}
	}
	return kinds
}
