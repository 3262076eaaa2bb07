package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
)

// welcomeStore is p2p's WelcomeStore spelled out: store does not import
// p2p, and node hands the store to p2p as its WelcomeStore, which checks
// it against the real interface at compile time.
type welcomeStore interface {
	PutWelcome(id, value []byte) error
	DeleteWelcome(id []byte) error
	Welcomes() ([][]byte, error)
}

var _ welcomeStore = (*Store)(nil)

func TestWelcomesByID(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	for _, w := range []struct{ id, v string }{{"b", "welcome b"}, {"a", "welcome a"}, {"b", "welcome b'"}} {
		if err := s.PutWelcome([]byte(w.id), []byte(w.v)); err != nil {
			t.Fatal(err)
		}
	}
	// The replaced Welcome needs a scrub; deleting an absent one does not.
	if err := s.Scrub(); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteWelcome([]byte("never stored")); err != nil {
		t.Errorf("DeleteWelcome of an absent id: %v", err)
	}
	if s.dirty != 0 {
		t.Errorf("deleting an absent Welcome marked %b for a scrub", s.dirty)
	}
	if err := s.PutWelcome(nil, []byte("x")); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("PutWelcome(nil): %v", err)
	}
	if err := s.DeleteWelcome(make([]byte, maxIDLen+1)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("DeleteWelcome(oversized): %v", err)
	}
	s.Close()

	s = openTest(t, dir, nil)
	got, err := s.Welcomes()
	if want := [][]byte{[]byte("welcome a"), []byte("welcome b'")}; err != nil || !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("Welcomes after reopen = %q, %v; want %q", got, err, want)
	}
	if err := s.DeleteWelcome([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Welcomes(); len(got) != 1 || string(got[0]) != "welcome b'" {
		t.Errorf("after DeleteWelcome(a): %q", got)
	}
}

// TestInvitations: a key space apart from the outbox, by ID, across a
// restart.
func TestInvitations(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	var b Batch
	b.PutInvitation([]byte("i2"), []byte("welcome 2"))
	b.PutInvitation([]byte("i1"), []byte("welcome 1"))
	b.PutWelcome([]byte("i1"), []byte("outbox, not an invitation"))
	commit(t, s, &b)
	if _, err := s.Invitation([]byte("i3")); !errors.Is(err, ErrNotFound) {
		t.Errorf("absent invitation: %v, want ErrNotFound", err)
	}
	if _, err := s.Invitation(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Invitation(nil): %v", err)
	}
	s.Close()

	s = openTest(t, dir, nil)
	if v, err := s.Invitation([]byte("i1")); err != nil || string(v) != "welcome 1" {
		t.Errorf("Invitation(i1) = %q, %v", v, err)
	}
	inv, err := s.Invitations()
	want := []Invitation{{ID: []byte("i1"), Data: []byte("welcome 1")}, {ID: []byte("i2"), Data: []byte("welcome 2")}}
	if err != nil || !slices.EqualFunc(inv, want, func(a, b Invitation) bool {
		return bytes.Equal(a.ID, b.ID) && bytes.Equal(a.Data, b.Data)
	}) {
		t.Fatalf("Invitations = %q, %v; want %q", inv, err, want)
	}
	var d Batch
	d.DeleteInvitation([]byte("i1"))
	d.DeleteInvitation([]byte("never stored"))
	commit(t, s, &d)
	if inv, _ := s.Invitations(); len(inv) != 1 || string(inv[0].ID) != "i2" {
		t.Errorf("after DeleteInvitation(i1): %q", inv)
	}
	if ws, _ := s.Welcomes(); len(ws) != 1 {
		t.Errorf("DeleteInvitation touched the outbox: %q", ws)
	}
}

func TestSyncCursors(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	// "ch" is a prefix of "ch2": lp() keeps their cursors apart.
	ch, ch2 := []byte("ch"), []byte("ch2")
	var b Batch
	b.PutSyncCursor(ch, []byte("peerA"), []byte("a1"))
	b.PutSyncCursor(ch, []byte("peerB"), []byte("b1"))
	b.PutSyncCursor(ch, []byte("peerA"), []byte("a2"))
	b.PutSyncCursor(ch2, []byte("peerA"), []byte("other channel"))
	commit(t, s, &b)
	if c, err := s.SyncCursor(ch, []byte("peerC")); c != nil || err != nil {
		t.Errorf("absent cursor = %q, %v; want nil, nil", c, err)
	}
	if _, err := s.SyncCursor(ch, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SyncCursor(ch, nil): %v", err)
	}
	if _, err := s.SyncCursors(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("SyncCursors(nil): %v", err)
	}
	s.Close()

	s = openTest(t, dir, nil)
	if c, err := s.SyncCursor(ch, []byte("peerA")); err != nil || string(c) != "a2" {
		t.Errorf("SyncCursor(ch, peerA) = %q, %v", c, err)
	}
	cs, err := s.SyncCursors(ch)
	if err != nil || len(cs) != 2 || string(cs["peerA"]) != "a2" || string(cs["peerB"]) != "b1" {
		t.Errorf("SyncCursors(ch) = %q, %v", cs, err)
	}
	var d Batch
	d.DeleteSyncCursors(ch)
	commit(t, s, &d)
	if cs, err := s.SyncCursors(ch); err != nil || len(cs) != 0 {
		t.Errorf("after DeleteSyncCursors: %q, %v", cs, err)
	}
	if c, _ := s.SyncCursor(ch2, []byte("peerA")); string(c) != "other channel" {
		t.Errorf("DeleteSyncCursors(ch) reached ch2: %q", c)
	}
}

// TestLogMessageIndex: LogSeqOf answers from the index after a restart and
// after TrimLog, keeps the first sequence number of an id, and keeps
// channels apart.
func TestLogMessageIndex(t *testing.T) {
	for _, pass := range []string{"", "pw"} {
		t.Run(fmt.Sprintf("encrypted=%v", pass != ""), func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, encOptions(pass))
			ch, ch2 := []byte("ch"), []byte("ch2")
			var b Batch
			for i := 1; i <= 10; i++ {
				b.AppendLog(ch, fmt.Appendf(nil, "m%d", i), fmt.Appendf(nil, "entry %d", i))
			}
			b.AppendLog(ch, nil, []byte("a commit, not indexed"))      // 11
			b.AppendLog(ch, []byte("m3"), []byte("m3 again"))          // 12
			b.AppendLog(ch2, []byte("m1"), []byte("other channel m1")) // 1 of ch2
			commit(t, s, &b)
			s.Close()

			s = openTest(t, dir, encOptions(pass))
			wantSeq := func(ch []byte, id string, want uint64) {
				t.Helper()
				seq, err := s.LogSeqOf(ch, []byte(id))
				if want == 0 {
					if !errors.Is(err, ErrNotFound) {
						t.Errorf("LogSeqOf(%s, %s) = %d, %v; want ErrNotFound", ch, id, seq, err)
					}
					return
				}
				if err != nil || seq != want {
					t.Errorf("LogSeqOf(%s, %s) = %d, %v; want %d", ch, id, seq, err, want)
				}
			}
			for i := uint64(1); i <= 10; i++ {
				wantSeq(ch, fmt.Sprintf("m%d", i), i)
			}
			wantSeq(ch, "m3", 3) // the first one
			wantSeq(ch, "m11", 0)
			wantSeq(ch2, "m1", 1)
			if e, err := s.LogEntry(ch, 12); err != nil || string(e) != "m3 again" {
				t.Errorf("LogEntry(12) = %q, %v", e, err)
			}
			if _, err := s.LogEntry(ch, 13); !errors.Is(err, ErrNotFound) {
				t.Errorf("LogEntry(13): %v, want ErrNotFound", err)
			}

			var trim Batch
			trim.TrimLog(ch, 6)
			commit(t, s, &trim)
			s.Close()
			s = openTest(t, dir, encOptions(pass))
			for i := uint64(1); i <= 5; i++ {
				wantSeq(ch, fmt.Sprintf("m%d", i), 0)
				if _, err := s.LogEntry(ch, i); !errors.Is(err, ErrNotFound) {
					t.Errorf("LogEntry(%d) after trim: %v", i, err)
				}
			}
			for i := uint64(6); i <= 10; i++ {
				wantSeq(ch, fmt.Sprintf("m%d", i), i)
			}
			wantSeq(ch2, "m1", 1)
			// Trimming takes its index entries along, and nothing else.
			if n, _ := s.countKeys(logSeqIDPrefix(ch)); n != 5 {
				t.Errorf("%d seq-to-ID entries after the trim, want 5", n)
			}
			if n, _ := s.countKeys(logIDPrefix(ch)); n != 5 {
				t.Errorf("%d ID-to-seq entries after the trim, want 5", n)
			}

			// An id is indexed anew once its first entry is trimmed.
			var again Batch
			again.AppendLog(ch, []byte("m1"), []byte("m1 after the trim"))
			again.TrimLog(ch, math.MaxUint64)
			again.AppendLog(ch, []byte("m2"), []byte("m2 after trimming all"))
			commit(t, s, &again)
			wantSeq(ch, "m1", 0)
			wantSeq(ch, "m2", 14)
			wantSeq(ch, "m7", 0)

			if _, err := s.LogSeqOf(ch, nil); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("LogSeqOf(ch, nil): %v", err)
			}
			if _, err := s.LogSeqOf(nil, []byte("m1")); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("LogSeqOf(nil, m1): %v", err)
			}
			if _, err := s.LogEntry(nil, 1); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("LogEntry(nil, 1): %v", err)
			}
		})
	}
}

