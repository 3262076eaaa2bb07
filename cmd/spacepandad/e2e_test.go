package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/proctest"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// trio starts alice, then bob and carol bootstrapping from her.
func trio(ctx context.Context, t *testing.T) (alice, bob, carol *proctest.Daemon) {
	alice = proctest.New(t, "alice")
	alice.Start(ctx)
	boot := alice.ID(ctx).Addrs[0]
	bob = proctest.New(t, "bob", "--bootstrap", boot)
	carol = proctest.New(t, "carol", "--bootstrap", boot)
	bob.Start(ctx)
	carol.Start(ctx)
	return alice, bob, carol
}

func create(ctx context.Context, d *proctest.Daemon, name string) string {
	var c struct{ Channel, Name string }
	d.CLI(ctx, &c, "channel", "create", name)
	return c.Channel
}

func send(ctx context.Context, d *proctest.Daemon, ch, text string) string {
	var r struct{ Channel, ID string }
	d.CLI(ctx, &r, "send", ch, text)
	return r.ID
}

// once checks that every id in want is in h exactly once.
func once(t *testing.T, who string, h []proctest.Message, want []string) {
	t.Helper()
	n := map[string]int{}
	for _, m := range h {
		n[m.ID]++
	}
	for _, id := range want {
		if n[id] != 1 {
			t.Errorf("%s: message %s is in history %d times", who, id, n[id])
		}
	}
}

// TestDaemons is the seed's scenarios through real processes and the CLI:
// an invite with a KeyPackage fetched from the DHT, the join flow, 200
// messages each way interleaved, then a third member, a remove and a
// leave.
func TestDaemons(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	alice, bob, carol := trio(ctx, t)
	ch := create(ctx, alice, "general")
	bobID, carolID := bob.ID(ctx).PeerID, carol.ID(ctx).PeerID
	alice.Invite(ctx, ch, bobID)
	bob.AcceptFrom(ctx, ch)

	var ids []string
	for i := range 200 {
		ids = append(ids, send(ctx, alice, ch, fmt.Sprintf("a%d", i)), send(ctx, bob, "general", fmt.Sprintf("b%d", i)))
	}
	for _, d := range []*proctest.Daemon{alice, bob} {
		proctest.Await(ctx, t, d.Name+" has 400 messages", func() bool { return len(d.History(ctx, ch)) >= 400 })
		once(t, d.Name, d.History(ctx, ch), ids)
	}

	alice.Invite(ctx, ch, carolID)
	carol.AcceptFrom(ctx, ch)
	var three []string
	for _, d := range []*proctest.Daemon{alice, bob, carol} {
		three = append(three, send(ctx, d, ch, "hello from "+d.Name))
	}
	for _, d := range []*proctest.Daemon{alice, bob, carol} {
		proctest.Await(ctx, t, d.Name+" has the three", func() bool {
			return len(d.History(ctx, ch)) >= 400+3 || d.Name == "carol" && len(d.History(ctx, ch)) >= 3
		})
		once(t, d.Name, d.History(ctx, ch), three)
	}

	var change struct{ Epoch uint64 }
	alice.CLI(ctx, &change, "channel", "remove", ch, carolID)
	bob.CLI(ctx, nil, "channel", "leave", ch)
	proctest.Await(ctx, t, "alice alone", func() bool {
		var ms []struct {
			PeerID string `json:"peer_id"`
		}
		alice.CLI(ctx, &ms, "channel", "members", ch)
		return len(ms) == 1
	})
	// A removed member's send fails with a clear error, not silence.
	if out, code := carol.Run(ctx, "", "send", ch, "still here?"); code == 0 {
		t.Errorf("carol sent after her removal: %s", out)
	}
}

// TestKilledBeforeInvite: bob is SIGKILLed after publishing KeyPackages
// and restarted; the invite then uses a KeyPackage whose private key he
// kept on disk, and he joins.
func TestKilledBeforeInvite(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	alice, bob, _ := trio(ctx, t)
	ch := create(ctx, alice, "kp")
	// The invite succeeding proves the KeyPackages are published; make
	// them public first with a channel bob is never asked into.
	probe := create(ctx, alice, "probe")
	_ = probe
	bob.Kill()
	bob.Start(ctx)
	alice.Invite(ctx, ch, bob.ID(ctx).PeerID)
	bob.AcceptFrom(ctx, ch)
	id := send(ctx, alice, ch, "after the crash")
	proctest.Await(ctx, t, "bob reads", func() bool { return len(bob.History(ctx, ch)) >= 1 })
	once(t, "bob", bob.History(ctx, ch), []string{id})
}

// TestInviteeStopped: bob published his KeyPackages and was then shut
// down; alice's invite succeeds from the directory, the Welcome waits in
// her outbox, and bob joins once his daemon is back.
func TestInviteeStopped(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	alice, bob, _ := trio(ctx, t)
	ch := create(ctx, alice, "later")
	bobID := bob.ID(ctx).PeerID
	// KeyPackages in the directory: an invite into a probe channel
	// succeeds (bob never accepts it).
	alice.Invite(ctx, create(ctx, alice, "probe"), bobID)
	bob.Stop()
	alice.CLI(ctx, nil, "channel", "invite", ch, bobID)
	// Sent in the epoch the invite started, which is bob's: his to read
	// once he joins, though he was away.
	away := send(ctx, alice, ch, "sent while bob was away")
	bob.Start(ctx)
	bob.AcceptFrom(ctx, ch)
	after := send(ctx, alice, ch, "and after")
	proctest.Await(ctx, t, "bob reads both", func() bool { return len(bob.History(ctx, ch)) >= 2 })
	once(t, "bob", bob.History(ctx, ch), []string{away, after})
}

