package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/p2p"
	"github.com/spacepanda/spacepanda/store"
)

// Config configures a Node. Zero fields take the defaults documented on
// each; set them before Open.
type Config struct {
	// DataDir holds the node's one store: identity, KeyPackage private
	// keys, group states, message logs, the Welcome outbox. Required.
	DataDir string
	// StoreOptions are passed to store.Open (a passphrase, the clock).
	StoreOptions *store.Options

	// ListenAddrs, BootstrapPeers, MDNS and DHTMode configure the libp2p
	// host (see p2p.Config); empty ListenAddrs means p2p's defaults.
	ListenAddrs    []string
	BootstrapPeers []string
	MDNS           bool
	DHTMode        p2p.DHTMode
	// NewHost, if set, makes the libp2p host the node runs over (a mocknet
	// host in tests and the testnet) in place of the one p2p builds. It is
	// called once with the node's identity, which the host must use; the
	// node closes the host it returns.
	NewHost func(identity crypto.PrivKey) (host.Host, error)
	// P2P adjusts the remaining p2p settings (timeouts, limits); the node
	// sets Identity, the listen and bootstrap fields, the validators, the
	// Welcome and sync handlers over it.
	P2P p2p.Config

	// AutoAccept lists peers whose invitations are joined without asking.
	// Everyone else's wait as pending invitations.
	AutoAccept []peer.ID
	// MaxInvitationsPerPeer and MaxInvitationBytesPerPeer bound what one
	// peer can make this node keep as pending invitations (anyone can send
	// a Welcome); zero means 8 and 8 MiB.
	MaxInvitationsPerPeer     int
	MaxInvitationBytesPerPeer int
	// MaxInvitations and MaxInvitationBytes bound the pending invitations
	// from all peers together (default 256 and 64 MiB): a peer ID costs
	// nothing, so the per-peer bound alone bounds nothing. Peers in
	// AutoAccept are not held to them.
	MaxInvitations     int
	MaxInvitationBytes int

	// SettleWindow is how long the commits of one epoch are gathered
	// before the one that ranks first is applied; zero means one second.
	SettleWindow time.Duration
	// RewindWindow is how many merged commits back a member can return to
	// when a commit that ranks first for their epoch arrives late (see
	// rewind.go); zero means 5, the least allowed.
	RewindWindow int
	// SyncInterval is how often each channel asks its members for
	// messages it missed (gossip is best effort); zero means 30 seconds.
	SyncInterval time.Duration
	// FetchTimeout bounds fetching an invitee's KeyPackage; zero means
	// 20 seconds.
	FetchTimeout time.Duration

	// KeyPackages is the KeyPackage schedule.
	KeyPackages KeyPackageSchedule

	// Now and Rand, if set, replace the clock and crypto/rand (tests).
	Now  func() time.Time
	Rand io.Reader
	// Logger receives the node's logs; nil discards them.
	Logger *slog.Logger
}

// KeyPackageSchedule is how the node keeps its KeyPackages in the
// directory (see keypkgdir.PublisherConfig); zero fields take its defaults.
type KeyPackageSchedule struct {
	// BatchSize one-time KeyPackages are published beside one last-resort.
	BatchSize int
	// Lifetime of each KeyPackage; RotateBefore its end it is replaced.
	Lifetime     time.Duration
	RotateBefore time.Duration
	// RepublishInterval is how often the record is put again, well within
	// the DHT's record age.
	RepublishInterval time.Duration
	// RetryInterval is how soon a failed publication is retried.
	RetryInterval time.Duration
	// ExpiryInterval is how often expired private keys are deleted.
	ExpiryInterval time.Duration
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.DataDir == "" {
		return cfg, fmt.Errorf("%w: Config.DataDir is required", ErrInvalidArgument)
	}
	if cfg.SettleWindow < 0 || cfg.FetchTimeout < 0 || cfg.SyncInterval < 0 || cfg.MaxInvitationsPerPeer < 0 || cfg.MaxInvitationBytesPerPeer < 0 ||
		cfg.MaxInvitations < 0 || cfg.MaxInvitationBytes < 0 {
		return cfg, errors.Join(ErrInvalidArgument, errors.New("node: negative Config field"))
	}
	if cfg.SettleWindow == 0 {
		cfg.SettleWindow = time.Second
	}
	if cfg.RewindWindow < 0 {
		return cfg, errors.Join(ErrInvalidArgument, errors.New("node: negative Config.RewindWindow"))
	}
	cfg.RewindWindow = max(cfg.RewindWindow, 5)
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 30 * time.Second
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = 20 * time.Second
	}
	if cfg.MaxInvitationsPerPeer == 0 {
		cfg.MaxInvitationsPerPeer = 8
	}
	if cfg.MaxInvitations == 0 {
		cfg.MaxInvitations = 256
	}
	if cfg.MaxInvitationBytes == 0 {
		cfg.MaxInvitationBytes = 64 << 20
	}
	if cfg.MaxInvitationBytesPerPeer == 0 {
		cfg.MaxInvitationBytesPerPeer = 8 << 20
	}
	if cfg.KeyPackages.ExpiryInterval == 0 {
		cfg.KeyPackages.ExpiryInterval = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
