package p2p

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// DHTProtocolPrefix is the DHT's protocol prefix: its protocol is
// /spacepanda/kad/1.0.0, a network of its own.
const DHTProtocolPrefix = "/spacepanda"

// mdnsService is the mDNS service name spacepanda hosts announce.
const mdnsService = "spacepanda"

// bootstrapTimeout bounds New's dials to bootstrap peers.
const bootstrapTimeout = 10 * time.Second

// GenerateIdentity makes a new Ed25519 host identity from rand (nil means
// crypto/rand). Persist it with crypto.MarshalPrivateKey: the peer ID it
// gives is the node's name, in the DHT and in MLS credentials alike.
func GenerateIdentity(r io.Reader) (crypto.PrivKey, error) {
	if r == nil {
		r = rand.Reader
	}
	priv, _, err := crypto.GenerateEd25519Key(r)
	if err != nil {
		return nil, fmt.Errorf("p2p: generating identity: %w", err)
	}
	return priv, nil
}

// Host is a running spacepanda network node. Its methods are safe for
// concurrent use.
type Host struct {
	cfg  *config
	log  *slog.Logger
	host host.Host
	dht  *dht.IpfsDHT
	ps   *pubsub.PubSub
	mdns mdns.Service
	out  *outbox
	// mailbox is the identity key in X25519 form, for the mailbox hint
	// keys; nil when the identity is not Ed25519 (no mailbox).
	mailbox *ecdh.PrivateKey

	// gate shuts out peers past MaxRejections; notifiee closes their
	// connections on injected hosts, which have no gater of ours.
	gate     *gate
	notifiee network.Notifiee
	// DHT PUTs: each peer's budget, the configured validators, and the
	// records checkPut validated, which the DHT's own check then passes.
	puts       *putBudget
	validators record.NamespacedValidator
	validated  *validated

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // goroutines started by the Host
	once   sync.Once

	// Inbound streams by peer, each protocol held to MaxPeerStreams.
	welcomeStreams, syncStreams, viewStreams peerStreams
	// welcomeBuffers is what inbound Welcomes of all peers may hold.
	welcomeBuffers *bufferBudget

	mu       sync.Mutex // guards the fields below; never held while calling out
	channels map[string]*Channel
	scores   map[peer.ID]float64
}

// New starts a host: it listens, starts the DHT, gossipsub and the stream
// protocols, dials the bootstrap peers (bounded by ctx and ten seconds;
// failures are logged, not returned, since the first node of a network has
// nobody to dial), and starts the Welcome outbox. ctx bounds only New.
func New(ctx context.Context, c Config) (h *Host, err error) {
	cfg, err := c.validate()
	if err != nil {
		return nil, err
	}
	h = &Host{cfg: cfg, channels: make(map[string]*Channel), scores: make(map[peer.ID]float64)}
	h.welcomeStreams = peerStreams{max: cfg.MaxPeerStreams, open: make(map[peer.ID]int)}
	h.syncStreams = peerStreams{max: cfg.MaxPeerStreams, open: make(map[peer.ID]int)}
	h.viewStreams = peerStreams{max: cfg.MaxPeerStreams, open: make(map[peer.ID]int)}
	h.gate = newGate(cfg.MaxRejections, cfg.RejectionWindow, cfg.GateDuration)
	h.puts = newPutBudget(cfg.MaxPeerPuts, cfg.PeerPutInterval)
	h.welcomeBuffers = newBufferBudget(cfg.MaxWelcomeBuffers)
	h.validated = &validated{records: make(map[[32]byte]validatedEntry)}
	if h.mailbox, err = mailboxPrivate(cfg.Identity); errors.Is(err, errNoMailbox) {
		err = nil
	} else if err != nil {
		return nil, fmt.Errorf("p2p: mailbox key: %w", err)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			h.Close()
		}
	}()

	if cfg.Host != nil {
		h.host = cfg.Host
	} else if h.host, err = newLibp2pHost(cfg, h.gate); err != nil {
		return nil, err
	}
	h.log = cfg.Logger.With("peer", h.host.ID().String())
	h.notifiee = h.gateNotifiee()
	h.host.Network().Notify(h.notifiee)

	if err := h.startDHT(); err != nil {
		return nil, err
	}
	if err := h.startPubSub(); err != nil {
		return nil, err
	}
	if cfg.WelcomeHandler != nil {
		h.host.SetStreamHandler(welcomeProtocol, h.handleWelcome)
	}
	if cfg.SyncProvider != nil {
		h.host.SetStreamHandler(syncProtocol, h.handleSync)
	}
	if cfg.GroupInfoProvider != nil {
		h.host.SetStreamHandler(groupInfoProtocol, h.handleGroupInfo)
	}
	if h.out, err = newOutbox(h); err != nil {
		return nil, err
	}
	if cfg.MDNS {
		h.mdns = mdns.NewMdnsService(h.host, mdnsService, mdnsNotifee{h})
		if err := h.mdns.Start(); err != nil {
			return nil, fmt.Errorf("p2p: starting mDNS: %w", err)
		}
	}
	if cfg.PeerConnected != nil {
		sub, err := h.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged), eventbus.BufSize(256))
		if err != nil {
			return nil, fmt.Errorf("p2p: peer events: %w", err)
		}
		h.wg.Go(func() {
			defer sub.Close()
			for {
				select {
				case <-h.ctx.Done():
					return
				case e, ok := <-sub.Out():
					if !ok {
						return
					}
					if ev := e.(event.EvtPeerConnectednessChanged); ev.Connectedness == network.Connected || ev.Connectedness == network.Limited {
						cfg.PeerConnected(ev.Peer)
					}
				}
			}
		})
	}
	h.bootstrap(ctx)
	h.wg.Go(h.mailboxLoop)
	h.log.Info("p2p host started", "addrs", h.Addrs())
	return h, nil
}

