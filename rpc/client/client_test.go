package client

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spacepanda/spacepanda/rpc/api"
)

// listen makes a real unix socket in a fresh directory; nothing serves
// it, but a connect to it succeeds (the backlog accepts it).
func listen(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return path
}

// TestDialRefusesForeignSocket: a socket of another uid is refused before
// connecting, for Dial and for Subscribe's own connection, and the error
// names the owner. Root could connect to it (the socket's mode does not
// stop root), which is why the check is the client's own.
func TestDialRefusesForeignSocket(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("making a socket of another uid needs root (chown); run the tests as root to cover the foreign socket")
	}
	path := listen(t)
	if err := os.Lchown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err := Dial(context.Background(), path)
	if !errors.Is(err, ErrSocketOwner) {
		t.Fatalf("Dial of a socket of uid 65534: %v, want ErrSocketOwner", err)
	}
	if !strings.Contains(err.Error(), "uid 65534") || !strings.Contains(err.Error(), path) {
		t.Errorf("the error does not name the socket and its owner: %v", err)
	}

	// Subscribe dials again: a socket swapped after Dial is refused too.
	own := listen(t)
	c, err := Dial(context.Background(), own)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.path = path
	if err := c.Subscribe(context.Background(), api.SubscribeParams{}, nil); !errors.Is(err, ErrSocketOwner) {
		t.Fatalf("Subscribe to a socket of uid 65534: %v, want ErrSocketOwner", err)
	}
}

// TestDialRefusesNonSocket: a regular file, a directory or a symlink (even
// to the user's own socket) at the path is not a daemon's socket.
func TestDialRefusesNonSocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(listen(t), link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, dir, link} {
		_, err := Dial(context.Background(), p)
		if !errors.Is(err, ErrSocketOwner) || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("Dial %s: %v, want ErrSocketOwner saying it is not a socket", p, err)
		}
	}
	if _, err := Dial(context.Background(), filepath.Join(dir, "absent")); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("Dial of no file: %v, want ErrNoDaemon", err)
	}
	// The user's own socket passes the check.
	c, err := Dial(context.Background(), listen(t))
	if err != nil {
		t.Fatalf("Dial of an own socket: %v", err)
	}
	c.Close()
}
