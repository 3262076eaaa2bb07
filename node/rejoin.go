package node

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/p2p"
	"github.com/spacepanda/spacepanda/store"
)

// Divergence detection and rejoin.
//
// A rewind (rewind.go) mends a fork only inside its window. A member that
// was cut off while both sides moved on further, or an invitee whose
// Welcome came from a commit that lost, is on a branch nobody else is on,
// and cannot read the group any more (RFC 9750 §5.2). It finds out by
// comparing views: after each sync round it asks every member it can
// reach where it stands (the epoch and a hash of the epoch authenticator,
// RFC 9420 §8.7, over /spacepanda/groupinfo/1.0.0, served only to the
// members of the server's view). The view most of them share (ties: the
// later epoch, then the lower hash, so that both halves of an even split
// agree on which one moves) is the group's. A member whose own view is
// not that one two rounds in a row, without having moved towards it in
// between, has diverged: ordinary settling is over well within a round.
//
// It then rejoins by external commit (RFC 9420 §12.4.3.2): it fetches a
// GroupInfo from a member of the group's view, commits its own old leaf's
// removal (Resync) and a fresh leaf, persists that state with the commit
// in its log in one batch, and publishes the commit, which settles at the
// others like any commit. A rejoin that loses its epoch leaves the member
// diverged still, and the next rounds make it again. The commit's
// authenticated data names the last epoch the member shared with the
// group (see sharedEpoch): the members that merge it re-send their own
// messages of that epoch and later, which the rejoined member could not
// read, and the rejoined member re-sends its own of those epochs, which
// the others could not. Everything re-sent keeps its envelope ID, so a
// receiver that has a message already logs the copy as logResent and
// shows it once (rewind.go). What a rejoin gives up is what a new member
// gives up: the keys of the epochs before it.
//
// A member every other member refuses (it was removed meanwhile, or never
// made it into the group's view), or none of which it could reach for two
// rounds, or whose rejoin failed, says so in ChannelInfo.Convergence
// ("unrecoverable") until a round finds it agreeing with the group again.

// Convergence states of a channel (ChannelInfo.Convergence).
const (
	ConvergenceSettled       = "settled"       // in the group's view, as far as this member knows
	ConvergenceResolving     = "resolving"     // commits of the epoch are settling
	ConvergenceRecovering    = "recovering"    // diverged; rejoining
	ConvergenceUnrecoverable = "unrecoverable" // diverged or cut off, and no rejoin possible for now
)

// viewTimeout bounds one member's answer in a view round.
const viewTimeout = 5 * time.Second

// resyncTag starts a rejoin commit's authenticated data, followed by the
// last epoch the joiner shared with the group as a uvarint.
var resyncTag = []byte("spacepanda/resync/1")

// rejoinState is the divergence detector of a channel. Rounds run on
// syncLoop's goroutine one at a time; mu guards the fields for the loop
// and the readers of the snapshot.
type rejoinState struct {
	mu sync.Mutex
	// state is ConvergenceRecovering, ConvergenceUnrecoverable or "" (the
	// loop's own: settled or resolving).
	state, note string
	// diverged counts the rounds in a row that found this member off the
	// group's view; lastView and lastMine are the group's view and this
	// member's in the last of them, divergedAt when the first ran.
	diverged           int
	lastView, lastMine viewKey
	divergedAt         time.Time
	// silent counts the rounds in a row in which no member answered.
	silent int
	// agreed is the last epoch a round found this member in the group's
	// view with more than half of the members; ok says there was one.
	agreed   uint64
	agreedOK bool
	rejoins  atomic.Uint64 // for tests
}

func (r *rejoinState) set(state, note string) {
	r.mu.Lock()
	r.state, r.note = state, note
	r.mu.Unlock()
}

func (r *rejoinState) get() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state, r.note
}

// convergence is what ChannelInfo shows; run's goroutine calls it.
func (c *channel) convergence() (string, string) {
	if s, note := c.rj.get(); s != "" {
		return s, note
	}
	if len(c.candidates) > 0 || c.group.HasStagedCommit() {
		return ConvergenceResolving, ""
	}
	return ConvergenceSettled, ""
}

// setConvergence changes the state and publishes it.
func (c *channel) setConvergence(ctx context.Context, state, note string) {
	if s, n := c.rj.get(); s == state && n == note {
		return
	}
	c.rj.set(state, note)
	c.do(ctx, func() error { c.publishSnapshot(); return nil })
}

// viewHash names an epoch state among members: a hash of the epoch
// authenticator rather than the authenticator itself, which is worth
// keeping among the members.
func viewHash(auth []byte) []byte {
	h := sha256.Sum256(auth)
	return h[:]
}

