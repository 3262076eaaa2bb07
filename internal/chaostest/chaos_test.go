package chaostest_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/chaostest"
)

// env is a positive integer test parameter from the environment.
func env(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// TestChaos plays a seeded schedule against real spacepandad processes:
// messages from random members, concurrent commits, partitions into two
// halves made with nftables, SIGKILL of a daemon and its restart. After
// it, with everything healed and running, every member must be in one
// epoch with one epoch authenticator and hold every acknowledged message
// exactly once. SPACEPANDA_CHAOS_SEED replays a schedule (it is logged,
// and named again on failure); SPACEPANDA_CHAOS_SECONDS (15) and
// SPACEPANDA_CHAOS_MEMBERS (5) size it; SPACEPANDA_CHAOS_SYNC_MS (3000) is
// the daemons' sync interval, whose rounds also compare views (the
// default, 30 s, would make a rejoin take a minute, too long for CI); SPACEPANDA_CHAOS_LOGS names a
// directory that keeps the daemons' logs of a failed run.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("real daemons under a chaos schedule")
	}
	if err := chaostest.Available(); err != nil {
		t.Skipf("chaostest needs nftables: %v", err)
	}
	seed := env(t, "SPACEPANDA_CHAOS_SEED", uint64(time.Now().UnixNano()))
	p := chaostest.Params{
		Members:  int(env(t, "SPACEPANDA_CHAOS_MEMBERS", 5)),
		Duration: time.Duration(env(t, "SPACEPANDA_CHAOS_SECONDS", 15)) * time.Second,
	}
	syncEvery := time.Duration(env(t, "SPACEPANDA_CHAOS_SYNC_MS", 3000)) * time.Millisecond
	sched := chaostest.Generate(seed, p)
	counts := chaostest.Count(sched)
	t.Logf("seed %d: %d members, %s: %s", seed, p.Members, p.Duration, chaostest.CountString(counts))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("failed with seed %d: rerun with SPACEPANDA_CHAOS_SEED=%d SPACEPANDA_CHAOS_SECONDS=%d SPACEPANDA_CHAOS_MEMBERS=%d",
				seed, seed, p.Duration/time.Second, p.Members)
		}
	})
	bound := 2*time.Minute + p.Duration/4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+p.Duration+2*bound)
	defer cancel()

	c := chaostest.NewCluster(ctx, t, p.Members, "--sync-interval", syncEvery.String())
	if dir := os.Getenv("SPACEPANDA_CHAOS_LOGS"); dir != "" {
		t.Cleanup(func() {
			if t.Failed() {
				if err := c.SaveLogs(dir, fmt.Sprint(seed)); err != nil {
					t.Log(err)
				} else {
					t.Logf("the daemons' logs are in %s/%d-*.log", dir, seed)
				}
			}
		})
	}
	r := c.Run(ctx, seed, sched)
	c.AwaitConverged(ctx, r, bound)
	var failed []string
	for k, n := range r.Failed {
		failed = append(failed, fmt.Sprintf("%s ×%d", k, n))
	}
	t.Logf("chaos summary: seed %d, %d members, sync every %s, schedule %s (ran %s, lagged %s at worst), events %s; "+
		"%d messages acknowledged, %d commits; failed: [%s]; converged %s after the schedule at epoch %d; "+
		"rewound %d, rejoined %d, commits lost and made again %d",
		seed, p.Members, syncEvery, p.Duration, r.Took.Round(time.Millisecond), r.Lag.Round(time.Millisecond), chaostest.CountString(counts),
		len(r.Sent), r.Commits, strings.Join(failed, ", "), r.Converge.Round(time.Millisecond), r.Epoch,
		c.Events("rewound"), c.Events("rejoined"), c.Events("commit_lost"))
}

