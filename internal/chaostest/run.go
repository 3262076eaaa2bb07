package chaostest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// Sent is a message whose send the daemon acknowledged.
type Sent struct {
	ID, Text, From string
	Event          int           // its index in the schedule
	Acked          time.Duration // when the daemon acknowledged it, from the schedule's start
}

// Result is what running a schedule did.
type Result struct {
	Sent     []Sent         // acknowledged sends
	Commits  int            // updates that returned success
	Failed   map[string]int // failed sends and commits, by "kind: error name"
	Took     time.Duration  // the schedule's wall time
	Lag      time.Duration  // how far the run fell behind the schedule at worst
	Epoch    uint64         // the final epoch, once converged
	Converge time.Duration  // from the end of the schedule to convergence

	sched []Event
}

// opTimeout bounds one send or commit: a commit in a partition or while
// members restart may take several settle rounds.
const opTimeout = time.Minute

// Run plays the schedule against the cluster in real time: sends and
// commits run concurrently on goroutines of their own (a commit event's
// members commit at once), partitions, heals, kills and restarts happen
// in order on the caller's goroutine. seed only names the messages.
// Once the schedule is over, it heals the partition, restarts every
// daemon that is down and waits for the sends and commits in flight.
func (c *Cluster) Run(ctx context.Context, seed uint64, sched []Event) *Result {
	c.t.Helper()
	r := &Result{Failed: map[string]int{}, sched: sched}
	var mu sync.Mutex
	fail := func(kind string, err error) {
		name := "error"
		var e *client.Error
		switch {
		case errors.As(err, &e):
			name = e.Name
		case errors.Is(err, client.ErrDisconnected):
			name = "disconnected"
		case errors.Is(err, context.DeadlineExceeded):
			name = "timeout"
		case err != nil:
			name = err.Error()
		}
		mu.Lock()
		r.Failed[kind+": "+name]++
		mu.Unlock()
	}
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n, e := range sched {
		if wait := time.Until(start.Add(e.At)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				c.t.Fatalf("schedule at event %d of %d: %v", n, len(sched), ctx.Err())
			case <-timer.C:
			}
		} else {
			r.Lag = max(r.Lag, -wait)
		}
		switch e.Kind {
		case Send:
			m := c.Members[e.Members[0]]
			cl := m.Client()
			if cl == nil {
				fail("send", errors.New("down"))
				continue
			}
			text := fmt.Sprintf("seed %d event %d from %s", seed, n, m.Name)
			wg.Go(func() {
				octx, cancel := context.WithTimeout(ctx, opTimeout)
				defer cancel()
				res, err := cl.Send(octx, c.Channel, text)
				if err != nil {
					fail("send", err)
					return
				}
				mu.Lock()
				r.Sent = append(r.Sent, Sent{ID: res.ID, Text: text, From: m.Name, Event: n, Acked: time.Since(start)})
				mu.Unlock()
			})
		case Commit:
			for _, i := range e.Members {
				cl := c.Members[i].Client()
				if cl == nil {
					fail("commit", errors.New("down"))
					continue
				}
				wg.Go(func() {
					octx, cancel := context.WithTimeout(ctx, opTimeout)
					defer cancel()
					if _, err := cl.Update(octx, c.Channel); err != nil {
						fail("commit", err)
						return
					}
					mu.Lock()
					r.Commits++
					mu.Unlock()
				})
			}
		case Partition:
			var a, b []netip.Addr
			in := map[int]bool{}
			for _, i := range e.Members {
				in[i] = true
			}
			for i, m := range c.Members {
				if in[i] {
					a = append(a, m.Host.Addr)
				} else {
					b = append(b, m.Host.Addr)
				}
			}
			if err := c.FW.Partition(a, b); err != nil {
				c.t.Fatal(err)
			}
		case Heal:
			if err := c.FW.Heal(); err != nil {
				c.t.Fatal(err)
			}
		case Kill:
			c.Kill(c.Members[e.Members[0]])
		case Restart:
			c.Restart(ctx, c.Members[e.Members[0]])
		}
	}
	r.Took = time.Since(start)
	if err := c.FW.Heal(); err != nil {
		c.t.Fatal(err)
	}
	for _, m := range c.Members {
		if !m.Running() {
			c.Restart(ctx, m)
		}
	}
	wg.Wait()
	return r
}

