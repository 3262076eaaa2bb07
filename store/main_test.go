package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Several tests need a second, real process on the same data directory
// (the lock, the crash test, state across a restart). They re-execute the
// test binary with childRoleEnv set; TestMain runs the role instead of the
// tests.
const (
	childRoleEnv = "STORE_TEST_CHILD_ROLE"
	childDirEnv  = "STORE_TEST_CHILD_DIR"
	childArgEnv  = "STORE_TEST_CHILD_ARG"
)

var childRoles = map[string]func(dir, arg string) error{
	"hold":       childHold,
	"putkp":      childPutKeyPackage,
	"crash":      childCrash,
	"scrubcrash": childScrubCrash,
}

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		run, ok := childRoles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown child role %q\n", role)
			os.Exit(2)
		}
		if err := run(os.Getenv(childDirEnv), os.Getenv(childArgEnv)); err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is a running child process with its stdout as lines.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // closed at EOF
	errb  *bytes.Buffer
}

func startChild(t testing.TB, role, dir, arg string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role, childDirEnv+"="+dir, childArgEnv+"="+arg)
	// Not StdoutPipe: Wait closes that pipe, and lines the child wrote just
	// before a kill, the ones that matter most, could be lost unread. With
	// our own pipe, reading ends at EOF, when the child is gone.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 1<<16), errb: new(bytes.Buffer)}
	cmd.Stderr = c.errb
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	go func() {
		defer close(c.lines)
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	return c
}

// await returns the next line, failing the test after a timeout or EOF.
func (c *child) await(t testing.TB, want string) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			c.cmd.Wait()
			t.Fatalf("child exited before %q: %s", want, c.errb)
		}
		if !strings.HasPrefix(l, want) {
			t.Fatalf("child said %q, want %q", l, want)
		}
		return l
	case <-time.After(30 * time.Second):
		c.kill()
		t.Fatalf("no %q from child: %s", want, c.errb)
	}
	return ""
}

func (c *child) kill() {
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// testOptions are fast options for tests: a cheap KDF, no background
// schedules unless a test asks.
func testOptions() *Options {
	return &Options{KDF: testKDF, ExpiryInterval: -1, ScrubDelay: -1}
}

var testKDF = KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

func openTest(t testing.TB, dir string, o *Options) *Store {
	t.Helper()
	if o == nil {
		o = testOptions()
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func commit(t testing.TB, s *Store, b *Batch) {
	t.Helper()
	if err := s.Commit(b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// filesContaining returns the files under dir whose bytes contain needle.
func filesContaining(t testing.TB, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil // LevelDB deleted it as we walked
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}
