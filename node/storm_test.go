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

// stormRounds is how many rounds TestCommitStorm runs per group size:
// SPACEPANDA_STORM_ROUNDS, or a few for CI.
func stormRounds(t *testing.T) int { return envInt(t, "SPACEPANDA_STORM_ROUNDS", 8) }

// TestCommitStorm: groups of 3, 5 and 10 members over mocknet links of
// 20-200 ms each (drawn per link), with a settle window shorter than the
// slowest links, so that a winning commit often arrives after a member
// merged another and the member must rewind to it. In each round 2-4
// members commit at once (updates, adds and removes mixed) and send a
// message each; after the round every member is in one epoch with one
// epoch authenticator, and every message sent so far is in the history of
// every member that was in the group when it was sent, exactly once.
// Seeded (SPACEPANDA_STORM_SEED) and reproducible in its schedule; the
// network's timing is not.
func TestCommitStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("rounds of concurrent commits")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SPACEPANDA_STORM_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d", seed)
	sizes := []int{3, 5, 10}
	if os.Getenv("SPACEPANDA_STORM_ROUNDS") == "" {
		sizes = []int{3, 5} // CI: 10 members are the long run's
	}
	for _, size := range sizes {
		t.Run(fmt.Sprintf("members=%d", size), func(t *testing.T) {
			storm(t, size, stormRounds(t), seed+uint64(size))
		})
	}
}

func storm(t *testing.T, size, rounds int, seed uint64) {
	mixed := os.Getenv("SPACEPANDA_STORM_MIXED") != ""
	ctx := testContext(t, time.Duration(rounds)*time.Duration(size)*3*time.Second+2*time.Minute)
	if d := os.Getenv("SPACEPANDA_STORM_WAIT"); d != "" {
		wait, err := time.ParseDuration(d)
		if err != nil {
			t.Fatal(err)
		}
		ctx = testContext(t, wait)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	c := nodetest.NewMocknet(t, mocknet.LinkOptions{})
	c.Configure = func(_ string, cfg *node.Config) { cfg.SettleWindow = 100 * time.Millisecond }
	// Spares are added by the rounds' adds; one per two rounds is plenty.
	spares := rounds/2 + 1
	var members, pool []*nodetest.Peer
	for i := range size + spares {
		p := c.Add(fmt.Sprintf("n%02d", i))
		if i < size {
			members = append(members, p)
		} else {
			pool = append(pool, p)
		}
	}
	all := c.Peers()
	for _, p := range all[1:] {
		p.PublishKeyPackages(ctx)
	}
	for i, a := range all {
		for _, b := range all[i+1:] {
			lat := time.Duration(20+rng.IntN(181)) * time.Millisecond
			for _, l := range c.Mock.LinksBetweenPeers(a.ID(), b.ID()) {
				l.SetOptions(mocknet.LinkOptions{Latency: lat})
			}
		}
	}
	info, err := members[0].CreateChannel(ctx, "storm", "")
	if err != nil {
		t.Fatal(err)
	}
	ch := info.ID
	for i, p := range members[1:] {
		members[0].Invite(ctx, ch, p)
		nodetest.AwaitConverged(ctx, ch, i+2, members[:i+2]...)
	}

	// sent: each message and who must have it.
	type sentMsg struct {
		body string
		to   []*nodetest.Peer
	}
	var sent []sentMsg
	for round := range rounds {
		k := min(2+rng.IntN(3), len(members))
		order := rng.Perm(len(members))
		committers := make([]*nodetest.Peer, k)
		for i := range k {
			committers[i] = members[order[i]]
		}
		others := make([]*nodetest.Peer, 0, len(members)-k)
		for _, i := range order[k:] {
			others = append(others, members[i])
		}
		type op struct {
			kind   string
			target *nodetest.Peer
		}
		ops := make([]op, k)
		for i := range ops {
			switch r := rng.IntN(6); {
			case !mixed:
				ops[i] = op{kind: "update"}
			case r == 0 && len(pool) > 0:
				ops[i] = op{kind: "add", target: pool[0]}
				pool = pool[1:]
			case r == 1 && len(others) > 0 && len(members) > 3:
				ops[i] = op{kind: "remove", target: others[0]}
				others = others[1:]
			default:
				ops[i] = op{kind: "update"}
			}
		}
		before := slices.Clone(members)
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, k)
		bodies := make([]string, k)
		for i, p := range committers {
			bodies[i] = fmt.Sprintf("round %d from %s", round, p.Name)
			wg.Go(func() {
				<-start
				switch o := ops[i]; o.kind {
				case "add":
					errs[i] = p.Node.Invite(ctx, ch, o.target.ID())
				case "remove":
					errs[i] = p.Remove(ctx, ch, o.target.ID())
				default:
					errs[i] = p.Update(ctx, ch)
				}
				if errs[i] == nil {
					_, errs[i] = p.Send(ctx, ch, bodies[i])
				}
			})
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %s's %s: %v", round, committers[i].Name, ops[i].kind, err)
			}
		}
		for _, o := range ops {
			switch o.kind {
			case "add":
				members = append(members, o.target)
			case "remove":
				members = slices.DeleteFunc(members, func(p *nodetest.Peer) bool { return p == o.target })
			}
		}
		for _, o := range ops {
			if o.kind == "add" {
				ev := o.target.AwaitEvent(ctx, o.target.Name+"'s invitation", func(e node.Event) bool {
					return e.Type == node.EventInvitation && string(e.Channel) == string(ch)
				})
				if _, err := o.target.Accept(ctx, ev.Invitation.ID); err != nil {
					t.Fatalf("round %d: %s accepting: %v", round, o.target.Name, err)
				}
			}
		}
		awaitStormConverged(ctx, t, ch, len(members), members)
		for _, b := range bodies {
			// Those in the group all round; one removed this round may
			// have been removed before it came.
			var to []*nodetest.Peer
			for _, p := range before {
				if slices.Contains(members, p) {
					to = append(to, p)
				}
			}
			sent = append(sent, sentMsg{body: b, to: to})
		}
		for _, m := range sent[len(sent)-k:] {
			for _, p := range m.to {
				awaitOnce(ctx, t, p, ch, m.body)
			}
		}
	}
	for _, m := range sent {
		for _, p := range m.to {
			if slices.Contains(members, p) {
				awaitOnce(ctx, t, p, ch, m.body)
			}
		}
	}
	var rewinds, rejoins, lost int
	for _, p := range c.Peers() {
		rewinds += int(p.Rewinds(ch))
		rejoins += int(p.Rejoins(ch))
	}
	lost = countEvents(c.Peers(), node.EventCommitLost)
	t.Logf("%d members, %d rounds, %d messages: %d rewinds, %d rejoins, %d commits lost and made again; final epoch %d", size, rounds, len(sent), rewinds, rejoins, lost, members[0].MustInfo(ch).Epoch)
}

