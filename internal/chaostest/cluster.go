package chaostest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/proctest"
	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// Member is one daemon of a Cluster.
type Member struct {
	Name   string
	Host   Host
	Daemon *proctest.Daemon
	PeerID string
	Addr   string // its multiaddr with /p2p/

	mu     sync.Mutex
	c      *client.Client // nil while the daemon is down
	cancel context.CancelFunc
}

// Client is the member's RPC client, or nil while its daemon is down.
func (m *Member) Client() *client.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.c
}

// Cluster is N daemons, each on its own loopback address, all members of
// one channel.
type Cluster struct {
	t       testing.TB
	Members []*Member
	FW      *Firewall
	Channel string // its ID, hex

	// Events the daemons emitted, by type, over all their runs (a
	// subscription from the oldest event after each start).
	evMu   sync.Mutex
	events map[string]int
}

// hosts gives n daemons addresses 127.a.b.(10+i) and group IDs of this
// process's own, so that clusters of concurrent test processes do not
// meet in the firewall's rules.
func hosts(n int) []Host {
	pid := os.Getpid()
	hs := make([]Host, n)
	for i := range hs {
		hs[i] = Host{
			Addr: netip.AddrFrom4([4]byte{127, byte(pid >> 8), byte(pid), byte(10 + i)}),
			Gid:  uint32(100000 + (pid%100000)*16 + i),
		}
	}
	return hs
}

// freePort is a TCP port free on addr now, so that a daemon can listen on
// the same address across restarts and its peers find it where they last
// saw it.
func freePort(t testing.TB, addr netip.Addr) int {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// NewCluster starts n daemons with the flags in flags and makes them one
// channel: the first creates it and invites the others one by one. Every
// daemon bootstraps from the first on its first start, and from all the
// others on every later one.
func NewCluster(ctx context.Context, t testing.TB, n int, flags ...string) *Cluster {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("chaostest needs nftables: %v", err)
	}
	c := &Cluster{t: t, events: map[string]int{}}
	hs := hosts(n)
	c.FW = NewFirewall(t, hs)
	for i, h := range hs {
		m := &Member{Name: fmt.Sprintf("d%d", i), Host: h}
		m.Daemon = proctest.New(t, m.Name)
		m.Daemon.Listen = fmt.Sprintf("/ip4/%s/tcp/%d", h.Addr, freePort(t, h.Addr))
		m.Daemon.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: h.Gid, NoSetGroups: true}}
		c.Members = append(c.Members, m)
	}
	t.Cleanup(func() {
		for _, m := range c.Members {
			m.down()
		}
	})
	for i, m := range c.Members {
		m.Daemon.Args = slices.Clone(flags)
		if i > 0 {
			m.Daemon.Args = append(m.Daemon.Args, "--bootstrap", c.Members[0].Addr)
		}
		c.start(ctx, m)
		id, err := m.Client().Identity(ctx)
		if err != nil {
			t.Fatalf("%s: identity: %v", m.Name, err)
		}
		m.PeerID = id.PeerID
		m.Addr = m.Daemon.Listen + "/p2p/" + id.PeerID
	}
	for _, m := range c.Members {
		m.Daemon.Args = slices.Clone(flags)
		for _, o := range c.Members {
			if o != m {
				m.Daemon.Args = append(m.Daemon.Args, "--bootstrap", o.Addr)
			}
		}
	}

	first := c.Members[0].Client()
	ch, err := first.Create(ctx, api.CreateParams{Name: "chaos"})
	if err != nil {
		t.Fatal(err)
	}
	c.Channel = ch.Channel
	for i, m := range c.Members[1:] {
		c.poll(ctx, m.Name+"'s invitation", func() bool {
			_, err := first.Invite(ctx, c.Channel, m.PeerID)
			var e *client.Error
			if errors.As(err, &e) && e.Code == api.CodeNoKeyPackages {
				return false // not in the directory yet
			}
			if err != nil {
				t.Fatalf("inviting %s: %v", m.Name, err)
			}
			return true
		})
		var invite string
		c.poll(ctx, m.Name+" receiving the invitation", func() bool {
			invs, err := m.Client().Invitations(ctx)
			if err != nil {
				t.Fatalf("%s: invitations: %v", m.Name, err)
			}
			for _, inv := range invs {
				if inv.Channel == c.Channel {
					invite = inv.Invite
					return true
				}
			}
			return false
		})
		if _, err := m.Client().Accept(ctx, invite); err != nil {
			t.Fatalf("%s: accept: %v", m.Name, err)
		}
		c.poll(ctx, fmt.Sprintf("%d members in one epoch", i+2), func() bool {
			ok, _ := c.converged(ctx, c.Members[:i+2])
			return ok
		})
	}
	return c
}

