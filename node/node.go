package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/keypkgdir"
	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/p2p"
	"github.com/spacepanda/spacepanda/store"
)

// Names of the node's two keys in the store's identity namespace.
var (
	libp2pKeyName = []byte("libp2p")
	mlsKeyName    = []byte("mls")
)

// Node is a running spacepanda node. Its methods are safe for concurrent
// use.
type Node struct {
	cfg    Config
	st     *store.Store
	key    crypto.PrivKey
	id     peer.ID
	signer *mlsgroup.Signer
	// identity is the MLS credential identity: the binding of the MLS
	// signature key to the peer ID (keypkgdir.NewIdentity).
	identity []byte
	rand     io.Reader

	host    *p2p.Host
	ownHost host.Host // made by Config.NewHost, closed by Close
	dir     *keypkgdir.Directory
	pub     *keypkgdir.Publisher

	events broker
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// writeFault, set by tests, is an error every store write reports
	// after it reached the disk: a failed fsync whose data landed.
	writeFault atomic.Pointer[error]
	// dropPublish, set by tests, persists what would be published and
	// publishes nothing: a topic that loses every message.
	dropPublish atomic.Bool

	mu       sync.Mutex
	channels map[string]*channel
	invites  map[string]*Invitation // by ID
	// inviteHeld and inviteHeldAll count Welcomes being read (see
	// handleWelcome), by peer and in all.
	inviteHeld    map[peer.ID]inviteHold
	inviteHeldAll inviteHold
	closed        bool
}

