package node

import (
	"bytes"
	"context"
	"crypto/sha256"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// CommitGround is what a malicious member's client does: it makes k
// update commits for the current epoch, stages and publishes the one
// whose SHA-256 ranks first. It returns false when a commit of this node
// is already staged.
func (n *Node) CommitGround(ctx context.Context, channel []byte, k int) (bool, error) {
	c, err := n.channel(channel)
	if err != nil {
		return false, err
	}
	staged := false
	err = c.do(ctx, func() error {
		if c.group.HasStagedCommit() {
			return nil
		}
		if err := c.flush(); err != nil {
			return err
		}
		var best *mlsgroup.Effects
		var bestH [32]byte
		for range k {
			eff, err := c.group.Commit(mlsgroup.CommitOptions{Path: true})
			if err != nil {
				return err
			}
			h := sha256.Sum256(eff.Message)
			if best == nil || bytes.Compare(h[:], bestH[:]) < 0 {
				best, bestH = eff, h
			}
		}
		if _, err := c.write(step{group: best.Group}); err != nil {
			return err
		}
		c.setGroup(best.Group)
		c.staged = &intent{kind: intentUpdate}
		c.offer(best.Message, false)
		c.publish(best.Message)
		staged = true
		return nil
	})
	return staged, err
}