// The resource manager's explicit limits, per peer and in total: what
// libp2p itself (connections, streams, their buffers) may spend. Fresh peer
// IDs cost nothing, so the totals are what bound a crowd of them; the
// per-peer limits keep one peer from taking the totals. A peer needs one
// or two connections and a few streams (DHT, gossipsub, a Welcome, a
// sync); the connection manager trims at ConnHigh (192), well below
// hostConns. Loopback is exempt from libp2p's per-subnet connection
// limits, not from these.
const (
	hostConns          = 512
	hostConnsInbound   = 384
	hostStreams        = 8192
	hostMemory         = 512 << 20
	hostFDs            = 1024
	peerConns          = 8
	peerStreamsMax     = 256
	peerStreamsInbound = 128
	peerMemory         = 32 << 20
)

// resourceManager is libp2p's resource manager with the limits above over
// libp2p's defaults for services and protocols.
func resourceManager() (network.ResourceManager, error) {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns: hostConns, ConnsInbound: hostConnsInbound,
			Streams: hostStreams, Memory: hostMemory, FD: hostFDs,
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns: peerConns, Streams: peerStreamsMax, StreamsInbound: peerStreamsInbound, Memory: peerMemory,
		},
	}
	return rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(partial.Build(scaling.Scale(hostMemory, hostFDs))))
}

