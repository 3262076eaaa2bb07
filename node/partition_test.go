package node_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
)

// envInt is an integer test parameter from the environment.
func envInt(t testing.TB, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q", name, s)
	}
	return n
}

// partitionCluster is six members of one channel on mocknet.
type partitionCluster struct {
	c   *nodetest.Cluster
	all []*nodetest.Peer
	ch  []byte
}

func newPartitionCluster(t testing.TB, n int, syncEvery time.Duration) *partitionCluster {
	ctx := testContext(t, 2*time.Minute)
	c := nodetest.NewMocknet(t, mocknet.LinkOptions{Latency: 20 * time.Millisecond})
	if syncEvery != 0 {
		c.Configure = func(_ string, cfg *node.Config) { cfg.SyncInterval = syncEvery }
	}
	pc := &partitionCluster{c: c}
	for i := range n {
		pc.all = append(pc.all, c.Add(fmt.Sprintf("n%d", i)))
	}
	for _, p := range pc.all[1:] {
		p.PublishKeyPackages(ctx)
	}
	info, err := pc.all[0].CreateChannel(ctx, "partition", "")
	if err != nil {
		t.Fatal(err)
	}
	pc.ch = info.ID
	for i, p := range pc.all[1:] {
		pc.all[0].Invite(ctx, pc.ch, p)
		nodetest.AwaitConverged(ctx, pc.ch, i+2, pc.all[:i+2]...)
	}
	return pc
}

// split cuts every link between the two halves.
func (pc *partitionCluster) split(t testing.TB, a, b []*nodetest.Peer) {
	t.Helper()
	mn := pc.c.Mock
	for _, x := range a {
		for _, y := range b {
			if err := mn.DisconnectPeers(x.ID(), y.ID()); err != nil {
				t.Logf("disconnect %s %s: %v", x.Name, y.Name, err)
			}
			if err := mn.UnlinkPeers(x.ID(), y.ID()); err != nil {
				t.Fatalf("unlink %s %s: %v", x.Name, y.Name, err)
			}
		}
	}
}

// splitAndCommit splits the members into two random halves, and in each
// half one member commits 1-4 updates (within the rewind window), every
// member of the half sending after each; it returns the halves, their
// commit counts and the bodies sent, once every send is acknowledged.
func (pc *partitionCluster) splitAndCommit(ctx context.Context, t testing.TB, rng *rand.Rand, label string) (a, b []*nodetest.Peer, commits [2]int, want []string) {
	t.Helper()
	perm := rng.Perm(len(pc.all))
	for i, j := range perm {
		if i < len(perm)/2 {
			a = append(a, pc.all[j])
		} else {
			b = append(b, pc.all[j])
		}
	}
	pc.split(t, a, b)
	commits = [2]int{1 + rng.IntN(4), 1 + rng.IntN(4)}
	committer := [2]int{rng.IntN(len(a)), rng.IntN(len(b))}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for h, half := range [][]*nodetest.Peer{a, b} {
		wg.Go(func() {
			for k := range commits[h] {
				if err := half[committer[h]].Update(ctx, pc.ch); err != nil {
					t.Errorf("%s: %s's update: %v", label, half[committer[h]].Name, err)
					return
				}
				for _, p := range half {
					body := fmt.Sprintf("%s commit %d from %s", label, k, p.Name)
					if _, err := p.Send(ctx, pc.ch, body); err != nil {
						t.Errorf("%s: %s's send: %v", label, p.Name, err)
						return
					}
					mu.Lock()
					want = append(want, body)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return a, b, commits, want
}

// heal links and connects the two halves again.
func (pc *partitionCluster) heal(t testing.TB, a, b []*nodetest.Peer) {
	t.Helper()
	mn := pc.c.Mock
	for _, x := range a {
		for _, y := range b {
			if _, err := mn.LinkPeers(x.ID(), y.ID()); err != nil {
				t.Fatalf("link %s %s: %v", x.Name, y.Name, err)
			}
			if _, err := mn.ConnectPeers(x.ID(), y.ID()); err != nil {
				t.Fatalf("connect %s %s: %v", x.Name, y.Name, err)
			}
		}
	}
}

// TestPartitionHeals: six members split into two random halves; each half
// commits (1-4 updates, within the rewind window) and every member sends
// after each of its half's commits, for SPACEPANDA_PARTITION_HOLD (3 s;
// the run holds 30 s); then the halves are joined again. Every
// member converges on one epoch and one epoch authenticator, and every
// message sent on either side is in every member's history exactly once.
// SPACEPANDA_PARTITIONS rounds (2; the run does 20).
func TestPartitionHeals(t *testing.T) {
	if testing.Short() {
		t.Skip("partitions")
	}
	rounds := envInt(t, "SPACEPANDA_PARTITIONS", 2)
	hold := time.Duration(envInt(t, "SPACEPANDA_PARTITION_HOLD_SECONDS", 3)) * time.Second
	partitions(t, newPartitionCluster(t, 6, 0), rounds, hold)
}

// TestPartitionHealsWithoutPeriodicSync: the same with a sync interval
// of an hour, so that only the reconnection of the halves starts the
// sync that heals them (the default interval is 30 s, longer than a heal
// should take).
func TestPartitionHealsWithoutPeriodicSync(t *testing.T) {
	if testing.Short() {
		t.Skip("partitions")
	}
	partitions(t, newPartitionCluster(t, 4, time.Hour), 1, time.Second)
}

func partitions(t *testing.T, pc *partitionCluster, rounds int, hold time.Duration) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SPACEPANDA_STORM_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d, %d partitions of %s", seed, rounds, hold)
	rng := rand.New(rand.NewPCG(seed, seed))
	ctx := testContext(t, time.Duration(rounds)*(hold+2*time.Minute))
	var want []string
	var took []time.Duration
	for round := range rounds {
		a, b, commits, sent := pc.splitAndCommit(ctx, t, rng, fmt.Sprintf("partition %d", round))
		want = append(want, sent...)
		time.Sleep(hold) // the partition's length is the scenario's, not a wait for an event
		pc.heal(t, a, b)
		healed := time.Now()
		awaitStormConverged(ctx, t, pc.ch, len(pc.all), pc.all)
		for _, p := range pc.all {
			for _, w := range want {
				awaitOnce(ctx, t, p, pc.ch, w)
			}
		}
		took = append(took, time.Since(healed))
		t.Logf("partition %d: halves committed %d and %d times; converged with every message %s after healing", round, commits[0], commits[1], took[len(took)-1].Round(time.Millisecond))
	}
	var rewinds int
	for _, p := range pc.all {
		rewinds += int(p.Rewinds(pc.ch))
	}
	slices.Sort(took)
	t.Logf("%d partitions, %d messages, %d rewinds; heal to converged: median %s, max %s", rounds, len(want), rewinds, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
}
