package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// DHTMode says whether the host answers DHT queries.
type DHTMode int

const (
	// DHTAuto serves the DHT unless AutoNAT finds the host unreachable
	// from outside. Reachability that is still unknown counts as
	// reachable, so that a small network whose members cannot yet vouch
	// for each other still has servers.
	DHTAuto DHTMode = iota
	// DHTServer always serves.
	DHTServer
	// DHTClient only queries.
	DHTClient
)

// Reachability overrides AutoNAT's verdict on whether the host can be
// dialled from outside.
type Reachability int

const (
	// ReachabilityAuto lets AutoNAT find out.
	ReachabilityAuto Reachability = iota
	// ReachabilityPublic declares the host dialable.
	ReachabilityPublic
	// ReachabilityPrivate declares it behind a NAT or firewall, so that
	// it looks for relays at once.
	ReachabilityPrivate
)

// Validator decides which values the DHT accepts under one key namespace
// and which of several it prefers. It is the shape of go-libp2p-record's
// Validator, so that keypkgdir's validator fits without either package
// importing the other.
type Validator interface {
	// Validate returns nil when value may be stored and served under key.
	Validate(key string, value []byte) error
	// Select returns the index of the best of values, all valid for key,
	// preferring the lowest index among equals.
	Select(key string, values [][]byte) (int, error)
}

// WelcomeHandler receives a Welcome addressed to this host. Returning nil
// acknowledges it: the sender's outbox then forgets it, so the handler must
// have stored or processed it first. An error tells the sender that the
// Welcome is refused for good (its text, cut to 256 bytes, is the reason
// the sender sees). Senders may deliver the same Welcome twice when an
// acknowledgement is lost; the handler must accept a duplicate.
type WelcomeHandler func(ctx context.Context, from peer.ID, welcome []byte) error

// WelcomeStore keeps the outbox's pending Welcomes across restarts. Values
// are opaque bytes that p2p encodes and versions; ids are the ids of
// PendingWelcome. The store package's *Store satisfies it as it is.
type WelcomeStore interface {
	// PutWelcome durably stores value under id, replacing any value there.
	PutWelcome(id, value []byte) error
	// DeleteWelcome removes id; removing an absent id is not an error.
	DeleteWelcome(id []byte) error
	// Welcomes returns every stored value.
	Welcomes() ([][]byte, error)
}

