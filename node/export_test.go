package node

import (
	"context"
	"crypto/sha256"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/p2p"
)

// SealUnsent encrypts body as the node's next message in channel and
// returns it without logging or publishing it: a message the network
// lost. The node's group moves on in memory, as after a real send.
func (n *Node) SealUnsent(ctx context.Context, channel []byte, body string) ([]byte, error) {
	c, err := n.channel(channel)
	if err != nil {
		return nil, err
	}
	env := &envelope{SentAt: uint64(n.cfg.Now().UnixMilli()), Body: body}
	if _, err := io.ReadFull(n.rand, env.ID[:]); err != nil {
		return nil, err
	}
	var out []byte
	err = c.do(ctx, func() error {
		eff, err := c.group.Encrypt(env.marshal(), nil)
		if err != nil {
			return err
		}
		c.setGroup(eff.Group)
		out = eff.Message
		return nil
	})
	return out, err
}

// Deliver hands data to channel as if it came from the topic (sync false)
// or from a sync with from (sync true).
func (n *Node) Deliver(ctx context.Context, channel []byte, from peer.ID, data []byte, sync bool) error {
	c, err := n.channel(channel)
	if err != nil {
		return err
	}
	return c.do(ctx, func() error { return c.process(inbound{data: data, from: from, sync: sync}) })
}

// SyncCursorOf is the persisted sync cursor of channel for provider from.
func (n *Node) SyncCursorOf(channel []byte, from peer.ID) ([]byte, error) {
	return n.st.SyncCursor(channel, []byte(from))
}

// SyncRounds is how many sync rounds channel has finished.
func (n *Node) SyncRounds(channel []byte) uint64 {
	c, err := n.channel(channel)
	if err != nil {
		return 0
	}
	return c.rounds.Load()
}

// Future is what channel holds for epochs it has not reached: how many
// messages, their bytes, and the latest epoch among them.
func (n *Node) Future(ctx context.Context, channel []byte) (count, bytes int, maxEpoch uint64, err error) {
	c, err := n.channel(channel)
	if err != nil {
		return 0, 0, 0, err
	}
	err = c.do(ctx, func() error {
		count = len(c.future)
		for _, m := range c.future {
			bytes += len(m.data)
			if info, err := mlsgroup.InspectMessage(m.data); err == nil {
				maxEpoch = max(maxEpoch, info.Epoch)
			}
		}
		return nil
	})
	return count, bytes, maxEpoch, err
}

// Validate is channel's topic validator, for a message from.
func (n *Node) Validate(channel []byte, from peer.ID, data []byte) p2p.Verdict {
	c, err := n.channel(channel)
	if err != nil {
		return p2p.Reject
	}
	return c.validate(context.Background(), from, data)
}

// StateSize is the size of channel's persisted group state.
func (n *Node) StateSize(channel []byte) int {
	b, _ := n.st.Group(channel)
	return len(b)
}

// ErrHeld is what a sync entry that has to wait for its epoch returns.
var ErrHeld = errHeld

// CommitUnsent makes an update commit of this member for channel's
// current epoch and returns it without staging, persisting or
// publishing it: a rival that only a sync provider's log holds.
func (n *Node) CommitUnsent(ctx context.Context, channel []byte) ([]byte, error) {
	c, err := n.channel(channel)
	if err != nil {
		return nil, err
	}
	var out []byte
	err = c.do(ctx, func() error {
		eff, err := c.group.Commit(mlsgroup.CommitOptions{Path: true})
		if err != nil {
			return err
		}
		out = eff.Message
		return nil
	})
	return out, err
}

// Candidates is how many commits channel gathers for its current epoch.
func (n *Node) Candidates(ctx context.Context, channel []byte) (k int, err error) {
	c, err := n.channel(channel)
	if err != nil {
		return 0, err
	}
	err = c.do(ctx, func() error { k = len(c.candidates); return nil })
	return k, err
}

// SyncNow runs one sync round of channel and waits for it.
func (n *Node) SyncNow(ctx context.Context, channel []byte) error {
	c, err := n.channel(channel)
	if err != nil {
		return err
	}
	c.catchUp(ctx)
	return nil
}

// LoggedCommits are the commits in channel's log, oldest first.
func (n *Node) LoggedCommits(channel []byte) ([][]byte, error) {
	es, err := n.st.LogAfter(channel, 0, 1<<20)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range es {
		r, err := parseLogRecord(e.Data)
		if err != nil {
			return nil, err
		}
		if r.Kind == logCommit {
			out = append(out, r.Message)
		}
	}
	return out, nil
}

// TopicPeers is how many peers channel's topic knows.
func (n *Node) TopicPeers(channel []byte) int {
	c, err := n.channel(channel)
	if err != nil || c.pch == nil {
		return 0
	}
	return len(c.pch.Peers())
}

// SetSettleWindow changes how long channel's epochs settle. Only
// channel's goroutine reads the window, so the node must run no other.
func (n *Node) SetSettleWindow(ctx context.Context, channel []byte, d time.Duration) error {
	c, err := n.channel(channel)
	if err != nil {
		return err
	}
	return c.do(ctx, func() error { n.cfg.SettleWindow = d; return nil })
}

// FailWrites makes every store write report err after it reached the
// disk; nil ends it.
func (n *Node) FailWrites(err error) {
	if err == nil {
		n.writeFault.Store(nil)
		return
	}
	n.writeFault.Store(&err)
}

const PublishQueue = publishQueue

// DropPublishes makes the node persist and acknowledge what it sends but
// publish nothing, until called with false.
func (n *Node) DropPublishes(drop bool) { n.dropPublish.Store(drop) }

// CommitterRank is where a commit of leaf ranks in channel's current
// epoch (lower first).
func (n *Node) CommitterRank(ctx context.Context, channel []byte, leaf uint32) (r uint32, err error) {
	c, err := n.channel(channel)
	if err != nil {
		return 0, err
	}
	err = c.do(ctx, func() error { r = committerRank(c.group, leaf); return nil })
	return r, err
}

// RefusedCommits is how many commits channel refused on arrival.
func (n *Node) RefusedCommits(channel []byte) uint64 {
	c, err := n.channel(channel)
	if err != nil {
		return 0
	}
	return c.refused.Load()
}

// BodyOf is the body of a message in channel's log, found by its bytes;
// "<commit>" for a handshake message, "" for one not in the log.
func (n *Node) BodyOf(channel, data []byte) string {
	h := sha256.Sum256(data)
	seq, err := n.st.LogSeqOf(channel, h[:])
	if err != nil {
		return ""
	}
	page, err := n.st.LogAfter(channel, seq-1, 1)
	if err != nil || len(page) != 1 {
		return ""
	}
	rec, err := parseLogRecord(page[0].Data)
	if err != nil {
		return ""
	}
	if rec.Envelope == nil {
		return "<commit>"
	}
	return rec.Envelope.Body
}

// Rewinds is how often channel went back to a late winning commit.
func (n *Node) Rewinds(channel []byte) uint64 {
	c, err := n.channel(channel)
	if err != nil {
		return 0
	}
	return c.rewinds.Load()
}