// Open starts a node on the data directory in cfg: it opens the store
// (a second process on the same directory gets the store's *LockedError),
// loads or makes the identity, starts the host and the KeyPackage
// publisher, and rejoins every channel in the store, catching up from
// where it left off. Close ends it.
func Open(ctx context.Context, config Config) (_ *Node, err error) {
	cfg, err := config.withDefaults()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(cfg.DataDir, cfg.StoreOptions)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, st: st, rand: cfg.Rand, channels: make(map[string]*channel), invites: make(map[string]*Invitation)}
	if n.rand == nil {
		n.rand = rand.Reader
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := n.loadIdentity(); err != nil {
		return nil, err
	}
	if err := n.loadInvitations(); err != nil {
		return nil, err
	}

	validator := keypkgdir.Validator{Now: cfg.Now, Options: n.validation(), Suites: []mlsgroup.CipherSuite{mlsgroup.DefaultCipherSuite}}
	pc := cfg.P2P
	pc.Identity = n.key
	if cfg.NewHost != nil {
		if n.ownHost, err = cfg.NewHost(n.key); err != nil {
			return nil, fmt.Errorf("node: making the host: %w", err)
		}
		pc.Host = n.ownHost
	}
	pc.ListenAddrs = cfg.ListenAddrs
	pc.BootstrapPeers = cfg.BootstrapPeers
	pc.MDNS = cfg.MDNS
	pc.DHTMode = cfg.DHTMode
	pc.Datastore = st.Datastore()
	pc.Validators = map[string]p2p.Validator{keypkgdir.Namespace: validator}
	pc.WelcomeHandler = n.handleWelcome
	pc.WelcomeStore = st
	pc.WelcomeDone = n.welcomeDone
	pc.SyncProvider = n.serveSync
	pc.PeerConnected = n.peerConnected
	pc.GroupInfoProvider = n.serveGroupInfo
	if pc.Logger == nil {
		pc.Logger = cfg.Logger
	}
	if n.host, err = p2p.New(ctx, pc); err != nil {
		return nil, err
	}
	n.dir = &keypkgdir.Directory{DHT: n.host, Validator: validator, Rand: cfg.Rand, Timeout: cfg.FetchTimeout}
	kp := cfg.KeyPackages
	n.pub, err = keypkgdir.NewPublisher(keypkgdir.PublisherConfig{
		DHT: n.host, Identity: n.key, Storage: st, Signer: n.signer, Rand: cfg.Rand, Now: cfg.Now,
		BatchSize: kp.BatchSize, Lifetime: kp.Lifetime, RotateBefore: kp.RotateBefore,
		RepublishInterval: kp.RepublishInterval, RetryInterval: kp.RetryInterval,
		KeyPackageOptions: keyPackageOptions(),
		Logger:            cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	n.wg.Go(func() {
		if err := n.pub.Run(n.ctx); err != nil {
			n.cfg.Logger.Error("KeyPackage publisher stopped", "err", err)
		}
	})

	ids, err := st.GroupIDs()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		data, err := st.Group(id)
		if err != nil {
			return nil, err
		}
		g, err := mlsgroup.LoadGroup(n.mlsConfig(), data)
		if err != nil {
			return nil, fmt.Errorf("node: loading channel %x: %w", id, err)
		}
		if _, err := n.startChannel(g, false); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// keyPackageOptions are what every KeyPackage and leaf of this node
// supports beyond the defaults: the channel metadata extension, which
// every member must accept in the GroupContext.
func keyPackageOptions() mlsgroup.KeyPackageOptions {
	return mlsgroup.KeyPackageOptions{Capabilities: mlsgroup.Capabilities{Extensions: []uint16{ExtChannelMeta}}}
}

// validation is every member's say in credentials: a leaf's identity must
// bind its MLS signature key to the peer it names.
func (n *Node) validation() mlsgroup.ValidationOptions {
	return mlsgroup.ValidationOptions{Credentials: keypkgdir.CredentialValidator}
}

// lateWindow is how many generations behind a sender's newest message a
// skipped one stays decryptable. mlsgroup's default (32) suits a network
// that reorders; this one also loses messages, and a lost message comes
// back only through sync, a round trip or an interval later, by when the
// sender may be hundreds of messages on: with 32, every such message was
// undecryptable once it arrived, so sync fetched it and dropped it. The
// cost is bounded and paid only for real gaps: a key and nonce per skipped
// generation (about 50 bytes), and forward secrecy for those messages
// until they arrive or fall out of the window (RFC 9420 §9.2 leaves the
// retention to the application).
const lateWindow = 1024

// skippedBudget caps the kept keys of an epoch over all its senders: the
// window is per sender, so without it every member's gaps together could
// make each receiver keep (and rewrite with its state on every write)
// 1024 keys per member. Two full gaps fit; beyond, the senders that keep
// the most lose their oldest keys first.
const skippedBudget = 2 * lateWindow

// fromTopic is how a message from the topic is read: in order for its
// sender. The topic loses runs of messages under load (gossipsub drops
// what a full queue cannot take); reading on past a run would move the
// ratchet on, and the messages after it would push the run out of
// lateWindow before sync brought it: acknowledged messages were lost
// that way. A message after a gap is left instead (mlsgroup does not
// touch the ratchet), a sync starts, and the sender's log brings the run
// and the message in order. Sync itself reads with the window: a log
// may lack what its owner never got, and waiting for it would wait for
// ever.
var fromTopic = mlsgroup.ProcessOptions{MaxGenerationsAhead: -1}

// mlsConfig hands mlsgroup the node's one provider.
func (n *Node) mlsConfig() mlsgroup.Config {
	return mlsgroup.Config{Storage: n.st, Rand: n.rand, Now: n.cfg.Now, Validation: n.validation(), PastEpochs: n.cfg.RewindWindow, MaxGenerationsBehind: lateWindow, MaxSkippedKeys: skippedBudget}
}

// loadIdentity loads the node's libp2p key and MLS signer from the store,
// making and storing both, in one batch, on first run.
func (n *Node) loadIdentity() error {
	rawKey, err1 := n.st.SignatureKey(libp2pKeyName)
	rawSigner, err2 := n.st.SignatureKey(mlsKeyName)
	var err error
	switch {
	case errors.Is(err1, store.ErrNotFound) && errors.Is(err2, store.ErrNotFound):
		if n.key, err = p2p.GenerateIdentity(n.cfg.Rand); err != nil {
			return err
		}
		if n.signer, err = mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, n.rand); err != nil {
			return err
		}
		if rawKey, err = crypto.MarshalPrivateKey(n.key); err != nil {
			return err
		}
		if rawSigner, err = n.signer.MarshalBinary(); err != nil {
			return err
		}
		var b store.Batch
		b.PutSignatureKey(libp2pKeyName, rawKey)
		b.PutSignatureKey(mlsKeyName, rawSigner)
		if err := n.st.Commit(&b); err != nil {
			return err
		}
	case err1 != nil || err2 != nil:
		return fmt.Errorf("node: loading identity: %w", errors.Join(err1, err2))
	default:
		if n.key, err = crypto.UnmarshalPrivateKey(rawKey); err != nil {
			return fmt.Errorf("node: loading identity: %w", err)
		}
		if n.signer, err = mlsgroup.ParseSigner(rawSigner); err != nil {
			return fmt.Errorf("node: loading identity: %w", err)
		}
	}
	if n.id, err = peer.IDFromPrivateKey(n.key); err != nil {
		return err
	}
	n.identity, err = keypkgdir.NewIdentity(n.key, n.signer.PublicKey())
	return err
}

// Close stops every goroutine of the node, the host and the store. It is
// idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	chs := make([]*channel, 0, len(n.channels))
	for _, c := range n.channels {
		chs = append(chs, c)
	}
	n.mu.Unlock()
	n.cancel()
	for _, c := range chs {
		c.stop()
	}
	var errs []error
	if n.host != nil {
		errs = append(errs, n.host.Close())
	}
	if n.ownHost != nil {
		errs = append(errs, n.ownHost.Close())
	}
	n.wg.Wait()
	n.events.close()
	errs = append(errs, n.st.Close())
	return errors.Join(errs...)
}

// ID is the node's peer ID.
func (n *Node) ID() peer.ID { return n.id }

// Addrs are the host's listen addresses, each with its /p2p/ part.
func (n *Node) Addrs() []string { return n.host.Addrs() }

// Connect dials a peer's multiaddr (with /p2p/).
func (n *Node) Connect(ctx context.Context, addr string) error { return n.host.Connect(ctx, addr) }

// Peers lists the peers the node is connected to.
func (n *Node) Peers() []peer.ID { return n.host.Connected() }

// Host is the node's p2p host, for tests and the testnet.
func (n *Node) Host() *p2p.Host { return n.host }

// DataDir is the node's data directory.
func (n *Node) DataDir() string { return n.cfg.DataDir }

// Subscribe returns a subscription to the node's events from now on,
// buffering up to buffer of them (zero means 256).
func (n *Node) Subscribe(buffer int) *Subscription { return n.events.subscribe(buffer) }

// SubscribeFrom is Subscribe that first replays the events after cursor
// (an Event's Seq; zero for every event held) and then goes live, with no
// gap and no duplicate between the two. The node holds its most recent
// events only, and numbers them afresh when it opens: a cursor it no
// longer holds is ErrCursorExpired.
func (n *Node) SubscribeFrom(cursor uint64, buffer int) (*Subscription, error) {
	return n.events.subscribeFrom(cursor, true, buffer)
}

// LastEvent is the Seq of the node's newest event.
func (n *Node) LastEvent() uint64 { return n.events.lastSeq() }

// PublishKeyPackages brings the node's KeyPackage record in the DHT up to
// date now (the publisher also does so on its own schedule).
func (n *Node) PublishKeyPackages(ctx context.Context) error {
	if err := n.pub.Publish(ctx); err != nil {
		return err
	}
	n.emit(Event{Type: EventKeyPackagesPublish})
	return nil
}

func (n *Node) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = n.cfg.Now()
	}
	n.events.publish(e)
}

