package testnet

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/rpc/api"
	"github.com/spacepanda/spacepanda/rpc/client"
)

// ModeProcess runs every node as a spacepandad process of its own, with
// its own data directory and socket, driven through rpc/client; a crash
// is a SIGKILL.
const ModeProcess = "process"

// daemon is a spacepandad process as a member.
type daemon struct {
	cmd    *exec.Cmd
	exited chan struct{}
	c      *client.Client
	id     string
	addrs  []string
	once   sync.Once
}

// binaries builds spacepandad once per run, unless Options.Binaries
// names a directory that has it.
func (r *runner) binary() (string, error) {
	r.binOnce.Do(func() {
		if r.opts.Binaries != "" {
			r.bin = filepath.Join(r.opts.Binaries, "spacepandad")
			return
		}
		dir := filepath.Join(r.data, "bin")
		cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/spacepanda/spacepanda/cmd/spacepandad")
		if out, err := cmd.CombinedOutput(); err != nil {
			r.binErr = fmt.Errorf("testnet: building spacepandad (run from the module, or give Binaries): %v\n%s", err, out)
			return
		}
		r.bin = filepath.Join(dir, "spacepandad")
	})
	return r.bin, r.binErr
}

// environ is os.Environ without SPACEPANDA_ variables, so that the
// daemons see only the settings the scenario gives them.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPACEPANDA_") {
			env = append(env, kv)
		}
	}
	return append(env, "SPACEPANDA_LOG_LEVEL=warn")
}

func (n *tnode) startDaemon(ctx context.Context) (member, func(func(event)), error) {
	r := n.r
	bin, err := r.binary()
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return nil, nil, err
	}
	settle := r.sc.Node.SettleWindow.Duration
	if settle == 0 {
		settle = 300 * time.Millisecond
	}
	socket := filepath.Join(n.dir, "spacepanda.sock")
	args := []string{"--data-dir", n.dir, "--socket", socket, "--listen", "/ip4/127.0.0.1/tcp/0", "--mdns=false", "--settle-window", settle.String()}
	for _, b := range r.bootstrap(n) {
		if strings.Contains(b, "/tcp/") {
			args = append(args, "--bootstrap", b)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = environ()
	logf, err := os.OpenFile(filepath.Join(n.dir, "daemon.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, err
	}
	d := &daemon{cmd: cmd, exited: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen && strings.HasPrefix(sc.Text(), "socket: ") {
				seen = true
				close(ready)
			}
		}
		cmd.Wait()
		logf.Close()
		close(d.exited)
	}()
	select {
	case <-ready:
	case <-d.exited:
		return nil, nil, fmt.Errorf("spacepandad exited before serving (see %s)", filepath.Join(n.dir, "daemon.log"))
	case <-ctx.Done():
		d.kill()
		return nil, nil, fmt.Errorf("spacepandad not serving: %w", ctx.Err())
	}
	if d.c, err = client.Dial(ctx, socket); err != nil {
		d.kill()
		return nil, nil, err
	}
	ident, err := d.c.Identity(ctx)
	if err != nil {
		d.kill()
		return nil, nil, err
	}
	d.id, d.addrs = ident.PeerID, ident.Addrs
	events := func(f func(event)) {
		// From the oldest event the daemon holds: what it did between
		// serving and this subscription (a restart's catch-up) is not
		// missed.
		sctx, cancel := context.WithCancel(context.Background())
		go func() { <-d.exited; cancel() }()
		err := d.c.Subscribe(sctx, api.SubscribeParams{Cursor: api.CursorOldest}, func(e api.Event) { f(apiEvent(e)) })
		if err != nil && sctx.Err() == nil {
			// A killed daemon drops the connection a moment before its
			// exit is seen: only a drop it survives is an error.
			select {
			case <-d.exited:
			case <-time.After(2 * time.Second):
				r.record(Record{Node: n.name, Ev: EvError, Err: "subscription: " + err.Error()})
			}
		}
		<-d.exited
	}
	return d, events, nil
}

func apiEvent(e api.Event) event {
	ev := event{Type: node.EventType(e.Type), Time: e.Time, Chan: e.Channel, Epoch: e.Epoch, Body: e.Error}
	if e.Type == "invite" {
		ev.Type = node.EventInvitation
	}
	if m := e.Message; m != nil {
		ev.Chan, ev.Sender, ev.Body = m.Channel, m.From, m.Text
	}
	if e.Invitation != nil {
		ev.Invite = e.Invitation.Invite
	}
	return ev
}

func (d *daemon) kill() {
	d.once.Do(func() {
		_ = d.cmd.Process.Signal(syscall.SIGKILL)
		<-d.exited
		if d.c != nil {
			d.c.Close()
		}
	})
}

func callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func (d *daemon) ID() string      { return d.id }
func (d *daemon) Addrs() []string { return d.addrs }

func (d *daemon) CreateChannel(ctx context.Context, name string) (string, error) {
	ch, err := d.c.Create(ctx, api.CreateParams{Name: name})
	return ch.Channel, err
}

func (d *daemon) Invite(ctx context.Context, ch, p string) error {
	_, err := d.c.Invite(ctx, ch, p)
	return err
}

func (d *daemon) Accept(ctx context.Context, invite string) error {
	_, err := d.c.Accept(ctx, invite)
	return err
}

func (d *daemon) Send(ctx context.Context, ch, body string) error {
	_, err := d.c.Send(ctx, ch, body)
	return err
}

func (d *daemon) Update(ctx context.Context, ch string) error {
	_, err := d.c.Update(ctx, ch)
	return err
}

func (d *daemon) Members(ch string) ([]string, error) {
	ctx, cancel := callCtx()
	defer cancel()
	ms, err := d.c.Members(ctx, ch)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		if !m.Self {
			out = append(out, m.PeerID)
		}
	}
	return out, nil
}

func (d *daemon) Info(ch string) (chanInfo, error) {
	ctx, cancel := callCtx()
	defer cancel()
	c, err := d.c.Info(ctx, ch)
	if err != nil {
		return chanInfo{}, err
	}
	return chanInfo{Epoch: c.Epoch, Auth: c.EpochAuthenticator, Members: c.Members, CommitPending: c.CommitPending, Convergence: c.Convergence}, nil
}

// PublishKeyPackages has no RPC: the daemon's publisher runs on its own,
// and the creator's Invite is retried until the KeyPackages are found.
func (d *daemon) PublishKeyPackages(context.Context) error { return nil }

// Close kills the daemon: SIGKILL, the crash process mode is for.
func (d *daemon) Close() error {
	d.kill()
	return nil
}
