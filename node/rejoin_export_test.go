package node

import (
	"context"
	"encoding/hex"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/p2p"
)

// Rejoins is how often channel rejoined by external commit (rejoin.go).
func (n *Node) Rejoins(channel []byte) uint64 {
	c, err := n.channel(channel)
	if err != nil {
		return 0
	}
	return c.rj.rejoins.Load()
}

// GroupViewOf asks p for its view of channel through this node's host.
func (n *Node) GroupViewOf(ctx context.Context, channel []byte, p peer.ID, withGroupInfo bool) (p2p.GroupView, error) {
	return n.host.GroupView(ctx, p, channel, withGroupInfo)
}

// ViewHash is the authenticator a view carries for info's epoch.
func ViewHash(info ChannelInfo) []byte {
	a, _ := hex.DecodeString(info.EpochAuthenticator)
	return viewHash(a)
}

// InspectGroupInfo summarises a GroupInfo as this node would read it.
func (n *Node) InspectGroupInfo(gi []byte) (*mlsgroup.GroupInfoSummary, error) {
	return mlsgroup.InspectGroupInfo(n.mlsConfig(), gi, nil)
}
