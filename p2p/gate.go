package p2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// gate counts, per peer, the channel messages it handed over that a
// validator rejected (and the DHT records it put that failed validation), and shuts a peer out for a while once it passes a
// threshold within a window. Gossipsub's own score does the same only for
// peers it scores, and a peer that opens its pubsub stream to the host but
// never accepts the host's stream back is never scored: without the gate
// it could send rejected messages, each costing a validator run, for as
// long as it liked. It is also the host's libp2p ConnectionGater, so that
// a shut-out peer cannot simply reconnect.
type gate struct {
	max    int
	window time.Duration
	ban    time.Duration
	now    func() time.Time

	mu     sync.Mutex
	counts map[peer.ID]*rejections
	until  map[peer.ID]time.Time // gated peers and when they may return
}

type rejections struct {
	n     int
	since time.Time // the start of the window they count in
}

// sweepAt is the map size past which expired entries are swept: fresh peer
// IDs cost nothing, so the maps must not grow with every one seen.
const sweepAt = 1024

func newGate(max int, window, ban time.Duration) *gate {
	return &gate{
		max: max, window: window, ban: ban, now: time.Now,
		counts: make(map[peer.ID]*rejections),
		until:  make(map[peer.ID]time.Time),
	}
}

// gated reports whether p is shut out now.
func (g *gate) gated(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gatedLocked(p, g.now())
}

func (g *gate) gatedLocked(p peer.ID, now time.Time) bool {
	t, ok := g.until[p]
	if ok && !now.Before(t) {
		delete(g.until, p)
		return false
	}
	return ok
}

// reject counts a rejected message from p and reports whether that shut p
// out (only the rejection that crosses the threshold does).
func (g *gate) reject(p peer.ID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if g.gatedLocked(p, now) {
		return false
	}
	if len(g.counts) >= sweepAt {
		g.sweep(now)
	}
	r, ok := g.counts[p]
	if !ok || now.Sub(r.since) >= g.window {
		r = &rejections{since: now}
		g.counts[p] = r
	}
	r.n++
	if r.n < g.max {
		return false
	}
	delete(g.counts, p)
	g.until[p] = now.Add(g.ban)
	return true
}

func (g *gate) sweep(now time.Time) {
	for p, r := range g.counts {
		if now.Sub(r.since) >= g.window {
			delete(g.counts, p)
		}
	}
	for p, t := range g.until {
		if !now.Before(t) {
			delete(g.until, p)
		}
	}
}

// The ConnectionGater methods: a gated peer is neither dialled nor
// accepted once its identity is known (after the security handshake).

func (g *gate) InterceptPeerDial(p peer.ID) bool                                { return !g.gated(p) }
func (g *gate) InterceptAddrDial(peer.ID, ma.Multiaddr) bool                    { return true }
func (g *gate) InterceptAccept(network.ConnMultiaddrs) bool                     { return true }
func (g *gate) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
func (g *gate) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.gated(p)
}

// Gated reports whether p is shut out: it passed MaxRejections rejected
// channel messages within RejectionWindow less than GateDuration ago.
func (h *Host) Gated(p peer.ID) bool { return h.gate.gated(p) }

// shutOut disconnects a peer the gate just closed on, and has gossipsub
// drop whatever it still sends over a connection not yet closed.
func (h *Host) shutOut(p peer.ID) {
	h.log.Warn("peer shut out: too many rejected channel messages or DHT records", "remote", p.String(),
		"max", h.cfg.MaxRejections, "window", h.cfg.RejectionWindow, "for", h.cfg.GateDuration)
	if h.ctx.Err() != nil {
		return
	}
	h.wg.Go(func() {
		h.ps.BlacklistPeer(p)
		_ = h.host.Network().ClosePeer(p)
	})
}

// gateNotifiee closes connections from gated peers that the gater did not
// see: those of a host the caller built (Config.Host), which has no gater
// of ours.
func (h *Host) gateNotifiee() network.Notifiee {
	return &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		if h.gate.gated(c.RemotePeer()) {
			go c.Close()
		}
	}}
}