// poll calls cond on a ticker until it holds; ctx ending fails the test.
func (c *Cluster) poll(ctx context.Context, what string, cond func() bool) {
	c.t.Helper()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			c.t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// start starts m's daemon, dials it and subscribes to its events from the
// oldest it holds (a daemon starts its events afresh on every start).
func (c *Cluster) start(ctx context.Context, m *Member) {
	c.t.Helper()
	m.Daemon.Start(ctx)
	cl, err := client.Dial(ctx, m.Daemon.Socket)
	if err != nil {
		c.t.Fatalf("%s: %v", m.Name, err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	go func() {
		var once sync.Once
		cl.SubscribeWith(sctx, api.SubscribeParams{Cursor: api.CursorOldest}, client.SubscribeOptions{
			Ready: func(string) { once.Do(func() { close(ready) }) },
		}, func(e api.Event) {
			c.evMu.Lock()
			c.events[e.Type]++
			c.evMu.Unlock()
		})
		once.Do(func() { close(ready) })
	}()
	<-ready
	m.mu.Lock()
	m.c, m.cancel = cl, cancel
	m.mu.Unlock()
}

// down forgets m's client and subscription; it does not touch the
// process.
func (m *Member) down() {
	m.mu.Lock()
	cl, cancel := m.c, m.cancel
	m.c, m.cancel = nil, nil
	m.mu.Unlock()
	if cl != nil {
		cancel()
		cl.Close()
	}
}

// Kill sends SIGKILL to m's daemon and waits for it to end.
func (c *Cluster) Kill(m *Member) {
	m.down()
	m.Daemon.Kill()
}

// Restart starts m's daemon again, on the same address and data.
func (c *Cluster) Restart(ctx context.Context, m *Member) {
	c.t.Helper()
	c.start(ctx, m)
}

// Running reports whether m's daemon is up.
func (m *Member) Running() bool { return m.Client() != nil }

// Events is how many events of type typ the daemons emitted.
func (c *Cluster) Events(typ string) int {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	return c.events[typ]
}

// converged reports whether ms are all in one epoch with one epoch
// authenticator, with every member of the cluster in the group, no
// commit pending and nothing being resolved; the infos are returned for
// a report.
func (c *Cluster) converged(ctx context.Context, ms []*Member) (bool, []api.Channel) {
	infos := make([]api.Channel, len(ms))
	ok := true
	for i, m := range ms {
		cl := m.Client()
		if cl == nil {
			ok = false
			continue
		}
		info, err := cl.Info(ctx, c.Channel)
		if err != nil {
			infos[i].State = "error: " + err.Error()
			ok = false
			continue
		}
		infos[i] = info
		if info.Members != len(ms) || info.CommitPending || info.Convergence != "" && info.Convergence != "settled" ||
			info.Epoch != infos[0].Epoch || info.EpochAuthenticator != infos[0].EpochAuthenticator {
			ok = false
		}
	}
	return ok, infos
}

// History is the member's whole history of the channel, oldest first.
func (c *Cluster) History(ctx context.Context, m *Member) ([]api.Message, error) {
	cl := m.Client()
	if cl == nil {
		return nil, fmt.Errorf("%s is down", m.Name)
	}
	var all []api.Message
	var before uint64
	for {
		page, err := cl.History(ctx, api.HistoryParams{Channel: c.Channel, Before: before, Limit: api.MaxHistoryLimit})
		if err != nil {
			return nil, err
		}
		all = append(page, all...)
		if len(page) < api.MaxHistoryLimit || page[0].Seq <= 1 {
			return all, nil
		}
		before = page[0].Seq
	}
}

// SaveLogs copies every daemon's stderr over all its starts to
// dir/<prefix>-<name>.log, for a failure worth reading at length.
func (c *Cluster) SaveLogs(dir, prefix string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, m := range c.Members {
		if err := os.WriteFile(filepath.Join(dir, prefix+"-"+m.Name+".log"), []byte(m.Daemon.Log()), 0o600); err != nil {
			return err
		}
	}
	return nil
}