// serveGroupInfo serves /spacepanda/groupinfo/1.0.0 to the members of a
// channel, refusing everyone else as serveSync does.
func (n *Node) serveGroupInfo(ctx context.Context, from peer.ID, channelID []byte, withGroupInfo bool) (p2p.GroupView, error) {
	c, err := n.channel(channelID)
	if err != nil {
		return p2p.GroupView{}, errNotServed
	}
	snap := c.snap.Load()
	if _, ok := snap.peers[from]; !ok || snap.info.State == "left" {
		return p2p.GroupView{}, errNotServed
	}
	var v p2p.GroupView
	err = c.do(ctx, func() error {
		if !c.group.Active() {
			return errNotServed
		}
		v.Epoch, v.Authenticator = c.group.Epoch(), viewHash(c.group.EpochAuthenticator())
		if withGroupInfo {
			gi, err := c.group.GroupInfo(mlsgroup.GroupInfoOptions{})
			if err != nil {
				n.cfg.Logger.Warn("making a GroupInfo", "channel", ChannelID(c.id), "err", err)
				return errSyncUnavailable
			}
			v.GroupInfo = gi
		}
		return nil
	})
	if errors.Is(err, errNotServed) {
		return p2p.GroupView{}, errNotServed
	}
	if err != nil {
		return p2p.GroupView{}, errSyncUnavailable
	}
	return v, nil
}

// viewKey is one view, as a map key.
type viewKey struct {
	epoch uint64
	auth  string
}

// checkView runs a view round (see the top of this file) and rejoins when
// this member has diverged.
func (c *channel) checkView(ctx context.Context) {
	var me viewKey
	var active, busy bool
	var others []peer.ID
	if err := c.do(ctx, func() error {
		active = c.group.Active()
		// Commits settling or a rewind catching up are the ordinary
		// way back to the group's view: no round counts while they last.
		busy = len(c.candidates) > 0 || c.group.HasStagedCommit() || c.caughtUp != 0
		me = viewKey{c.group.Epoch(), string(viewHash(c.group.EpochAuthenticator()))}
		for _, m := range c.group.Members() {
			if p, err := peerOfMember(m); err == nil && p != c.n.id {
				others = append(others, p)
			}
		}
		return nil
	}); err != nil || !active {
		return
	}
	if len(others) == 0 {
		c.rj.diverged, c.rj.silent = 0, 0
		c.setConvergence(ctx, "", "")
		return
	}
	type answer struct {
		p   peer.ID
		v   p2p.GroupView
		err error
	}
	answers := make(chan answer, len(others))
	for _, p := range others {
		go func() {
			actx, cancel := context.WithTimeout(ctx, viewTimeout)
			defer cancel()
			v, err := c.n.host.GroupView(actx, p, c.id, false)
			answers <- answer{p, v, err}
		}()
	}
	votes := map[viewKey][]peer.ID{me: {c.n.id}}
	refused, answered := 0, 0
	for range others {
		a := <-answers
		switch {
		case errors.Is(a.err, p2p.ErrGroupInfoRefused):
			refused++
		case a.err == nil:
			answered++
			k := viewKey{a.v.Epoch, string(a.v.Authenticator)}
			votes[k] = append(votes[k], a.p)
		}
	}
	if ctx.Err() != nil {
		return
	}
	if answered == 0 {
		c.rj.silent++
		c.rj.diverged = 0
		switch {
		case refused == len(others):
			c.setConvergence(ctx, ConvergenceUnrecoverable, "every member refuses this one: removed, or never in the group's view")
		case c.rj.silent >= 2:
			c.setConvergence(ctx, ConvergenceUnrecoverable, "no member reachable")
		}
		return
	}
	c.rj.silent = 0
	best := me
	for k, ps := range votes {
		b := votes[best]
		if cmp.Or(cmp.Compare(len(b), len(ps)), cmp.Compare(best.epoch, k.epoch), cmp.Compare(k.auth, best.auth)) < 0 {
			best = k
		}
	}
	if best == me {
		c.rj.diverged = 0
		// Agreement counts as the group's only from more than half of
		// the members: in a partition the smaller half agrees with
		// itself on a branch that may lose, and a rejoin naming an epoch
		// of that branch as the last shared one would start the re-sends
		// of both sides after the fork, losing what was sent between.
		if len(votes[me]) > 1 && 2*len(votes[me]) > len(others)+1 {
			c.rj.agreed, c.rj.agreedOK = me.epoch, true
		}
		c.setConvergence(ctx, "", "")
		return
	}
	// A round in which this member was still settling, or catching up
	// after a rewind, does not count. Diverged is a member whose view and
	// the group's are the same two rounds in a row and not the same as
	// each other, ahead of the group or behind it: one that moved
	// meanwhile is catching up, and a group whose view moved was settling
	// still, or catching up with this member.
	switch {
	case busy:
		return
	case c.rj.diverged > 0 && (best != c.rj.lastView || me != c.rj.lastMine):
		c.rj.diverged = 0
	}
	// Rounds are kicked (reconnections, rejoins, re-sends) as well as
	// timed, and two of them can be milliseconds apart: the second counts
	// only once the commits the first saw had time to settle here.
	// Otherwise a member one commit behind, with that commit in its
	// settle window, rejoins; the others merge its external commit, one
	// of them makes its lost commit again, the member is one behind
	// again, and the epoch runs away faster than messages can be read.
	now := c.n.cfg.Now()
	if c.rj.diverged == 1 {
		if wait := c.divergeGrace() - now.Sub(c.rj.divergedAt); wait > 0 {
			time.AfterFunc(wait, c.requestSync)
			return
		}
	}
	if c.rj.diverged == 0 {
		c.rj.divergedAt = now
	}
	c.rj.diverged++
	c.rj.lastView, c.rj.lastMine = best, me
	if c.rj.diverged < 2 {
		return
	}
	c.n.cfg.Logger.Info("diverged from the group", "channel", ChannelID(c.id), "epoch", me.epoch, "group", best.epoch, "with", len(votes[best]), "of", answered+1)
	c.setConvergence(ctx, ConvergenceRecovering, "")
	var errs []error
	for _, p := range votes[best] {
		err := c.rejoinFrom(ctx, p)
		if err == nil {
			c.rj.diverged = 0
			return
		}
		errs = append(errs, err)
		c.n.cfg.Logger.Info("rejoining", "channel", ChannelID(c.id), "from", p, "err", err)
	}
	if ctx.Err() == nil {
		c.setConvergence(ctx, ConvergenceUnrecoverable, "rejoining failed: "+errors.Join(errs...).Error())
	}
}

