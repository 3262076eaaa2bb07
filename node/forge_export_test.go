package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// FetchKeyPackage is a KeyPackage of p from the DHT directory.
func (n *Node) FetchKeyPackage(ctx context.Context, p peer.ID) (*mlsgroup.KeyPackage, error) {
	return n.dir.Fetch(ctx, p)
}

// PublishAddUnchecked is what a modified client does: it commits the Add
// of kp without checking its credential (the node's own mlsgroup would
// refuse) and publishes the commit, without staging it.
func (n *Node) PublishAddUnchecked(ctx context.Context, channel []byte, kp *mlsgroup.KeyPackage) error {
	c, err := n.channel(channel)
	if err != nil {
		return err
	}
	var msg []byte
	err = c.do(ctx, func() error {
		state, err := c.group.MarshalBinary()
		if err != nil {
			return err
		}
		cfg := n.mlsConfig()
		cfg.Validation = mlsgroup.ValidationOptions{}
		g, err := mlsgroup.LoadGroup(cfg, state)
		if err != nil {
			return err
		}
		eff, err := g.Commit(mlsgroup.CommitOptions{Proposals: []mlsgroup.Proposal{mlsgroup.AddProposal(kp)}})
		if err != nil {
			return err
		}
		msg = eff.Message
		return nil
	})
	if err != nil {
		return err
	}
	return c.pch.Publish(ctx, msg)
}
