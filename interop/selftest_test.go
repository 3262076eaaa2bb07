//go:build unix

package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// selftestSuites are the cipher suites the ts-mls peer supports (its README:
// 1, 2, 3, 5 and 7; X448 and the post-quantum suites need packages it does
// not install).
var selftestSuites = []int{1, 3, 2, 5, 7}

// peerNames are the selftest's five positions, in PEER_CMDS order.
var peerNames = [...]string{"alice", "bob", "charlie", "dave", "eve"}

const (
	// runTimeout bounds one selftest run (one suite, five peers); a run
	// takes a few seconds, so hitting it means a peer hangs.
	runTimeout = 3 * time.Minute
	// installTimeout bounds `npm ci`, which downloads from the registry.
	installTimeout = 5 * time.Minute
)

// requireEnv names the variable that turns a missing prerequisite from a
// skip into a failure. .ci/run sets it: CI installs Node.js and has shared/
// beside the checkout, so there a skip would hide a broken setup.
const requireEnv = "SPACEPANDA_REQUIRE_INTEROP"

func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv(requireEnv) != "" {
		t.Fatalf(format+" (and %s is set)", append(args, requireEnv)...)
	}
	t.Skipf(format, args...)
}

// summary is the selftest's last line.
var summary = regexp.MustCompile(`(?m)^selftest: (\d+) passed, (\d+) failed$`)

// TestInteropSelftest runs the ts-mls peer's selftest with cmd/mlspeer in
// each of the five positions alone, then in all five, for every suite the
// peer supports. Each run is a full group life cycle (RFC 9420 §12: adds,
// removes, updates, proposals by reference, external join, out-of-band
// ratchet tree) checked for agreement at every epoch.
func TestInteropSelftest(t *testing.T) {
	src := peerSource(t)
	for _, tool := range []string{"node", "npm", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "interop selftest needs %s on PATH: %v", tool, err)
		}
	}
	peerDir := preparePeer(t, src)
	goPeer := shellQuote(buildMLSPeer(t))

	type combo struct {
		name string
		cmds [len(peerNames)]string // "" keeps the ts-mls peer
	}
	var combos []combo
	for i, n := range peerNames {
		var c combo
		c.name, c.cmds[i] = n+"=go", goPeer
		combos = append(combos, c)
	}
	all := combo{name: "all=go"}
	for i := range all.cmds {
		all.cmds[i] = goPeer
	}
	combos = append(combos, all)

	for _, c := range combos {
		for _, s := range selftestSuites {
			t.Run(fmt.Sprintf("%s/suite%d", c.name, s), func(t *testing.T) {
				t.Parallel()
				runSelftest(t, peerDir, strings.Join(c.cmds[:], "|"), s)
			})
		}
	}
}

// runSelftest runs selftest.sh for one suite and fails unless it reports
// checks passed and none failed.
func runSelftest(t *testing.T, peerDir, peerCmds string, suite int) {
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "selftest.sh", strconv.Itoa(suite))
	cmd.Dir = peerDir
	cmd.Env = append(os.Environ(), "PEER_CMDS="+peerCmds)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startGroup(cmd)
	err := cmd.Run()
	killGroup(cmd)

	m := summary.FindSubmatch(out.Bytes())
	if m == nil || err != nil || string(m[2]) != "0" {
		t.Errorf("selftest suite %d with PEER_CMDS=%q: %v, ctx %v\n%s", suite, peerCmds, err, ctx.Err(), tail(out.String(), 60))
		return
	}
	t.Logf("suite %d: %s passed, %s failed", suite, m[1], m[2])
}

// startGroup puts the selftest and the peers it spawns in their own process
// group, so that a timeout kills them all rather than orphaning the peers.
func startGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// peerSource finds the ts-mls peer in the shared folder beside the
// repository (<repo>/../shared), or skips.
func peerSource(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the interop package")
		}
		dir = parent
	}
	src := filepath.Join(dir, "..", "shared", "interop", "ts-mls-peer")
	if _, err := os.Stat(filepath.Join(src, "selftest.sh")); err != nil {
		skipOrFail(t, "interop selftest needs the ts-mls peer at %s: %v", src, err)
	}
	return src
}

// preparePeer copies the peer's files to a temporary directory (shared is
// read-only in CI) and links in its node_modules, installed once per lock
// file under the user cache directory so that reruns skip `npm ci`.
func preparePeer(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := copyFiles(src, dst); err != nil {
		t.Fatal(err)
	}
	modules := filepath.Join(installedPeer(t, src), "node_modules")
	if err := os.Symlink(modules, filepath.Join(dst, "node_modules")); err != nil {
		t.Fatal(err)
	}
	return dst
}

// installedPeer returns a directory where `npm ci` has run for src's
// dependencies. The cache key covers every input of the install: the
// manifest, the lock file and the postinstall patch.
func installedPeer(t *testing.T, src string) string {
	t.Helper()
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json", "patch-ts-mls.mjs"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Logf("no user cache directory (%v): installing into a temporary one", err)
		cache = t.TempDir()
	}
	parent := filepath.Join(cache, "spacepanda-interop")
	final := filepath.Join(parent, hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(final); err == nil {
		return final
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	// Install into a staging directory and rename it into place, so that a
	// cached directory is always a complete install, even when an install
	// is interrupted or two test runs race.
	staging, err := os.MkdirTemp(parent, "install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(staging)
	if err := copyFiles(src, staging); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
	cmd.Dir = staging
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci for the ts-mls peer: %v\n%s", err, tail(string(out), 40))
	}
	if err := os.Rename(staging, final); err != nil {
		if _, statErr := os.Stat(final); statErr != nil {
			t.Fatal(err)
		}
	}
	t.Logf("installed the ts-mls peer's dependencies in %s", final)
	return final
}

// copyFiles copies the regular files at the top of src (not node_modules,
// which a developer may have installed there) into dst.
func copyFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		// Keep execute bits; make the copy writable whatever the source.
		mode := info.Mode().Perm()&0o111 | 0o644
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, mode); err != nil {
			return err
		}
	}
	return nil
}

// buildMLSPeer builds cmd/mlspeer into a temporary directory.
func buildMLSPeer(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building cmd/mlspeer needs go on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "mlspeer")
	if strings.Contains(bin, "|") {
		t.Fatalf("temporary path %q contains '|', which PEER_CMDS uses as separator", bin)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, "github.com/spacepanda/spacepanda/cmd/mlspeer")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build cmd/mlspeer: %v\n%s", err, out)
	}
	return bin
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tail keeps the last n lines of s: the selftest's failure and the steps
// leading up to it.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
