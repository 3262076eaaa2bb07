package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// mlsStorage is mlsgroup.Storage spelled out as this package implements
// it, with the lastResort parameter that mlsgroup's interface takes; store
// does not import mlsgroup, so this is its own statement of the contract.
type mlsStorage interface {
	PutKeyPackage(ref, private []byte, notAfter uint64, lastResort bool) error
	KeyPackage(ref []byte) (private []byte, status uint8, err error)
}

var _ mlsStorage = (*Store)(nil)

// TestKeyPackageStatusValues pins the values mlsgroup's KeyPackageStatus
// constants have, which Store reports without importing them.
func TestKeyPackageStatusValues(t *testing.T) {
	for _, c := range []struct {
		got, want uint8
		name      string
	}{
		{KeyPackageUnknown, 0, "Unknown"},
		{KeyPackageAvailable, 1, "Available"},
		{KeyPackageExpired, 2, "Expired"},
		{KeyPackageConsumed, 3, "Consumed"},
	} {
		if c.got != c.want {
			t.Errorf("KeyPackage%s = %d, mlsgroup has %d", c.name, c.got, c.want)
		}
	}
}

func wantKP(t *testing.T, s *Store, ref []byte, wantStatus uint8, wantPriv []byte) {
	t.Helper()
	priv, st, err := s.KeyPackage(ref)
	if err != nil {
		t.Fatalf("KeyPackage(%s): %v", ref, err)
	}
	if st != wantStatus || !bytes.Equal(priv, wantPriv) {
		t.Errorf("KeyPackage(%s) = %q, status %d; want %q, status %d", ref, priv, st, wantPriv, wantStatus)
	}
}

// TestKeyPackageLifecycle follows a KeyPackage through RFC 9420 §12.4.3.1's
// join: stored, found by ref, consumed by the join's batch.
func TestKeyPackageLifecycle(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	ref := []byte("ref-1")
	if err := s.PutKeyPackage(ref, []byte("init+leaf private"), 2000, false); err != nil {
		t.Fatal(err)
	}
	wantKP(t, s, ref, KeyPackageAvailable, []byte("init+leaf private"))
	wantKP(t, s, []byte("ref-never"), KeyPackageUnknown, nil)

	var join Batch
	join.ConsumeKeyPackage(ref)
	join.PutGroup([]byte("g"), []byte("state"))
	commit(t, s, &join)
	wantKP(t, s, ref, KeyPackageConsumed, nil)

	var again Batch
	again.ConsumeKeyPackage(ref)
	if err := s.Commit(&again); !errors.Is(err, ErrNotFound) {
		t.Errorf("consuming twice: %v, want ErrNotFound", err)
	}
	if kps, _ := s.KeyPackages(); len(kps) != 0 {
		t.Errorf("index still lists %v", kps)
	}
	// What the store knows survives a restart.
	s.Close()
	s = openTest(t, dir, nil)
	wantKP(t, s, ref, KeyPackageConsumed, nil)
}

func TestKeyPackageExpiry(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	var b Batch
	b.PutKeyPackage([]byte("a"), []byte("pa"), 100, false)
	b.PutKeyPackage([]byte("b"), []byte("pb"), 200, false)
	b.PutKeyPackage([]byte("c"), []byte("pc"), 300, false)
	b.PutKeyPackage([]byte("b"), []byte("pb"), 400, false) // re-put moves its expiry
	commit(t, s, &b)

	n, err := s.ExpireKeyPackages(time.Unix(250, 0))
	if err != nil || n != 1 {
		t.Fatalf("ExpireKeyPackages(250) = %d, %v; want 1", n, err)
	}
	wantKP(t, s, []byte("a"), KeyPackageExpired, nil)
	wantKP(t, s, []byte("b"), KeyPackageAvailable, []byte("pb"))
	wantKP(t, s, []byte("c"), KeyPackageAvailable, []byte("pc"))
	kps, _ := s.KeyPackages()
	if len(kps) != 2 || string(kps[0].Ref) != "c" || kps[1].NotAfter != 400 {
		t.Errorf("KeyPackages = %+v", kps)
	}
	// A KeyPackage is alive through its last second.
	if n, _ := s.ExpireKeyPackages(time.Unix(300, 0)); n != 0 {
		t.Errorf("expired at notAfter itself")
	}
	if n, _ := s.ExpireKeyPackages(time.Unix(301, 0)); n != 1 {
		t.Errorf("not expired after notAfter")
	}
}