// peerConnected starts a sync round in every channel p is a member of:
// a member back from being away, or from across a partition, holds what
// this node missed, and the next periodic round may be SyncInterval away.
func (n *Node) peerConnected(p peer.ID) {
	n.mu.Lock()
	chans := make([]*channel, 0, len(n.channels))
	for _, c := range n.channels {
		chans = append(chans, c)
	}
	n.mu.Unlock()
	for _, c := range chans {
		if snap := c.snap.Load(); snap != nil {
			if _, ok := snap.peers[p]; ok {
				c.requestSync()
			}
		}
	}
}

// channel finds a channel by its ID.
func (n *Node) channel(id []byte) (*channel, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	c, ok := n.channels[string(id)]
	if !ok {
		return nil, fmt.Errorf("%w: %x", ErrUnknownChannel, id)
	}
	return c, nil
}

// Channels lists the channels on this node, by ID.
func (n *Node) Channels() []ChannelInfo {
	n.mu.Lock()
	chs := make([]*channel, 0, len(n.channels))
	for _, c := range n.channels {
		chs = append(chs, c)
	}
	n.mu.Unlock()
	infos := make([]ChannelInfo, 0, len(chs))
	for _, c := range chs {
		infos = append(infos, c.info())
	}
	slices.SortFunc(infos, func(a, b ChannelInfo) int { return bytes.Compare(a.ID, b.ID) })
	return infos
}

