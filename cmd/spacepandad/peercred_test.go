package main_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/proctest"
)

// nobody is the uid and gid the foreign client runs as.
const nobody = 65534

// runAsNobody runs `spacepanda --socket SOCKET ARGS...` as uid and gid
// 65534 with no supplementary groups, from a copy of the binary that
// nobody may execute (proctest's build directory is 0700).
func runAsNobody(ctx context.Context, t *testing.T, bin, socket string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--socket", socket}, args...)...)
	cmd.Env = append(proctest.Environ(), "HOME=/nonexistent")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running spacepanda as nobody: %v", err)
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

// nobodyCLI copies the built CLI into a directory of mode 0755.
func nobodyCLI(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "spacepanda-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "spacepanda")
	copyFile(t, filepath.Join(proctest.Binaries(t), "spacepanda"), bin)
	return bin
}

// openPath lets other users traverse every directory above the socket, so
// that the socket's own mode (case a) or the server's SO_PEERCRED check
// (case b) is what stands in the foreign user's way, not a 0700 parent
// that t.TempDir made.
func openPath(t *testing.T, socket string) {
	t.Helper()
	for dir := filepath.Dir(socket); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(dir, fi.Mode().Perm()|0o111); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestForeignUID runs the CLI as another user (nobody) against a real
// daemon run by root. The client checks the socket's owner before it
// connects (rpc/client.ErrSocketOwner), so whatever the socket's mode
// (0600 as the daemon makes it, or 0666 by mistake) nobody's CLI refuses
// to use it, says whose it is, and the daemon sees no connection at all;
// its owner is still served. (Were a client to connect anyway, the
// daemon's SO_PEERCRED check refuses it: rpc's TestForeignUIDRefused.)
func TestForeignUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("running a client as another uid needs root (setuid to nobody); run the tests as root to cover issue 9's acceptance 3")
	}
	ctx := testContext(t, 2*time.Minute)
	d := proctest.New(t, "alice")
	d.Start(ctx)
	bin := nobodyCLI(t)
	openPath(t, d.Socket)

	fi, err := os.Lstat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket of mode 0600", fi.Mode())
	}

	for _, mode := range []os.FileMode{0o600, 0o666} {
		t.Run(fmt.Sprintf("mode%04o", mode), func(t *testing.T) {
			if err := os.Chmod(d.Socket, mode); err != nil {
				t.Fatal(err)
			}
			for _, asJSON := range []bool{false, true} {
				args := []string{"id"}
				if asJSON {
					args = append([]string{"--json"}, args...)
				}
				stdout, stderr, code := runAsNobody(ctx, t, bin, d.Socket, args...)
				t.Logf("spacepanda %s as nobody: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
				if code == 0 {
					t.Fatalf("the CLI as nobody succeeded: %s", stdout)
				}
				if strings.Contains(stdout, `"peer_id"`) || strings.Contains(stderr, "peer_id") {
					t.Fatalf("the foreign user learned the identity: %s %s", stdout, stderr)
				}
				if !strings.Contains(stderr, d.Socket+" belongs to uid 0 (root)") || !strings.Contains(stderr, "run spacepanda as the user who owns it") {
					t.Errorf("the error does not say whose the socket is and what to do: %q", stderr)
				}
				if asJSON && !strings.Contains(stdout, `"name":"socket_owner"`) {
					t.Errorf("with --json, stdout has no socket_owner error document: %q", stdout)
				}
			}
			if strings.Contains(d.Log(), "refused a connection") {
				t.Errorf("the daemon saw a connection the client should not have made:\n%s", d.Log())
			}
			if id := d.ID(ctx); id.PeerID == "" {
				t.Fatal("the owner's id has no peer ID")
			}
		})
	}

	// A client that does not check the owner (any program can connect
	// to a socket it may write) meets the daemon's SO_PEERCRED check:
	// the connection closes unanswered, the daemon logs it and keeps
	// serving its owner.
	t.Run("rawDial", func(t *testing.T) {
		if err := os.Chmod(d.Socket, 0o666); err != nil {
			t.Fatal(err)
		}
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		raw := filepath.Join(filepath.Dir(bin), "rawdial.test")
		copyFile(t, self, raw)
		cmd := exec.CommandContext(ctx, raw, "-test.run=^TestRawDialHelper$")
		cmd.Env = append(proctest.Environ(), rawDialEnv+"="+d.Socket)
		cmd.Dir = "/"
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
		out, err := cmd.CombinedOutput()
		t.Logf("a raw JSON-RPC request as nobody: %v\n%s", err, out)
		if !strings.Contains(string(out), "rawdial: connected") {
			t.Fatalf("the raw client could not even connect, so the daemon's check was not reached")
		}
		if strings.Contains(string(out), "peer_id") || !strings.Contains(string(out), "rawdial: no answer") {
			t.Fatalf("the daemon answered another user")
		}
		proctest.Await(ctx, t, "the daemon's log of the refusal", func() bool {
			return strings.Contains(d.Log(), "refused a connection of another user") && strings.Contains(d.Log(), "uid=65534")
		})
		if id := d.ID(ctx); id.PeerID == "" {
			t.Fatal("the owner's id has no peer ID")
		}
	})
}

// rawDialEnv names the socket TestRawDialHelper dials; set only in the
// process TestForeignUID starts as another user.
const rawDialEnv = "RAWDIAL_SOCKET"

// TestRawDialHelper is not a test of its own: run by TestForeignUID as
// nobody, it sends one JSON-RPC request straight to the socket and says
// what came back.
func TestRawDialHelper(t *testing.T) {
	path := os.Getenv(rawDialEnv)
	if path == "" {
		t.Skip("a helper process of TestForeignUID")
	}
	conn, err := net.Dial("unix", path)
	if err != nil {
		fmt.Println("rawdial: connect:", err)
		return
	}
	defer conn.Close()
	fmt.Println("rawdial: connected")
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"node.identity","params":{}}` + "\n")); err != nil {
		fmt.Println("rawdial: no answer: write:", err)
		return
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		fmt.Println("rawdial: no answer:", err)
		return
	}
	fmt.Println("rawdial: answer:", line)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