// AwaitConverged waits, polling on a ticker for at most bound, until
// every member is in one epoch with one epoch authenticator and has
// every acknowledged message in its history; then it checks that each
// is there exactly once and that no message shows twice (by ID or by
// text: a re-send must keep its ID). A failure reports what each member
// shows, and for the messages missing somewhere who has them and what the
// schedule was doing when they were sent.
func (c *Cluster) AwaitConverged(ctx context.Context, r *Result, bound time.Duration) {
	c.t.Helper()
	began := time.Now()
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	progress := time.NewTicker(15 * time.Second)
	defer progress.Stop()
	infos := make([]api.Channel, len(c.Members))
	holders := map[string][]string{} // acknowledged message ID -> members holding it
	poll := func(ctx context.Context) bool {
		ok, now := c.converged(ctx, c.Members)
		for i, in := range now {
			if in.Channel != "" || infos[i].Channel == "" {
				infos[i] = in
			}
		}
		clear(holders)
		complete := true
		for _, m := range c.Members {
			h, err := c.History(ctx, m)
			if err != nil {
				complete = false
				continue
			}
			for _, msg := range h {
				holders[msg.ID] = append(holders[msg.ID], m.Name)
			}
		}
		for _, s := range r.Sent {
			if len(holders[s.ID]) < len(c.Members) {
				complete = false
			}
		}
		return ok && complete
	}
	report := func() string {
		var b strings.Builder
		missing := map[string]int{}
		for _, s := range r.Sent {
			for _, m := range c.Members {
				if !slices.Contains(holders[s.ID], m.Name) {
					missing[m.Name]++
				}
			}
		}
		for i, m := range c.Members {
			in := infos[i]
			fmt.Fprintf(&b, "\n%s: epoch %d auth %.16s members %d pending %v state %s convergence %s %s; missing %d of %d acknowledged messages",
				m.Name, in.Epoch, in.EpochAuthenticator, in.Members, in.CommitPending, in.State, in.Convergence, in.ConvergenceNote, missing[m.Name], len(r.Sent))
		}
		shown := 0
		for _, s := range r.Sent {
			if len(holders[s.ID]) == len(c.Members) {
				continue
			}
			if shown++; shown > 40 {
				fmt.Fprintf(&b, "\n(and more)")
				break
			}
			fmt.Fprintf(&b, "\nmissing somewhere: %q (%s), acknowledged after %s; held by %v; %s",
				s.Text, s.ID, s.Acked.Round(time.Millisecond), holders[s.ID], r.stateAt(c, s.Event))
		}
		return b.String()
	}
	for !poll(wctx) {
		select {
		case <-wctx.Done():
			// The last poll may have failed on the deadline: one more,
			// outside it, for the report.
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			poll(rctx)
			rcancel()
			c.t.Fatalf("not converged %s after the schedule:%s", bound, report())
		case <-progress.C:
			c.t.Logf("%s after the schedule, not converged yet:%s", time.Since(began).Round(time.Second), report())
		case <-tick.C:
		}
	}
	r.Converge = time.Since(began)
	r.Epoch = infos[0].Epoch
	for _, m := range c.Members {
		h, err := c.History(ctx, m)
		if err != nil {
			c.t.Fatalf("%s: history: %v", m.Name, err)
		}
		ids, texts := map[string]int{}, map[string]int{}
		for _, msg := range h {
			ids[msg.ID]++
			texts[msg.Text]++
		}
		var dup []string
		for id, n := range ids {
			if n > 1 {
				dup = append(dup, fmt.Sprintf("ID %s ×%d", id, n))
			}
		}
		for text, n := range texts {
			if n > 1 {
				dup = append(dup, fmt.Sprintf("%q ×%d", text, n))
			}
		}
		for _, s := range r.Sent {
			if ids[s.ID] != 1 {
				dup = append(dup, fmt.Sprintf("acknowledged %s (%q) ×%d", s.ID, s.Text, ids[s.ID]))
			}
		}
		sort.Strings(dup)
		if len(dup) > 0 {
			c.t.Errorf("%s's history (%d messages) is not exactly once: %s", m.Name, len(h), strings.Join(dup, "; "))
		}
	}
}

// stateAt says what the schedule had done by event n: who was down, the
// partition in place, and the faults of the 5 s before.
func (r *Result) stateAt(c *Cluster, n int) string {
	down := map[int]bool{}
	var cut []int
	var recent []string
	at := r.sched[n].At
	for _, e := range r.sched[:n] {
		switch e.Kind {
		case Kill:
			down[e.Members[0]] = true
		case Restart:
			delete(down, e.Members[0])
		case Partition:
			cut = e.Members
		case Heal:
			cut = nil
		}
		if e.Kind != Send && at-e.At < 5*time.Second {
			var names []string
			for _, i := range e.Members {
				names = append(names, c.Members[i].Name)
			}
			recent = append(recent, fmt.Sprintf("%s %v at %s", e.Kind, names, e.At.Round(time.Millisecond)))
		}
	}
	var ds, cs []string
	for i, m := range c.Members {
		if down[i] {
			ds = append(ds, m.Name)
		}
	}
	for _, i := range cut {
		cs = append(cs, c.Members[i].Name)
	}
	return fmt.Sprintf("sent at %s as event %d: down %v, cut off %v; before it: %s", at.Round(time.Millisecond), n, ds, cs, strings.Join(recent, ", "))
}
