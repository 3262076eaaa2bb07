package p2p

import (
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"sync"
	"time"

	"filippo.io/edwards25519"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"
)

// errNoMailbox: a peer's key is not Ed25519, so it has no mailbox.
var errNoMailbox = errors.New("no mailbox: identity key is not Ed25519")

// beaconKey is the one provider key under which every host holding
// undelivered Welcomes announces itself.
var beaconKey = providerKey([]byte("spacepanda mailbox beacon v1"))

func providerKey(b []byte) cid.Cid {
	sum := sha256.Sum256(b)
	mh, _ := multihash.Encode(sum[:], multihash.SHA2_256)
	return cid.NewCidV1(cid.Raw, mh)
}

// mailboxPrivate is the X25519 form of an Ed25519 identity key: the
// scalar is the first half of SHA-512 of the seed (RFC 8032 §5.1.5),
// which crypto/ecdh clamps as RFC 7748 §5 says, so that its public key is
// the Montgomery form of the Ed25519 public key.
func mailboxPrivate(k crypto.PrivKey) (*ecdh.PrivateKey, error) {
	if k.Type() != crypto.Ed25519 {
		return nil, errNoMailbox
	}
	raw, err := k.Raw()
	if err != nil {
		return nil, err
	}
	h := sha512.Sum512(raw[:32])
	return ecdh.X25519().NewPrivateKey(h[:32])
}

// mailboxPublic is the X25519 form of the Ed25519 key a peer ID carries.
func mailboxPublic(p peer.ID) (*ecdh.PublicKey, error) {
	pub, err := p.ExtractPublicKey()
	if err != nil || pub.Type() != crypto.Ed25519 {
		return nil, errNoMailbox
	}
	raw, err := pub.Raw()
	if err != nil {
		return nil, err
	}
	var point edwards25519.Point
	if _, err := point.SetBytes(raw); err != nil {
		return nil, fmt.Errorf("p2p: Ed25519 key of %s: %w", p, err)
	}
	return ecdh.X25519().NewPublicKey(point.BytesMontgomery())
}

// pairKey is the provider key of inviter's hint for invitee, computed by
// either of them with its own private key and the other's peer ID.
// X25519 refuses low-order points (an all-zero secret), so a peer ID
// crafted to force the secret fails here.
func pairKey(own *ecdh.PrivateKey, other, inviter, invitee peer.ID) (cid.Cid, error) {
	pub, err := mailboxPublic(other)
	if err != nil {
		return cid.Cid{}, err
	}
	secret, err := own.ECDH(pub)
	if err != nil {
		return cid.Cid{}, fmt.Errorf("p2p: mailbox secret with %s: %w", other, err)
	}
	info := "spacepanda mailbox v1\x00" + string(appendLen(nil, []byte(inviter))) + string(appendLen(nil, []byte(invitee)))
	key, err := hkdf.Key(sha256.New, secret, nil, info, 32)
	if err != nil {
		return cid.Cid{}, err
	}
	mh, _ := multihash.Encode(key, multihash.SHA2_256)
	return cid.NewCidV1(cid.Raw, mh), nil
}

// appendLen appends b with a one-byte length, so that two peer IDs cannot
// run into each other; peer IDs are far shorter than 256 bytes.
func appendLen(dst, b []byte) []byte {
	return append(append(dst, byte(len(b))), b...)
}

// leaveHint announces in the DHT that this host holds Welcomes, and, under
// the key only it and the invitee can compute, for to. It reports false
// when the DHT refused, so that the outbox tries again soon; a host or
// invitee without a mailbox gets no hint, and that is reported as done.
func (h *Host) leaveHint(to peer.ID) bool {
	if h.mailbox == nil {
		return true
	}
	key, err := pairKey(h.mailbox, to, h.host.ID(), to)
	if err != nil {
		h.log.Debug("no mailbox hint", "to", to.String(), "err", err)
		return true
	}
	ctx, cancel := h.streamContext(h.ctx)
	defer cancel()
	if err := h.dht.Provide(ctx, key, true); err != nil {
		h.log.Debug("mailbox hint not stored", "to", to.String(), "err", err)
		return false
	}
	if err := h.dht.Provide(ctx, beaconKey, true); err != nil {
		h.log.Debug("mailbox beacon not stored", "err", err)
		return false
	}
	return true
}

// checkMailbox connects to every host that announced Welcomes for this one;
// their outboxes then deliver. It reports whether the DHT could be asked.
func (h *Host) checkMailbox() bool {
	if h.mailbox == nil {
		return true
	}
	if h.dht.RoutingTable().Size() == 0 {
		return false
	}
	ctx, cancel := h.streamContext(h.ctx)
	defer cancel()
	var wg sync.WaitGroup
	dialers := make(chan struct{}, mailboxDialers)
	for ai := range h.dht.FindProvidersAsync(ctx, beaconKey, maxMailboxProviders) {
		if ai.ID == h.host.ID() || h.connected(ai.ID) {
			continue
		}
		select {
		case dialers <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-dialers }()
			if found, ok := h.hintFrom(ctx, ai.ID); ok {
				if len(ai.Addrs) == 0 {
					ai = found
				}
				dialMailboxProvider(ctx, h, ai)
			}
		})
	}
	wg.Wait()
	return true
}

// hintFrom looks for inviter's hint for this host, and returns inviter's
// addresses from it when it is there.
func (h *Host) hintFrom(ctx context.Context, inviter peer.ID) (peer.AddrInfo, bool) {
	key, err := pairKey(h.mailbox, inviter, inviter, h.host.ID())
	if err != nil {
		return peer.AddrInfo{}, false
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Only inviter can have stored itself under this key: a DHT server
	// takes a provider record from the provider alone, and nobody else
	// can compute the key. The few answers read are whatever else a
	// server may hold there.
	for ai := range h.dht.FindProvidersAsync(ctx, key, 4) {
		if ai.ID == inviter {
			return ai, true
		}
	}
	return peer.AddrInfo{}, false
}

// Anyone can announce itself under the beacon, for nothing, so one check
// looks at most at maxMailboxProviders of those it finds, and has at most
// mailboxDialers of them looked up or dialled at once.
const (
	maxMailboxProviders = 16
	mailboxDialers      = 4
)

// dialMailboxProvider connects to a host that announced Welcomes for h. A
// variable, so that a test can count the dials.
var dialMailboxProvider = func(ctx context.Context, h *Host, ai peer.AddrInfo) {
	if len(ai.Addrs) > 0 && h.host.Connect(ctx, ai) == nil {
		return
	}
	if err := h.ConnectPeer(ctx, ai.ID); err != nil {
		h.log.Debug("host holding Welcomes unreachable", "remote", ai.ID.String(), "err", err)
	}
}

// mailboxLoop checks the mailbox as soon as the DHT has peers, then every
// MailboxInterval.
func (h *Host) mailboxLoop() {
	delay := 100 * time.Millisecond
	for {
		if h.checkMailbox() {
			delay = h.cfg.MailboxInterval
		} else {
			delay = min(2*delay, 5*time.Second)
		}
		select {
		case <-time.After(delay):
		case <-h.ctx.Done():
			return
		}
	}
}
