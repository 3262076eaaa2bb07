package testnet

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

func linkOptions(l Link) mocknet.LinkOptions {
	return mocknet.LinkOptions{Latency: l.Latency.Duration, Bandwidth: l.Bandwidth}
}

// applyProfiles gives the links of profiled nodes their profiles (every
// other link has the scenario's default from the start).
func (r *runner) applyProfiles() {
	if r.mn == nil || len(r.sc.Profiles) == 0 {
		return
	}
	seen := map[[2]int]bool{}
	for _, p := range r.sc.Profiles {
		for _, a := range p.Nodes {
			for b := range r.nodes {
				if a == b || seen[pair(a, b)] {
					continue
				}
				seen[pair(a, b)] = true
				r.setLink(a, b)
			}
		}
	}
}

func (r *runner) setLink(a, b int) {
	opts := linkOptions(r.sc.linkFor(a, b))
	for _, l := range r.mn.LinksBetweenPeers(r.nodes[a].pid(), r.nodes[b].pid()) {
		l.SetOptions(opts)
	}
}

func pair(a, b int) [2]int {
	if a > b {
		a, b = b, a
	}
	return [2]int{a, b}
}

// unlink cuts the link between a and b for a reason; it stays cut until
// every reason is healed. Cutting the link also ends the connections
// over it, as a real partition would (mocknet keeps open connections
// otherwise).
func (r *runner) unlink(a, b int, why string) {
	k := pair(a, b)
	r.mu.Lock()
	reasons := r.cut[k]
	if reasons == nil {
		reasons = map[string]bool{}
		r.cut[k] = reasons
	}
	first := len(reasons) == 0
	reasons[why] = true
	r.mu.Unlock()
	if !first || r.mn == nil {
		return
	}
	ia, ib := r.nodes[a].pid(), r.nodes[b].pid()
	if err := r.mn.UnlinkPeers(ia, ib); err != nil {
		r.record(Record{Ev: EvError, Err: fmt.Sprintf("unlinking %d-%d: %v", a, b, err)})
	}
	_ = r.mn.DisconnectPeers(ia, ib) // an error is only "not connected"
}

// heal removes a reason (a prefix: "partition", "offline 3") from every
// cut link, and links again those left without one.
func (r *runner) heal(why string) {
	var relink [][2]int
	r.mu.Lock()
	for k, reasons := range r.cut {
		if !reasons[why] {
			continue
		}
		delete(reasons, why)
		if len(reasons) == 0 {
			delete(r.cut, k)
			relink = append(relink, k)
		}
	}
	r.mu.Unlock()
	sort.Slice(relink, func(i, j int) bool {
		return relink[i][0] < relink[j][0] || relink[i][0] == relink[j][0] && relink[i][1] < relink[j][1]
	})
	for _, k := range relink {
		if _, err := r.mn.LinkPeers(r.nodes[k[0]].pid(), r.nodes[k[1]].pid()); err != nil {
			r.record(Record{Ev: EvError, Err: fmt.Sprintf("linking %d-%d: %v", k[0], k[1], err)})
			continue
		}
		r.setLink(k[0], k[1])
	}
}

// healAll links again every cut link (before the baseline, which starts
// from the same network the nodes started on).
func (r *runner) healAll() {
	r.mu.Lock()
	var reasons []string
	seen := map[string]bool{}
	for _, rs := range r.cut {
		for w := range rs {
			if !seen[w] {
				seen[w] = true
				reasons = append(reasons, w)
			}
		}
	}
	r.mu.Unlock()
	for _, w := range reasons {
		r.heal(w)
	}
}

// enforceCuts closes, every 100 ms until ctx ends, any connection over a
// cut link: unlinking stops new dials, but a dial already under way when
// the link went (the DHT and gossipsub dial all the time) completes, and
// a partition that leaks through such a connection is no partition. It
// returns how many connections it had to close.
func (r *runner) enforceCuts(ctx context.Context) int {
	if r.mn == nil {
		return 0
	}
	closed := 0
	// A connection that lives less than a tick escapes the ticker: each
	// host also reports every connection it opens, and one over a cut
	// link is logged and closed at once.
	idx := map[string]int{}
	for i, n := range r.nodes {
		idx[n.id] = i
	}
	nb := &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		a, okA := idx[c.LocalPeer().String()]
		b, okB := idx[c.RemotePeer().String()]
		if !okA || !okB {
			return
		}
		r.mu.Lock()
		isCut := len(r.cut[pair(a, b)]) > 0
		r.mu.Unlock()
		if isCut {
			r.record(Record{Ev: EvRecut, Peer: r.nodes[a].name + "-" + r.nodes[b].name, Text: "opened while cut: " + connDesc(c)})
			go c.Close()
		}
	}}
	for _, n := range r.nodes {
		if na := r.mn.Net(n.pid()); na != nil {
			na.Notify(nb)
			defer na.StopNotify(nb)
		}
	}
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return closed
		case <-tk.C:
		}
		r.mu.Lock()
		cut := make([][2]int, 0, len(r.cut))
		for k := range r.cut {
			cut = append(cut, k)
		}
		r.mu.Unlock()
		for _, k := range cut {
			a, b := r.nodes[k[0]].pid(), r.nodes[k[1]].pid()
			if len(r.mn.LinksBetweenPeers(a, b)) > 0 {
				r.record(Record{Ev: EvError, Err: fmt.Sprintf("a link between %s and %s is back while cut", r.nodes[k[0]].name, r.nodes[k[1]].name)})
			}
			for _, p := range [][2]int{k, {k[1], k[0]}} {
				na := r.mn.Net(r.nodes[p[0]].pid())
				if na == nil {
					continue
				}
				for _, c := range na.ConnsToPeer(r.nodes[p[1]].pid()) {
					r.record(Record{Ev: EvRecut, Node: "", Peer: r.nodes[p[0]].name + "-" + r.nodes[p[1]].name, Text: connDesc(c)})
					_ = c.Close()
					closed++
				}
			}
		}
	}
}

func (r *runner) partition(groups [][]int) {
	for i, g := range groups {
		for _, h := range groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					r.unlink(a, b, "partition")
				}
			}
		}
	}
}

// isolate cuts every link of node n: it runs on, alone.
func (r *runner) isolate(n int) {
	for b := range r.nodes {
		if b != n {
			r.unlink(n, b, fmt.Sprint("offline ", n))
		}
	}
}

// connDesc says what a connection over a cut link was: its direction,
// age and the protocols of its streams, which name who dialled it.
func connDesc(c network.Conn) string {
	st := c.Stat()
	var protos []string
	for _, s := range c.GetStreams() {
		protos = append(protos, string(s.Protocol()))
	}
	return fmt.Sprintf("%s, opened %s ago, streams %v", st.Direction, time.Since(st.Opened).Round(time.Millisecond), protos)
}
