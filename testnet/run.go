package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/pelletier/go-toml/v2"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/node/nodetest"
)

// Options shape a run, beyond its scenario.
type Options struct {
	// Out is where the event logs, report.json and the charts go; empty
	// means a temporary directory, removed after the report is made.
	Out string
	// Baseline also runs the message load on raw gossipsub.
	Baseline bool
	// Progress, if set, receives a progress line every second.
	Progress io.Writer
	// DropDelivery, if set, is asked about every message a node receives;
	// when it says yes the harness forgets that delivery, as if the
	// message never reached the node: a fault of the harness's own, for
	// showing that a lost message fails the run.
	DropDelivery func(node, msg string) bool
	// Binaries, in process mode, is a directory holding spacepandad;
	// empty means building it (go build, from within the module).
	Binaries string
}

// Run plays a scenario and reports on it. The report is rebuilt from the
// event logs the run wrote, by the same Analyze that analyze uses. An
// error is a run that could not be carried out (a node that would not
// open, a channel that could not be set up); failed assertions are in
// the report, not an error.
func Run(ctx context.Context, sc *Scenario, opts Options) (*Report, error) {
	out := opts.Out
	if out == "" {
		tmp, err := os.MkdirTemp("", "testnet-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		out = tmp
	} else if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	// Old logs would be read with the new ones.
	if err := os.RemoveAll(filepath.Join(out, "events")); err != nil {
		return nil, err
	}
	logs, err := NewLogs(out)
	if err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp("", "testnet-data-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(data)
	text, err := toml.Marshal(sc)
	if err != nil {
		return nil, err
	}
	r := &runner{sc: sc, opts: opts, logs: logs, data: data, byID: map[string]*tnode{},
		chanNames: map[string]string{}, cut: map[[2]int]map[string]bool{}, pending: map[string]map[string]bool{},
		got: map[string]map[string]bool{}, toOf: map[string][]string{}}
	r.logs.Write(Record{T: now(), Run: RunSpacepanda, Ev: EvScenario, Text: string(text)})
	stopProgress := r.progress()
	// The logs are flushed every few seconds, so that a run cut short
	// (a scenario too big for the machine) can still be analysed.
	flushDone := make(chan struct{})
	var flusher sync.WaitGroup
	flusher.Go(func() {
		tk := time.NewTicker(2 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-flushDone:
				return
			case <-tk.C:
				logs.Flush()
			}
		}
	})
	runErr := r.run(ctx)
	close(flushDone)
	flusher.Wait()
	stopProgress()
	if err := logs.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return nil, runErr
	}
	recs, err := ReadLogs(out)
	if err != nil {
		return nil, err
	}
	rep, err := Analyze(recs, sc)
	if err != nil {
		return nil, err
	}
	if opts.Out != "" {
		if err := rep.WriteJSON(out); err != nil {
			return nil, err
		}
		if err := Charts(out, rep, recs); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

type runner struct {
	sc   *Scenario
	opts Options
	logs *Logs
	data string
	mn   mocknet.Mocknet

	nodes []*tnode
	chans []*chanState

	mu        sync.Mutex
	byID      map[string]*tnode
	chanNames map[string]string          // channel ID (hex) -> name
	cut       map[[2]int]map[string]bool // unlinked pairs, and why
	// pending are the deliveries still owed, by message and receiver;
	// got those seen, also before their Send returned.
	pending map[string]map[string]bool
	got     map[string]map[string]bool
	toOf    map[string][]string // who each message was for

	run0      string // the run the records now belong to
	phase     atomic.Pointer[string]
	start     time.Time
	sent      atomic.Int64
	owed      atomic.Int64
	delivered atomic.Int64
	heapPeak  atomic.Uint64

	binOnce sync.Once
	bin     string
	binErr  error
}

type chanState struct {
	cfg     Channel
	id      string // hex
	members []int
}

// tnode is one simulated node.
type tnode struct {
	r    *runner
	idx  int
	name string
	dir  string

	mu   sync.Mutex
	m    member
	id   string // its peer ID, also while it is down
	done chan struct{}
}

func now() int64 { return time.Now().UnixNano() }

func (r *runner) record(rec Record) {
	if rec.T == 0 {
		rec.T = now()
	}
	if rec.Run == "" {
		rec.Run = r.runName()
	}
	r.logs.Write(rec)
}

func (r *runner) runName() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.run0 == "" {
		return RunSpacepanda
	}
	return r.run0
}

func (r *runner) setPhase(run, p string) {
	r.mu.Lock()
	r.run0 = run
	r.mu.Unlock()
	s := run + "/" + p
	r.phase.Store(&s)
	r.record(Record{Ev: EvPhase, Kind: p, Run: run})
	r.logs.Flush()
}

// progress prints elapsed time, phase and deliveries every second.
func (r *runner) progress() func() {
	if r.opts.Progress == nil {
		return func() {}
	}
	t0 := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(r.opts.Progress)
				return
			case <-tk.C:
			}
			phase := ""
			if p := r.phase.Load(); p != nil {
				phase = *p
			}
			fmt.Fprintf(r.opts.Progress, "\r[%7.1fs] %-22s sent %6d  delivered %8d/%-8d mem %5d MB ",
				time.Since(t0).Seconds(), phase, r.sent.Load(), r.delivered.Load(), r.owed.Load(), r.heapPeak.Load()>>20)
		}
	})
	return func() { close(done); wg.Wait() }
}

