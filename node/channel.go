package node

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/p2p"
)

// Bounds on what a channel holds in memory for later.
const (
	// maxFuture and maxFutureBytes cap the messages of the next epoch,
	// held until this member reaches it; beyond them they are dropped and
	// sync recovers them. Anyone on the topic can make a message that
	// claims an epoch (nothing is verifiable before it is reached), so
	// the cap is what such messages cost a member, whoever sends them.
	maxFuture      = 1024
	maxFutureBytes = 8 << 20
	// maxCommitTries is how often a commit that loses its epoch is made
	// again before the caller is told ErrCommitLost.
	maxCommitTries = 8
	// sendBatch caps the sends written in one synced batch.
	sendBatch = 256
	// publishQueue is how many persisted messages wait to be published.
	publishQueue = 4096
	// recvBatch caps the received application messages decrypted before
	// one synced write.
	recvBatch = 256
)

// channel is one MLS group and its topic. Its state belongs to run's
// goroutine; everyone else hands it work through ops, sends and inbound
// and reads the snapshot it publishes after each step.
type channel struct {
	n   *Node
	id  []byte
	pch *p2p.Channel

	epoch   atomic.Uint64 // the current epoch, for the topic validator
	rounds  atomic.Uint64 // sync rounds done, for tests that wait on one
	refused atomic.Uint64 // commits refused on arrival, for tests
	rewinds atomic.Uint64 // rewinds to a late winner (rewind.go), for tests
	started atomic.Uint64 // sync rounds begun (see readAhead)
	snap    atomic.Pointer[snapshot]

	ops     chan func()
	kick    chan struct{} // syncLoop: a round now
	sends   chan *sendReq
	inbound chan inbound
	pubq    chan []byte

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// Owned by run's goroutine.
	group      *mlsgroup.Group
	meta       channelMeta
	candidates map[[32]byte]candidate // commits for the current epoch
	// syncOnly: every candidate came from a sync, none from the topic or
	// this node; such an epoch settles when the sync round ends.
	syncOnly bool
	// candSyncs are the sync entries each candidate came in, whose
	// cursors pass it once it is refused.
	candSyncs   map[[32]byte][]inbound
	settleTimer *time.Timer
	settleC     <-chan time.Time
	future      []inbound
	// ahead are topic messages that came after a gap of their sender's
	// (see fromTopic), read with the window once a sync round has had its
	// chance to fill the gap.
	ahead       []inbound
	aheadBytes  int
	futureBytes int
	staged      *intent   // what the staged commit does
	queue       []*intent // commit work waiting for the staged one
	held        []*sendReq
	leaving     bool
	// resync asks for a sync round once the epoch settles: a sync was
	// stopped at an entry that has to wait for it (see holdSync).
	resync   bool
	fallback *time.Timer
	// selfRemoving are the leaves that proposed their own removal in this
	// epoch, so that a commit removing them reads as a leave.
	selfRemoving map[uint32]bool
	// retained are the states the last commits were merged on, oldest
	// first (see rewind.go).
	retained []retainedEpoch
	// envSeen (with envOrder, oldest first) are the messages logged
	// lately, by author and envelope ID: a copy re-sent after a rewind is
	// logged as logResent.
	envSeen  map[envKey]struct{}
	envOrder []envKey
	// caughtUp, after a rewind, is the first sync round that must reach
	// the end of every member's log before queued commits are made and
	// resend is sent: the rewind lands at the fork point, and what is
	// made there is late for members at the head of the winning branch.
	caughtUp uint64
	// heldCandidate says the sync round in progress stopped at a commit
	// to settle, which the next round must go on past (a stop at an
	// entry of a later epoch alone does not count: see afterCatchUp).
	heldCandidate bool
	resend        []*sendReq
	// followUps are the sync rounds expectResends armed.
	followUps []*time.Timer
	// peerCache maps leaves to peers for the epoch whose authenticator
	// is peerCacheEpoch (senderPeer).
	peerCache      map[uint32]peer.ID
	peerCacheEpoch []byte
	// pending is received application messages decrypted but not yet
	// written (see flush).
	pending pendingBatch
	gather  *time.Timer // see more
	// rj is the divergence detector (rejoin.go).
	rj rejoinState
}

// pendingBatch is what a run of received application messages leaves for
// one synced write: one fsync for a burst instead of one per message,
// which is what bounded a receiver's throughput. It never outlives one
// pass of run's loop (run flushes at the end of each, and every step that
// is not a batched message flushes first), so ops, sends, commits and
// readers of the snapshot only ever see persisted state, and nothing of
// the batch (no event, no cursor) is visible before it is on disk.
type pendingBatch struct {
	work    *mlsgroup.Group // the state after the batch; nil: empty
	logs    []logItem
	senders []peer.ID // of each log record
	cursors map[peer.ID][]byte
	hashes  map[[32]byte]bool
	envs    map[envKey]struct{} // of the logs, remembered once written
}

func (p *pendingBatch) empty() bool { return p.work == nil && len(p.cursors) == 0 }

func (p *pendingBatch) addCursor(m inbound) {
	if m.cursor == nil {
		return
	}
	if p.cursors == nil {
		p.cursors = make(map[peer.ID][]byte)
	}
	p.cursors[m.from] = m.cursor
}

// snapshot is what readers off the loop see of a channel.
type snapshot struct {
	info    ChannelInfo
	members []Member
	peers   map[peer.ID]uint32
}

type inbound struct {
	data   []byte
	from   peer.ID
	sync   bool
	cursor []byte // with sync: the provider's cursor after this entry
	// window: read with the out-of-order window, as a synced entry is
	// (an ahead message whose sync round is over).
	window bool
	round  uint64 // with ahead: the first sync round that can fill its gap
	done   chan error
}

type sendReq struct {
	env  *envelope
	done chan sendResult
	// resent: a message of an epoch a rewind abandoned, encrypted again
	// (rewind.go); nobody waits for it, and it is not a new event.
	resent bool
}

type sendResult struct {
	msg Message
	err error
}

type intentKind int

