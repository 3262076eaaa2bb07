package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestLockedByAnotherProcess: while a live process holds the data
// directory, Open fails with a LockedError naming the directory and the
// holder's pid; when the holder exits, cleanly or killed, the directory
// opens.
func TestLockedByAnotherProcess(t *testing.T) {
	for _, exit := range []string{"close", "SIGKILL"} {
		t.Run(exit, func(t *testing.T) {
			dir := t.TempDir()
			c := startChild(t, "hold", dir, "")
			pid, _ := strconv.Atoi(strings.TrimPrefix(c.await(t, "holding "), "holding "))

			_, err := Open(dir, testOptions())
			var le *LockedError
			if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
				c.kill()
				t.Fatalf("Open while held: %v, want a *LockedError", err)
			}
			if le.PID != pid || pid != c.cmd.Process.Pid {
				t.Errorf("LockedError.PID = %d, the holder is %d (said %d)", le.PID, c.cmd.Process.Pid, pid)
			}
			msg := err.Error()
			if !strings.Contains(msg, dir) || !strings.Contains(msg, fmt.Sprint("pid ", pid)) {
				t.Errorf("message %q names neither %s nor pid %d", msg, dir, pid)
			}
			t.Log(msg)

			if exit == "close" {
				c.stdin.Close() // the child closes the store when stdin ends
				if err := c.cmd.Wait(); err != nil {
					t.Fatalf("holder: %v: %s", err, c.errb)
				}
			} else {
				c.kill()
			}
			s := openTest(t, dir, nil)
			s.Close()
		})
	}
}

func childHold(dir, _ string) error {
	s, err := Open(dir, testOptions())
	if err != nil {
		return err
	}
	fmt.Printf("holding %d\n", os.Getpid())
	io.Copy(io.Discard, os.Stdin)
	return s.Close()
}