// resources measures CPU time and the peak heap over one run.
type resources struct {
	cpu0  float64
	stop  chan struct{}
	wg    sync.WaitGroup
	start time.Time
}

func cpuSeconds() (cpu, maxRSSMB float64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	cpu = tv(ru.Utime) + tv(ru.Stime)
	// Daemons of the process mode are children; their time is counted
	// once they have exited (killed, or stopped at the end).
	var ch syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ch); err == nil {
		cpu += tv(ch.Utime) + tv(ch.Stime)
	}
	return cpu, float64(ru.Maxrss) / 1024 // Linux: KiB
}

func (r *runner) measure() *resources {
	cpu, _ := cpuSeconds()
	res := &resources{cpu0: cpu, stop: make(chan struct{}), start: time.Now()}
	r.heapPeak.Store(0)
	// What the Go runtime holds from the OS (all of it, less what it
	// released): the heap objects metric counts dead objects not yet
	// swept, and ran above the resident set.
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	res.wg.Go(func() {
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64() - sample[1].Value.Uint64(); v > r.heapPeak.Load() {
				r.heapPeak.Store(v)
			}
			select {
			case <-res.stop:
				return
			case <-tk.C:
			}
		}
	})
	return res
}

func (r *runner) endMeasure(res *resources, run string, loadSeconds float64) {
	close(res.stop)
	res.wg.Wait()
	cpu, rss := cpuSeconds()
	r.record(Record{Run: run, Ev: EvResources, Values: map[string]float64{
		"cpu_seconds": round3(cpu - res.cpu0), "peak_heap_mb": round3(float64(r.heapPeak.Load()) / (1 << 20)),
		"max_rss_mb": round3(rss), "load_seconds": round3(loadSeconds), "wall_seconds": round3(time.Since(res.start).Seconds()),
	}})
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

func (r *runner) run(ctx context.Context) error {
	sc := r.sc
	if sc.Mode == ModeProcess {
		// Built before the measurement, whose CPU time counts the
		// daemons (as children) but not the compiler.
		if _, err := r.binary(); err != nil {
			return err
		}
	}
	res := r.measure()
	if sc.Mode == ModeMocknet {
		r.mn = mocknet.New()
		defer r.mn.Close()
	}
	for i := range sc.Nodes {
		r.nodes = append(r.nodes, &tnode{r: r, idx: i, name: fmt.Sprintf("n%03d", i), dir: filepath.Join(r.data, fmt.Sprintf("n%03d", i))})
	}
	defer func() {
		for _, n := range r.nodes {
			n.stop()
		}
	}()
	r.setPhase(RunSpacepanda, "start")
	if err := r.startAll(ctx); err != nil {
		return err
	}
	r.applyProfiles()
	r.setPhase(RunSpacepanda, "keypackages")
	if err := r.each(ctx, r.nodes, func(ctx context.Context, n *tnode) error { return n.publishKeyPackages(ctx) }); err != nil {
		return err
	}
	r.setPhase(RunSpacepanda, "channels")
	if err := r.setupChannels(ctx); err != nil {
		return err
	}
	msgs := r.schedule()
	r.setPhase(RunSpacepanda, "load")
	loadSec, err := r.load(ctx, msgs, r.sendNode, r.faultNode)
	if err != nil {
		return err
	}
	// Stopped before the measurement ends, so that daemons (children)
	// have exited and their CPU time is counted.
	r.setPhase(RunSpacepanda, "stop")
	for _, n := range r.nodes {
		n.stop()
	}
	r.endMeasure(res, RunSpacepanda, loadSec)
	if r.opts.Baseline {
		return r.baseline(ctx, msgs)
	}
	return nil
}

// each runs f on nodes, sc.Parallel at a time, and returns the first
// error.
func (r *runner) each(ctx context.Context, nodes []*tnode, f func(context.Context, *tnode) error) error {
	sem := make(chan struct{}, r.sc.Parallel)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, n := range nodes {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, n); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", n.name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *runner) startAll(ctx context.Context) error {
	if err := r.nodes[0].start(ctx); err != nil {
		return fmt.Errorf("%s: %w", r.nodes[0].name, err)
	}
	return r.each(ctx, r.nodes[1:], func(ctx context.Context, n *tnode) error { return n.start(ctx) })
}

// bootstrap is where a node dials in: the first node, or for the first
// node another one that is running.
func (r *runner) bootstrap(self *tnode) []string {
	for _, n := range r.nodes {
		if n == self {
			continue
		}
		if nn := n.node(); nn != nil {
			return nn.Addrs()
		}
	}
	return nil
}

func (n *tnode) node() member {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		return nil // not a nil member of a non-nil type
	}
	return n.m
}