// awaitOnce waits until body is in p's history, then checks it is there
// once.
func awaitOnce(ctx context.Context, t *testing.T, p *nodetest.Peer, ch []byte, body string) {
	t.Helper()
	count := func() int {
		n := 0
		for _, m := range p.History(ch) {
			if m.Body == body {
				n++
			}
		}
		return n
	}
	p.Await(ctx, fmt.Sprintf("%q in %s's history", body, p.Name), func() bool { return count() > 0 })
	if n := count(); n != 1 {
		t.Fatalf("%s has %q %d times", p.Name, body, n)
	}
}

// awaitStormConverged is nodetest.AwaitConverged with a round's deadline
// and, past it, what each member shows.
func awaitStormConverged(ctx context.Context, t *testing.T, ch []byte, want int, members []*nodetest.Peer) {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for ; rctx.Err() == nil; <-tick.C {
			var auth string
			ok := true
			for i, p := range members {
				info, err := p.Info(ch)
				if err != nil || info.Members != want || info.CommitPending || (i > 0 && info.EpochAuthenticator != auth) {
					ok = false
					break
				}
				auth = info.EpochAuthenticator
			}
			if ok {
				return
			}
		}
	}()
	<-done
	if rctx.Err() == nil {
		return
	}
	for _, p := range members {
		info, err := p.Info(ch)
		t.Logf("%s: epoch %d members %d pending %v auth %.16s err %v", p.Name, info.Epoch, info.Members, info.CommitPending, info.EpochAuthenticator, err)
	}
	t.Fatalf("the channel did not converge on %d members", want)
}
