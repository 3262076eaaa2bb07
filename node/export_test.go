package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"
)

// SealUnsent encrypts body as the node's next message in channel and
// returns it without logging or publishing it: a message the network
// lost. The node's group moves on in memory, as after a real send.
func (n *Node) SealUnsent(ctx context.Context, channel []byte, body string) ([]byte, error) {
	c, err := n.channel(channel)
	if err != nil {
		return nil, err
	}
	env, err := n.newEnvelope(body)
	if err != nil {
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
