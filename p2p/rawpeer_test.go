package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"
)

// rawPeer is a libp2p host that speaks gossipsub by hand: it opens its own
// pubsub stream to a host and writes RPCs on it, but serves no pubsub
// protocol, so the host's outbound pubsub stream to it never opens, and
// gossipsub never scores it.
type rawPeer struct {
	host.Host
	s network.Stream
	w *bufio.Writer
}

func newRawPeer(tb testing.TB) *rawPeer {
	tb.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return &rawPeer{Host: h}
}

// open connects to h and opens the pubsub stream, subscribed to topic.
func (r *rawPeer) open(ctx context.Context, h *Host, topic string) error {
	if err := r.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.host.Addrs()}); err != nil {
		return err
	}
	s, err := r.NewStream(ctx, h.ID(), pubsub.GossipSubID_v11)
	if err != nil {
		return err
	}
	r.s, r.w = s, bufio.NewWriter(s)
	return r.send(&pb.RPC{Subscriptions: []*pb.RPC_SubOpts{{Subscribe: proto.Bool(true), Topicid: proto.String(topic)}}})
}

// send writes one RPC, length-prefixed as gossipsub frames them.
func (r *rawPeer) send(rpc *pb.RPC) error {
	b, err := proto.Marshal(rpc)
	if err != nil {
		return err
	}
	r.w.Write(binary.AppendUvarint(nil, uint64(len(b))))
	r.w.Write(b)
	return r.w.Flush()
}

func (r *rawPeer) publish(topic string, data []byte) error {
	return r.send(&pb.RPC{Publish: []*pb.Message{{Topic: proto.String(topic), Data: data}}})
}

// TestRawPeerPastRejectionsIsGated: a peer that gossipsub does not score
// (it never accepts the host's pubsub stream) and sends messages the
// channel's validator rejects is disconnected once p2p counted
// MaxRejections of them, its further messages never reach the validator,
// and it cannot connect again while it is gated.
func TestRawPeerPastRejectionsIsGated(t *testing.T) {
	t.Parallel()
	const limit = 10 // the default MaxRejections
	h := newHost(t, testConfig(t))
	val := &okValidator{}
	c, err := h.JoinChannel(testChannel, val.validate)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	col := collect(ctx, c)
	raw := newRawPeer(t)
	if err := raw.open(ctx, h, c.Topic()); err != nil {
		t.Fatal(err)
	}
	// An accepted message first: the path is open.
	if err := raw.publish(c.Topic(), []byte("ok:raw")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the raw peer's valid message", func() bool { return col.has("ok:raw") })
	if _, scored := h.PeerScore(raw.ID()); scored {
		t.Log("gossipsub scores the raw peer: this test no longer shows a peer that escapes scoring")
	}

	for i := range limit {
		if err := raw.publish(c.Topic(), fmt.Appendf(nil, "garbage %d", i)); err != nil {
			t.Fatalf("garbage %d: %v", i, err)
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("garbage %d rejected", i), func() bool { return val.rejected()[raw.ID()] == i+1 })
	}
	waitFor(t, 10*time.Second, "the raw peer to be disconnected", func() bool {
		return h.host.Network().Connectedness(raw.ID()) != network.Connected
	})
	// Whatever still gets through is dropped before the validator.
	raw.publish(c.Topic(), []byte("garbage after"))
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	if err := raw.Connect(dctx, peer.AddrInfo{ID: h.ID(), Addrs: h.host.Addrs()}); err == nil {
		// A connection the gater let through would be closed at once.
		waitFor(t, 10*time.Second, "the gated peer's new connection to be closed", func() bool {
			return h.host.Network().Connectedness(raw.ID()) != network.Connected
		})
	}
	if n := val.rejected()[raw.ID()]; n != limit {
		t.Fatalf("the validator ran on %d of the raw peer's garbage messages, want %d", n, limit)
	}
	if !h.Gated(raw.ID()) {
		t.Fatal("the raw peer is not gated")
	}
	// The host does not dial it either.
	if err := h.Connect(dctx, raw.Addrs()[0].String()+"/p2p/"+raw.ID().String()); err == nil {
		t.Fatal("the host dialled a gated peer")
	}
}

// TestGateWindow: rejections count within RejectionWindow only, the gate
// closes on the MaxRejections-th and opens after GateDuration.
func TestGateWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	g := newGate(3, time.Minute, time.Hour)
	g.now = func() time.Time { return now }
	_, p := identity(t)
	g.reject(p)
	g.reject(p)
	now = now.Add(time.Minute) // the window starts again
	first, second := g.reject(p), g.reject(p)
	if first || second || g.gated(p) {
		t.Fatal("gated on rejections from two windows")
	}
	if !g.reject(p) || !g.gated(p) {
		t.Fatal("not gated on the third rejection in a window")
	}
	if g.reject(p) {
		t.Fatal("a gated peer's rejection reported as gating it again")
	}
	now = now.Add(time.Hour - time.Second)
	if !g.gated(p) {
		t.Fatal("gate opened early")
	}
	now = now.Add(time.Second)
	if g.gated(p) || len(g.until) != 0 {
		t.Fatal("gate still closed after GateDuration")
	}
	// Many peers with a rejection each do not grow the maps without bound.
	for range 3 * sweepAt {
		_, q := identity(t)
		g.reject(q)
		now = now.Add(time.Minute / sweepAt)
	}
	if len(g.counts) > sweepAt+sweepAt/2 {
		t.Fatalf("%d peers counted, sweep at %d", len(g.counts), sweepAt)
	}
}
