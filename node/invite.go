package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/cryptobyte"

	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/p2p"
	"github.com/spacepanda/spacepanda/store"
)

// Invitation is a Welcome this node received and has not yet accepted or
// declined. Anyone can send one, so nothing is joined without consent
// (unless the inviter is in Config.AutoAccept).
type Invitation struct {
	ID         string // hex
	Channel    []byte
	Name       string
	Topic      string
	Inviter    peer.ID // the peer that delivered it
	Members    []peer.ID
	ReceivedAt time.Time

	welcome []byte
}

//	struct {
//	    uint8  version = 1;
//	    opaque inviter<0..2^8-1>;
//	    uint64 received_at;           // Unix milliseconds
//	    opaque channel<0..2^8-1>;
//	    opaque name<0..2^8-1>;
//	    opaque topic<0..2^16-1>;
//	    opaque members<0..2^24-1>;    // peer IDs, each <0..2^8-1>
//	    opaque welcome<0..2^24-1>;
//	} InvitationRecord;
func (inv *Invitation) marshal() []byte {
	var b cryptobyte.Builder
	b.AddUint8(codecVersion)
	addOpaque8(&b, []byte(inv.Inviter))
	b.AddUint64(uint64(inv.ReceivedAt.UnixMilli()))
	addOpaque8(&b, inv.Channel)
	addOpaque8(&b, []byte(inv.Name))
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(inv.Topic)) })
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, m := range inv.Members {
			addOpaque8(b, []byte(m))
		}
	})
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(inv.welcome) })
	return b.BytesOrPanic()
}

func addOpaque8(b *cryptobyte.Builder, v []byte) {
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(v) })
}

func parseInvitation(id, data []byte) (*Invitation, error) {
	s := cryptobyte.String(data)
	var (
		v                                  uint8
		at                                 uint64
		inviter, ch, name, topic, mem, wel cryptobyte.String
	)
	if !s.ReadUint8(&v) || v != codecVersion || !s.ReadUint8LengthPrefixed(&inviter) || !s.ReadUint64(&at) ||
		!s.ReadUint8LengthPrefixed(&ch) || !s.ReadUint8LengthPrefixed(&name) || !s.ReadUint16LengthPrefixed(&topic) ||
		!s.ReadUint24LengthPrefixed(&mem) || !s.ReadUint24LengthPrefixed(&wel) || !s.Empty() {
		return nil, fmt.Errorf("%w: invitation", errMalformed)
	}
	inv := &Invitation{ID: hex.EncodeToString(id), Inviter: peer.ID(inviter), ReceivedAt: time.UnixMilli(int64(at)),
		Channel: []byte(ch), Name: string(name), Topic: string(topic), welcome: []byte(wel)}
	for !mem.Empty() {
		var p cryptobyte.String
		if !mem.ReadUint8LengthPrefixed(&p) {
			return nil, fmt.Errorf("%w: invitation members", errMalformed)
		}
		inv.Members = append(inv.Members, peer.ID(p))
	}
	return inv, nil
}

func (n *Node) loadInvitations() error {
	invs, err := n.st.Invitations()
	if err != nil {
		return err
	}
	for _, r := range invs {
		inv, err := parseInvitation(r.ID, r.Data)
		if err != nil {
			n.cfg.Logger.Warn("dropping an unreadable invitation", "err", err)
			continue
		}
		n.invites[inv.ID] = inv
	}
	return nil
}