// divergeGrace is how long after a round that found this member off the
// group's view the next one may confirm it: a settle window for the
// commits that round saw to arrive and settle, twice, and a second.
func (c *channel) divergeGrace() time.Duration {
	return 2*c.n.cfg.SettleWindow + time.Second
}

// errNotInGroupInfo: the group's view has no leaf of this node to resync.
var errNotInGroupInfo = errors.New("node: this node is not in the group's view")

// rejoinFrom fetches a GroupInfo from p and rejoins by it.
func (c *channel) rejoinFrom(ctx context.Context, p peer.ID) error {
	actx, cancel := context.WithTimeout(ctx, viewTimeout)
	v, err := c.n.host.GroupView(actx, p, c.id, true)
	cancel()
	if err != nil {
		return err
	}
	if v.GroupInfo == nil {
		return fmt.Errorf("%w: no GroupInfo from %s", p2p.ErrProtocol, p)
	}
	return c.do(ctx, func() error { return c.rejoin(v.GroupInfo) })
}

// rejoin replaces this member's state by an external commit on
// groupInfo that resyncs its old leaf, and re-sends its messages of the
// epochs the others could not read.
func (c *channel) rejoin(groupInfo []byte) error {
	if err := c.flush(); err != nil {
		return err
	}
	cfg := c.n.mlsConfig()
	sum, err := mlsgroup.InspectGroupInfo(cfg, groupInfo, nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(sum.GroupID, c.id) {
		return fmt.Errorf("%w: a GroupInfo of another group", p2p.ErrProtocol)
	}
	old := -1
	for _, m := range sum.Members {
		if p, err := peerOfMember(m); err == nil && p == c.n.id {
			old = int(m.LeafIndex)
		}
	}
	if old < 0 {
		return errNotInGroupInfo
	}
	shared, err := c.sharedEpoch()
	if err != nil {
		return err
	}
	leaf := uint32(old)
	aad := binary.AppendUvarint(bytes.Clone(resyncTag), shared)
	eff, err := mlsgroup.ExternalJoin(cfg, groupInfo, c.n.identity, c.n.signer, mlsgroup.ExternalJoinOptions{
		Resync: &leaf, Leaf: keyPackageOptions(), AuthenticatedData: aad,
	})
	if err != nil {
		return err
	}
	resend, err := c.ownFromEpoch(shared)
	if err != nil {
		return err
	}
	h := sha256.Sum256(eff.Message)
	rec := logRecord{Kind: logCommit, Epoch: eff.Epoch, Message: eff.Message, ReceivedAt: c.nowMillis()}
	if _, err := c.write(step{group: eff.Group, logs: []logItem{{hash: h, rec: &rec}}}); err != nil {
		return err
	}
	from := c.group.Epoch()
	// What belonged to the abandoned branch goes: its states (and their
	// secrets), its candidates, and what waited for its epochs.
	clear(c.retained)
	c.retained = c.retained[:0]
	c.clearCandidates()
	if c.settleTimer != nil {
		c.settleTimer.Stop()
		c.settleTimer, c.settleC = nil, nil
	}
	c.future, c.futureBytes = nil, 0
	c.ahead, c.aheadBytes = nil, 0
	if c.staged != nil && c.staged.kind != intentRecovered {
		c.queue = append([]*intent{c.staged}, c.queue...)
	}
	c.staged = nil
	c.rj.rejoins.Add(1)
	c.n.cfg.Logger.Info("rejoined by external commit", "channel", ChannelID(c.id), "from", from, "epoch", eff.Group.Epoch(), "shared", shared, "resend", len(resend))
	c.setGroup(eff.Group)
	c.publish(eff.Message)
	c.n.emit(Event{Type: EventRejoined, Channel: c.id, Epoch: eff.Group.Epoch()})
	c.n.emit(Event{Type: EventEpoch, Channel: c.id, Epoch: eff.Group.Epoch()})
	for _, env := range resend {
		c.held = append(c.held, &sendReq{env: env, done: make(chan sendResult, 1), resent: true})
	}
	c.resync = true
	c.advance()
	return nil
}

// sharedEpoch is the epoch from which this member's messages may not have
// reached the group, and the group's not this member: the last epoch a
// view round found it agreeing with the group, less the rewind window
// (the group may since have rewound to a fork point that far back).
// Without such a round (a restart, or an invitee that never agreed), it
// is the oldest epoch in the recent log that re-sends are kept to.
func (c *channel) sharedEpoch() (uint64, error) {
	if c.rj.agreedOK {
		return c.rj.agreed - min(c.rj.agreed, uint64(c.n.cfg.RewindWindow)), nil
	}
	page, err := c.n.st.LogBefore(c.id, ^uint64(0), resendHorizon)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	oldest := c.group.Epoch()
	for _, e := range page {
		if rec, err := parseLogRecord(e.Data); err == nil {
			oldest = min(oldest, rec.Epoch)
		}
	}
	return oldest, nil
}

// resendHorizon is how far back in its log a member looks for messages to
// re-send: within the envMemory entries every receiver remembers, so that
// a copy of a message it has is known as one.
const resendHorizon = envMemory / 2

// ownFromEpoch is this node's application messages of epoch from and
// later among the last resendHorizon log entries, oldest first.
func (c *channel) ownFromEpoch(from uint64) ([]*envelope, error) {
	page, err := c.n.st.LogBefore(c.id, ^uint64(0), resendHorizon)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	var out []*envelope
	seen := make(map[[MessageIDSize]byte]bool)
	for _, e := range slices.Backward(page) {
		rec, err := parseLogRecord(e.Data)
		if err != nil {
			return nil, err
		}
		// A copy is encrypted where its original was not (after a rewind,
		// or for an earlier rejoin), and counts by its own epoch.
		if c.ownMessage(rec) && rec.Epoch >= from && !seen[rec.Envelope.ID] {
			seen[rec.Envelope.ID] = true
			out = append(out, rec.Envelope)
		}
	}
	return out, nil
}

// merged is run's hook for a commit it merged: a rejoin's (an external
// commit with resyncTag) makes this member re-send its messages from the
// epoch the rejoined member last shared, which it could not read.
func (c *channel) merged(eff *mlsgroup.Effects) {
	if eff.Sender.Type != mlsgroup.SenderNewMemberCommit || !bytes.HasPrefix(eff.AuthenticatedData, resyncTag) {
		return
	}
	shared, n := binary.Uvarint(eff.AuthenticatedData[len(resyncTag):])
	if n <= 0 {
		return
	}
	resend, err := c.ownFromEpoch(shared)
	if err != nil {
		c.n.cfg.Logger.Warn("messages to re-send for a rejoined member", "channel", ChannelID(c.id), "err", err)
		return
	}
	c.n.cfg.Logger.Debug("a member rejoined", "channel", ChannelID(c.id), "shared", shared, "resend", len(resend))
	for _, env := range resend {
		c.held = append(c.held, &sendReq{env: env, done: make(chan sendResult, 1), resent: true})
	}
}
