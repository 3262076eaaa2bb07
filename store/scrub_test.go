package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/syndtr/goleveldb/leveldb/util"
)

// fsHistory runs a group's life that consumes an init key, accepts an
// invitation, delivers a Welcome, supersedes states and trims its log, and
// returns the bytes each deleted secret
// had on disk (its stored value: plaintext, or the sealed value when
// encrypted) and those of the secrets still alive.
//
// The KeyPackage reaches a table file before it is consumed; the rest is
// in the journal only when it is deleted, so both places are covered.
func fsHistory(t testing.TB, s *Store, marker func(string) []byte) (deleted, alive map[string][]byte) {
	g, ref := []byte("group"), []byte("kp-ref")
	deleted, alive = map[string][]byte{}, map[string][]byte{}
	raw := func(into map[string][]byte, name string, key []byte) {
		v, err := s.db.Get(key, nil)
		if err != nil {
			t.Fatalf("raw %s: %v", name, err)
		}
		into[name] = v
	}
	must := func(b *Batch) {
		if err := s.Commit(b); err != nil {
			t.Fatal(err)
		}
	}

	var kp Batch
	kp.PutKeyPackage(ref, marker("init key"), 1<<40, false)
	must(&kp)
	raw(deleted, "consumed init key", kpKey(ref))
	if err := s.db.CompactRange(util.Range{}); err != nil {
		t.Fatal(err)
	}

	var invite Batch // a Welcome received, waiting to be accepted
	invite.PutInvitation([]byte("inv"), marker("received Welcome"))
	must(&invite)
	raw(deleted, "accepted invitation", inviteKey([]byte("inv")))

	var join Batch // RFC 9420 §12.4.3.1: joining consumes the KeyPackage
	join.ConsumeKeyPackage(ref)
	join.DeleteInvitation([]byte("inv"))
	join.PutGroup(g, marker("state epoch 1"))
	must(&join)
	raw(deleted, "superseded group state 1", groupKey(g))

	var msg Batch // the state moves on with every message (§9)
	msg.PutGroup(g, marker("state epoch 1 after m0"))
	msg.AppendLog(g, []byte("m0"), marker("message 0"))
	msg.PutWelcome([]byte("w"), marker("Welcome to deliver"))
	must(&msg)
	raw(deleted, "superseded group state 1'", groupKey(g))
	raw(deleted, "trimmed message", logKey(g, 1))
	raw(deleted, "delivered Welcome", welcomeKey([]byte("w")))

	var commit Batch // §8: a commit supersedes the epoch's state
	commit.PutGroup(g, marker("state epoch 2"))
	commit.DeleteWelcome([]byte("w"))
	commit.TrimLog(g, math.MaxUint64)
	commit.AppendLog(g, nil, []byte("commit to epoch 2"))
	must(&commit)
	raw(alive, "group state 2", groupKey(g))
	return deleted, alive
}

// newMarker returns distinct, recognizable, incompressible secrets.
func newMarker(seed string) func(string) []byte {
	return func(name string) []byte {
		h := sha256.Sum256([]byte(seed + "/" + name))
		return []byte("SECRET:" + name + ":" + hex.EncodeToString(h[:]))
	}
}

func checkScan(t *testing.T, dir string, deleted, alive map[string][]byte, wantDeleted bool) {
	t.Helper()
	for name, v := range deleted {
		hits := filesContaining(t, dir, v)
		if wantDeleted && len(hits) == 0 {
			t.Errorf("control: %s is in no file before the scrub; the scan is blind", name)
		}
		if !wantDeleted && len(hits) > 0 {
			t.Errorf("%s is still on disk in %v", name, hits)
		}
	}
	for name, v := range alive {
		if len(filesContaining(t, dir, v)) == 0 {
			t.Errorf("control: live %s is in no file; the scan is blind", name)
		}
	}
}

// TestDeletedSecretsLeaveTheFiles is issue 4's acceptance 3: after a
// consumed init key, superseded group states (which hold the epochs'
// secrets), an accepted invitation, a delivered Welcome and a trimmed
// message are deleted and the scrub (compaction) has run, a byte scan of every file of
// the data directory (tables, journal, MANIFEST, LOG) finds none of them.
// With encryption the scan looks for their sealed bytes.
func TestDeletedSecretsLeaveTheFiles(t *testing.T) {
	for _, pass := range []string{"", "pw"} {
		t.Run(fmt.Sprintf("encrypted=%v", pass != ""), func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, encOptions(pass))
			deleted, alive := fsHistory(t, s, newMarker(t.Name()))
			checkScan(t, dir, deleted, alive, true)
			if err := s.Scrub(); err != nil {
				t.Fatal(err)
			}
			checkScan(t, dir, deleted, alive, false)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			checkScan(t, dir, deleted, alive, false)
		})
	}
}

// TestScrubRunsInBackground: without a Scrub call, the store scrubs by
// itself ScrubDelay after the deleting commit.
func TestScrubRunsInBackground(t *testing.T) {
	dir := t.TempDir()
	o := testOptions()
	o.ScrubDelay = 10 * time.Millisecond
	s := openTest(t, dir, o)
	deleted, _ := fsHistory(t, s, newMarker(t.Name()))
	deadline := time.Now().Add(10 * time.Second)
	for name, v := range deleted {
		for len(filesContaining(t, dir, v)) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s still on disk after 10 s", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestScrubFinishesAfterCrash: a process that deletes secrets and is
// killed before it scrubs leaves them on disk, and a marker that makes the
// next Open scrub them.
func TestScrubFinishesAfterCrash(t *testing.T) {
	dir := t.TempDir()
	seed := t.Name()
	c := startChild(t, "scrubcrash", dir, seed)
	c.await(t, "deleted")
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.cmd.Wait()

	// The child's history is deterministic: replay it in memory to learn
	// the plaintext bytes (the store is plaintext, so they are the values).
	m := newMarker(seed)
	deleted := map[string][]byte{}
	for _, name := range []string{"init key", "received Welcome", "state epoch 1", "state epoch 1 after m0", "message 0", "Welcome to deliver"} {
		deleted[name] = m(name)
	}
	alive := map[string][]byte{"state epoch 2": m("state epoch 2")}
	checkScan(t, dir, deleted, alive, true)
	s := openTest(t, dir, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkScan(t, dir, deleted, alive, false)
}

func childScrubCrash(dir, seed string) error {
	s, err := Open(dir, testOptions()) // ScrubDelay < 0: no background scrub
	if err != nil {
		return err
	}
	fsHistory(fatalT{}, s, newMarker(seed))
	fmt.Println("deleted")
	select {} // until killed
}

// fatalT lets a child process run a helper written for tests: a failure
// panics, which the parent sees as the child dying before its line.
type fatalT struct{ testing.TB }

func (fatalT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (fatalT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
