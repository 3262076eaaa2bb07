package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/node/nodetest"
)

// TestPartitionBeyondWindowWithViewRounds: five members split 2|3 and
// each half commits more often than the rewind window holds, with view
// rounds running inside the partition (a short sync interval). The
// minority half sees only itself in those rounds; that agreement must not
// count as agreeing with the group, or its members rejoin naming an epoch
// of their own branch as the last one shared, and the re-sends on both
// sides start after the fork: the messages between are lost. Found by the
// chaos test (internal/chaostest, seeds 1001-1004, five-minute schedules).
func TestPartitionBeyondWindowWithViewRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("a partition")
	}
	pc := newPartitionCluster(t, 5, 300*time.Millisecond)
	ctx := testContext(t, 3*time.Minute)
	a, b := pc.all[:2], pc.all[2:]
	pc.split(t, a, b)
	var want []string
	for h, half := range [][]*nodetest.Peer{a, b} {
		for k := range 8 {
			if err := half[0].Update(ctx, pc.ch); err != nil {
				t.Fatalf("half %d: update %d: %v", h, k, err)
			}
			for _, p := range half {
				body := fmt.Sprintf("half %d commit %d from %s", h, k, p.Name)
				if _, err := p.Send(ctx, pc.ch, body); err != nil {
					t.Fatal(err)
				}
				want = append(want, body)
			}
		}
	}
	// Several view rounds inside the partition: each half agrees with
	// itself in them.
	time.Sleep(3 * time.Second) // the partition's length is the scenario's
	pc.heal(t, a, b)
	awaitStormConverged(ctx, t, pc.ch, len(pc.all), pc.all)
	for _, p := range pc.all {
		for _, w := range want {
			awaitOnce(ctx, t, p, pc.ch, w)
		}
	}
	var rejoins uint64
	for _, p := range pc.all {
		rejoins += p.Rejoins(pc.ch)
	}
	t.Logf("%d rejoins", rejoins)
}

// TestTwoMembersRejoinOnce: the two members of a group fork beyond the
// rewind window (a partition in which each commits seven times) and
// meet again with view rounds running often (kicked by every rejoin and
// reconnection). The one whose branch loses rejoins; the other must
// merge that external commit, not take the rejoiner's newer epoch for
// the group's and rejoin off it in turn, back and forth (a rejoin storm
// that raised the epoch faster than messages could be read; found by the
// chaos test, seed 1001).
func TestTwoMembersRejoinOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("a partition")
	}
	pc := newPartitionCluster(t, 2, 100*time.Millisecond)
	ctx := testContext(t, 2*time.Minute)
	a, b := pc.all[:1], pc.all[1:]
	pc.split(t, a, b)
	var want []string
	for h, half := range [][]*nodetest.Peer{a, b} {
		for k := range 7 {
			if err := half[0].Update(ctx, pc.ch); err != nil {
				t.Fatalf("half %d: update %d: %v", h, k, err)
			}
			body := fmt.Sprintf("half %d commit %d", h, k)
			if _, err := half[0].Send(ctx, pc.ch, body); err != nil {
				t.Fatal(err)
			}
			want = append(want, body)
		}
	}
	pc.heal(t, a, b)
	awaitStormConverged(ctx, t, pc.ch, len(pc.all), pc.all)
	for _, p := range pc.all {
		for _, w := range want {
			awaitOnce(ctx, t, p, pc.ch, w)
		}
	}
	var rejoins uint64
	for _, p := range pc.all {
		rejoins += p.Rejoins(pc.ch)
	}
	if rejoins > 2 {
		t.Errorf("%d rejoins for one fork of two members", rejoins)
	}
}
