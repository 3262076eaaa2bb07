package node

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/store"
)

// Rewinding to a late winner.
//
// A settle window cannot cover every delay: a commit that ranks first for
// an epoch may reach a member after it merged another (latency, a
// partition, a member that was away). Left alone, the two sides have
// forked (RFC 9750 §5.2). A member therefore keeps the states it merged
// commits on for the last Config.RewindWindow epochs, and when a valid
// commit arrives for one of them that ranks before the one it merged there
// (the same rule as settle: committerRank, then the lowest hash, both read
// from authenticated content only), it returns to that state, applies the
// winner and goes on from there:
//   - its own commits on the abandoned branch are made again (their intents
//     go back to the front of the queue);
//   - its own application messages sent in the abandoned epochs are
//     encrypted again in the winning branch and re-sent under their
//     envelope IDs; the other members do the same with theirs when they
//     rewind, and a receiver logs a copy of a message it logged already as
//     logResent (served by sync, shown nowhere), so history has each
//     message once;
//   - sync is asked for what followed the winner.
//
// The retained states live in memory only, and nothing of them is written
// to disk; a restart forgets them, and a late winner then, or one further
// back than the window, is not rewound to. The group state keeps the keys
// of as many past epochs for late application messages (mlsgroup's
// Config.PastEpochs, RewindWindow here, against mlsgroup's default of 2):
// a message re-sent after a rewind is encrypted at the head of the winning
// branch when it is sent, and the head may move on a few commits before a
// member reads it (through sync, after the commits it got by the topic).
// That is the forward-secrecy cost, bounded and the same in memory and on
// disk: the application secrets of the last RewindWindow epochs.

// retainedEpoch is the state a commit was merged on.
type retainedEpoch struct {
	before *mlsgroup.Group // at the commit's epoch, before it
	hash   [32]byte        // of the merged commit
	rank   uint32          // its committerRank on before
	seq    uint64          // its log record
	own    *intent         // what it did, if it was this node's
	// cursors are the sync cursors when the commit was merged: the
	// winning branch's commits and messages after them were refused on
	// the abandoned one, and a rewind fetches them again from there.
	cursors map[string][]byte
}

// retain records the commit just merged on before.
func (c *channel) retain(before *mlsgroup.Group, h [32]byte, leaf uint32, seq uint64, own *intent, cursors map[string][]byte) {
	c.retained = append(c.retained, retainedEpoch{before: before, hash: h, rank: committerRank(before, leaf), seq: seq, own: own, cursors: cursors})
	if over := len(c.retained) - c.n.cfg.RewindWindow; over > 0 {
		clear(c.retained[:over]) // let the old states' secrets go
		c.retained = slices.Delete(c.retained, 0, over)
	}
}

// lateCommit is a commit for an epoch this member has left. It rewinds
// to it if it wins that epoch; otherwise it is late, and dropped.
func (c *channel) lateCommit(m inbound, info *mlsgroup.MessageInfo, h [32]byte) error {
	i := slices.IndexFunc(c.retained, func(r retainedEpoch) bool { return r.before.Epoch() == info.Epoch })
	if i < 0 {
		c.n.cfg.Logger.Debug("late commit beyond the rewind window", "channel", ChannelID(c.id), "epoch", info.Epoch, "commit", fmt.Sprintf("%.8x", h[:]))
		return c.skip(m, nil)
	}
	r := c.retained[i]
	if r.hash == h {
		return c.skip(m, nil)
	}
	eff, err := r.before.Process(m.data)
	if err != nil || eff.Commit == nil {
		c.refused.Add(1)
		return c.skip(m, nil)
	}
	rank := committerRank(r.before, eff.Sender.LeafIndex)
	if cmp.Or(cmp.Compare(rank, r.rank), bytes.Compare(h[:], r.hash[:])) >= 0 {
		c.n.cfg.Logger.Debug("late commit lost", "channel", ChannelID(c.id), "epoch", info.Epoch, "commit", fmt.Sprintf("%.8x", h[:]), "merged", fmt.Sprintf("%.8x", r.hash[:]))
		c.expectResends()
		return c.skip(m, nil) // it lost there, as it would have in the window
	}
	return c.rewind(i, eff, m, h)
}

// rewind returns to the state of retained[i], takes eff (the winner's
// effects on it) and makes again what the abandoned branch carried.
func (c *channel) rewind(i int, eff *mlsgroup.Effects, m inbound, h [32]byte) error {
	if err := c.flush(); err != nil {
		return err
	}
	r := c.retained[i]
	from := c.group.Epoch()
	resend, err := c.ownSince(r.seq)
	if err != nil {
		return err
	}
	var redo []*intent
	for _, a := range c.retained[i:] {
		if a.own != nil {
			redo = append(redo, a.own)
		}
	}
	if c.staged != nil && c.staged.kind != intentRecovered {
		redo = append(redo, c.staged)
	}
	c.staged = nil
	rec := logRecord{Kind: logCommit, Epoch: eff.Epoch, Message: m.data, ReceivedAt: c.nowMillis()}
	// m's own cursor is not taken: the provider's log is read again from
	// the fork point, like every other.
	seqs, err := c.write(step{group: eff.Group, logs: []logItem{{hash: h, rec: &rec}}, rewound: true, resetCursors: r.cursors})
	if err != nil {
		return err
	}
	clear(c.retained[i:])
	c.retained = c.retained[:i]
	c.retain(r.before, h, eff.Sender.LeafIndex, seqs[0], nil, r.cursors)
	c.clearCandidates()
	if c.settleTimer != nil {
		c.settleTimer.Stop()
		c.settleTimer, c.settleC = nil, nil
	}
	c.n.cfg.Logger.Info("rewound to a late winning commit", "channel", ChannelID(c.id), "from", from, "fork", r.before.Epoch(), "resend", len(resend), "redo", len(redo))
	c.setGroup(eff.Group)
	c.n.emit(Event{Type: EventRewound, Channel: c.id, Epoch: r.before.Epoch()})
	c.commitEvents(eff)
	c.queue = append(redo, c.queue...)
	for _, env := range resend {
		c.resend = append(c.resend, &sendReq{env: env, done: make(chan sendResult, 1), resent: true})
	}
	c.caughtUp = c.started.Load() + 1
	c.rewinds.Add(1)
	c.resync = true
	c.advance()
	return nil
}

