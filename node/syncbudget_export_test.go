package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/p2p"
)

// ServeSync is the node's SyncProvider, called directly.
func (n *Node) ServeSync(ctx context.Context, from peer.ID, channel, after []byte, limit, maxBytes int) ([]p2p.SyncEntry, bool, error) {
	return n.serveSync(ctx, from, channel, after, limit, maxBytes)
}

// LogLen is how many entries channel's log holds.
func (n *Node) LogLen(channel []byte) (int, error) {
	es, err := n.st.LogAfter(channel, 0, 1<<20)
	return len(es), err
}