// TestPutKeyPackageLastResort: the lastResort parameter of
// (*Store).PutKeyPackage, mlsgroup.Storage's, sets the flag that
// ConsumeKeyPackage honours.
func TestPutKeyPackageLastResort(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	if err := s.PutKeyPackage([]byte("lr"), []byte("p-lr"), 1<<40, true); err != nil {
		t.Fatal(err)
	}
	if err := s.PutKeyPackage([]byte("one"), []byte("p-one"), 1<<40, false); err != nil {
		t.Fatal(err)
	}
	if err := s.PutKeyPackage(nil, []byte("p"), 1<<40, true); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("PutKeyPackage(nil): %v", err)
	}
	kps, err := s.KeyPackages()
	if err != nil || len(kps) != 2 {
		t.Fatalf("KeyPackages = %v, %v", kps, err)
	}
	for _, kp := range kps {
		if kp.LastResort != (string(kp.Ref) == "lr") {
			t.Errorf("%s: LastResort = %v", kp.Ref, kp.LastResort)
		}
	}
	var join Batch
	join.ConsumeKeyPackage([]byte("lr"))
	join.ConsumeKeyPackage([]byte("one"))
	commit(t, s, &join)
	wantKP(t, s, []byte("lr"), KeyPackageAvailable, []byte("p-lr"))
	wantKP(t, s, []byte("one"), KeyPackageConsumed, nil)

	// Putting it again without the flag makes it an ordinary one.
	if err := s.PutKeyPackage([]byte("lr"), []byte("p-lr"), 1<<40, false); err != nil {
		t.Fatal(err)
	}
	var join2 Batch
	join2.ConsumeKeyPackage([]byte("lr"))
	commit(t, s, &join2)
	wantKP(t, s, []byte("lr"), KeyPackageConsumed, nil)
}