// ChannelInfo describes a channel as this node sees it.
type ChannelInfo struct {
	ID          []byte
	Name, Topic string
	Epoch       uint64
	Members     int
	// EpochAuthenticator is the epoch's authenticator (RFC 9420 §8.7), as
	// hex: members that show the same one are in the same epoch state.
	EpochAuthenticator string
	CipherSuite        uint16
	// State is "active", "leaving" (a self-remove awaits its commit) or
	// "left" (removed, or the leave was committed).
	State string
	// CommitPending is set while a commit of this node awaits its epoch.
	CommitPending bool
	// Convergence is "settled", "resolving" (commits of the epoch are
	// settling), "recovering" (this member found itself on a branch the
	// group left, and rejoins) or "unrecoverable" (it cannot rejoin for
	// now: ConvergenceNote says why); see rejoin.go.
	Convergence     string
	ConvergenceNote string
}

// Member is a member of a channel.
type Member struct {
	Peer peer.ID
	Leaf uint32
	Self bool
}

// Message is an application message in a channel's history.
type Message struct {
	Channel    []byte
	Seq        uint64 // position in this node's log: the history cursor
	ID         string // the author's message ID, hex: equal for re-sent copies
	Sender     peer.ID
	SentAt     time.Time // the author's clock, as the author claims
	ReceivedAt time.Time // this node's clock
	Epoch      uint64
	Body       string
}

// ChannelID formats a channel ID as it is shown: hex.
func ChannelID(id []byte) string { return hex.EncodeToString(id) }

// ParseChannelID parses what ChannelID shows.
func ParseChannelID(s string) ([]byte, error) {
	id, err := hex.DecodeString(s)
	if err != nil || len(id) == 0 {
		return nil, fmt.Errorf("%w: channel ID %q is not hex", ErrInvalidArgument, s)
	}
	return id, nil
}

// CreateChannel makes a channel (an MLS group with this node its only
// member) with a name and an optional topic.
func (n *Node) CreateChannel(ctx context.Context, name, topic string) (ChannelInfo, error) {
	meta := channelMeta{Name: name, Topic: topic}
	if err := meta.check(); err != nil {
		return ChannelInfo{}, err
	}
	id := make([]byte, 16)
	if _, err := io.ReadFull(n.rand, id); err != nil {
		return ChannelInfo{}, err
	}
	g, err := mlsgroup.CreateGroup(n.mlsConfig(), id, n.identity, n.signer, mlsgroup.GroupOptions{
		Extensions: []mlsgroup.Extension{{Type: ExtChannelMeta, Data: meta.marshal()}},
		Leaf:       keyPackageOptions(),
	})
	if err != nil {
		return ChannelInfo{}, err
	}
	state, err := g.MarshalBinary()
	if err != nil {
		return ChannelInfo{}, err
	}
	var b store.Batch
	b.PutGroup(id, state)
	if err := n.st.Commit(&b); err != nil {
		return ChannelInfo{}, err
	}
	c, err := n.startChannel(g, true)
	if err != nil {
		return ChannelInfo{}, err
	}
	n.emit(Event{Type: EventChannelJoined, Channel: id, Epoch: g.Epoch()})
	return c.info(), nil
}

// peerOfMember is the peer a member's leaf names, verified.
func peerOfMember(m mlsgroup.Member) (peer.ID, error) {
	p, err := keypkgdir.PeerOf(m.Identity, m.SignatureKey)
	if err != nil {
		return "", fmt.Errorf("%w: leaf %d: %v", ErrBadIdentity, m.LeafIndex, err)
	}
	return p, nil
}
