package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/p2p"
	"github.com/spacepanda/spacepanda/store"
)

// Send encrypts body for a channel and publishes it, once the state that
// follows and the message's log record are durable. Concurrent sends into
// one channel share one synced write.
func (n *Node) Send(ctx context.Context, channelID []byte, body string) (Message, error) {
	if len(body) > MaxBodySize {
		return Message{}, fmt.Errorf("%w: a message body is at most %d bytes", ErrTooLarge, MaxBodySize)
	}
	if !utf8.ValidString(body) {
		return Message{}, fmt.Errorf("%w: a message body is UTF-8 text", ErrInvalidArgument)
	}
	c, err := n.channel(channelID)
	if err != nil {
		return Message{}, err
	}
	env, err := n.newEnvelope(body)
	if err != nil {
		return Message{}, err
	}
	r := &sendReq{env: env, done: make(chan sendResult, 1)}
	select {
	case c.sends <- r:
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-c.ctx.Done():
		return Message{}, ErrClosed
	}
	select {
	case res := <-r.done:
		return res.msg, res.err
	case <-ctx.Done():
		return Message{}, ctx.Err()
	case <-c.ctx.Done():
		return Message{}, ErrClosed
	}
}

// HistoryOptions page a channel's history.
type HistoryOptions struct {
	// Before, if set, returns the messages before this Seq, newest first.
	Before uint64
	// After, if set (and Before is not), returns the messages after this
	// Seq, oldest first; so does Ascending, from After (0: the start).
	After     uint64
	Ascending bool
	// Limit caps the page; zero means 100, at most 1000.
	Limit int
}

// History returns a page of a channel's messages from its log: with no
// cursor, the newest first.
func (n *Node) History(channelID []byte, opts HistoryOptions) ([]Message, error) {
	c, err := n.channel(channelID)
	if err != nil {
		return nil, err
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	// Commits and proposals share the log: pages are read until limit
	// messages are found or the log ends.
	newestFirst := opts.Before != 0 || opts.After == 0 && !opts.Ascending
	cursor := opts.After
	if newestFirst {
		cursor = opts.Before
		if cursor == 0 {
			cursor = ^uint64(0)
		}
	}
	var out []Message
	for len(out) < limit {
		var (
			entries []store.LogEntry
			err     error
		)
		if newestFirst {
			entries, err = n.st.LogBefore(channelID, cursor, limit)
		} else {
			entries, err = n.st.LogAfter(channelID, cursor, limit)
		}
		if err != nil {
			return nil, err
		}
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			rec, err := parseLogRecord(e.Data)
			if err != nil {
				return nil, fmt.Errorf("node: log entry %d: %w", e.Seq, err)
			}
			if rec.Kind == logApplication && rec.Envelope != nil && len(out) < limit {
				out = append(out, c.messageOf(e.Seq, rec))
			}
		}
		cursor = entries[len(entries)-1].Seq
	}
	return out, nil
}

// Members lists a channel's members.
func (n *Node) Members(channelID []byte) ([]Member, error) {
	c, err := n.channel(channelID)
	if err != nil {
		return nil, err
	}
	return append([]Member(nil), c.snap.Load().members...), nil
}

// Info describes a channel.
func (n *Node) Info(channelID []byte) (ChannelInfo, error) {
	c, err := n.channel(channelID)
	if err != nil {
		return ChannelInfo{}, err
	}
	return c.info(), nil
}

// Remove removes a member from a channel; it returns once the commit won
// its epoch.
func (n *Node) Remove(ctx context.Context, channelID []byte, p peer.ID) error {
	c, err := n.channel(channelID)
	if err != nil {
		return err
	}
	if p == n.id {
		return fmt.Errorf("%w: use Leave to leave a channel", ErrInvalidArgument)
	}
	if _, ok := c.snap.Load().peers[p]; !ok {
		return fmt.Errorf("%w: %s", ErrNotMember, p)
	}
	return c.submit(ctx, &intent{kind: intentRemove, peer: p})
}

// Update commits fresh keys for this node's leaf (key rotation); it
// returns once the commit won its epoch.
func (n *Node) Update(ctx context.Context, channelID []byte) error {
	c, err := n.channel(channelID)
	if err != nil {
		return err
	}
	return c.submit(ctx, &intent{kind: intentUpdate})
}