// newLibp2pHost builds the host for a Config that brings none.
func newLibp2pHost(cfg *config, gater *gate) (host.Host, error) {
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(cfg.ConnGrace))
	if err != nil {
		return nil, fmt.Errorf("%w: connection manager: %w", ErrConfig, err)
	}
	rm, err := resourceManager()
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(cfg.Identity),
		libp2p.ResourceManager(rm),
		libp2p.ListenAddrs(cfg.listen...),
		// Port reuse lets two hosts that dial each other at the same moment
		// meet in one TCP simultaneous open, where both think they are the
		// initiator and the security handshake fails. Hole punching and
		// address discovery keep working over QUIC's single UDP socket.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(gater),
		// Several hosts share a process in tests and in testnet; libp2p's
		// metrics would register the same collectors once per host.
		libp2p.DisableMetrics(),
	}
	if cfg.NATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if cfg.AutoNATService {
		opts = append(opts, libp2p.EnableNATService())
	}
	if cfg.AutoNATService || cfg.HolePunching {
		// v2 serves (with AutoNATService's v1) and asks about each
		// address, where v1 only judges the host as a whole; go-libp2p
		// still drives AutoRelay and the relay service from v1's verdict.
		opts = append(opts, libp2p.EnableAutoNATv2())
	}
	switch cfg.Reachability {
	case ReachabilityPublic:
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	// self is the host once built, for AutoRelay's peer source, which
	// go-libp2p calls only after New returns.
	var self atomic.Pointer[host.Host]
	if cfg.HolePunching {
		opts = append(opts, libp2p.EnableHolePunching())
		if len(cfg.relays) == 0 {
			opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(connectedRelays(&self), autorelay.WithMinCandidates(1)))
		}
	}
	if len(cfg.relays) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(cfg.relays))
	}
	if cfg.RelayService {
		opts = append(opts, libp2p.EnableRelayService(relayv2.WithResources(relayResources())))
	}
	if !cfg.HolePunching && !cfg.RelayService && len(cfg.relays) == 0 {
		opts = append(opts, libp2p.DisableRelay())
	}
	hst, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: starting libp2p: %w", err)
	}
	self.Store(&hst)
	return hst, nil
}

// relayHop is circuit relay v2's protocol for reserving and connecting
// through a relay.
const relayHop = "/libp2p/circuit/relay/0.2.0/hop"

// connectedRelays is AutoRelay's source of candidates when no relay is
// configured: connected peers that identify said offer the relay service.
// The bootstrap peers and the DHT's servers are among the connected
// peers, which is how a host finds relays through the DHT.
func connectedRelays(self *atomic.Pointer[host.Host]) autorelay.PeerSource {
	return func(ctx context.Context, num int) <-chan peer.AddrInfo {
		out := make(chan peer.AddrInfo, max(num, 0))
		defer close(out)
		hp := self.Load()
		if hp == nil {
			return out
		}
		h := *hp
		for _, p := range h.Network().Peers() {
			if len(out) == cap(out) {
				break
			}
			if ok, err := h.Peerstore().SupportsProtocols(p, relayHop); err == nil && len(ok) > 0 {
				out <- h.Peerstore().PeerInfo(p)
			}
		}
		return out
	}
}

// relayResources are the relay service's limits, set here rather than
// left to go-libp2p's defaults so that they are seen and kept strict. A
// relayed connection lasts two minutes and carries 128 KiB each way at
// most (DCUtR needs a few hundred bytes; a Welcome of a small group a few
// KiB); a peer holds one reservation (go-libp2p allows no more); the relay
// serves at most 128 reservations, 8 per IP address (fresh peer IDs cost
// nothing, addresses do), and 16 circuits per peer at once.
func relayResources() relayv2.Resources {
	return relayv2.Resources{
		Limit:                 &relayv2.RelayLimit{Duration: 2 * time.Minute, Data: 128 << 10},
		ReservationTTL:        time.Hour,
		MaxReservations:       128,
		MaxCircuits:           16,
		BufferSize:            2048,
		MaxReservationsPerIP:  8,
		MaxReservationsPerASN: 32,
	}
}

func (h *Host) startDHT() error {
	cfg := h.cfg
	ds := cfg.Datastore
	if ds == nil {
		ds = dssync.MutexWrap(datastore.NewMapDatastore())
	}
	mode := map[DHTMode]dht.ModeOpt{DHTAuto: dht.ModeAutoServer, DHTServer: dht.ModeServer, DHTClient: dht.ModeClient}[cfg.DHTMode]
	opts := []dht.Option{
		dht.ProtocolPrefix(DHTProtocolPrefix),
		dht.Mode(mode),
		dht.Datastore(ds),
		dht.MaxRecordAge(cfg.MaxRecordAge),
	}
	if len(cfg.bootstrap) > 0 {
		opts = append(opts, dht.BootstrapPeers(cfg.bootstrap...))
	}
	// dht.NamespacedValidator would add to kad-dht's default validator,
	// which then gains the IPFS namespaces pk and ipns: any peer could
	// store records there. Our own validator holds only the configured ones.
	identity := func(v Validator) Validator { return v }
	h.validators = namespaced(cfg.Validators, identity)
	opts = append(opts,
		dht.Validator(namespaced(cfg.Validators, func(v Validator) Validator { return prevalidated{v, h.validated} })),
		dht.OnRequestHook(h.checkPut),
	)
	var err error
	if h.dht, err = dht.New(h.host, opts...); err != nil {
		return fmt.Errorf("p2p: starting DHT: %w", err)
	}
	return nil
}