// TestLastResortKeptUntilReplaced: the last-resort KeyPackage survives
// joins and its own expiry until a newer last-resort KeyPackage exists.
func TestLastResortKeptUntilReplaced(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	var b Batch
	b.PutKeyPackage([]byte("lr1"), []byte("p1"), 100, true)
	b.PutKeyPackage([]byte("normal"), []byte("pn"), 100, false)
	commit(t, s, &b)

	var join Batch
	join.ConsumeKeyPackage([]byte("lr1"))
	commit(t, s, &join)
	wantKP(t, s, []byte("lr1"), KeyPackageAvailable, []byte("p1"))

	if n, _ := s.ExpireKeyPackages(time.Unix(1000, 0)); n != 1 {
		t.Errorf("expired %d, want only the normal one", n)
	}
	wantKP(t, s, []byte("lr1"), KeyPackageAvailable, []byte("p1"))

	var repl Batch
	repl.PutKeyPackage([]byte("lr2"), []byte("p2"), 2000, true)
	commit(t, s, &repl)
	if n, _ := s.ExpireKeyPackages(time.Unix(1000, 0)); n != 1 {
		t.Errorf("expired %d, want the replaced last resort", n)
	}
	wantKP(t, s, []byte("lr1"), KeyPackageExpired, nil)
	wantKP(t, s, []byte("lr2"), KeyPackageAvailable, []byte("p2"))
	// Past its own expiry, the newest last resort still stays.
	if n, _ := s.ExpireKeyPackages(time.Unix(5000, 0)); n != 0 {
		t.Errorf("expired the only last resort")
	}
}

func TestKeyPackageTombstonesAreForgotten(t *testing.T) {
	o := testOptions()
	now := time.Unix(1000, 0)
	o.Now = func() time.Time { return now }
	o.TombstoneRetention = time.Hour
	s := openTest(t, t.TempDir(), o)
	var b Batch
	b.PutKeyPackage([]byte("a"), []byte("p"), 2000, false)
	commit(t, s, &b)
	var c Batch
	c.ConsumeKeyPackage([]byte("a"))
	commit(t, s, &c)
	s.ExpireKeyPackages(now.Add(30 * time.Minute))
	wantKP(t, s, []byte("a"), KeyPackageConsumed, nil)
	s.ExpireKeyPackages(now.Add(2 * time.Hour))
	wantKP(t, s, []byte("a"), KeyPackageUnknown, nil)
}

// TestExpiryRunsOnSchedule: the store deletes expired KeyPackages by
// itself, without a call.
func TestExpiryRunsOnSchedule(t *testing.T) {
	o := testOptions()
	o.ExpiryInterval = 10 * time.Millisecond
	o.Now = func() time.Time { return time.Unix(5000, 0) }
	s := openTest(t, t.TempDir(), o)
	if err := s.PutKeyPackage([]byte("old"), []byte("p"), 4000, false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, st, err := s.KeyPackage([]byte("old"))
		if err != nil {
			t.Fatal(err)
		}
		if st == KeyPackageExpired {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the schedule did not expire the KeyPackage")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestKeyPackageAcrossProcesses is the store's half of the seed's flow
// (issue 4, acceptance 2): a process generates a KeyPackage and exits; a
// new process on the same data directory finds its private keys, and one
// on another directory knows nothing of it. TestMLSJoinAcrossRestart runs
// the MLS join on top of this.
func TestKeyPackageAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	c := startChild(t, "putkp", dir, "bob-ref")
	c.await(t, "stored")
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, c.errb)
	}
	s := openTest(t, dir, nil)
	wantKP(t, s, []byte("bob-ref"), KeyPackageAvailable, []byte("bob-ref private"))
	other := openTest(t, t.TempDir(), nil)
	wantKP(t, other, []byte("bob-ref"), KeyPackageUnknown, nil)
}

func childPutKeyPackage(dir, ref string) error {
	s, err := Open(dir, testOptions())
	if err != nil {
		return err
	}
	if err := s.PutKeyPackage([]byte(ref), []byte(ref+" private"), uint64(time.Now().Add(time.Hour).Unix()), false); err != nil {
		return err
	}
	fmt.Println("stored")
	return s.Close()
}