// afterCatchUp releases what a rewind held back once a sync round that
// began after it read every member's log to its end (held: it stopped at
// a commit to settle first, and the next round goes on). A stop at an
// entry of a later epoch with no commit to settle does not hold it back:
// such an entry is often of the abandoned branch, in the log of a member
// that was on it too, and is passed over only once the epoch moves on,
// which the commits held here would do. (Counted as a hold, it stalled
// the channel for good: the member waited for its commits to catch up,
// and its commits waited for it.)
func (c *channel) afterCatchUp(round uint64, held bool) {
	if c.caughtUp == 0 || round < c.caughtUp {
		return
	}
	if held {
		c.caughtUp = c.started.Load() + 1
		return
	}
	c.caughtUp = 0
	c.held = append(c.held, c.resend...)
	c.resend = nil
	c.advance()
}

// resendWaits are when a member that saw a rival branch lose syncs again:
// the branch's members rewind once they see it lose too, and re-send what
// they sent on it, by the topic, which may not reach this member yet (a
// partition just healed); their logs have it, and the next periodic round
// may be SyncInterval away.
var resendWaits = []time.Duration{2 * time.Second, 6 * time.Second}

func (c *channel) expectResends() {
	if c.followUps != nil {
		return // armed already
	}
	for _, d := range resendWaits {
		c.followUps = append(c.followUps, time.AfterFunc(d, c.requestSync))
	}
	last := resendWaits[len(resendWaits)-1]
	c.followUps = append(c.followUps, time.AfterFunc(last, func() {
		c.do(c.ctx, func() error { c.followUps = nil; return nil })
	}))
}

// ownSince is this node's application messages logged after seq: the
// ones encrypted in epochs a rewind abandons. Its copies count as much as
// its originals: a message re-sent after one rewind may be abandoned with
// its branch by the next, whose fork follows the original (the second
// winner ranks before the first, at the same epoch), and the copy is then
// all that is left after seq.
func (c *channel) ownSince(seq uint64) ([]*envelope, error) {
	var out []*envelope
	seen := make(map[[MessageIDSize]byte]bool)
	for {
		page, err := c.n.st.LogAfter(c.id, seq, 512)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		for _, e := range page {
			seq = e.Seq
			rec, err := parseLogRecord(e.Data)
			if err != nil {
				return nil, err
			}
			if c.ownMessage(rec) && !seen[rec.Envelope.ID] {
				seen[rec.Envelope.ID] = true
				out = append(out, rec.Envelope)
			}
		}
	}
}

// ownMessage says whether rec is one of this node's messages, first sent
// or re-sent.
func (c *channel) ownMessage(rec *logRecord) bool {
	return (rec.Kind == logApplication || rec.Kind == logResent) && rec.Envelope != nil && peer.ID(rec.Sender) == c.n.id
}

// envKey names a message across its copies: its author and envelope ID.
type envKey struct {
	sender peer.ID
	id     [MessageIDSize]byte
}

// envMemory is how many logged messages a channel remembers by envKey,
// most recent first: a copy re-sent after a rewind follows its original
// within the rewind window's epochs.
const envMemory = 4096

// logged says whether a message is logged already under another copy.
func (c *channel) logged(k envKey) bool {
	if _, ok := c.envSeen[k]; ok {
		return true
	}
	_, ok := c.pending.envs[k]
	return ok
}

// remember records messages that are on disk now.
func (c *channel) remember(keys ...envKey) {
	if c.envSeen == nil {
		c.envSeen = make(map[envKey]struct{})
	}
	for _, k := range keys {
		if _, ok := c.envSeen[k]; ok {
			continue
		}
		c.envSeen[k] = struct{}{}
		c.envOrder = append(c.envOrder, k)
	}
	if over := len(c.envOrder) - envMemory; over > 0 {
		for _, k := range c.envOrder[:over] {
			delete(c.envSeen, k)
		}
		c.envOrder = slices.Delete(c.envOrder, 0, over)
	}
}

// loadRemembered reads the log's last envMemory entries into memory at
// start, so that a copy arriving after a restart is still known.
func (c *channel) loadRemembered() error {
	page, err := c.n.st.LogBefore(c.id, ^uint64(0), envMemory)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	keys := make([]envKey, 0, len(page))
	for _, e := range slices.Backward(page) {
		rec, err := parseLogRecord(e.Data)
		if err != nil {
			return err
		}
		if (rec.Kind == logApplication || rec.Kind == logResent) && rec.Envelope != nil {
			keys = append(keys, envKey{sender: peer.ID(rec.Sender), id: rec.Envelope.ID})
		}
	}
	c.remember(keys...)
	return nil
}