// bootstrap dials the bootstrap peers in parallel and starts the DHT's
// routing table refresh.
func (h *Host) bootstrap(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, ai := range h.cfg.bootstrap {
		if ai.ID == h.host.ID() {
			continue
		}
		wg.Go(func() {
			if err := h.host.Connect(ctx, ai); err != nil {
				h.log.Warn("bootstrap peer unreachable", "bootstrap", ai.ID.String(), "err", err)
			}
		})
	}
	wg.Wait()
	if err := h.dht.Bootstrap(h.ctx); err != nil {
		h.log.Warn("DHT bootstrap", "err", err)
	}
}

// Close stops the host and every goroutine it started. It is idempotent.
func (h *Host) Close() error {
	var errs []error
	h.once.Do(func() {
		h.cancel()
		if h.mdns != nil {
			errs = append(errs, h.mdns.Close())
		}
		h.mu.Lock()
		chans := make([]*Channel, 0, len(h.channels))
		for _, c := range h.channels {
			chans = append(chans, c)
		}
		h.mu.Unlock()
		for _, c := range chans {
			c.Close()
		}
		if h.dht != nil {
			errs = append(errs, h.dht.Close())
		}
		if h.notifiee != nil {
			h.host.Network().StopNotify(h.notifiee)
		}
		if h.host != nil && h.cfg.Host == nil {
			errs = append(errs, h.host.Close())
		} else if h.host != nil {
			// An injected host stays open, but nothing of this Host may
			// answer on it any more.
			h.host.RemoveStreamHandler(welcomeProtocol)
			h.host.RemoveStreamHandler(syncProtocol)
			h.host.RemoveStreamHandler(groupInfoProtocol)
		}
		h.wg.Wait()
	})
	return errors.Join(errs...)
}

// ID is the host's peer ID.
func (h *Host) ID() peer.ID { return h.host.ID() }

// Addrs are the host's listen addresses with its /p2p/ part, the form
// BootstrapPeers and Connect take.
func (h *Host) Addrs() []string {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.host.ID(), Addrs: h.host.Addrs()})
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// Connect dials a multiaddr with a /p2p/ part.
func (h *Host) Connect(ctx context.Context, addr string) error {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("p2p: address %q: %w", addr, err)
	}
	return h.host.Connect(ctx, *ai)
}

// ConnectPeer makes sure the host is connected to p, looking p up in the
// DHT when its addresses are unknown or stale.
func (h *Host) ConnectPeer(ctx context.Context, p peer.ID) error {
	if p == h.host.ID() {
		return nil
	}
	if h.connected(p) {
		return nil
	}
	known := h.host.Peerstore().PeerInfo(p)
	if len(known.Addrs) > 0 && h.host.Connect(ctx, known) == nil {
		return nil
	}
	ai, err := h.dht.FindPeer(ctx, p)
	if err != nil {
		if errors.Is(err, routing.ErrNotFound) {
			return fmt.Errorf("%w: peer %s: %w", ErrNotFound, p, err)
		}
		return fmt.Errorf("p2p: finding peer %s: %w", p, err)
	}
	if err := h.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("p2p: connecting to %s: %w", p, err)
	}
	return nil
}

// connected reports whether the host can open streams to p: over a direct
// connection, or over a relayed one (which go-libp2p calls limited: the
// relay bounds its time and bytes), which the stream protocols accept so
// that peers behind NATs that defeat hole punching still reach each other.
func (h *Host) connected(p peer.ID) bool {
	c := h.host.Network().Connectedness(p)
	return c == network.Connected || c == network.Limited
}

