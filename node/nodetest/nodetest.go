// Package nodetest runs real spacepanda nodes for tests and the testnet,
// in the manner of raft's rafttest: each node has its own data directory
// and a real store, and runs on real loopback hosts or on go-libp2p's
// mocknet. Waits are on the nodes' events, never on the clock.
package nodetest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/p2p"
)

// Loopback is where loopback nodes listen, on both transports.
var Loopback = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Cluster is a set of nodes that bootstrap from the first one.
type Cluster struct {
	T testing.TB
	// Mock, if set, is the mocknet the nodes run on; nil means loopback.
	Mock mocknet.Mocknet
	// Links shape new mocknet links (latency, bandwidth).
	Links mocknet.LinkOptions
	// Configure adjusts each node's Config before it opens.
	Configure func(name string, c *node.Config)

	mu    sync.Mutex
	peers []*Peer
	next  int
}

// NewLoopback is a cluster of loopback nodes.
func NewLoopback(t testing.TB) *Cluster {
	return &Cluster{T: t}
}

// NewMocknet is a cluster on a fresh mocknet whose links have opts.
func NewMocknet(t testing.TB, opts mocknet.LinkOptions) *Cluster {
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	return &Cluster{T: t, Mock: mn, Links: opts}
}

// Peer is one node of a cluster and what it heard.
type Peer struct {
	*node.Node
	id   peer.ID
	Name string
	Dir  string
	c    *Cluster

	mu      sync.Mutex
	events  []node.Event
	changed chan struct{} // closed and replaced on each event
	sub     *node.Subscription
	done    chan struct{}
}

// Add opens a new node in its own data directory.
func (c *Cluster) Add(name string) *Peer {
	c.T.Helper()
	p := &Peer{Name: name, Dir: filepath.Join(c.T.TempDir(), name), c: c}
	p.Start()
	c.mu.Lock()
	c.peers = append(c.peers, p)
	c.mu.Unlock()
	return p
}

// Peers are the cluster's nodes in the order added.
func (c *Cluster) Peers() []*Peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.peers)
}

func (c *Cluster) bootstrap(self *Peer) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var addrs []string
	for _, p := range c.peers {
		if p != self && p.Node != nil {
			addrs = append(addrs, p.Addrs()...)
			break
		}
	}
	return addrs
}

// Start opens the peer's node (again) on its data directory.
func (p *Peer) Start() {
	t := p.c.T
	t.Helper()
	cfg := Config(p.Dir, p.Name, p.c.bootstrap(p))
	if mn := p.c.Mock; mn != nil {
		cfg.ListenAddrs = nil
		cfg.NewHost = func(key crypto.PrivKey) (host.Host, error) {
			p.c.mu.Lock()
			p.c.next++
			i := p.c.next
			p.c.mu.Unlock()
			return MocknetHost(mn, i, key, p.c.Links)
		}
	}
	if p.c.Configure != nil {
		p.c.Configure(p.Name, &cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("%s: opening node: %v", p.Name, err)
	}
	p.mu.Lock()
	p.Node = n
	p.id = n.ID()
	p.sub = n.Subscribe(1 << 16)
	p.changed = make(chan struct{})
	p.done = make(chan struct{})
	sub, done := p.sub, p.done
	p.mu.Unlock()
	go func() {
		defer close(done)
		for e := range sub.C {
			p.mu.Lock()
			p.events = append(p.events, e)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.Stop)
}

// Config is the node configuration of every test node and of the
// testnet: short settle and sync intervals, so that a test or a simulated
// run sees commits and catch-up in seconds rather than the production
// defaults' minutes. The node listens on loopback and bootstraps from
// bootstrap.
func Config(dir, name string, bootstrap []string) node.Config {
	return node.Config{
		DataDir:        dir,
		ListenAddrs:    Loopback,
		BootstrapPeers: bootstrap,
		DHTMode:        p2p.DHTServer,
		SettleWindow:   300 * time.Millisecond,
		SyncInterval:   2 * time.Second,
		P2P: p2p.Config{
			WelcomeRetryMax: time.Second, PublishWait: 2 * time.Second, StreamTimeout: 10 * time.Second,
			MailboxInterval: 2 * time.Second,
		},
		Logger: logger(name),
	}
}

// MocknetHost is a node's host on mn (a node.Config.NewHost): the
// index'th peer's address, linked with opts to every peer already on mn.
// A key mn has seen gets its old host back: mocknet cannot forget a peer,
// so a restarted node runs on the host it had (see Restartable).
func MocknetHost(mn mocknet.Mocknet, index int, key crypto.PrivKey, opts mocknet.LinkOptions) (host.Host, error) {
	addr, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", index>>16&255, index>>8&255, index&255))
	if err != nil {
		return nil, err
	}
	if h := mn.Host(peerOf(key)); h != nil {
		return Restartable(h), nil
	}
	h, err := mn.AddPeer(key, addr)
	if err != nil {
		return nil, err
	}
	mn.SetLinkDefaults(opts)
	for _, other := range mn.Peers() {
		if other != h.ID() && len(mn.LinksBetweenPeers(h.ID(), other)) == 0 {
			if _, err := mn.LinkPeers(h.ID(), other); err != nil {
				return nil, err
			}
		}
	}
	return Restartable(h), nil
}

// Restartable wraps a mocknet host so that its Close ends what a process
// exit would (its connections, and the protocols the node registered)
// but not the host: mocknet has no way to remove a peer, and AddPeer
// refuses a key it has seen, so a node restarted on mocknet gets the same
// host back, and the testnet's baseline runs raw gossipsub on the hosts
// the nodes ran on.
func Restartable(h host.Host) host.Host { return restartable{h} }

type restartable struct{ host.Host }

// hostProtocols are the basic host's own protocols, which a node does not
// register and a restart must keep.
var hostProtocols = map[string]bool{"/ipfs/id/1.0.0": true, "/ipfs/id/push/1.0.0": true, "/ipfs/ping/1.0.0": true}

func (h restartable) Close() error {
	for _, pid := range h.Mux().Protocols() {
		if !hostProtocols[string(pid)] {
			h.RemoveStreamHandler(pid)
		}
	}
	for _, q := range h.Network().Peers() {
		h.Network().ClosePeer(q)
	}
	return nil
}

// ID is the peer's ID, also while it is stopped.
func (p *Peer) ID() peer.ID { return p.id }

// Stop closes the node; its data directory stays for Start.
func (p *Peer) Stop() {
	p.mu.Lock()
	n, done := p.Node, p.done
	p.Node = nil
	p.mu.Unlock()
	if n == nil {
		return
	}
	if err := n.Close(); err != nil {
		p.c.T.Errorf("%s: closing: %v", p.Name, err)
	}
	<-done
}

// Restart closes and reopens the node on the same data directory.
func (p *Peer) Restart() {
	p.Stop()
	p.Start()
}

// Events are the events the peer heard since it was added.
func (p *Peer) Events() []node.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// Await waits until cond holds, re-checking it on each of the peer's
// events and at least every 100 ms (for conditions on state that no
// event announces, such as a store write), and fails the test when ctx
// ends first.
func (p *Peer) Await(ctx context.Context, what string, cond func() bool) {
	t := p.c.T
	t.Helper()
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("%s: waiting for %s: %v", p.Name, what, ctx.Err())
		}
	}
}