// TestGenerate: a seed gives one schedule; the schedule keeps its own
// rules (in time order, nobody acts while down, a restart after each
// kill, fewer than half down, one partition at a time, nothing at or
// after the end).
func TestGenerate(t *testing.T) {
	p := chaostest.Params{Members: 5, Duration: 2 * time.Minute}
	a, b := chaostest.Generate(42, p), chaostest.Generate(42, p)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed gave two schedules")
	}
	if reflect.DeepEqual(a, chaostest.Generate(43, p)) {
		t.Fatal("seeds 42 and 43 gave one schedule")
	}
	n := chaostest.Count(a)
	for _, k := range []chaostest.Kind{chaostest.Send, chaostest.Commit, chaostest.Partition, chaostest.Heal, chaostest.Kill, chaostest.Restart} {
		if n[k] == 0 {
			t.Errorf("two minutes of schedule and no %s: %s", k, chaostest.CountString(n))
		}
	}
	for seed := range uint64(50) {
		up := make([]bool, p.Members)
		for i := range up {
			up[i] = true
		}
		down, cut := 0, false
		var last time.Duration
		for i, e := range chaostest.Generate(seed, p) {
			where := fmt.Sprintf("seed %d event %d (%s at %s)", seed, i, e.Kind, e.At)
			if e.At < last || e.At >= p.Duration {
				t.Fatalf("%s: out of order or past the end", where)
			}
			last = e.At
			switch e.Kind {
			case chaostest.Send, chaostest.Commit:
				for _, m := range e.Members {
					if !up[m] {
						t.Fatalf("%s: member %d is down", where, m)
					}
				}
			case chaostest.Kill:
				if !up[e.Members[0]] {
					t.Fatalf("%s: killed twice", where)
				}
				up[e.Members[0]] = false
				if down++; down > (p.Members-1)/2 {
					t.Fatalf("%s: %d down", where, down)
				}
			case chaostest.Restart:
				if up[e.Members[0]] {
					t.Fatalf("%s: restarted while running", where)
				}
				up[e.Members[0]] = true
				down--
			case chaostest.Partition:
				if cut || len(e.Members) != p.Members/2 {
					t.Fatalf("%s: partition %v while cut=%v", where, e.Members, cut)
				}
				cut = true
			case chaostest.Heal:
				if !cut {
					t.Fatalf("%s: heal without a partition", where)
				}
				cut = false
			}
		}
	}
}

// helperEnv makes the test binary a dialler (TestMain): it connects to
// the address in the variable and echoes every line it reads.
const helperEnv = "CHAOSTEST_ECHO_DIAL"

func TestMain(m *testing.M) {
	if addr := os.Getenv(helperEnv); addr != "" {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			fmt.Fprintln(conn, sc.Text())
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestFirewall: a process under a host's group ID dials from the host's
// own address (the source NAT); a partition between the two addresses
// stops the connection's traffic both ways, and healing lets it through
// again, on the same connection.
func TestFirewall(t *testing.T) {
	if err := chaostest.Available(); err != nil {
		t.Skipf("chaostest needs nftables: %v", err)
	}
	pid := os.Getpid()
	dialer := chaostest.Host{Addr: netip.AddrFrom4([4]byte{127, byte(pid >> 8), byte(pid), 250}), Gid: uint32(100000 + (pid%100000)*16 + 15)}
	listener := netip.AddrFrom4([4]byte{127, byte(pid >> 8), byte(pid), 251})
	fw := chaostest.NewFirewall(t, []chaostest.Host{dialer})
	ln, err := net.Listen("tcp", netip.AddrPortFrom(listener, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+ln.Addr().String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: dialer.Gid, NoSetGroups: true}}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != dialer.Addr {
		t.Fatalf("the dialler's connection comes from %s, want %s (source NAT)", got, dialer.Addr)
	}
	rd := bufio.NewReader(conn)
	echo := func(line string, within time.Duration) error {
		conn.SetDeadline(time.Now().Add(within))
		if _, err := fmt.Fprintln(conn, line); err != nil {
			return err
		}
		got, err := rd.ReadString('\n')
		if err == nil && got != line+"\n" {
			t.Fatalf("echo %q, want %q", got, line)
		}
		return err
	}
	if err := echo("before", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := fw.Partition([]netip.Addr{dialer.Addr}, []netip.Addr{listener}); err != nil {
		t.Fatal(err)
	}
	if err := echo("during", 2*time.Second); err == nil {
		t.Fatal("the echo came back through the partition")
	}
	if err := fw.Heal(); err != nil {
		t.Fatal(err)
	}
	// The line sent during the partition is retransmitted (backing off
	// from 200 ms, so within a few seconds) and echoed first.
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if got, err := rd.ReadString('\n'); err != nil || got != "during\n" {
		t.Fatalf("after healing: %q, %v", got, err)
	}
	if err := echo("after", 20*time.Second); err != nil {
		t.Fatal(err)
	}
}
