// Package proctest runs real spacepandad processes and drives them with
// the real spacepanda CLI, for end-to-end tests: built binaries, one data
// directory and socket per daemon, loopback TCP, SIGKILL as a fault.
package proctest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds spacepandad and spacepanda once per test process and
// returns the directory holding them.
func Binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "spacepanda-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "github.com/spacepanda/spacepanda/cmd/spacepandad", "github.com/spacepanda/spacepanda/cmd/spacepanda")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Daemon is one spacepandad with its own data directory.
type Daemon struct {
	t      testing.TB
	Name   string
	Dir    string
	Socket string
	Args   []string // extra flags for every start
	// Prefix, if set, is a command line the daemon runs under, such as
	// `ip netns exec NAME` (netlab.Host.Prefix) to start it inside a
	// network namespace. It must exec the daemon in its own place, so
	// that signals reach the daemon.
	Prefix []string
	// Listen, if set, is the multiaddr every start listens on in place of
	// 127.0.0.1 with a kernel-chosen port, so that a test can give each
	// daemon an address of its own and keep it across restarts.
	Listen string
	// SysProcAttr, if set, is the daemon process's: a test that tells
	// daemons apart by their group ID in firewall rules sets Credential.
	SysProcAttr *syscall.SysProcAttr

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	stderr *bytes.Buffer
}

// logName is the file in a daemon's data directory that collects its
// stderr over every start, for the failure report.
const logName = "daemon.log"

// Environ is os.Environ without SPACEPANDA_ variables, so that a test's
// daemons and CLI see only the settings the test gives them, not the
// developer's shell or the CI runner's.
func Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPACEPANDA_") {
			env = append(env, kv)
		}
	}
	return env
}

// New makes a daemon that is not started yet.
func New(t testing.TB, name string, args ...string) *Daemon {
	dir := t.TempDir()
	// spacepandad refuses a data directory others may enter, and
	// t.TempDir's is 0755 (as of Go 1.26; it follows the umask).
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{t: t, Name: name, Dir: dir, Socket: filepath.Join(dir, "spacepanda.sock"), Args: args}
	t.Cleanup(func() {
		d.Kill()
		if t.Failed() {
			d.reportLog()
		}
	})
	return d
}

// Start runs the daemon and returns once it has printed its socket line,
// that is, once it serves.
func (d *Daemon) Start(ctx context.Context) {
	d.t.Helper()
	bin := Binaries(d.t)
	listen := "/ip4/127.0.0.1/tcp/0"
	if d.Listen != "" {
		listen = d.Listen
	}
	args := append([]string{"--data-dir", d.Dir, "--listen", listen, "--mdns=false", "--settle-window", "300ms"}, d.Args...)
	argv := append(append(append([]string{}, d.Prefix...), filepath.Join(bin, "spacepandad")), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = d.SysProcAttr
	level := os.Getenv("SPACEPANDA_TEST_LOG_LEVEL")
	if level == "" {
		level = "warn"
	}
	cmd.Env = append(Environ(), "SPACEPANDA_LOG_LEVEL="+level)
	out, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	d.stderr = new(bytes.Buffer)
	logf, err := os.OpenFile(filepath.Join(d.Dir, logName), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	fmt.Fprintf(logf, "--- start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd.Stderr = io.MultiWriter(d.stderr, logf)
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	exited := make(chan struct{})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "socket: ") {
				close(ready)
			}
		}
		cmd.Wait()
		logf.Close()
		close(exited)
	}()
	d.mu.Lock()
	d.cmd, d.exited = cmd, exited
	d.mu.Unlock()
	select {
	case <-ready:
	case <-exited:
		d.t.Fatalf("%s: spacepandad exited before serving: %s", d.Name, d.stderr)
	case <-ctx.Done():
		d.t.Fatalf("%s: spacepandad not serving: %v", d.Name, ctx.Err())
	}
}