// Leave proposes this node's removal from a channel. A member cannot
// commit its own removal (RFC 9420 §12.1.3), so another member commits it;
// until then the channel shows as "leaving", and the proposal is made
// again in each epoch that passes without it.
func (n *Node) Leave(ctx context.Context, channelID []byte) error {
	c, err := n.channel(channelID)
	if err != nil {
		return err
	}
	return c.do(ctx, func() error {
		if !c.group.Active() {
			return ErrNotMember
		}
		if c.leaving {
			return nil
		}
		if len(c.group.Members()) == 1 {
			return fmt.Errorf("%w: the last member cannot leave; nobody would commit it", ErrInvalidArgument)
		}
		c.leaving = true
		if c.group.HasStagedCommit() || len(c.candidates) > 0 {
			c.publishSnapshot()
			return nil // proposed once the epoch settles (advance)
		}
		return c.proposeLeave()
	})
}

// newEnvelope wraps body with a fresh random ID and the send time.
func (n *Node) newEnvelope(body string) (*envelope, error) {
	env := &envelope{SentAt: uint64(n.cfg.Now().UnixMilli()), Body: body}
	if _, err := io.ReadFull(n.rand, env.ID[:]); err != nil {
		return nil, err
	}
	return env, nil
}

// Refusals of serveSync; their text is all the asking peer learns.
var (
	errNotServed       = errors.New("not served")
	errSyncUnavailable = errors.New("unavailable")
)

// serveSync serves a channel's log to its members, after a cursor that is
// the big-endian sequence number of the last entry sent: no more than
// maxBytes of messages but for a first one, read from at most twice that of
// the log.
//
// A refusal reaches the asking peer as its text, so every refusal to one
// who is no member reads the same: which channels this node is in, and
// who their members are, is not the business of anyone who asks.
func (n *Node) serveSync(_ context.Context, from peer.ID, channelID, after []byte, limit, maxBytes int) ([]p2p.SyncEntry, bool, error) {
	c, err := n.channel(channelID)
	if err != nil {
		return nil, false, errNotServed
	}
	if _, ok := c.snap.Load().peers[from]; !ok {
		return nil, false, errNotServed
	}
	var seq uint64
	switch len(after) {
	case 0:
	case 8:
		seq = binary.BigEndian.Uint64(after)
	default:
		return nil, false, errors.New("malformed cursor")
	}
	// A log record holds a message's plaintext next to it, up to twice
	// what is served of it, so the read is bounded at twice the budget
	// and the page cut at the budget below.
	page, err := n.st.LogAfterWithin(channelID, seq, limit, 2*maxBytes)
	if err != nil {
		n.cfg.Logger.Error("serving a sync", "channel", ChannelID(channelID), "err", err)
		return nil, false, errSyncUnavailable
	}
	// Whether the log goes on is its head's to say: a page may be short
	// because of the budget, and skipping the asker's own messages below
	// shortens it too.
	more := false
	if len(page) > 0 {
		head, err := n.st.LogHead(channelID)
		if err != nil {
			n.cfg.Logger.Error("serving a sync", "channel", ChannelID(channelID), "err", err)
			return nil, false, errSyncUnavailable
		}
		more = page[len(page)-1].Seq < head
	}
	entries := make([]p2p.SyncEntry, 0, len(page))
	total := 0
	for i, e := range page {
		rec, err := parseLogRecord(e.Data)
		if err != nil {
			n.cfg.Logger.Error("serving a sync", "channel", ChannelID(channelID), "seq", e.Seq, "err", err)
			return nil, false, errSyncUnavailable
		}
		// The asker's own application messages are in its log (a send is
		// persisted before it is published): sending them back doubled a
		// busy sender's sync traffic and the work of its loop. A page's
		// last entry goes all the same, so that its cursor moves on.
		if (rec.Kind == logApplication || rec.Kind == logResent) && peer.ID(rec.Sender) == from && i < len(page)-1 {
			continue
		}
		if total += len(rec.Message); len(entries) > 0 && total > maxBytes {
			return entries, true, nil
		}
		entries = append(entries, p2p.SyncEntry{Cursor: binary.BigEndian.AppendUint64(nil, e.Seq), Data: rec.Message})
	}
	return entries, more, nil
}