// handleWelcome receives a Welcome over p2p. It reads it with the node's
// provider, without joining, and keeps it as a pending invitation; only
// then is it acknowledged. A Welcome for none of this node's KeyPackages,
// or past what one peer may make it keep, is refused.
func (n *Node) handleWelcome(_ context.Context, from peer.ID, welcome []byte) error {
	sum := sha256.Sum256(welcome)
	id := sum[:16]
	idHex := hex.EncodeToString(id)
	n.mu.Lock()
	if _, ok := n.invites[idHex]; ok {
		n.mu.Unlock()
		return nil // a duplicate: the acknowledgement was lost
	}
	// The slot is taken under the lock, before the Join that takes time,
	// so that concurrent Welcomes (a peer may open several streams) see
	// each other.
	count, size := n.inviteHeld[from].count, n.inviteHeld[from].bytes
	total, totalSize := n.inviteHeldAll.count, n.inviteHeldAll.bytes
	for _, inv := range n.invites {
		total++
		totalSize += len(inv.welcome)
		if inv.Inviter == from {
			count++
			size += len(inv.welcome)
		}
	}
	trusted := slices.Contains(n.cfg.AutoAccept, from)
	if count >= n.cfg.MaxInvitationsPerPeer || size+len(welcome) > n.cfg.MaxInvitationBytesPerPeer ||
		!trusted && (total >= n.cfg.MaxInvitations || totalSize+len(welcome) > n.cfg.MaxInvitationBytes) {
		n.mu.Unlock()
		return ErrTooManyInvitations
	}
	n.holdInvite(from, len(welcome), 1)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.holdInvite(from, len(welcome), -1)
		n.mu.Unlock()
	}()
	eff, err := mlsgroup.Join(n.mlsConfig(), welcome, n.signer, mlsgroup.JoinOptions{})
	var none *mlsgroup.NoMatchingKeyPackageError
	if errors.As(err, &none) && slices.Contains(none.Status, mlsgroup.KeyPackageConsumed) {
		// Most likely the Welcome this node joined with, again; either
		// way its KeyPackage is spent and there is nothing to keep.
		return nil
	}
	if err != nil {
		return fmt.Errorf("welcome refused: %w", err)
	}
	g := eff.Group
	inv := &Invitation{ID: idHex, Channel: g.GroupID(), Inviter: from, ReceivedAt: n.cfg.Now(), welcome: welcome}
	meta := metaOf(g)
	inv.Name, inv.Topic = meta.Name, meta.Topic
	for _, m := range g.Members() {
		if p, err := peerOfMember(m); err == nil {
			inv.Members = append(inv.Members, p)
		}
	}
	if _, err := n.channel(g.GroupID()); err == nil {
		return nil // already in this channel
	}
	var b store.Batch
	b.PutInvitation(id, inv.marshal())
	if err := n.st.Commit(&b); err != nil {
		return err
	}
	n.mu.Lock()
	n.invites[idHex] = inv
	n.mu.Unlock()
	n.emit(Event{Type: EventInvitation, Channel: inv.Channel, Peer: from, Invitation: inv.public()})
	if slices.Contains(n.cfg.AutoAccept, from) {
		n.wg.Go(func() {
			ctx, cancel := context.WithTimeout(n.ctx, time.Minute)
			defer cancel()
			if _, err := n.Accept(ctx, idHex); err != nil && n.ctx.Err() == nil {
				n.emit(Event{Type: EventError, Channel: inv.Channel, Error: "auto-accepting invitation: " + err.Error()})
			}
		})
	}
	return nil
}

// inviteHold is what Welcomes being read, not yet kept, hold of the
// invitation bounds.
type inviteHold struct{ count, bytes int }

// holdInvite adds (sign 1) or releases (sign -1) a Welcome being read;
// n.mu is held.
func (n *Node) holdInvite(from peer.ID, size, sign int) {
	if n.inviteHeld == nil {
		n.inviteHeld = make(map[peer.ID]inviteHold)
	}
	h := n.inviteHeld[from]
	h.count += sign
	h.bytes += sign * size
	if h.count == 0 {
		delete(n.inviteHeld, from)
	} else {
		n.inviteHeld[from] = h
	}
	n.inviteHeldAll.count += sign
	n.inviteHeldAll.bytes += sign * size
}

func (inv *Invitation) public() *Invitation {
	c := *inv
	c.welcome = nil
	return &c
}

// Invitations lists the pending invitations, oldest first.
func (n *Node) Invitations() []Invitation {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Invitation, 0, len(n.invites))
	for _, inv := range n.invites {
		out = append(out, *inv.public())
	}
	slices.SortFunc(out, func(a, b Invitation) int { return a.ReceivedAt.Compare(b.ReceivedAt) })
	return out
}

func (n *Node) takeInvitation(id string) (*Invitation, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	inv, ok := n.invites[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownInvitation, id)
	}
	return inv, nil
}

