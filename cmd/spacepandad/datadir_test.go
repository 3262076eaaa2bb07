package main_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/proctest"
)

// TestDataDirPermissions: a real daemon refuses an existing data
// directory that other users may enter (mode 0755), or one owned by
// another uid (root only: chown), exits non-zero and says which
// directory, its mode or owner, and the fix; once fixed it starts.
func TestDataDirPermissions(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	d := proctest.New(t, "alice")

	if err := os.Chmod(d.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	code, stderr := d.StartFailing(ctx)
	t.Logf("on a 0755 data dir: exit %d, stderr %q", code, stderr)
	if code == 0 {
		t.Fatal("spacepandad exited 0 on a 0755 data directory")
	}
	for _, want := range []string{d.Dir, "0755", "chmod 700 " + d.Dir} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the error lacks %q: %q", want, stderr)
		}
	}
	if ents, _ := os.ReadDir(d.Dir); len(ents) != 0 {
		t.Errorf("the refused daemon wrote into the directory: %v", ents)
	}

	if os.Getuid() == 0 {
		if err := os.Chmod(d.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d.Dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		code, stderr := d.StartFailing(ctx)
		t.Logf("on a data dir of uid 65534: exit %d, stderr %q", code, stderr)
		if code == 0 || !strings.Contains(stderr, d.Dir) || !strings.Contains(stderr, "owned by uid 65534") {
			t.Errorf("exit %d, stderr %q: want a refusal naming the directory and its owner", code, stderr)
		}
		if err := os.Chown(d.Dir, 0, 0); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("not root: a data directory of another uid is not covered (chown needs root)")
	}

	if err := os.Chmod(d.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d.Start(ctx)
	if id := d.ID(ctx); id.PeerID == "" {
		t.Fatal("no peer ID once the directory was fixed")
	}
}