// start opens the node (again) on its data directory.
func (n *tnode) start(ctx context.Context) error {
	r := n.r
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var (
		m      member
		events func(func(event)) // runs the event loop until the node ends
		err    error
	)
	if r.sc.Mode == ModeProcess {
		m, events, err = n.startDaemon(octx)
	} else {
		m, events, err = n.startInproc(octx)
	}
	if err != nil {
		return err
	}
	done := make(chan struct{})
	n.mu.Lock()
	restarted := n.id != ""
	n.m, n.id, n.done = m, m.ID(), done
	n.mu.Unlock()
	r.mu.Lock()
	r.byID[m.ID()] = n
	r.mu.Unlock()
	if restarted {
		r.record(Record{Node: n.name, Ev: EvRestart})
	}
	go func() {
		defer close(done)
		events(func(e event) { n.handle(m, e) })
	}()
	return nil
}

func (n *tnode) startInproc(ctx context.Context) (member, func(func(event)), error) {
	r := n.r
	cfg := nodetest.Config(n.dir, n.name, r.bootstrap(n))
	if d := r.sc.Node.SettleWindow.Duration; d > 0 {
		cfg.SettleWindow = d
	}
	if d := r.sc.Node.SyncInterval.Duration; d > 0 {
		cfg.SyncInterval = d
	}
	if r.mn != nil {
		cfg.ListenAddrs = nil
		cfg.NewHost = func(key crypto.PrivKey) (host.Host, error) {
			return nodetest.MocknetHost(r.mn, n.idx+1, key, linkOptions(r.sc.Links))
		}
	}
	nn, err := node.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	sub := nn.Subscribe(1 << 16)
	events := func(f func(event)) {
		for e := range sub.C {
			f(eventOf(e))
		}
		if sub.Dropped() {
			r.record(Record{Node: n.name, Ev: EvError, Err: "the event subscription fell behind and was dropped"})
		}
	}
	return inproc{nn}, events, nil
}

func (n *tnode) stop() {
	n.mu.Lock()
	m, done := n.m, n.done
	n.m = nil
	n.mu.Unlock()
	if m == nil {
		return
	}
	if err := m.Close(); err != nil {
		n.r.record(Record{Node: n.name, Ev: EvError, Err: "closing: " + err.Error()})
	}
	<-done
}

