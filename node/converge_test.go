package node_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
)

// TestConcurrentCommits: two members commit at the same moment in one
// epoch, 20 rounds, over links with latency. Every member ends each round
// in one epoch with one epoch authenticator, no commit is lost (the loser
// makes its own again), and every message sent meanwhile is in every
// history exactly once.
func TestConcurrentCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("20 rounds of settling")
	}
	ctx := testContext(t, 5*time.Minute)
	c := nodetest.NewMocknet(t, mocknet.LinkOptions{Latency: 20 * time.Millisecond})
	alice, bob, carol := c.Add("alice"), c.Add("bob"), c.Add("carol")
	bob.PublishKeyPackages(ctx)
	carol.PublishKeyPackages(ctx)
	info, err := alice.CreateChannel(ctx, "storm", "")
	if err != nil {
		t.Fatal(err)
	}
	ch := info.ID
	alice.Invite(ctx, ch, bob)
	alice.Invite(ctx, ch, carol)
	all := []*nodetest.Peer{alice, bob, carol}
	nodetest.AwaitConverged(ctx, ch, 3, all...)

	var want []string
	lostBefore := countEvents(all, node.EventCommitLost)
	for round := range 20 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, p := range []*nodetest.Peer{alice, bob} {
			body := fmt.Sprintf("round %d from %s", round, p.Name)
			want = append(want, body)
			wg.Go(func() {
				<-start
				if errs[i] = p.Update(ctx, ch); errs[i] != nil {
					return
				}
				_, errs[i] = p.Send(ctx, ch, body)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		nodetest.AwaitConverged(ctx, ch, 3, all...)
	}
	for _, p := range all {
		awaitBodies(ctx, t, p, ch, want)
	}
	lost := countEvents(all, node.EventCommitLost) - lostBefore
	t.Logf("20 rounds: %d commits lost their epoch and were made again", lost)
	if lost == 0 {
		t.Fatal("no round had concurrent commits: the test did not test anything")
	}
}

func countEvents(peers []*nodetest.Peer, typ node.EventType) int {
	n := 0
	for _, p := range peers {
		for _, e := range p.Events() {
			if e.Type == typ {
				n++
			}
		}
	}
	return n
}