// Accept joins the channel of a pending invitation: the joined state, the
// consumption of the KeyPackage and the end of the invitation are one
// batch. The node then subscribes, catches up, and commits a fresh leaf
// of its own (its KeyPackage's keys were published, so they are replaced).
func (n *Node) Accept(ctx context.Context, id string) (ChannelInfo, error) {
	inv, err := n.takeInvitation(id)
	if err != nil {
		return ChannelInfo{}, err
	}
	eff, err := mlsgroup.Join(n.mlsConfig(), inv.welcome, n.signer, mlsgroup.JoinOptions{})
	if err != nil {
		return ChannelInfo{}, err
	}
	rawID, _ := hex.DecodeString(id)
	if _, err := n.writeStep(eff.Group.GroupID(), step{group: eff.Group, consumed: eff.ConsumedKeyPackage, invitation: rawID}); err != nil {
		return ChannelInfo{}, err
	}
	n.mu.Lock()
	delete(n.invites, id)
	n.mu.Unlock()
	n.pub.Used(eff.ConsumedKeyPackage)
	c, err := n.startChannel(eff.Group, false)
	if err != nil {
		return ChannelInfo{}, err
	}
	n.emit(Event{Type: EventChannelJoined, Channel: c.id, Epoch: eff.Group.Epoch(), Peer: inv.Inviter})
	// The self-update goes through the queue like any commit; Accept does
	// not wait for it.
	if err := c.do(ctx, func() error {
		c.queue = append(c.queue, &intent{kind: intentUpdate})
		c.next()
		return nil
	}); err != nil {
		return ChannelInfo{}, err
	}
	return c.info(), nil
}

// Decline drops a pending invitation. Nothing else is deleted: the
// KeyPackage it was for stays usable.
func (n *Node) Decline(id string) error {
	if _, err := n.takeInvitation(id); err != nil {
		return err
	}
	rawID, _ := hex.DecodeString(id)
	var b store.Batch
	b.DeleteInvitation(rawID)
	if err := n.st.Commit(&b); err != nil {
		return err
	}
	n.mu.Lock()
	delete(n.invites, id)
	n.mu.Unlock()
	return nil
}

// Invite adds a peer to a channel: it fetches one of the peer's KeyPackages
// from the directory (bounded by Config.FetchTimeout), commits the Add, and
// returns once the commit won its epoch and the Welcome is queued for the
// invitee (RFC 9420 §14). Errors match keypkgdir.ErrNoKeyPackages (none
// published, or the lookup failed), keypkgdir.ErrKeyPackageExpired, or
// ErrAlreadyMember.
func (n *Node) Invite(ctx context.Context, channelID []byte, p peer.ID) error {
	c, err := n.channel(channelID)
	if err != nil {
		return err
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("%w: peer ID: %v", ErrInvalidArgument, err)
	}
	if p == n.id {
		return fmt.Errorf("%w: %s is this node", ErrAlreadyMember, p)
	}
	if _, ok := c.snap.Load().peers[p]; ok {
		return fmt.Errorf("%w: %s", ErrAlreadyMember, p)
	}
	fctx, cancel := context.WithTimeout(ctx, n.cfg.FetchTimeout)
	kp, err := n.dir.Fetch(fctx, p)
	cancel()
	if err != nil {
		return fmt.Errorf("node: inviting %s: %w", p, err)
	}
	return c.submit(ctx, &intent{kind: intentAdd, kp: kp, peer: p})
}

// queueWelcomes hands a merged commit's Welcome to the outbox, once for
// each member it added.
func (c *channel) queueWelcomes(eff *mlsgroup.Effects) {
	for _, m := range eff.Commit.Added {
		p, err := peerOfMember(m)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(append(append([]byte{}, eff.Welcome...), p...))
		expires := c.n.cfg.Now().Add(mlsgroup.DefaultKeyPackageLifetime)
		if c.staged != nil && c.staged.kp != nil {
			expires = c.staged.kp.NotAfter()
		}
		if err := c.n.host.QueueWelcome(p2p.PendingWelcome{ID: sum[:16], To: p, Welcome: eff.Welcome, Expires: expires}); err != nil {
			c.n.cfg.Logger.Error("queueing a Welcome", "channel", ChannelID(c.id), "to", p, "err", err)
			c.n.emit(Event{Type: EventError, Channel: c.id, Peer: p, Error: "queueing the Welcome: " + err.Error()})
		}
	}
}

// welcomeDone hears how a queued Welcome ended.
func (n *Node) welcomeDone(w p2p.PendingWelcome, err error) {
	if err != nil {
		n.emit(Event{Type: EventError, Peer: w.To, Error: "delivering a Welcome: " + err.Error()})
	}
}