// TestStoppedMemberCatchesUp: bob's daemon is shut down in the middle of
// alice's traffic and started again; he then has every message, once.
func TestStoppedMemberCatchesUp(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	alice, bob, _ := trio(ctx, t)
	ch := create(ctx, alice, "away")
	alice.Invite(ctx, ch, bob.ID(ctx).PeerID)
	bob.AcceptFrom(ctx, ch)
	var ids []string
	for i := range 30 {
		ids = append(ids, send(ctx, alice, ch, fmt.Sprintf("m%d", i)))
		switch i {
		case 9:
			bob.Stop()
		case 19:
			bob.Start(ctx)
		}
	}
	proctest.Await(ctx, t, "bob has all 30", func() bool { return len(bob.History(ctx, ch)) >= 30 })
	once(t, "bob", bob.History(ctx, ch), ids)
}

// TestWatchOnce: `watch --json --since 0` prints each message once, one
// object per line, across the replay and the live stream.
func TestWatchOnce(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	alice, bob, _ := trio(ctx, t)
	ch := create(ctx, alice, "w")
	alice.Invite(ctx, ch, bob.ID(ctx).PeerID)
	bob.AcceptFrom(ctx, ch)

	wctx, stop := context.WithCancel(ctx)
	w := exec.CommandContext(wctx, filepath.Join(proctest.Binaries(t), "spacepanda"), "--socket", bob.Socket, "--json", "watch", "--since", "0", ch)
	out, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stop(); w.Wait() }()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// --since 0 replays from the node's first event, so the first message
	// is seen even if it was sent before watch subscribed; each later one
	// is sent once the previous arrived, so they cross replay and live.
	seen := map[string]int{}
	want := map[string]bool{}
	sent := 0
	first := send(ctx, alice, ch, "warm-up")
	want[first] = true
	for len(seen) < 21 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended; saw %d", len(seen))
			}
			var e struct {
				Type    string `json:"type"`
				Message *struct {
					ID string `json:"id"`
				} `json:"message"`
			}
			if err := json.Unmarshal([]byte(l), &e); err != nil {
				t.Fatalf("watch line %q: %v", l, err)
			}
			if e.Type == "message" && e.Message != nil {
				seen[e.Message.ID]++
				if seen[e.Message.ID] > 1 {
					t.Fatalf("message %s twice in watch", e.Message.ID)
				}
				if sent < 20 {
					sent++
					want[send(ctx, alice, ch, fmt.Sprintf("w%d", sent))] = true
				}
			}
		case <-ctx.Done():
			t.Fatalf("watch saw %d of 21", len(seen))
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("message %s seen %d times", id, seen[id])
		}
	}
}

// TestCrashSafety kills bob with SIGKILL 50 times at random moments while
// he and alice send; after every restart the channel decrypts, and every
// message a `send` acknowledged is in both histories exactly once.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("50 SIGKILLs")
	}
	ctx := testContext(t, 10*time.Minute)
	alice, bob, _ := trio(ctx, t)
	ch := create(ctx, alice, "crash")
	alice.Invite(ctx, ch, bob.ID(ctx).PeerID)
	bob.AcceptFrom(ctx, ch)
	rng := rand.New(rand.NewPCG(1, 2))
	var acked []string
	for round := range 50 {
		done := make(chan []string)
		go func() {
			var ids []string
			for i := 0; ; i++ {
				out, code := bob.Run(ctx, "", "send", ch, fmt.Sprintf("bob %d/%d", round, i))
				if code != 0 {
					done <- ids // the kill landed: unacknowledged sends may or may not exist
					return
				}
				var r struct{ ID string }
				if json.Unmarshal(out, &r) == nil && r.ID != "" {
					ids = append(ids, r.ID)
				}
			}
		}()
		acked = append(acked, send(ctx, alice, ch, fmt.Sprintf("alice %d", round)))
		// A random moment: after 0..40 ms of bob's traffic.
		select {
		case <-time.After(time.Duration(rng.IntN(40)) * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		bob.Kill()
		acked = append(acked, <-done...)
		bob.Start(ctx)
		// The channel still encrypts after the restart (a send is
		// acknowledged only once its state is on disk).
		acked = append(acked, send(ctx, bob, ch, fmt.Sprintf("bob back %d", round)))
	}
	for _, d := range []*proctest.Daemon{alice, bob} {
		proctest.Await(ctx, t, d.Name+" has every acknowledged message", func() bool {
			n := map[string]bool{}
			for _, m := range d.History(ctx, ch) {
				n[m.ID] = true
			}
			for _, id := range acked {
				if !n[id] {
					return false
				}
			}
			return true
		})
		once(t, d.Name, d.History(ctx, ch), acked)
	}
	t.Logf("%d acknowledged messages over 50 SIGKILLs", len(acked))
}

// TestDaemonBadStarts: a second daemon on a data directory, and a bad
// config file, each exit non-zero with a message naming the problem; the
// socket is mode 0600.
func TestDaemonBadStarts(t *testing.T) {
	ctx := testContext(t, time.Minute)
	a := proctest.New(t, "a")
	a.Start(ctx)
	fi, err := os.Stat(a.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %o, want 600", fi.Mode().Perm())
	}
	bin := filepath.Join(proctest.Binaries(t), "spacepandad")
	out, err := exec.CommandContext(ctx, bin, "--data-dir", a.Dir, "--listen", "/ip4/127.0.0.1/tcp/0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "held by pid") {
		t.Errorf("second daemon: err %v, output %q", err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("listen = 7\n"), 0o600)
	out, err = exec.CommandContext(ctx, bin, "--data-dir", t.TempDir(), "--config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "listen") || !strings.Contains(string(out), bad) {
		t.Errorf("bad config: err %v, output %q", err, out)
	}
	// The first daemon still serves.
	a.ID(ctx)
}