func (r *runner) nameOf(p string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := r.byID[p]; n != nil {
		return n.name
	}
	return p
}

func (r *runner) chanName(id string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.chanNames[id]; ok {
		return s
	}
	return id
}

// handle logs one node event and accepts every invitation.
func (n *tnode) handle(m member, e event) {
	r := n.r
	rec := Record{T: e.Time.UnixNano(), Run: RunSpacepanda, Node: n.name, Chan: r.chanName(e.Chan), Epoch: e.Epoch}
	switch e.Type {
	case node.EventMessage:
		if e.Sender == m.ID() {
			return
		}
		id, _, _ := strings.Cut(e.Body, "|")
		if r.opts.DropDelivery != nil && r.opts.DropDelivery(n.name, id) {
			return
		}
		rec.Ev, rec.Msg, rec.From = EvRecv, id, r.nameOf(e.Sender)
		r.record(rec)
		r.gotMsg(id, n.name)
	case node.EventInvitation:
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := m.Accept(ctx, e.Invite); err != nil && !errors.Is(err, node.ErrClosed) {
				r.record(Record{Run: RunSpacepanda, Node: n.name, Ev: EvError, Err: "accepting: " + err.Error()})
			}
		}()
	case node.EventChannelJoined:
		rec.Ev = EvJoined
		r.record(rec)
	case node.EventEpoch:
		// The authenticator names the epoch's state: two members that
		// entered one epoch with two authenticators forked. The event does
		// not carry it, so it is read from Info, whose epoch and
		// authenticator come from one snapshot (a later epoch, if the
		// channel has moved on since the event; that one is logged too).
		rec.Ev = EvEpoch
		if info, err := m.Info(e.Chan); err == nil {
			rec.Epoch, rec.Text = info.Epoch, info.Auth
		}
		r.record(rec)
	case node.EventCommitLost:
		rec.Ev = EvCommitLost
		r.record(rec)
	case node.EventRewound:
		rec.Ev = EvRewound
		r.record(rec)
	case node.EventRejoined:
		rec.Ev = EvRejoined
		r.record(rec)
	case node.EventError:
		rec.Ev, rec.Err = EvError, e.Body
		r.record(rec)
	}
}

// gotMsg notes a delivery for the live counts and the drain.
func (r *runner) gotMsg(id, to string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.got[id]
	if g == nil {
		g = map[string]bool{}
		r.got[id] = g
	}
	if g[to] {
		return
	}
	g[to] = true
	if p := r.pending[id]; p != nil && p[to] {
		delete(p, to)
		r.delivered.Add(1)
		if len(p) == 0 {
			delete(r.pending, id)
		}
	}
}

// owe notes the deliveries a message owes, less those already seen.
func (r *runner) owe(id, from string, to []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.toOf[id] = to
	p := map[string]bool{}
	for _, t := range to {
		if t == from {
			continue
		}
		r.owed.Add(1)
		if r.got[id][t] {
			r.delivered.Add(1)
			continue
		}
		p[t] = true
	}
	if len(p) > 0 {
		r.pending[id] = p
	}
}

func (r *runner) outstanding() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

func (n *tnode) publishKeyPackages(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	tk := time.NewTicker(200 * time.Millisecond)
	defer tk.Stop()
	for {
		err := n.node().PublishKeyPackages(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publishing KeyPackages: %w", err)
		case <-tk.C:
		}
	}
}