const (
	intentAdd intentKind = iota
	intentRemove
	intentUpdate
	intentCommitPending
	intentRecovered // a staged commit found at start, whose purpose is unknown
)

// intent is commit work: what a commit of this node is for, so that it can
// be made again in the next epoch when another commit wins this one.
type intent struct {
	kind  intentKind
	kp    *mlsgroup.KeyPackage
	peer  peer.ID
	tries int
	done  chan error // buffered; nil for the node's own housekeeping
}

func (it *intent) finish(err error) {
	if it.done != nil {
		it.done <- err
		it.done = nil
	}
}

// startChannel runs a channel for g: it joins the topic and starts the
// goroutines; a channel restored or joined (not created) catches up.
func (n *Node) startChannel(g *mlsgroup.Group, created bool) (*channel, error) {
	c := &channel{
		n: n, id: bytes.Clone(g.GroupID()),
		ops: make(chan func()), kick: make(chan struct{}, 1), sends: make(chan *sendReq, sendBatch), inbound: make(chan inbound, 64),
		pubq: make(chan []byte, publishQueue), candidates: make(map[[32]byte]candidate),
		group: g,
	}
	c.ctx, c.cancel = context.WithCancel(n.ctx)
	c.meta = metaOf(g)
	c.epoch.Store(g.Epoch()) // before the topic's validator runs
	c.publishSnapshot()
	if err := c.loadRemembered(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	if _, ok := n.channels[string(c.id)]; ok {
		n.mu.Unlock()
		return nil, fmt.Errorf("node: channel %x already running", c.id)
	}
	n.channels[string(c.id)] = c
	n.mu.Unlock()
	if g.Active() {
		pch, err := n.host.JoinChannel(c.id, c.validate)
		if err != nil {
			return nil, err
		}
		c.pch = pch
		c.wg.Go(c.read)
		c.wg.Go(c.publishLoop)
	}
	if g.HasStagedCommit() {
		// A commit staged before a restart: its purpose is lost with the
		// memory, but it may have won while the node was away. Catching
		// up tells; otherwise it settles again like any commit.
		c.staged = &intent{kind: intentRecovered}
	}
	c.wg.Go(c.run)
	if g.Active() {
		c.wg.Go(c.syncLoop)
	}
	if !created && g.Active() {
		c.wg.Go(func() {
			c.catchUp(c.ctx)
			if msg := g.StagedCommit(); msg != nil {
				c.do(c.ctx, func() error {
					if c.group.HasStagedCommit() {
						c.offer(msg, false)
						c.publish(msg)
					}
					return nil
				})
			}
		})
	}
	return c, nil
}

// metaOf reads a group's name and topic from its GroupContext.
func metaOf(g *mlsgroup.Group) channelMeta {
	for _, e := range g.GroupContextExtensions() {
		if e.Type == ExtChannelMeta {
			if m, err := parseChannelMeta(e.Data); err == nil {
				return m
			}
		}
	}
	return channelMeta{}
}

func (c *channel) stop() {
	c.cancel()
	if c.pch != nil {
		c.pch.Close()
	}
	c.wg.Wait()
}

// do runs f on the channel's goroutine and returns its error.
func (c *channel) do(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	select {
	case c.ops <- func() {
		err := f()
		if ferr := c.flush(); err == nil {
			err = ferr
		}
		done <- err
	}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

func (c *channel) run() {
	defer func() {
		if c.settleTimer != nil {
			c.settleTimer.Stop()
		}
		if c.fallback != nil {
			c.fallback.Stop()
		}
		for _, f := range c.followUps {
			f.Stop()
		}
	}()
	for {
		select {
		case <-c.ctx.Done():
			return
		case f := <-c.ops:
			f()
		case r := <-c.sends:
			c.handleSends(r)
		case m := <-c.inbound:
			c.receive(m)
			// Take what else has arrived into the same write. A sync hands
			// over one entry at a time, each once the one before is
			// processed, so the next is a moment away: wait that moment,
			// or every synced entry costs a write of its own.
			for n := 1; n < recvBatch; n++ {
				next, ok := c.more(m.sync)
				if !ok {
					break
				}
				m = next
				c.receive(m)
			}
		case <-c.settleC:
			c.settle()
		}
		if err := c.flush(); err != nil && c.ctx.Err() == nil {
			c.n.cfg.Logger.Error("writing received messages", "channel", ChannelID(c.id), "err", err)
		}
	}
}

// syncGather is how long the loop waits for a sync's next entry before
// it writes what it has.
const syncGather = 500 * time.Microsecond

// more is the next message that has arrived, if any; after a synced
// entry, it waits syncGather for the next one.
func (c *channel) more(afterSync bool) (inbound, bool) {
	select {
	case m := <-c.inbound:
		return m, true
	default:
	}
	if !afterSync {
		return inbound{}, false
	}
	if c.gather == nil {
		c.gather = time.NewTimer(syncGather)
	} else {
		c.gather.Reset(syncGather)
	}
	select {
	case m := <-c.inbound:
		c.gather.Stop()
		return m, true
	case <-c.gather.C:
		return inbound{}, false
	}
}

func (c *channel) receive(m inbound) {
	err := c.process(m)
	if m.done != nil {
		m.done <- err
	}
}

// cur is the group as the next received message sees it: the persisted
// one, or the state after the pending batch.
func (c *channel) cur() *mlsgroup.Group {
	if c.pending.work != nil {
		return c.pending.work
	}
	return c.group
}

// flush writes the pending batch in one step, then takes its state and
// emits its events. On a failed write nothing of the batch is on disk or
// out: the state stays the persisted one, which still holds the batch's
// keys, and since no cursor moved either, sync brings the messages again.
func (c *channel) flush() error {
	p := c.pending
	if p.empty() {
		return nil
	}
	c.pending = pendingBatch{}
	s := step{group: p.work, logs: p.logs}
	for from, cu := range p.cursors {
		s.cursors = append(s.cursors, cursorItem{peer: from, cursor: cu})
	}
	seqs, err := c.n.writeStep(c.id, s)
	if err != nil {
		return err
	}
	if p.work != nil {
		c.setGroup(p.work)
	}
	c.remember(slices.Collect(maps.Keys(p.envs))...)
	for i, l := range p.logs {
		if l.rec.Kind != logApplication {
			continue
		}
		msg := c.messageOf(seqs[i], l.rec)
		c.n.emit(Event{Type: EventMessage, Channel: c.id, Epoch: l.rec.Epoch, Peer: p.senders[i], Message: &msg})
	}
	return nil
}

// errUnflushed guards the rule that makes batching safe: a step computed
// from c.group must not be written while a batch computed from the same
// state is pending, or one of the two would overwrite the other.
var errUnflushed = errors.New("node: internal: a step written over a pending batch")

// write writes a step computed from c.group; its caller flushed first.
func (c *channel) write(s step) ([]uint64, error) {
	if !c.pending.empty() {
		return nil, errUnflushed
	}
	return c.n.writeStep(c.id, s)
}

// read hands the topic's messages to the loop. The node's own come back
// first (gossipsub delivers them locally), and it has them already.
func (c *channel) read() {
	for {
		m, err := c.pch.Next(c.ctx)
		if err != nil {
			return
		}
		if m.Local {
			continue
		}
		select {
		case c.inbound <- inbound{data: m.Data, from: m.From}:
		case <-c.ctx.Done():
			return
		}
	}
}

// publish hands a persisted message to publishLoop. It never blocks the
// loop: when the queue is full (publishing stalls, as it does for up to
// PublishWait per message while no other member is online) the message
// stays unpublished, which costs nothing but time, since it is in the
// log and every member's sync fetches it.
func (c *channel) publish(msg []byte) {
	if c.n.dropPublish.Load() {
		return
	}
	select {
	case c.pubq <- msg:
	default:
		c.n.cfg.Logger.Debug("publish queue full; members catch up through sync", "channel", ChannelID(c.id))
	}
}

// publishLoop publishes what the loop has persisted, in order, so that the
// loop never waits on the network.
func (c *channel) publishLoop() {
	for {
		select {
		case <-c.ctx.Done():
			return
		case msg := <-c.pubq:
			if err := c.pch.Publish(c.ctx, msg); err != nil && c.ctx.Err() == nil {
				// Persisted already: members that missed it catch up.
				c.n.cfg.Logger.Warn("publishing", "channel", ChannelID(c.id), "err", err)
			}
		}
	}
}

// validate is the topic's validator; it runs before a message is
// forwarded, so it reads only what needs no keys, and the epoch through
// an atomic.
func (c *channel) validate(_ context.Context, from peer.ID, data []byte) p2p.Verdict {
	if from == c.n.id {
		// This node's own, persisted before it was queued: publishing
		// runs behind the loop, which may have moved on an epoch since,
		// and gossipsub validates local messages too. Refused here, the
		// commit or message reached the others only through sync.
		return p2p.Accept
	}
	info, err := mlsgroup.InspectMessage(data)
	switch {
	case err != nil:
		return p2p.Reject
	case info.WireFormat != mlsgroup.WireFormatPublicMessage && info.WireFormat != mlsgroup.WireFormatPrivateMessage:
		return p2p.Reject
	case !bytes.Equal(info.GroupID, c.id):
		return p2p.Reject
	}
	if !epochInReach(info, c.epoch.Load(), uint64(c.n.cfg.RewindWindow)) {
		// Older is not an attack, only late; further ahead is not
		// verifiable. Ignored, not blamed either way.
		return p2p.Ignore
	}
	return p2p.Accept
}

// epochInReach says whether a message of info's epoch is worth taking
// from the topic at epoch cur. Handshake messages count only in the
// current epoch; application messages stay readable for the past epochs
// a member keeps (§9.2, §14). One epoch ahead is what a member sees
// between a commit's merge elsewhere and its own; anything further means
// it missed a commit, which sync fetches together with what followed.
// Without that bound a peer that is no member could have every member
// hold, and forward, messages of an epoch that never comes.
func epochInReach(info *mlsgroup.MessageInfo, cur, past uint64) bool {
	if info.Epoch > cur {
		return info.Epoch == cur+1
	}
	if info.Kind == mlsgroup.KindApplication {
		return cur-info.Epoch <= past
	}
	return info.Epoch == cur
}

// setGroup takes the state that follows a persisted step.
func (c *channel) setGroup(g *mlsgroup.Group) {
	c.group = g
	c.epoch.Store(g.Epoch())
	c.publishSnapshot()
}

func (c *channel) publishSnapshot() {
	g := c.group
	s := &snapshot{peers: make(map[peer.ID]uint32)}
	for _, m := range g.Members() {
		// Through senderPeer's cache: a snapshot is published after every
		// batch of messages, and checking each member's binding again
		// each time was 4.5% of a 50-member receiver's CPU.
		p := c.senderPeer(g, m.LeafIndex)
		if p == "" {
			continue // refused on entry; a state loaded from disk is trusted as far as it goes
		}
		s.peers[p] = m.LeafIndex
		s.members = append(s.members, Member{Peer: p, Leaf: m.LeafIndex, Self: m.LeafIndex == g.LeafIndex() && g.Active()})
	}
	state := "active"
	switch {
	case !g.Active():
		state = "left"
	case c.leaving:
		state = "leaving"
	}
	conv, note := c.convergence()
	s.info = ChannelInfo{
		Convergence: conv, ConvergenceNote: note,
		ID: c.id, Name: c.meta.Name, Topic: c.meta.Topic, Epoch: g.Epoch(), Members: len(s.members),
		EpochAuthenticator: fmt.Sprintf("%x", g.EpochAuthenticator()), CipherSuite: uint16(g.CipherSuite()),
		State: state, CommitPending: g.HasStagedCommit(),
	}
	c.snap.Store(s)
}

func (c *channel) info() ChannelInfo { return c.snap.Load().info }

// process is a message from the topic or from a sync. A commit for the
// current epoch joins the candidates; everything else is applied now, or
// held until its epoch comes.
func (c *channel) process(m inbound) error {
	h := sha256.Sum256(m.data)
	info, ierr := mlsgroup.InspectMessage(m.data)
	// Only an application message of an epoch reached joins the pending
	// batch; anything else is written in order after it.
	if ierr != nil || info.Kind != mlsgroup.KindApplication || info.Epoch > c.group.Epoch() {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if _, ok := c.candidates[h]; ok {
		if m.sync {
			// Only in memory until the epoch settles: a cursor past it
			// would outlive it in a crash.
			c.candSync(h, m)
			return c.holdCandidate()
		}
		return nil
	}
	if seen, err := c.seen(h); err != nil || seen {
		if err == nil {
			c.pending.addCursor(m)
		}
		return err
	}
	if ierr != nil || !bytes.Equal(info.GroupID, c.id) {
		return c.skip(m, fmt.Errorf("node: message for another channel or malformed"))
	}
	if !c.cur().Active() {
		return c.skip(m, nil)
	}
	cur := c.cur().Epoch()
	if info.Epoch > cur {
		if m.sync {
			return c.holdSync()
		}
		// A later epoch means this member missed its commit.
		c.requestSync()
		if info.Epoch == cur+1 && len(c.future) < maxFuture && c.futureBytes+len(m.data) <= maxFutureBytes {
			c.future = append(c.future, m)
			c.futureBytes += len(m.data)
		}
		// Dropped otherwise: no cursor moved, and sync brings it again.
		return nil
	}
	switch info.Kind {
	case mlsgroup.KindCommit:
		if info.Epoch < cur {
			// The epoch settled without it: it is late, or it wins there
			// and this member rewinds to it.
			return c.lateCommit(m, info, h)
		}
		// A synced commit settles like any other, never applied as it
		// comes: what won on one provider's side may not be what ranks
		// first among every member's (catchUp asks them all before the
		// epoch settles, see settleSynced).
		if err := c.offer(m.data, m.sync); err != nil {
			// Never valid here (anyone can make a commit-shaped message:
			// its epoch and group are in the clear), so a sync goes on
			// past it.
			c.n.cfg.Logger.Debug("commit refused", "channel", ChannelID(c.id), "err", err)
			c.refused.Add(1)
			return c.skip(m, nil)
		}
		if m.sync {
			c.candSync(h, m)
			return c.holdCandidate()
		}
		return nil
	case mlsgroup.KindProposal:
		if info.Epoch < cur {
			return c.skip(m, nil)
		}
		eff, err := c.group.Process(m.data)
		if err != nil {
			c.n.cfg.Logger.Debug("proposal refused", "channel", ChannelID(c.id), "err", err)
			return c.skip(m, nil)
		}
		rec := logRecord{Kind: logProposal, Epoch: info.Epoch, Message: m.data, ReceivedAt: c.nowMillis()}
		if _, err := c.write(step{group: eff.Group, logs: []logItem{{hash: h, rec: &rec}}, cursors: cursorOf(m)}); err != nil {
			return err
		}
		c.setGroup(eff.Group)
		if eff.ProposalType == mlsgroup.ProposalRemove && eff.Sender.Type == mlsgroup.SenderMember {
			// The node proposes only its own removal (Leave); a member
			// that removes another commits the removal itself.
			if c.selfRemoving == nil {
				c.selfRemoving = make(map[uint32]bool)
			}
			c.selfRemoving[eff.Sender.LeafIndex] = true
		}
		c.scheduleCommitPending(eff.Sender.LeafIndex)
		return nil
	case mlsgroup.KindApplication:
		// A message from before this member joined fails here, as it
		// has no keys for that epoch. (An epoch compared with the one
		// the channel was opened at dropped, after a restart, every
		// message of the epochs between the join and the restart.)
		var opts mlsgroup.ProcessOptions
		if !m.sync && !m.window {
			opts = fromTopic
		}
		eff, err := c.cur().ProcessWith(m.data, opts)
		if err != nil {
			if errors.Is(err, mlsgroup.ErrTooFarAhead) && opts == fromTopic {
				// Messages of the sender before this one are missing
				// (see fromTopic): its log has them, in order. Kept,
				// since the sender may be gone before anyone logged
				// this one.
				c.requestSync()
				if len(c.ahead) < maxFuture && c.aheadBytes+len(m.data) <= maxFutureBytes {
					// Waits for a round that begins after now.
					c.ahead = append(c.ahead, inbound{data: m.data, from: m.from, round: c.started.Load() + 1})
					c.aheadBytes += len(m.data)
				}
				return nil
			}
			c.n.cfg.Logger.Debug("message refused", "channel", ChannelID(c.id), "err", err)
			return c.skip(m, nil)
		}
		rec := &logRecord{Kind: logApplication, Epoch: info.Epoch, Message: m.data, ReceivedAt: c.nowMillis()}
		sender := c.senderPeer(eff.Group, eff.Sender.LeafIndex)
		p := &c.pending
		p.work = eff.Group
		p.addCursor(m)
		env, perr := parseEnvelope(eff.Plaintext)
		if perr != nil || sender == "" {
			// The key is spent either way; only the state moves on.
			c.n.cfg.Logger.Debug("message without a valid envelope", "channel", ChannelID(c.id))
			return nil
		}
		rec.Sender, rec.Envelope = []byte(sender), env
		k := envKey{sender: sender, id: env.ID}
		if c.logged(k) {
			rec.Kind = logResent // a copy, after its author rewound
		}
		if p.envs == nil {
			p.envs = make(map[envKey]struct{})
		}
		p.envs[k] = struct{}{}
		p.logs = append(p.logs, logItem{hash: h, rec: rec})
		p.senders = append(p.senders, sender)
		if p.hashes == nil {
			p.hashes = make(map[[32]byte]bool)
		}
		p.hashes[h] = true
		return nil
	}
	return c.skip(m, nil)
}

// senderPeer is the peer a leaf's credential binds to. Checking the
// binding is an Ed25519 verification, which was a fifth of a receiver's
// CPU when done per message; leaves change only with commits, so the
// answer is kept for the epoch (and a leaf whose binding fails stays "").
// The epoch is named by its authenticator, not its number: a rewind
// returns to the same number on another branch, where a leaf may hold
// another member.
func (c *channel) senderPeer(g *mlsgroup.Group, leaf uint32) peer.ID {
	if auth := g.EpochAuthenticator(); c.peerCache == nil || !bytes.Equal(c.peerCacheEpoch, auth) {
		c.peerCache, c.peerCacheEpoch = make(map[uint32]peer.ID), auth
	}
	if p, ok := c.peerCache[leaf]; ok {
		return p
	}
	var p peer.ID
	if mb, ok := g.Member(leaf); ok {
		p, _ = peerOfMember(mb)
	}
	c.peerCache[leaf] = p
	return p
}

// errHeld stops a sync from a member at an entry that cannot be applied
// yet (its epoch is not reached, or its commit has to settle).
var errHeld = errors.New("node: sync entry held for a later epoch")

// holdSync stops the sync in progress before an entry that can only wait
// in memory: a cursor past it would be on disk while the entry is not,
// and a crash would lose it for good. The round that follows the epoch's
// settling fetches it again, from the same cursor.
func (c *channel) holdSync() error {
	c.resync = true
	return errHeld
}

// holdCandidate is holdSync at a commit gathered for the current epoch.
func (c *channel) holdCandidate() error {
	c.heldCandidate = true
	return c.holdSync()
}

// skip records a sync cursor past an entry that changes nothing here.
// The cursor joins the pending batch, so that it is never on disk before
// an entry it passes.
func (c *channel) skip(m inbound, reason error) error {
	c.pending.addCursor(m)
	if reason != nil && !m.sync {
		return reason
	}
	return nil
}

func cursorOf(m inbound) []cursorItem {
	if m.cursor == nil {
		return nil
	}
	return []cursorItem{{peer: m.from, cursor: m.cursor}}
}

// seen says whether a message is in the log or the pending batch.
func (c *channel) seen(h [32]byte) (bool, error) {
	if c.pending.hashes[h] {
		return true, nil
	}
	return c.n.inLog(c.id, h)
}

func (c *channel) nowMillis() uint64 { return uint64(c.n.cfg.Now().UnixMilli()) }

// candidate is a commit for the current epoch and the leaf that made it.
type candidate struct {
	data []byte
	leaf uint32
}

// offer adds a valid commit for the current epoch to the candidates, and
// starts the settle window with the first. A commit is checked before it
// counts: the epoch and group of a message are in the clear, so anyone
// could make commit-shaped junk, and junk that took a place (there was a
// cap of 32) made members turn their rivals' real commits away and fork.
// Each leaf keeps only its best commit, so the candidates are bounded by
// the members and a member's many commits cost the others nothing.
func (c *channel) offer(data []byte, synced bool) error {
	h := sha256.Sum256(data)
	if _, ok := c.candidates[h]; ok {
		return nil
	}
	leaf := c.group.LeafIndex()
	if own := c.group.StagedCommit(); !bytes.Equal(data, own) {
		eff, err := c.group.Process(data)
		if err != nil {
			return err
		}
		leaf = eff.Sender.LeafIndex
	}
	for oh, o := range c.candidates {
		if o.leaf != leaf {
			continue
		}
		if bytes.Compare(oh[:], h[:]) < 0 {
			return nil // the leaf's better commit is here already
		}
		delete(c.candidates, oh)
		delete(c.candSyncs, oh)
	}
	if len(c.candidates) == 0 {
		c.syncOnly = synced
	}
	c.syncOnly = c.syncOnly && synced
	c.candidates[h] = candidate{data: data, leaf: leaf}
	if c.settleC == nil {
		c.settleTimer = time.NewTimer(c.n.cfg.SettleWindow)
		c.settleC = c.settleTimer.C
	}
	return nil
}

// committerRank orders the commits of an epoch by who made them: the
// leaves take turns at the front, one epoch each. The rank is authenticated
// (a commit's sender is signed) and nobody chooses it: ranked by the
// hash of its bytes alone, a commit's maker could draw fresh commits
// until one ranked first, and a member who did so could never be removed
// (found by review: eight removals in a row lost to it).
func committerRank(g *mlsgroup.Group, leaf uint32) uint32 {
	var width uint32
	for _, m := range g.Members() {
		width = max(width, m.LeafIndex+1)
	}
	if width == 0 {
		return leaf
	}
	turn := uint32(g.Epoch() % uint64(width))
	return (leaf + width - turn) % width
}

func (c *channel) candSync(h [32]byte, m inbound) {
	if c.candSyncs == nil {
		c.candSyncs = make(map[[32]byte][]inbound)
	}
	m.done, m.data = nil, nil
	c.candSyncs[h] = append(c.candSyncs[h], m)
}

func (c *channel) clearCandidates() {
	clear(c.candidates)
	clear(c.candSyncs)
}

// settle applies the commit of the epoch that ranks first (committerRank,
// then the lowest SHA-256 of its bytes among one committer's). Every
// member that holds the same candidates picks the same one, whatever
// order they came in.
func (c *channel) settle() {
	if c.settleTimer != nil {
		c.settleTimer.Stop()
	}
	c.settleC, c.settleTimer = nil, nil
	if err := c.flush(); err != nil {
		c.n.cfg.Logger.Error("writing received messages", "channel", ChannelID(c.id), "err", err)
		return
	}
	type ranked struct {
		h    [32]byte
		rank uint32
	}
	var valid []ranked
	for h, cand := range c.candidates {
		valid = append(valid, ranked{h: h, rank: committerRank(c.group, cand.leaf)})
	}
	slices.SortFunc(valid, func(a, b ranked) int {
		if a.rank != b.rank {
			return cmp.Compare(a.rank, b.rank)
		}
		return bytes.Compare(a.h[:], b.h[:])
	})
	for _, v := range valid {
		if err := c.applyCommit(c.candidates[v.h].data, v.h, inbound{}); err == nil {
			return
		}
		c.n.cfg.Logger.Debug("commit candidate refused", "channel", ChannelID(c.id))
		// Never valid here: the syncs that brought it go on past it.
		for _, m := range c.candSyncs[v.h] {
			c.pending.addCursor(m)
		}
	}
	c.clearCandidates()
	// No epoch change, so advance does not run: what waits for the epoch
	// to settle would wait for a commit that may never come (one junk
	// candidate from anyone stalled every queued commit).
	defer c.next()
	if c.resync {
		c.resync = false
		c.requestSync()
	}
	if c.group.HasStagedCommit() {
		// No candidate is valid, not even this node's own: give it up and
		// make it again.
		g, err := c.group.DiscardCommit()
		if err == nil {
			c.persistState(g)
			c.lost()
		}
	}
}

// applyCommit processes a commit for the current epoch and takes the
// epoch it starts.
func (c *channel) applyCommit(data []byte, h [32]byte, m inbound) error {
	if err := c.flush(); err != nil {
		return err
	}
	eff, err := c.group.Process(data)
	if err != nil {
		return c.skip(m, err)
	}
	// The commit won, so its Welcome may leave (§14). It is queued, and so
	// persisted in the outbox, before the merged state is written: a crash
	// in between finds the commit still staged, merges it again and
	// queues the same Welcome under the same ID.
	if eff.Welcome != nil && eff.Commit != nil {
		c.queueWelcomes(eff)
	}
	rec := logRecord{Kind: logCommit, Epoch: eff.Epoch, Message: data, ReceivedAt: c.nowMillis()}
	seqs, err := c.write(step{group: eff.Group, logs: []logItem{{hash: h, rec: &rec}}, cursors: cursorOf(m)})
	if err != nil {
		return err
	}
	var own *intent
	leaf := eff.Sender.LeafIndex
	if eff.OwnCommit {
		own, leaf = c.staged, c.group.LeafIndex()
	}
	cursors, err := c.n.st.SyncCursors(c.id)
	if err != nil {
		cursors = nil // a rewind to here then reads every log from its start
	}
	c.retain(c.group, h, leaf, seqs[0], own, cursors)
	c.n.cfg.Logger.Debug("commit merged", "channel", ChannelID(c.id), "epoch", c.group.Epoch(), "commit", fmt.Sprintf("%.8x", h[:]), "leaf", leaf, "own", eff.OwnCommit)
	c.clearCandidates()
	if c.settleTimer != nil {
		c.settleTimer.Stop()
		c.settleTimer, c.settleC = nil, nil
	}
	c.setGroup(eff.Group)
	c.commitEvents(eff)
	c.merged(eff)
	switch {
	case eff.OwnCommit && c.staged != nil:
		c.staged.finish(nil)
		c.staged = nil
	case eff.DiscardedCommit:
		c.lost()
	}
	c.advance()
	return nil
}

// commitEvents tells subscribers what a commit changed.
func (c *channel) commitEvents(eff *mlsgroup.Effects) {
	defer clear(c.selfRemoving)
	ep := eff.Group.Epoch()
	c.n.emit(Event{Type: EventEpoch, Channel: c.id, Epoch: ep})
	if eff.Commit == nil {
		return
	}
	for _, m := range eff.Commit.Added {
		if p, err := peerOfMember(m); err == nil {
			c.n.emit(Event{Type: EventMemberJoined, Channel: c.id, Epoch: ep, Peer: p})
		}
	}
	for _, m := range eff.Commit.Removed {
		p, err := peerOfMember(m)
		if err != nil {
			continue
		}
		typ := EventMemberRemoved
		if c.selfRemoving[m.LeafIndex] {
			typ = EventMemberLeft
		}
		c.n.emit(Event{Type: typ, Channel: c.id, Epoch: ep, Peer: p})
	}
	if eff.Commit.SelfRemoved {
		c.leaving = false
		c.publishSnapshot()
		c.n.emit(Event{Type: EventChannelLeft, Channel: c.id, Epoch: ep})
	}
}

// lost handles this node's commit losing its epoch: the work it carried is
// made again in the next one.
func (c *channel) lost() {
	it := c.staged
	c.staged = nil
	if it == nil {
		return
	}
	c.n.emit(Event{Type: EventCommitLost, Channel: c.id, Epoch: c.group.Epoch()})
	if it.kind == intentRecovered {
		c.n.cfg.Logger.Warn("a commit staged before a restart lost its epoch", "channel", ChannelID(c.id))
		return
	}
	it.tries++
	if it.tries >= maxCommitTries {
		it.finish(ErrCommitLost)
		return
	}
	c.queue = append([]*intent{it}, c.queue...)
}

// advance runs what waited for the epoch to settle: messages of the new
// epoch, queued commit work, a pending leave, held sends.
func (c *channel) advance() {
	if !c.group.Active() {
		for _, it := range c.queue {
			it.finish(ErrNotMember)
		}
		c.queue = nil
		for _, r := range c.held {
			r.done <- sendResult{err: ErrNotMember}
		}
		c.held = nil
		if c.pch != nil {
			c.pch.Close()
		}
		return
	}
	if c.resync {
		c.resync = false
		c.requestSync()
	}
	future := c.future
	c.future = nil
	slices.SortStableFunc(future, func(a, b inbound) int {
		ia, _ := mlsgroup.InspectMessage(a.data)
		ib, _ := mlsgroup.InspectMessage(b.data)
		return cmpEpoch(ia, ib)
	})
	c.futureBytes = 0
	for _, m := range future {
		if err := c.process(m); err != nil {
			c.n.cfg.Logger.Debug("held message", "channel", ChannelID(c.id), "err", err)
		}
	}
	// What follows computes steps from c.group.
	if err := c.flush(); err != nil {
		c.n.cfg.Logger.Error("writing received messages", "channel", ChannelID(c.id), "err", err)
	}
	if c.leaving && c.group.Active() && c.group.PendingProposals() == 0 && !c.group.HasStagedCommit() {
		c.proposeLeave()
	}
	c.next()
	if len(c.held) > 0 && c.group.PendingProposals() == 0 {
		held := c.held
		c.held = nil
		c.sendAll(held)
	}
}

func cmpEpoch(a, b *mlsgroup.MessageInfo) int {
	if a == nil || b == nil {
		return 0
	}
	switch {
	case a.Epoch < b.Epoch:
		return -1
	case a.Epoch > b.Epoch:
		return 1
	}
	return 0
}

// next starts the first queued commit work when no commit is staged and no
// epoch is settling.
func (c *channel) next() {
	for len(c.queue) > 0 && !c.group.HasStagedCommit() && len(c.candidates) == 0 && c.group.Active() && c.caughtUp == 0 {
		it := c.queue[0]
		c.queue = c.queue[1:]
		if err := c.startIntent(it); err != nil {
			it.finish(err)
			continue
		}
		return
	}
}

// startIntent makes the commit for a piece of work, persists the staged
// state and publishes the commit.
func (c *channel) startIntent(it *intent) error {
	if err := c.flush(); err != nil {
		return err
	}
	var opts mlsgroup.CommitOptions
	snap := c.snap.Load()
	switch it.kind {
	case intentAdd:
		if _, ok := snap.peers[it.peer]; ok {
			return fmt.Errorf("%w: %s", ErrAlreadyMember, it.peer)
		}
		opts.Proposals = []mlsgroup.Proposal{mlsgroup.AddProposal(it.kp)}
	case intentRemove:
		leaf, ok := snap.peers[it.peer]
		if !ok {
			return fmt.Errorf("%w: %s", ErrNotMember, it.peer)
		}
		opts.Proposals = []mlsgroup.Proposal{mlsgroup.RemoveProposal(leaf)}
	case intentUpdate:
		opts.Path = true
	case intentCommitPending:
		if c.group.PendingProposals() == 0 {
			it.finish(nil)
			return nil
		}
	}
	eff, err := c.group.Commit(opts)
	if err != nil {
		return err
	}
	if _, err := c.write(step{group: eff.Group}); err != nil {
		return err
	}
	c.setGroup(eff.Group)
	c.staged = it
	c.offer(eff.Message, false)
	c.publish(eff.Message)
	return nil
}

// submit queues commit work and waits until its commit won (or failed for
// good).
func (c *channel) submit(ctx context.Context, it *intent) error {
	it.done = make(chan error, 1)
	done := it.done
	if err := c.do(ctx, func() error {
		if !c.group.Active() {
			return ErrNotMember
		}
		c.queue = append(c.queue, it)
		c.next()
		return nil
	}); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The work goes on; only the caller stops waiting.
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

// scheduleCommitPending makes sure the proposals of the epoch get
// committed: the member with the lowest leaf other than the proposer does
// it at once, the others only if it has not after a while (it may be
// away). Several committing at once is harmless: the epoch settles.
func (c *channel) scheduleCommitPending(proposer uint32) {
	first := true
	for _, m := range c.group.Members() {
		if m.LeafIndex != proposer && m.LeafIndex < c.group.LeafIndex() {
			first = false
			break
		}
	}
	if first {
		c.queue = append(c.queue, &intent{kind: intentCommitPending})
		c.next()
		return
	}
	if c.fallback != nil {
		c.fallback.Stop()
	}
	epoch := c.group.Epoch()
	c.fallback = time.AfterFunc(4*c.n.cfg.SettleWindow, func() {
		select {
		case c.ops <- func() {
			if c.group.Epoch() == epoch && c.group.PendingProposals() > 0 {
				c.queue = append(c.queue, &intent{kind: intentCommitPending})
				c.next()
			}
		}:
		case <-c.ctx.Done():
		}
	})
}

// proposeLeave proposes this member's removal (a member cannot commit its
// own removal, RFC 9420 §12.1.3); another member commits it.
func (c *channel) proposeLeave() error {
	if err := c.flush(); err != nil {
		return err
	}
	eff, err := c.group.Propose(mlsgroup.RemoveProposal(c.group.LeafIndex()), mlsgroup.ProposeOptions{})
	if err != nil {
		return err
	}
	// In this node's own log too: a member that missed it on the topic
	// gets it from here through sync, even when nobody else has it.
	rec := logRecord{Kind: logProposal, Epoch: c.group.Epoch(), Message: eff.Message, Sender: []byte(c.n.id), ReceivedAt: c.nowMillis()}
	if _, err := c.write(step{group: eff.Group, logs: []logItem{{hash: sha256.Sum256(eff.Message), rec: &rec}}}); err != nil {
		return err
	}
	c.leaving = true
	c.setGroup(eff.Group)
	c.publish(eff.Message)
	return nil
}

// persistState writes a state with no other effect.
func (c *channel) persistState(g *mlsgroup.Group) {
	if _, err := c.write(step{group: g}); err != nil {
		c.n.cfg.Logger.Error("persisting state", "channel", ChannelID(c.id), "err", err)
		return
	}
	c.setGroup(g)
}

// handleSends encrypts every send waiting, writes them in one synced batch
// with the state that follows the last, and only then publishes them: one
// fsync for a burst, never a message out before its key's use is on disk.
func (c *channel) handleSends(first *sendReq) {
	reqs := []*sendReq{first}
	for len(reqs) < sendBatch {
		select {
		case r := <-c.sends:
			reqs = append(reqs, r)
			continue
		default:
		}
		break
	}
	c.sendAll(reqs)
}

func (c *channel) sendAll(reqs []*sendReq) {
	if err := c.flush(); err != nil {
		for _, r := range reqs {
			r.done <- sendResult{err: err}
		}
		return
	}
	g := c.group
	var (
		items []logItem
		done  []*sendReq
		msgs  [][]byte
	)
	for _, r := range reqs {
		if !g.Active() {
			r.done <- sendResult{err: ErrNotMember}
			continue
		}
		eff, err := g.Encrypt(r.env.marshal(), nil)
		if errors.Is(err, mlsgroup.ErrPendingProposals) {
			c.held = append(c.held, r) // sent once the proposals are committed
			continue
		}
		if err != nil {
			r.done <- sendResult{err: err}
			continue
		}
		g = eff.Group
		rec := &logRecord{Kind: logApplication, Epoch: g.Epoch(), Message: eff.Message, Sender: []byte(c.n.id), Envelope: r.env, ReceivedAt: c.nowMillis()}
		if r.resent {
			rec.Kind = logResent
		}
		items = append(items, logItem{hash: sha256.Sum256(eff.Message), rec: rec})
		done = append(done, r)
		msgs = append(msgs, eff.Message)
	}
	if len(done) == 0 {
		return
	}
	seqs, err := c.write(step{group: g, logs: items})
	if err != nil {
		// Nothing was published, but the write may have reached the disk
		// all the same (a failed fsync), and sync would then serve these
		// messages. The keys they used are spent either way: a retry under
		// them would reuse a key and nonce with other plaintext (RFC 9420
		// §9.1), so the state moves on in memory, and the next write
		// persists it.
		c.setGroup(g)
		for _, r := range done {
			r.done <- sendResult{err: err}
		}
		return
	}
	c.setGroup(g)
	for _, r := range done {
		c.remember(envKey{sender: c.n.id, id: r.env.ID})
	}
	for i, r := range done {
		c.publish(msgs[i])
		msg := c.messageOf(seqs[i], items[i].rec)
		if r.resent {
			r.done <- sendResult{msg: msg}
			continue
		}
		// Every client of this node sees the message, not only the one
		// that sent it (a chat in one terminal, a send in another).
		c.n.emit(Event{Type: EventMessage, Channel: c.id, Epoch: msg.Epoch, Peer: c.n.id, Message: &msg})
		r.done <- sendResult{msg: msg}
	}
}

func (c *channel) messageOf(seq uint64, r *logRecord) Message {
	m := Message{Channel: c.id, Seq: seq, Sender: peer.ID(r.Sender), Epoch: r.Epoch, ReceivedAt: time.UnixMilli(int64(r.ReceivedAt))}
	if r.Envelope != nil {
		m.ID = fmt.Sprintf("%x", r.Envelope.ID)
		m.SentAt = time.UnixMilli(int64(r.Envelope.SentAt))
		m.Body = r.Envelope.Body
	}
	return m
}

// syncLoop is anti-entropy: gossipsub is best effort (a slow subscriber
// or a full queue drops messages, a partition hides them), so every
// SyncInterval, and soon after a catch-up that could not reach a member,
// the channel asks its members for what it lacks. A persisted cursor per
// member makes a round with nothing new one empty page per member.
func (c *channel) syncLoop() {
	every := c.n.cfg.SyncInterval
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		}
		if c.snap.Load().info.State == "left" {
			return
		}
		if c.catchUp(c.ctx) > 0 {
			// A member was unreachable (just restarted, not yet
			// connected): try again soon rather than a full interval on.
			t.Reset(min(every, 2*time.Second))
		} else {
			t.Reset(every)
		}
		c.checkView(c.ctx)
	}
}

// requestSync asks syncLoop for a round now, without waiting for it.
func (c *channel) requestSync() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// catchUp fetches from every other member what this node's log lacks,
// from the cursor it persisted for that member.
// It returns how many members it could not sync with.
func (c *channel) catchUp(ctx context.Context) (failed int) {
	round := c.started.Add(1)
	held := false
	snap := c.snap.Load()
	for _, m := range snap.members {
		if m.Self || m.Peer == c.n.id {
			continue
		}
		cursor, err := c.n.st.SyncCursor(c.id, []byte(m.Peer))
		if err != nil {
			c.n.cfg.Logger.Warn("sync cursor", "err", err)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		hand := func(e p2p.SyncEntry) error {
			done := make(chan error, 1)
			select {
			case c.inbound <- inbound{data: e.Data, from: m.Peer, sync: true, cursor: e.Cursor, done: done}:
			case <-sctx.Done():
				return sctx.Err()
			}
			select {
			case err := <-done:
				return err
			case <-sctx.Done():
				return sctx.Err()
			}
		}
		// Most of what a member's log holds came to this one on the topic
		// too. An entry in the log is passed over here, not handed to the
		// loop one round trip at a time; the last of a run of them is
		// handed over at the end (seen there too), so that the cursor
		// moves past it.
		var last *p2p.SyncEntry
		err = c.n.host.Sync(sctx, m.Peer, c.id, cursor, func(e p2p.SyncEntry) error {
			if in, err := c.n.inLog(c.id, sha256.Sum256(e.Data)); err == nil && in {
				last = &e
				return nil
			}
			last = nil
			return hand(e)
		})
		if last != nil && err == nil {
			err = hand(*last)
		}
		cancel()
		if errors.Is(err, errHeld) {
			held = true
			continue // the round after the epoch settles goes on from here
		}
		if err != nil && ctx.Err() == nil {
			failed++
			c.n.cfg.Logger.Info("catching up", "channel", ChannelID(c.id), "peer", m.Peer, "err", err)
		}
	}
	c.do(ctx, func() error {
		c.settleSynced()
		c.readAhead(round)
		c.afterCatchUp(round, held && c.heldCandidate)
		c.heldCandidate = false
		return nil
	})
	c.rounds.Add(1)
	return failed
}

// readAhead reads, with the window, the topic messages that waited for
// a gap of their sender's: the round just over brought what the members'
// logs had of the gap, and what is still missing may never come (its
// sender gone, or the message never logged). A message a sync already
// brought is seen, and dropped.
func (c *channel) readAhead(round uint64) {
	ahead := c.ahead
	c.ahead, c.aheadBytes = nil, 0
	for _, m := range ahead {
		if m.round > round {
			// Came while this round ran, maybe after it passed the
			// sender's log: the next round has its chance first.
			c.ahead = append(c.ahead, m)
			c.aheadBytes += len(m.data)
			continue
		}
		m.window = true
		if err := c.process(m); err != nil {
			c.n.cfg.Logger.Debug("message after a gap", "channel", ChannelID(c.id), "err", err)
		}
	}
}

// settleSynced settles an epoch whose candidates all came from the sync
// round that just asked every member: each had logged what won on its
// side, so the round has gathered every rival the window could, and a
// member catching up many epochs pays a round per epoch, not a window.
func (c *channel) settleSynced() {
	if c.syncOnly && len(c.candidates) > 0 {
		c.settle()
	}
}