// Config configures a Host. Fields left zero take the defaults documented
// on each; set them before New and do not change them afterwards.
type Config struct {
	// Identity is the host's libp2p key; its peer ID names the node.
	// Required unless Host is set, and then it must be Host's key or nil.
	Identity crypto.PrivKey
	// Host, if set, is the libp2p host to run over instead of one New
	// builds: go-libp2p's mocknet in tests and the testnet, which run many
	// nodes in one process. The fields that only shape a built host
	// (ListenAddrs, ConnLow/ConnHigh/ConnGrace, NATPortMap,
	// AutoNATService, Reachability, HolePunching, StaticRelays,
	// RelayService) must then
	// be zero. The caller owns Host: Close leaves it open.
	Host host.Host

	// ListenAddrs are multiaddrs to listen on; empty means
	// DefaultListenAddrs. Tests listen on 127.0.0.1 only.
	ListenAddrs []string
	// BootstrapPeers are multiaddrs with a /p2p/ part, dialled at start and
	// whenever the DHT's routing table empties. There is no built-in list:
	// a spacepanda network is its own, never the public IPFS one.
	BootstrapPeers []string

	// ConnLow and ConnHigh are the connection manager's watermarks: above
	// ConnHigh connections it trims back to ConnLow, sparing connections
	// younger than ConnGrace. Zero means 64, 192 and one minute.
	ConnLow, ConnHigh int
	ConnGrace         time.Duration

	// NATPortMap asks the home router for a port mapping (UPnP, NAT-PMP).
	NATPortMap bool
	// AutoNATService answers other peers' AutoNAT requests, v1 (is the
	// host reachable at all) and v2 (is this one address reachable), by
	// dialling them back within go-libp2p's rate limits: that is how
	// they learn whether they are reachable, and so whether DHTAuto
	// serves and whether they need a relay. Public, long-lived nodes
	// should set it. A host with it, or with HolePunching, also runs the
	// AutoNAT v2 client, which tests each of its own addresses.
	AutoNATService bool
	// Reachability, when not ReachabilityAuto, overrides what AutoNAT
	// finds. A relay or bootstrap node that knows it is public sets
	// ReachabilityPublic: go-libp2p only starts the relay service once the
	// host is public, and a network's first public node has nobody to
	// confirm that for it.
	Reachability Reachability
	// HolePunching enables DCUtR (/libp2p/dcutr), which upgrades relayed
	// connections to direct ones through NATs, and AutoRelay, which keeps
	// reservations on relays while AutoNAT finds the host unreachable:
	// on StaticRelays if any, else on connected peers (the DHT's among
	// them) that offer the relay service.
	HolePunching bool
	// StaticRelays are relay multiaddrs (with /p2p/) for AutoRelay.
	StaticRelays []string
	// RelayService makes a publicly reachable host a circuit relay v2
	// (/libp2p/circuit/relay/0.2.0/hop) for others, within the limits of
	// relayResources: relayed connections are short and small, enough to
	// coordinate a hole punch or carry chat, not bulk traffic.
	RelayService bool
	// MDNS finds and connects to peers on the local network.
	MDNS bool

	// DHTMode picks server or client mode; the zero value is DHTAuto.
	DHTMode DHTMode
	// Datastore holds DHT records; nil means in memory.
	Datastore datastore.Batching
	// Validators maps DHT key namespaces (the part between the first two
	// slashes, "spacepanda-kp" for /spacepanda-kp/...) to their validator.
	// Keys of every other namespace, IPFS's pk and ipns among them, are
	// refused.
	Validators map[string]Validator
	// MaxPeerPuts and PeerPutInterval bound how often one peer can make
	// the host validate a DHT record: a PUT spends one of the peer's
	// tokens, of which it holds up to MaxPeerPuts and gains one each
	// PeerPutInterval; a PUT without one is refused unvalidated, and a
	// record that fails validation spends them all and counts towards
	// MaxRejections. Zero means 8 and 10 seconds; an honest node puts its
	// own record a few times a day.
	MaxPeerPuts     int
	PeerPutInterval time.Duration
	// MaxRecordAge is how long a DHT node keeps a record it was handed;
	// owners must republish within it. Zero means 48 hours.
	MaxRecordAge time.Duration

	// MaxMessageSize caps a channel message and a sync entry; zero means
	// DefaultMaxMessageSize. MaxWelcomeSize caps a Welcome (they carry the
	// ratchet tree); zero means DefaultMaxWelcomeSize.
	MaxMessageSize int
	MaxWelcomeSize int
	// PublishWait is how long Publish waits for a first mesh peer in the
	// topic before it sends anyway; zero means 5 seconds.
	PublishWait time.Duration
	// ScoreInterval is how often PeerScore's snapshot is refreshed; zero
	// means 5 seconds.
	ScoreInterval time.Duration
	// ValidateTimeout bounds a channel's MessageValidator on one message:
	// past it the validator's context ends and its verdict, however late,
	// counts as Ignore, so that a stuck validator cannot hold gossipsub's
	// validation slots. Zero means 2 seconds.
	ValidateTimeout time.Duration

	// MaxRejections is how many channel messages a peer may hand over that
	// a MessageValidator rejects, within RejectionWindow, before the host
	// disconnects it and refuses its connections for GateDuration. It
	// holds whatever gossipsub's score says: a peer that never accepts the
	// host's pubsub stream is never scored. Zero means 10, 10 minutes and
	// an hour; honest peers forward no message a validator rejects.
	MaxRejections   int
	RejectionWindow time.Duration
	GateDuration    time.Duration

	// WelcomeHandler receives Welcomes; nil means the host does not serve
	// /spacepanda/welcome/1.0.0.
	WelcomeHandler WelcomeHandler
	// WelcomeStore persists the outbox; nil keeps it in memory only.
	WelcomeStore WelcomeStore
	// WelcomeDone, if set, is told how each queued Welcome ended: nil when
	// acknowledged, an error matching ErrWelcomeRejected or
	// ErrWelcomeExpired otherwise. It runs on the outbox's goroutine and
	// must not block or call back into the outbox.
	WelcomeDone func(w PendingWelcome, err error)
	// WelcomeRetryMax caps the delay between delivery attempts to an
	// invitee that cannot be reached; zero means one minute. A connection
	// from the invitee triggers an attempt at once whatever the delay.
	WelcomeRetryMax time.Duration
	// MailboxInterval is how often the host asks the DHT who holds
	// Welcomes for it, besides once after start; zero means 10 minutes.
	MailboxInterval time.Duration

	// SyncProvider serves /spacepanda/sync/1.0.0; nil means not served.
	SyncProvider SyncProvider
	// PeerConnected, if set, is called (on a goroutine of the host's, one
	// call at a time) when a peer becomes connected, over a relay or
	// directly (a peer whose relayed connection is upgraded is reported
	// twice): a peer that was away or across a partition may hold what
	// the caller missed.
	PeerConnected func(peer.ID)
	// GroupInfoProvider serves /spacepanda/groupinfo/1.0.0; nil means not
	// served.
	GroupInfoProvider GroupInfoProvider
	// SyncPageLimit caps the entries of one sync page, asked and served;
	// zero means 128.
	SyncPageLimit int
	// SyncPageBytes is the budget of one served sync page: the data of its
	// entries stays within it, but for a first entry, which always goes
	// (up to MaxMessageSize) so that a sync moves on. The provider is
	// handed it before it reads the log. Zero means DefaultSyncPageBytes;
	// at most 8 MiB, the most a requester reads in one page.
	SyncPageBytes int
	// MaxSyncPages caps the pages one Sync call fetches, so that a peer
	// cannot keep it paging for ever; past it Sync fails with ErrTooLarge,
	// and another call resumes from the last cursor it handed over. Zero
	// means 1024, which at the default SyncPageLimit is 131,072 entries.
	MaxSyncPages int

	// StreamTimeout bounds one exchange on a stream protocol; zero means
	// 30 seconds.
	StreamTimeout time.Duration
	// MaxPeerStreams caps the Welcome streams, and separately the sync
	// streams and the group view streams, that one peer may have open to this host at once; streams
	// beyond it are reset. Each open Welcome stream holds what the peer
	// sent of its Welcome (plus at most 64 KiB), up to MaxWelcomeSize, for
	// up to StreamTimeout. Zero means 4, which a peer that sends its
	// Welcomes and syncs its channels one at a time does not reach.
	MaxPeerStreams int
	// MaxWelcomeBuffers caps what inbound Welcomes of all peers together
	// hold while they arrive: peer IDs cost nothing, so a cap per peer
	// alone bounds nothing. When a Welcome needs more, the stream that has
	// waited longest for bytes (over a second) is reset to make room, or
	// else the new one is. Zero means 64 MiB; it must be at least twice
	// MaxWelcomeSize, which a complete Welcome briefly holds.
	MaxWelcomeBuffers int

	// Logger receives the host's logs, tagged with its peer ID; nil
	// discards them. Levels: Debug for per-message events, Info for peers
	// and channels coming and going, Warn for failures p2p recovers from,
	// Error for failures it does not.
	Logger *slog.Logger
}