// overRelay lets a stream opened with ctx use a relayed connection when
// there is no direct one. The relay's limits (relayResources on ours: two
// minutes and 128 KiB a circuit) may cut an exchange short; it fails as a
// lost connection does and is retried as one, by then perhaps directly.
func overRelay(ctx context.Context) context.Context {
	return network.WithAllowLimitedConn(ctx, "spacepanda streams may be relayed")
}

// Connected lists the peers the host has connections to.
func (h *Host) Connected() []peer.ID { return h.host.Network().Peers() }

// ConnAddrs are the remote multiaddrs of the host's open connections to
// p, one per connection. A relayed connection's contains /p2p-circuit
// (the relay's address, then the circuit); a direct one's does not.
func (h *Host) ConnAddrs(p peer.ID) []string {
	conns := h.host.Network().ConnsToPeer(p)
	out := make([]string, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.RemoteMultiaddr().String())
	}
	return out
}

// RoutingTableSize is how many DHT servers the host's routing table holds:
// zero means DHT lookups cannot start yet.
func (h *Host) RoutingTableSize() int { return h.dht.RoutingTable().Size() }

// PutValue stores value under key in the DHT: locally, then on the peers
// closest to key. The key's namespace validator must accept it, and a value
// already stored that its Select prefers is not replaced.
func (h *Host) PutValue(ctx context.Context, key string, value []byte) error {
	if err := h.dht.PutValue(ctx, key, value); err != nil {
		return fmt.Errorf("p2p: DHT put %s: %w", key, err)
	}
	return nil
}

// GetValue looks key up in the DHT and returns the best valid value. When
// none exists the error matches both ErrNotFound and go-libp2p's
// routing.ErrNotFound; when ctx ends first, it wraps ctx.Err().
func (h *Host) GetValue(ctx context.Context, key string) ([]byte, error) {
	v, err := h.dht.GetValue(ctx, key)
	switch {
	case v != nil:
		// A value validated before ctx ended is still the best we saw.
		return v, nil
	case errors.Is(err, routing.ErrNotFound):
		return nil, fmt.Errorf("%w: DHT key %s: %w", ErrNotFound, key, err)
	case err != nil:
		return nil, fmt.Errorf("p2p: DHT get %s: %w", key, err)
	}
	return nil, fmt.Errorf("%w: DHT key %s: %w", ErrNotFound, key, routing.ErrNotFound)
}

// PeerScore is p's gossipsub score as last sampled (every ScoreInterval),
// and whether p was scored at all. Negative scores mean misbehaviour: at
// -10 the host stops gossiping to p, at -80 it ignores p altogether.
func (h *Host) PeerScore(p peer.ID) (float64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.scores[p]
	return s, ok
}

func (h *Host) setScores(scores map[peer.ID]float64) {
	h.mu.Lock()
	h.scores = scores
	h.mu.Unlock()
}

// streamContext bounds one stream exchange by StreamTimeout and by Close.
func (h *Host) streamContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.StreamTimeout)
	stop := context.AfterFunc(h.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// peerStreams counts one protocol's inbound streams by peer, to hold each
// peer to max of them at once.
type peerStreams struct {
	max  int
	mu   sync.Mutex
	open map[peer.ID]int
}

// acquire counts a stream from p, or returns false when p has max open.
func (c *peerStreams) acquire(p peer.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[p] >= c.max {
		return false
	}
	c.open[p]++
	return true
}

// release uncounts a stream acquire counted.
func (c *peerStreams) release(p peer.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open[p]--; c.open[p] == 0 {
		delete(c.open, p)
	}
}

func (c *peerStreams) count(p peer.ID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open[p]
}

// mdnsNotifee connects to the peers mDNS finds.
type mdnsNotifee struct{ h *Host }

func (n mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	h := n.h
	if ai.ID == h.host.ID() {
		return
	}
	h.wg.Go(func() {
		ctx, cancel := context.WithTimeout(h.ctx, bootstrapTimeout)
		defer cancel()
		if err := h.host.Connect(ctx, ai); err != nil {
			h.log.Debug("mDNS peer unreachable", "remote", ai.ID.String(), "err", err)
		}
	})
}
