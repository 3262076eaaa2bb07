package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestForeignSocketNamed: with the real client, a socket of another uid
// (root only: chown) or a file that is no socket at the socket path is
// refused before anything is sent, with an error that says whose it is
// and what to do, and --json's socket_owner document.
func TestForeignSocketNamed(t *testing.T) {
	dir := t.TempDir()
	notSocket := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(notSocket, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct{ path, want string }{
		"not a socket": {notSocket, notSocket + " is not a socket"},
	}
	if os.Getuid() == 0 {
		foreign := filepath.Join(dir, "foreign.sock")
		ln, err := net.Listen("unix", foreign)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := os.Lchown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases["another uid"] = struct{ path, want string }{foreign, foreign + " belongs to uid 65534"}
	} else {
		t.Log("not root: the socket of another uid is not covered (chown needs root)")
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			for _, asJSON := range []bool{false, true} {
				args := []string{"--socket", tc.path, "id"}
				if asJSON {
					args = append([]string{"--json"}, args...)
				}
				var o, e bytes.Buffer
				code := Run(context.Background(), args, strings.NewReader(""), &o, &e)
				if code != exitError || !strings.Contains(e.String(), tc.want) ||
					!strings.Contains(e.String(), "run spacepanda as the user who owns it") {
					t.Errorf("exit %d, stderr %q; want %q and the fix", code, e.String(), tc.want)
				}
				if asJSON && !strings.Contains(o.String(), `"name":"socket_owner"`) {
					t.Errorf("--json stdout %q lacks the socket_owner error", o.String())
				}
			}
		})
	}
}
