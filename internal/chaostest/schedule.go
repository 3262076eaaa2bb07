package chaostest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Kind is what an Event does.
type Kind int

// The kinds of events.
const (
	Send      Kind = iota // Members[0] sends an application message
	Commit                // each of Members commits an update, all at once
	Partition             // Members are cut off from the others
	Heal                  // the partition ends
	Kill                  // Members[0]'s daemon gets SIGKILL
	Restart               // Members[0]'s daemon starts again
	kinds
)

func (k Kind) String() string {
	switch k {
	case Send:
		return "send"
	case Commit:
		return "commit"
	case Partition:
		return "partition"
	case Heal:
		return "heal"
	case Kill:
		return "kill"
	case Restart:
		return "restart"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Event is one step of a schedule, At after its start.
type Event struct {
	At      time.Duration
	Kind    Kind
	Members []int
}

// Params shape a schedule.
type Params struct {
	Members  int
	Duration time.Duration
}

// maxDown is how many daemons may be down at once: fewer than half, so
// that most of the group is always there to carry it.
func (p Params) maxDown() int { return (p.Members - 1) / 2 }

// Generate is the schedule of seed: the same seed and params give the
// same events, in the same order, at the same offsets (math/rand/v2's
// PCG). Events come every 50-400 ms: about six in ten are messages from a
// running member, two in ten commits by one to three running members at
// once, and the rest partitions (into two halves, held 1 s up to a
// quarter of the run, at most 20 s) and kills (restarted after 0.3 s up
// to a sixth of the run, at most 8 s; fewer than half the members down
// at once). A partition or a restart due after the end is left to the
// caller, who heals and restarts everything when the schedule is over.
func Generate(seed uint64, p Params) []Event {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	clamp := func(d, lo, hi time.Duration) time.Duration { return min(max(d, lo), hi) }
	maxHold := clamp(p.Duration/4, 2*time.Second, 20*time.Second)
	maxDelay := clamp(p.Duration/6, time.Second, 8*time.Second)
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }

	up := make([]bool, p.Members)
	for i := range up {
		up[i] = true
	}
	down, cut := 0, false
	var pending, out []Event // pending: heals and restarts, by At
	apply := func(e Event) {
		switch e.Kind {
		case Heal:
			cut = false
		case Restart:
			up[e.Members[0]] = true
			down--
		}
		out = append(out, e)
	}
	running := func() []int {
		var r []int
		for i, u := range up {
			if u {
				r = append(r, i)
			}
		}
		return r
	}
	later := func(e Event) {
		i, _ := slices.BinarySearchFunc(pending, e.At, func(x Event, at time.Duration) int { return int(x.At - at) })
		pending = slices.Insert(pending, i, e)
	}
	for at := time.Duration(0); ; {
		at += between(50*time.Millisecond, 400*time.Millisecond)
		if at >= p.Duration {
			break
		}
		for len(pending) > 0 && pending[0].At <= at {
			apply(pending[0])
			pending = pending[1:]
		}
		r := running()
		switch x := rng.IntN(100); {
		case x < 62:
			out = append(out, Event{At: at, Kind: Send, Members: []int{r[rng.IntN(len(r))]}})
		case x < 82:
			k := min(1+rng.IntN(3), len(r))
			perm := rng.Perm(len(r))
			ms := make([]int, k)
			for i := range ms {
				ms[i] = r[perm[i]]
			}
			out = append(out, Event{At: at, Kind: Commit, Members: ms})
		case x < 90:
			if cut || p.Members < 2 {
				continue
			}
			perm := rng.Perm(p.Members)
			half := perm[:p.Members/2]
			slices.Sort(half)
			cut = true
			out = append(out, Event{At: at, Kind: Partition, Members: half})
			later(Event{At: at + between(time.Second, maxHold), Kind: Heal})
		default:
			if down >= p.maxDown() {
				continue
			}
			i := r[rng.IntN(len(r))]
			up[i] = false
			down++
			out = append(out, Event{At: at, Kind: Kill, Members: []int{i}})
			later(Event{At: at + between(300*time.Millisecond, maxDelay), Kind: Restart, Members: []int{i}})
		}
	}
	for _, e := range pending {
		if e.At < p.Duration {
			apply(e)
		}
	}
	return out
}

// Count is how many events of each kind a schedule has.
func Count(s []Event) map[Kind]int {
	n := map[Kind]int{}
	for _, e := range s {
		n[e.Kind]++
	}
	return n
}

// CountString is Count as "send=12 commit=3 ...", every kind named.
func CountString(n map[Kind]int) string {
	s := ""
	for k := range kinds {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", k, n[k])
	}
	return s
}