// Defaults.
var (
	// DefaultListenAddrs listens on every interface, on ports the system
	// picks, over TCP and QUIC.
	DefaultListenAddrs = []string{
		"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1",
		"/ip6/::/tcp/0", "/ip6/::/udp/0/quic-v1",
	}
)

const (
	// DefaultMaxMessageSize is the largest channel message: far above any
	// chat message or commit, far below what a peer could use to hurt.
	DefaultMaxMessageSize = 1 << 20
	// DefaultMaxWelcomeSize is the largest Welcome.
	DefaultMaxWelcomeSize = 4 << 20
	// DefaultSyncPageBytes is a served sync page's budget: one message of
	// DefaultMaxMessageSize, or a few thousand chat messages; a peer that
	// syncs from many members at once makes each of them read and hold
	// about this much per stream, not the 8 MiB a page may carry.
	DefaultSyncPageBytes = 1 << 20
)

// config is Config with defaults filled in and strings parsed.
type config struct {
	Config
	listen    []ma.Multiaddr
	bootstrap []peer.AddrInfo
	relays    []peer.AddrInfo
}

// validate fills defaults and rejects contradictions.
func (c Config) validate() (*config, error) {
	if c.Host != nil {
		if err := c.checkInjected(); err != nil {
			return nil, err
		}
		if c.Identity == nil {
			c.Identity = c.Host.Peerstore().PrivKey(c.Host.ID())
		}
	}
	if c.Identity == nil {
		return nil, fmt.Errorf("%w: no Identity", ErrConfig)
	}
	if c.Host != nil {
		if id, err := peer.IDFromPrivateKey(c.Identity); err != nil || id != c.Host.ID() {
			return nil, fmt.Errorf("%w: Identity is not the key of Host %s", ErrConfig, c.Host.ID())
		}
	}
	cfg := &config{Config: c}
	setDefault(&cfg.ConnLow, 64)
	setDefault(&cfg.ConnHigh, 192)
	setDefault(&cfg.ConnGrace, time.Minute)
	if cfg.ConnLow > cfg.ConnHigh {
		return nil, fmt.Errorf("%w: ConnLow %d above ConnHigh %d", ErrConfig, cfg.ConnLow, cfg.ConnHigh)
	}
	setDefault(&cfg.MaxRecordAge, 48*time.Hour)
	setDefault(&cfg.MaxPeerPuts, 8)
	setDefault(&cfg.PeerPutInterval, 10*time.Second)
	setDefault(&cfg.MaxMessageSize, DefaultMaxMessageSize)
	setDefault(&cfg.MaxWelcomeSize, DefaultMaxWelcomeSize)
	if cfg.MaxMessageSize > maxSyncPageSize {
		return nil, fmt.Errorf("%w: MaxMessageSize %d above the sync page size %d", ErrConfig, cfg.MaxMessageSize, maxSyncPageSize)
	}
	setDefault(&cfg.PublishWait, 5*time.Second)
	setDefault(&cfg.ValidateTimeout, 2*time.Second)
	setDefault(&cfg.ScoreInterval, 5*time.Second)
	setDefault(&cfg.MaxRejections, 10)
	setDefault(&cfg.RejectionWindow, 10*time.Minute)
	setDefault(&cfg.GateDuration, time.Hour)
	setDefault(&cfg.WelcomeRetryMax, time.Minute)
	setDefault(&cfg.MailboxInterval, 10*time.Minute)
	setDefault(&cfg.SyncPageLimit, 128)
	setDefault(&cfg.MaxSyncPages, 1024)
	setDefault(&cfg.SyncPageBytes, DefaultSyncPageBytes)
	if cfg.SyncPageBytes < 0 || cfg.SyncPageBytes > maxSyncPageSize {
		return nil, fmt.Errorf("%w: SyncPageBytes %d outside 1..%d", ErrConfig, cfg.SyncPageBytes, maxSyncPageSize)
	}
	setDefault(&cfg.StreamTimeout, 30*time.Second)
	setDefault(&cfg.MaxPeerStreams, 4)
	setDefault(&cfg.MaxWelcomeBuffers, max(64<<20, 2*cfg.MaxWelcomeSize))
	if cfg.MaxWelcomeBuffers < 2*cfg.MaxWelcomeSize {
		return nil, fmt.Errorf("%w: MaxWelcomeBuffers %d below twice MaxWelcomeSize %d", ErrConfig, cfg.MaxWelcomeBuffers, cfg.MaxWelcomeSize)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxSyncPages < 0 || cfg.MaxPeerStreams < 0 || cfg.MaxRejections < 0 || cfg.MaxPeerPuts < 0 {
		return nil, fmt.Errorf("%w: MaxSyncPages %d, MaxPeerStreams %d or MaxRejections %d below zero", ErrConfig, cfg.MaxSyncPages, cfg.MaxPeerStreams, cfg.MaxRejections)
	}
	if cfg.DHTMode < DHTAuto || cfg.DHTMode > DHTClient {
		return nil, fmt.Errorf("%w: DHTMode %d", ErrConfig, cfg.DHTMode)
	}
	if cfg.Reachability < ReachabilityAuto || cfg.Reachability > ReachabilityPrivate {
		return nil, fmt.Errorf("%w: Reachability %d", ErrConfig, cfg.Reachability)
	}
	listen := cfg.ListenAddrs
	if len(listen) == 0 {
		listen = DefaultListenAddrs
	}
	for _, s := range listen {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: listen address %q: %w", ErrConfig, s, err)
		}
		cfg.listen = append(cfg.listen, a)
	}
	var err error
	if cfg.bootstrap, err = parsePeers("bootstrap peer", cfg.BootstrapPeers); err != nil {
		return nil, err
	}
	if cfg.relays, err = parsePeers("relay", cfg.StaticRelays); err != nil {
		return nil, err
	}
	return cfg, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// parsePeers parses /p2p/ multiaddrs, merging addresses of the same peer.
func parsePeers(what string, addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	index := make(map[peer.ID]int)
	for _, s := range addrs {
		ai, err := peer.AddrInfoFromString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q: %w", ErrConfig, what, s, err)
		}
		if i, ok := index[ai.ID]; ok {
			out[i].Addrs = append(out[i].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(out)
		out = append(out, *ai)
	}
	return out, nil
}

// checkInjected refuses the fields that shape a host New builds, when the
// caller hands it one: silently ignoring them would leave a caller
// believing, say, that hole punching is on.
func (c Config) checkInjected() error {
	fields := []struct {
		name string
		set  bool
	}{
		{"ListenAddrs", len(c.ListenAddrs) > 0},
		{"ConnLow", c.ConnLow != 0}, {"ConnHigh", c.ConnHigh != 0}, {"ConnGrace", c.ConnGrace != 0},
		{"NATPortMap", c.NATPortMap}, {"AutoNATService", c.AutoNATService}, {"Reachability", c.Reachability != ReachabilityAuto},
		{"HolePunching", c.HolePunching}, {"StaticRelays", len(c.StaticRelays) > 0},
		{"RelayService", c.RelayService},
	}
	for _, f := range fields {
		if f.set {
			return fmt.Errorf("%w: %s shapes a host New builds, but Host is given", ErrConfig, f.name)
		}
	}
	return nil
}
