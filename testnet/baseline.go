package testnet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spacepanda/spacepanda/node/nodetest"
	"github.com/spacepanda/spacepanda/p2p"
)

// baseHost is one node's host in the baseline: p2p's gossipsub (the
// same parameters the node runs on) and nothing above it.
type baseHost struct {
	h     *p2p.Host
	chans map[int]*p2p.Channel
}

// baseline plays the same message load on raw gossipsub topics. On
// mocknet it runs on the very hosts and links the nodes ran on (their
// Close left them in the mocknet); on loopback on fresh loopback hosts.
// Faults on links play as in the node run; a crash cuts the node's links
// for as long as it would have been down; a commit storm is nothing here.
func (r *runner) baseline(ctx context.Context, msgs []message) error {
	res := r.measure()
	r.mu.Lock()
	r.pending, r.got = map[string]map[string]bool{}, map[string]map[string]bool{}
	r.mu.Unlock()
	r.sent.Store(0)
	r.owed.Store(0)
	r.delivered.Store(0)
	r.setPhase(RunBaseline, "start")
	if r.mn != nil {
		r.healAll()
	}
	hosts := make([]*baseHost, len(r.nodes))
	defer func() {
		for _, bh := range hosts {
			if bh != nil {
				bh.h.Close()
			}
		}
	}()
	open := func(i int, boot []string) error {
		cfg := p2p.Config{BootstrapPeers: boot, DHTMode: p2p.DHTServer, PublishWait: 2 * time.Second}
		if r.mn != nil {
			cfg.Host = nodetest.Restartable(r.mn.Host(r.nodes[i].pid()))
		} else {
			key, err := p2p.GenerateIdentity(nil)
			if err != nil {
				return err
			}
			cfg.Identity, cfg.ListenAddrs = key, nodetest.Loopback
		}
		h, err := p2p.New(ctx, cfg)
		if err != nil {
			return err
		}
		hosts[i] = &baseHost{h: h, chans: map[int]*p2p.Channel{}}
		return nil
	}
	if err := open(0, nil); err != nil {
		return fmt.Errorf("baseline host 0: %w", err)
	}
	boot := hosts[0].h.Addrs()
	if err := r.each(ctx, r.nodes[1:], func(ctx context.Context, n *tnode) error { return open(n.idx, boot) }); err != nil {
		return fmt.Errorf("baseline hosts: %w", err)
	}
	var recvs sync.WaitGroup
	rctx, stopRecv := context.WithCancel(ctx)
	defer func() { stopRecv(); recvs.Wait() }()
	for ci, cs := range r.chans {
		topic := []byte("testnet-baseline/" + cs.cfg.Name)
		for _, m := range cs.members {
			c, err := hosts[m].h.JoinChannel(topic, nil)
			if err != nil {
				return fmt.Errorf("baseline: %s joining %s: %w", r.nodes[m].name, cs.cfg.Name, err)
			}
			hosts[m].chans[ci] = c
			name := r.nodes[m].name
			recvs.Go(func() {
				for {
					msg, err := c.Next(rctx)
					if err != nil {
						return
					}
					if msg.Local {
						continue
					}
					id, _, _ := strings.Cut(string(msg.Data), "|")
					r.record(Record{Run: RunBaseline, Node: name, Ev: EvRecv, Chan: cs.cfg.Name, Msg: id})
					r.gotMsg(id, name)
				}
			})
		}
	}
	r.setPhase(RunBaseline, "mesh")
	if err := r.awaitTopics(ctx, hosts); err != nil {
		return err
	}
	r.setPhase(RunBaseline, "load")
	send := func(ctx context.Context, m message) {
		cs := r.chans[m.ch]
		n := r.nodes[m.sender]
		r.mu.Lock()
		to := r.toOf[m.id]
		r.mu.Unlock()
		if to == nil {
			for _, mb := range cs.members {
				if mb != m.sender {
					to = append(to, r.nodes[mb].name)
				}
			}
		}
		t := now()
		r.owe(m.id, n.name, to)
		r.sent.Add(1)
		r.record(Record{T: t, Run: RunBaseline, Node: n.name, Ev: EvSent, Chan: cs.cfg.Name, Msg: m.id, To: to, Bytes: len(m.body)})
		if err := hosts[m.sender].chans[m.ch].Publish(ctx, []byte(m.body)); err != nil {
			r.record(Record{Run: RunBaseline, Node: n.name, Ev: EvSendFailed, Chan: cs.cfg.Name, Msg: m.id, Err: err.Error()})
			return
		}
		r.record(Record{Run: RunBaseline, Node: n.name, Ev: EvAcked, Chan: cs.cfg.Name, Msg: m.id})
	}
	fault := func(ctx context.Context, i int, f Fault, _ watchFunc) {
		if r.mn == nil {
			return
		}
		switch f.Kind {
		case FaultPartition:
			r.partition(f.Groups)
		case FaultHeal:
			r.heal("partition")
		case FaultOffline:
			for _, n := range f.Nodes {
				r.isolate(n)
			}
		case FaultOnline:
			for _, n := range f.Nodes {
				r.heal(fmt.Sprint("offline ", n))
			}
		case FaultCrash:
			for _, n := range f.Nodes {
				for b := range r.nodes {
					if b != n {
						r.unlink(n, b, fmt.Sprint("crash ", n))
					}
				}
			}
		case FaultRestart:
			for _, n := range f.Nodes {
				r.heal(fmt.Sprint("crash ", n))
			}
		}
	}
	loadSec, err := r.load(ctx, msgs, send, fault)
	if err != nil {
		return err
	}
	r.endMeasure(res, RunBaseline, loadSec)
	return nil
}

// awaitTopics waits until every member sees some of its channel's other
// members in the topic (at most four, as gossipsub's mesh would start
// from), or 30 s: a publish before that reaches nobody, which would
// charge gossipsub with a start-up cost the nodes' setup already paid.
func (r *runner) awaitTopics(ctx context.Context, hosts []*baseHost) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	for {
		short := ""
		for ci, cs := range r.chans {
			want := min(len(cs.members)-1, 4)
			for _, m := range cs.members {
				if got := len(hosts[m].chans[ci].Peers()); got < want {
					short = fmt.Sprintf("%s sees %d peers in %s", r.nodes[m].name, got, cs.cfg.Name)
				}
			}
		}
		if short == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			r.record(Record{Run: RunBaseline, Ev: EvError, Err: "baseline mesh: " + short})
			return nil
		case <-tk.C:
		}
	}
}