// setupChannels creates every channel, its creator inviting the members
// one by one (each invitee accepts on its invitation event), channels in
// parallel, and waits until each has converged.
func (r *runner) setupChannels(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, max(1, r.sc.Parallel/2))
	for _, c := range r.sc.Channels {
		cs := &chanState{cfg: c, members: c.Members}
		r.chans = append(r.chans, cs)
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := r.setupChannel(ctx, cs); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("channel %s: %w", cs.cfg.Name, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r *runner) setupChannel(ctx context.Context, cs *chanState) error {
	creator := r.nodes[cs.cfg.Creator]
	id, err := creator.node().CreateChannel(ctx, cs.cfg.Name)
	if err != nil {
		return err
	}
	cs.id = id
	r.mu.Lock()
	r.chanNames[id] = cs.cfg.Name
	r.mu.Unlock()
	r.record(Record{Run: RunSpacepanda, Node: creator.name, Ev: EvJoined, Chan: cs.cfg.Name})
	for _, m := range cs.members[1:] {
		invitee := r.nodes[m]
		var err error
		// A KeyPackage lookup can fail while the DHT settles (and a
		// daemon publishes on its own schedule): the invitation is tried
		// again, for up to a minute.
		deadline := time.Now().Add(time.Minute)
		for try := 0; ; try++ {
			r.record(Record{Run: RunSpacepanda, Node: creator.name, Ev: EvInvited, Chan: cs.cfg.Name, Peer: invitee.name, Kind: fmt.Sprint("try ", try)})
			ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
			err = creator.node().Invite(ictx, cs.id, invitee.id)
			cancel()
			if err == nil || errors.Is(err, node.ErrAlreadyMember) || strings.Contains(fmt.Sprint(err), "already a member") {
				err = nil
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
		if err != nil {
			return fmt.Errorf("inviting %s: %w", invitee.name, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second+time.Duration(len(cs.members))*time.Second)
	defer cancel()
	if _, err := r.awaitConverged(cctx, cs, 0); err != nil {
		return fmt.Errorf("converging after the invitations: %w", err)
	}
	return nil
}

// awaitConverged polls until every running member of the channel shows
// one epoch with one epoch authenticator, every member, and no commit
// pending, in an epoch past after (a commit storm must have moved the
// channel on, or it would count as converged before its commits began);
// it returns how long that took.
func (r *runner) awaitConverged(ctx context.Context, cs *chanState, after uint64) (time.Duration, error) {
	t0 := time.Now()
	tk := time.NewTicker(50 * time.Millisecond)
	defer tk.Stop()
	var why string
	for {
		var ok bool
		ok, why = r.converged(cs, after)
		if ok {
			return time.Since(t0), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(t0), fmt.Errorf("%w: %s", ctx.Err(), why)
		case <-tk.C:
		}
	}
}

func (r *runner) converged(cs *chanState, after uint64) (bool, string) {
	var auth string
	var epoch uint64
	first := true
	for _, m := range cs.members {
		nn := r.nodes[m].node()
		if nn == nil {
			continue // crashed: it cannot take part until it restarts
		}
		info, err := nn.Info(cs.id)
		switch {
		case err != nil:
			return false, fmt.Sprintf("%s: %v", r.nodes[m].name, err)
		case info.Members != len(cs.members):
			return false, fmt.Sprintf("%s sees %d members of %d", r.nodes[m].name, info.Members, len(cs.members))
		case info.CommitPending:
			return false, fmt.Sprintf("%s has a commit pending", r.nodes[m].name)
		case info.Convergence != "" && info.Convergence != node.ConvergenceSettled:
			return false, fmt.Sprintf("%s is %s", r.nodes[m].name, info.Convergence)
		case info.Epoch <= after && after > 0:
			return false, fmt.Sprintf("%s is still in epoch %d", r.nodes[m].name, info.Epoch)
		}
		if first {
			auth, epoch, first = info.Auth, info.Epoch, false
		} else if info.Auth != auth {
			return false, fmt.Sprintf("%s is in epoch %d, another member in %d (or a fork)", r.nodes[m].name, info.Epoch, epoch)
		}
	}
	return true, ""
}

// message is one scheduled message: the same in both runs.
type message struct {
	id     string
	at     time.Duration
	ch     int
	sender int
	body   string
}

// schedule draws the message load from the seed.
func (r *runner) schedule() []message {
	sc := r.sc
	rnd := rand.New(rand.NewPCG(uint64(sc.Seed), uint64(sc.Seed)^0x5ca1ab1e))
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]message, 0, sc.Load.Messages)
	for k := range sc.Load.Messages {
		ch := rnd.IntN(len(r.chans))
		members := r.chans[ch].members
		senders := len(members)
		if sc.Load.Senders > 0 {
			senders = min(senders, sc.Load.Senders)
		}
		sender := members[rnd.IntN(senders)]
		id := fmt.Sprintf("m%07d", k)
		b := []byte(id + "|")
		for len(b) < sc.Load.Size {
			b = append(b, letters[rnd.IntN(len(letters))])
		}
		out = append(out, message{id: id, at: time.Duration(float64(k) / sc.Load.Rate * float64(time.Second)), ch: ch, sender: sender, body: string(b)})
	}
	return out
}

// load sends msgs on their schedule and plays the faults on theirs, then
// waits for every owed delivery and for convergence, at most the drain.
// It returns how long the sending took.
func (r *runner) load(ctx context.Context, msgs []message, send func(context.Context, message), fault func(context.Context, int, Fault, watchFunc)) (float64, error) {
	r.mu.Lock()
	run := r.run0
	r.mu.Unlock()
	r.start = time.Now()
	cutCtx, stopCuts := context.WithCancel(ctx)
	recut := make(chan int, 1)
	go func() { recut <- r.enforceCuts(cutCtx) }()
	defer func() {
		stopCuts()
		if n := <-recut; n > 0 {
			r.record(Record{Run: run, Ev: EvRecut, Bytes: n})
		}
	}()
	var sends, watchers sync.WaitGroup
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch := func(i int, f Fault, after uint64) {
		watchers.Go(func() { r.watchConvergence(watchCtx, i, f, after) })
	}
	fi := 0
	tk := time.NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	for k := 0; k < len(msgs) || fi < len(r.sc.Faults); {
		el := time.Since(r.start)
		for fi < len(r.sc.Faults) && r.sc.Faults[fi].At.Duration <= el && (k >= len(msgs) || r.sc.Faults[fi].At.Duration <= msgs[k].at) {
			f := r.sc.Faults[fi]
			r.record(Record{Ev: EvFault, Fault: fi, Kind: f.Kind})
			fault(ctx, fi, f, watch)
			fi++
		}
		for k < len(msgs) && msgs[k].at <= el && (fi >= len(r.sc.Faults) || msgs[k].at < r.sc.Faults[fi].At.Duration) {
			m := msgs[k]
			sends.Go(func() { send(ctx, m) })
			k++
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tk.C:
		}
	}
	loadSec := time.Since(r.start).Seconds()
	sends.Wait()
	r.setPhase(run, "drain")
	drain := r.sc.Drain.Duration
	if run == RunBaseline {
		// Raw gossipsub brings nothing back later: what has not arrived
		// seconds after the load never will.
		drain = min(drain, 10*time.Second)
	}
	dctx, cancel := context.WithTimeout(ctx, drain)
	defer cancel()
	for r.outstanding() > 0 && dctx.Err() == nil {
		select {
		case <-dctx.Done():
		case <-tk.C:
		}
	}
	if run == RunSpacepanda {
		r.setPhase(run, "converge")
		watchers.Wait()
		for _, cs := range r.chans {
			fctx, cancel := context.WithTimeout(ctx, r.sc.Drain.Duration)
			d, err := r.awaitConverged(fctx, cs, 0)
			cancel()
			rec := Record{Ev: EvConverged, Fault: -1, Kind: "end", Chan: cs.cfg.Name, Ms: ms(int64(d))}
			if err != nil {
				rec.Err = err.Error()
			}
			r.record(rec)
		}
	}
	stopWatch()
	watchers.Wait()
	return loadSec, nil
}

// watchFunc starts measuring convergence after fault i; see
// watchConvergence.
type watchFunc func(i int, f Fault, after uint64)

// watchConvergence measures, after a fault that ends a disturbance, how
// long each channel takes to converge, up to the end of the drain.
func (r *runner) watchConvergence(ctx context.Context, i int, f Fault, after uint64) {
	var wg sync.WaitGroup
	for _, cs := range r.chans {
		if f.Kind == FaultCommitStorm && cs.cfg.Name != f.Channel {
			continue
		}
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(ctx, r.sc.Drain.Duration+r.loadLeft())
			defer cancel()
			d, err := r.awaitConverged(wctx, cs, after)
			rec := Record{Ev: EvConverged, Fault: i, Kind: f.Kind, Chan: cs.cfg.Name, Ms: ms(int64(d))}
			if err != nil {
				rec.Err = err.Error()
			}
			r.record(rec)
		})
	}
	wg.Wait()
}

// epochOf is the highest epoch a running member of the channel is in.
func (r *runner) epochOf(cs *chanState) uint64 {
	var e uint64
	for _, m := range cs.members {
		if nn := r.nodes[m].node(); nn != nil {
			if info, err := nn.Info(cs.id); err == nil {
				e = max(e, info.Epoch)
			}
		}
	}
	return e
}

// loadLeft is how much of the load's schedule is still to come.
func (r *runner) loadLeft() time.Duration {
	if r.sc.Load.Rate == 0 {
		return 0
	}
	end := time.Duration(float64(r.sc.Load.Messages) / r.sc.Load.Rate * float64(time.Second))
	return max(0, end-time.Since(r.start))
}

// sendNode sends one message through its sender's node.
func (r *runner) sendNode(ctx context.Context, m message) {
	cs := r.chans[m.ch]
	n := r.nodes[m.sender]
	nn := n.node()
	if nn == nil {
		r.record(Record{Node: n.name, Ev: EvSendFailed, Chan: cs.cfg.Name, Msg: m.id, Err: "the node is down"})
		return
	}
	members, err := nn.Members(cs.id)
	if err != nil {
		r.record(Record{Node: n.name, Ev: EvSendFailed, Chan: cs.cfg.Name, Msg: m.id, Err: err.Error()})
		return
	}
	to := make([]string, 0, len(members))
	for _, mb := range members {
		to = append(to, r.nameOf(mb))
	}
	t := now()
	r.owe(m.id, n.name, to)
	r.sent.Add(1)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	err = nn.Send(sctx, cs.id, m.body)
	// The sent record carries the time before the call: latency is from
	// the user's send to the receiver's event, MLS and store included.
	r.record(Record{T: t, Node: n.name, Ev: EvSent, Chan: cs.cfg.Name, Msg: m.id, To: to, Bytes: len(m.body)})
	if err != nil {
		r.record(Record{Node: n.name, Ev: EvSendFailed, Chan: cs.cfg.Name, Msg: m.id, Err: err.Error()})
		return
	}
	r.record(Record{Node: n.name, Ev: EvAcked, Chan: cs.cfg.Name, Msg: m.id})
}

// faultNode plays a fault on the nodes.
func (r *runner) faultNode(ctx context.Context, i int, f Fault, watch watchFunc) {
	switch f.Kind {
	case FaultPartition:
		r.partition(f.Groups)
	case FaultHeal:
		r.heal("partition")
		watch(i, f, 0)
	case FaultOffline:
		for _, n := range f.Nodes {
			r.isolate(n)
		}
	case FaultOnline:
		for _, n := range f.Nodes {
			r.heal(fmt.Sprint("offline ", n))
		}
		watch(i, f, 0)
	case FaultCrash:
		for _, n := range f.Nodes {
			r.nodes[n].stop()
		}
	case FaultRestart:
		for _, n := range f.Nodes {
			if err := r.nodes[n].start(ctx); err != nil {
				r.record(Record{Node: r.nodes[n].name, Ev: EvError, Err: "restarting: " + err.Error()})
			}
		}
		watch(i, f, 0)
	case FaultCommitStorm:
		cs := r.chans[r.sc.channel(f.Channel)]
		after := r.epochOf(cs)
		for _, m := range f.Nodes {
			nn := r.nodes[m].node()
			if nn == nil {
				continue
			}
			// Every commit is asked for at the same moment; Update
			// returns when its commit won, which the run does not wait
			// for.
			go func() {
				uctx, cancel := context.WithTimeout(ctx, r.sc.Drain.Duration)
				defer cancel()
				if err := nn.Update(uctx, cs.id); err != nil {
					r.record(Record{Node: r.nodes[m].name, Ev: EvError, Chan: cs.cfg.Name, Err: "update: " + err.Error()})
				}
			}()
		}
		watch(i, f, after)
	}
}