// StartFailing runs the daemon as Start would and expects it to exit
// before serving; it returns the exit status and stderr. Serving instead
// fails the test (the daemon is killed).
func (d *Daemon) StartFailing(ctx context.Context) (code int, stderr string) {
	d.t.Helper()
	args := append([]string{"--data-dir", d.Dir, "--listen", "/ip4/127.0.0.1/tcp/0", "--mdns=false"}, d.Args...)
	cmd := exec.CommandContext(ctx, filepath.Join(Binaries(d.t), "spacepandad"), args...)
	cmd.Env = append(Environ(), "SPACEPANDA_LOG_LEVEL=warn")
	var out, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errBuf
	err := cmd.Run()
	if strings.Contains(out.String(), "socket: ") {
		d.t.Fatalf("%s: spacepandad served, want it to refuse to start: %s", d.Name, errBuf.String())
	}
	if err == nil {
		return 0, errBuf.String()
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		d.t.Fatalf("%s: spacepandad: %v", d.Name, err)
	}
	return ee.ExitCode(), errBuf.String()
}

// Log is the daemon's stderr so far, over all its starts (at
// SPACEPANDA_TEST_LOG_LEVEL, warn unless set).
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, logName))
	return string(b)
}

// reportLog logs the tail of the daemon's stderr over all its starts.
// SPACEPANDA_TEST_LOG_LEVEL=debug makes it say more.
func (d *Daemon) reportLog() {
	log := d.Log()
	if log == "" {
		return
	}
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	d.t.Logf("%s: the last %d lines of spacepandad's stderr:\n%s", d.Name, len(lines), strings.Join(lines, "\n"))
}

// Kill sends SIGKILL and waits for the process to end.
func (d *Daemon) Kill() { d.signal(syscall.SIGKILL) }

// Stop sends SIGTERM (graceful shutdown) and waits for the process.
func (d *Daemon) Stop() { d.signal(syscall.SIGTERM) }

func (d *Daemon) signal(sig syscall.Signal) {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.cmd = nil
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	<-exited
}

// Run runs `spacepanda --socket S --json ARGS...` and returns its stdout
// and exit status.
func (d *Daemon) Run(ctx context.Context, stdin string, args ...string) ([]byte, int) {
	d.t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(Binaries(d.t), "spacepanda"), append([]string{"--socket", d.Socket, "--json"}, args...)...)
	cmd.Env = Environ()
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			d.t.Fatalf("%s: spacepanda %v: %v", d.Name, args, err)
		}
		code = ee.ExitCode()
	}
	return out, code
}

// CLI runs a command that must succeed and decodes its JSON into v.
func (d *Daemon) CLI(ctx context.Context, v any, args ...string) {
	d.t.Helper()
	out, code := d.Run(ctx, "", args...)
	if code != 0 {
		d.t.Fatalf("%s: spacepanda %s: exit %d: %s", d.Name, strings.Join(args, " "), code, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			d.t.Fatalf("%s: spacepanda %s: %v: %q", d.Name, strings.Join(args, " "), err, out)
		}
	}
}

// Identity is `spacepanda id`.
type Identity struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

// ID returns the daemon's identity.
func (d *Daemon) ID(ctx context.Context) Identity {
	var id Identity
	d.CLI(ctx, &id, "id")
	return id
}

// Message is one entry of `spacepanda history`.
type Message struct {
	ID   string `json:"id"`
	From string `json:"from"`
	Text string `json:"text"`
}

// History is the channel's whole history, oldest first.
func (d *Daemon) History(ctx context.Context, channel string) []Message {
	var ms []Message
	d.CLI(ctx, &ms, "history", channel, "--limit", "1000")
	return ms
}

// Await polls cond until it holds or ctx ends. Polling a process from
// outside is the only view a CLI user has; each poll is one CLI call.
func Await(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// Invite invites peer to channel, retrying while the invitee's
// KeyPackages are not yet in the directory (a daemon publishes them
// shortly after it starts).
func (d *Daemon) Invite(ctx context.Context, channel, peer string) {
	d.t.Helper()
	Await(ctx, d.t, "invite of "+peer, func() bool {
		_, code := d.Run(ctx, "", "channel", "invite", channel, peer)
		return code == 0
	})
}

// AcceptFrom waits for an invitation to channel and accepts it.
func (d *Daemon) AcceptFrom(ctx context.Context, channel string) {
	d.t.Helper()
	var invite string
	Await(ctx, d.t, d.Name+"'s invitation", func() bool {
		var invs []struct {
			Invite  string `json:"invite"`
			Channel string `json:"channel"`
		}
		d.CLI(ctx, &invs, "invites")
		for _, i := range invs {
			if i.Channel == channel {
				invite = i.Invite
				return true
			}
		}
		return false
	})
	d.CLI(ctx, nil, "accept", invite)
}
