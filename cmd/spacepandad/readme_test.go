package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/proctest"
)

// TestREADMEWalkthrough runs the README's two-daemon walkthrough as
// written, in a fresh directory, with three substitutions that a person
// does by hand: the data directories are the test's, the INVITE
// placeholder is the invitation the previous command listed, the invite
// is retried while bob's KeyPackages reach the DHT (as the README says),
// and `watch` is ended after a few seconds as Ctrl-C would.
func TestREADMEWalkthrough(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("the walkthrough uses python3 to read JSON; not installed")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := walkthrough(t, string(readme))
	tmp := t.TempDir()
	script := strings.NewReplacer(
		"/tmp/alice", filepath.Join(tmp, "alice"),
		"/tmp/bob", filepath.Join(tmp, "bob"),
	).Replace(block)
	var lines []string
	for _, l := range strings.Split(script, "\n") {
		l = strings.TrimSpace(l)
		if i := strings.Index(l, "  # "); i > 0 {
			l = strings.TrimSpace(l[:i])
		}
		switch {
		case l == "":
			continue
		case strings.Contains(l, " channel invite "):
			l = "for i in $(seq 60); do " + l + " && break; sleep 1; done"
		case strings.Contains(l, " accept INVITE"):
			l = strings.Replace(l, "accept INVITE", `accept "$(bin/spacepanda --data-dir `+filepath.Join(tmp, "bob")+` --json invites | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["invite"])')"`, 1)
		case strings.HasSuffix(l, " invites"):
			l = "for i in $(seq 60); do " + l + ` | grep -q general && break; sleep 1; done; ` + l
		case strings.Contains(l, " watch "):
			l = "timeout 3 " + l + " || true"
		}
		lines = append(lines, l)
	}
	src := "set -eu\ncd " + repoRoot(t) + "\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + strings.Join(lines, "\n") + "\n"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", src)
	cmd.Env = proctest.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\nscript:\n%s\noutput:\n%s", err, src, out)
	}
	for _, want := range []string{"hi alice", "hi bob"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("walkthrough output lacks %q:\n%s", want, out)
		}
	}
}

// walkthrough returns the indented command lines of the README's "Two
// daemons on one machine" section.
func walkthrough(t *testing.T, readme string) string {
	_, rest, ok := strings.Cut(readme, "### Two daemons on one machine")
	if !ok {
		t.Fatal("README has no walkthrough section")
	}
	rest, _, _ = strings.Cut(rest, "\n### ")
	var b strings.Builder
	for _, l := range strings.Split(rest, "\n") {
		if strings.HasPrefix(l, "    ") {
			b.WriteString(l[4:] + "\n")
		}
	}
	return b.String()
}

func repoRoot(t *testing.T) string {
	abs, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