// AwaitEvent waits for an event that match accepts, among those heard
// since the peer was added, and returns it.
func (p *Peer) AwaitEvent(ctx context.Context, what string, match func(node.Event) bool) node.Event {
	p.c.T.Helper()
	var found node.Event
	p.Await(ctx, what, func() bool {
		for _, e := range p.Events() {
			if match(e) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// History is the whole history of a channel, oldest first.
func (p *Peer) History(channel []byte) []node.Message {
	t := p.c.T
	t.Helper()
	var all []node.Message
	for after := uint64(0); ; {
		page, err := p.Node.History(channel, node.HistoryOptions{After: after, Ascending: true, Limit: 1000})
		if err != nil {
			t.Fatalf("%s: history: %v", p.Name, err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
}

// Invite invites q into a channel, and has q accept the invitation.
func (p *Peer) Invite(ctx context.Context, channel []byte, q *Peer) {
	t := p.c.T
	t.Helper()
	if err := p.Node.Invite(ctx, channel, q.ID()); err != nil {
		t.Fatalf("%s inviting %s: %v", p.Name, q.Name, err)
	}
	ev := q.AwaitEvent(ctx, "the invitation", func(e node.Event) bool {
		return e.Type == node.EventInvitation && string(e.Channel) == string(channel)
	})
	if _, err := q.Accept(ctx, ev.Invitation.ID); err != nil {
		t.Fatalf("%s accepting %s's invitation: %v", q.Name, p.Name, err)
	}
}

// PublishKeyPackages waits until the peer's KeyPackages are in the DHT.
func (p *Peer) PublishKeyPackages(ctx context.Context) {
	t := p.c.T
	t.Helper()
	for {
		err := p.Node.PublishKeyPackages(ctx)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: publishing KeyPackages: %v", p.Name, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// AwaitConverged waits until every peer given shows the channel in one
// epoch with one epoch authenticator and want members.
func AwaitConverged(ctx context.Context, channel []byte, want int, peers ...*Peer) {
	peers[0].c.T.Helper()
	peers[0].Await(ctx, "the channel to converge", func() bool {
		var auth string
		for i, p := range peers {
			info, err := p.Info(channel)
			if err != nil || info.Members != want || info.CommitPending {
				return false
			}
			if i == 0 {
				auth = info.EpochAuthenticator
			} else if info.EpochAuthenticator != auth {
				return false
			}
		}
		return true
	})
}

func peerOf(key crypto.PrivKey) peer.ID {
	id, _ := peer.IDFromPrivateKey(key)
	return id
}

func logger(name string) *slog.Logger {
	if os.Getenv("NODE_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

// RawHost is a bare p2p host on loopback, connected to peers: a stand-in
// for a peer that runs no node, or a hostile one.
func RawHost(ctx context.Context, t testing.TB, peers ...*Peer) *p2p.Host {
	t.Helper()
	key, err := p2p.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.New(ctx, p2p.Config{Identity: key, ListenAddrs: Loopback, DHTMode: p2p.DHTClient, PublishWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, p := range peers {
		if err := h.Connect(ctx, p.Addrs()[0]); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// MustInfo is a channel's info; an error fails the test.
func (p *Peer) MustInfo(channel []byte) node.ChannelInfo {
	p.c.T.Helper()
	i, err := p.Info(channel)
	if err != nil {
		p.c.T.Fatalf("%s: info: %v", p.Name, err)
	}
	return i
}
