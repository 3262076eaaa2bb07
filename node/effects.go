package node

import (
	"errors"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/store"
)

// step is what one MLS step leaves for the store: mlsgroup's Effects as
// far as they are state, with what the node adds to them.
type step struct {
	// group is the state that follows (nil: unchanged).
	group *mlsgroup.Group
	// consumed is the KeyPackage a join used (Effects.ConsumedKeyPackage);
	// the store keeps a last-resort one by its own rule.
	consumed []byte
	// logs are records appended to the channel's log.
	logs []logItem
	// cursors advance sync cursors past the entries the step processed.
	cursors []cursorItem
	// invitation is a pending invitation the step settles (accepted).
	invitation []byte
	// resetCursors, with rewound, replaces every sync cursor of the
	// channel (a rewind's, see rewind.go).
	resetCursors map[string][]byte
	rewound      bool
}

type logItem struct {
	hash [32]byte // SHA-256 of the MLS message: the log's dedup index
	rec  *logRecord
}

type cursorItem struct {
	peer   peer.ID
	cursor []byte
}

// writeStep is the one place where a step's effects become a store batch:
// the state, the consumed KeyPackage, the log records with their index,
// the sync cursor and the settled invitation, in one synced write. Nothing
// of the step leaves the node before it returns nil. It returns the log
// sequence numbers of the records, in order.
func (n *Node) writeStep(channel []byte, s step) ([]uint64, error) {
	var b store.Batch
	if s.group != nil {
		state, err := s.group.MarshalBinary()
		if err != nil {
			return nil, err
		}
		b.PutGroup(s.group.GroupID(), state)
	}
	if s.consumed != nil {
		b.ConsumeKeyPackage(s.consumed)
	}
	for _, l := range s.logs {
		b.AppendLog(channel, l.hash[:], l.rec.marshal())
	}
	if s.rewound {
		b.DeleteSyncCursors(channel)
		for p, cu := range s.resetCursors {
			b.PutSyncCursor(channel, []byte(p), cu)
		}
	}
	for _, cu := range s.cursors {
		b.PutSyncCursor(channel, []byte(cu.peer), cu.cursor)
	}
	if s.invitation != nil {
		b.DeleteInvitation(s.invitation)
	}
	if err := n.st.Commit(&b); err != nil {
		return nil, err
	}
	if err := n.writeFault.Load(); err != nil {
		return nil, *err
	}
	return b.Seqs(), nil
}

// inLog says whether a message (by its SHA-256) is in a channel's log,
// through the store's index: no scan, also after a restart.
func (n *Node) inLog(channel []byte, h [32]byte) (bool, error) {
	_, err := n.st.LogSeqOf(channel, h[:])
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	}
	return false, err
}
