package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
)

func encOptions(pass string) *Options {
	o := testOptions()
	o.Passphrase = []byte(pass)
	return o
}

// TestEncryptedAtRest: with a passphrase no value reaches the files in
// plaintext, and the right passphrase reads everything back.
func TestEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, encOptions("correct horse"))
	var b Batch
	b.PutGroup([]byte("g"), []byte("PLAINSTATE-group-state-bytes"))
	b.PutKeyPackage([]byte("ref"), []byte("PLAINKP-private-key-bytes"), 1<<40, false)
	b.AppendLog([]byte("g"), nil, []byte("PLAINLOG-hello world"))
	b.PutWelcome([]byte("w"), []byte("PLAINWELCOME"))
	b.PutInvitation([]byte("i"), []byte("PLAININVITE"))
	b.PutSyncCursor([]byte("g"), []byte("peer"), []byte("PLAINCURSOR"))
	commit(t, s, &b)
	if err := s.Datastore().Put(t.Context(), dsKey("/providers/x"), []byte("PLAINDHT-record")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"PLAINSTATE", "PLAINKP", "PLAINLOG", "PLAINWELCOME", "PLAININVITE", "PLAINCURSOR", "PLAINDHT"} {
		if hits := filesContaining(t, dir, []byte(m)); len(hits) > 0 {
			t.Errorf("%s in plaintext in %v", m, hits)
		}
	}
	s = openTest(t, dir, encOptions("correct horse"))
	if v, err := s.Group([]byte("g")); err != nil || string(v) != "PLAINSTATE-group-state-bytes" {
		t.Errorf("Group = %q, %v", v, err)
	}
	if p, _ := s.LogAfter([]byte("g"), 0, 10); len(p) != 1 || string(p[0].Data) != "PLAINLOG-hello world" {
		t.Errorf("log = %v", p)
	}
	if v, err := s.Datastore().Get(t.Context(), dsKey("/providers/x")); err != nil || string(v) != "PLAINDHT-record" {
		t.Errorf("datastore = %q, %v", v, err)
	}
	wantKP(t, s, []byte("ref"), KeyPackageAvailable, []byte("PLAINKP-private-key-bytes"))
	if ws, err := s.Welcomes(); err != nil || len(ws) != 1 || string(ws[0]) != "PLAINWELCOME" {
		t.Errorf("Welcomes = %q, %v", ws, err)
	}
	if v, err := s.Invitation([]byte("i")); err != nil || string(v) != "PLAININVITE" {
		t.Errorf("Invitation = %q, %v", v, err)
	}
	if v, err := s.SyncCursor([]byte("g"), []byte("peer")); err != nil || string(v) != "PLAINCURSOR" {
		t.Errorf("SyncCursor = %q, %v", v, err)
	}
}

func TestPassphraseErrors(t *testing.T) {
	enc, plain := t.TempDir(), t.TempDir()
	for _, c := range []struct{ dir, pass string }{{enc, "right"}, {plain, ""}} {
		s, err := Open(c.dir, encOptions(c.pass))
		if err != nil {
			t.Fatal(err)
		}
		var b Batch
		b.PutGroup([]byte("g"), []byte("state"))
		commit(t, s, &b)
		s.Close()
	}
	for _, c := range []struct {
		name, dir, pass string
		want            error
	}{
		{"wrong passphrase", enc, "wrong", ErrWrongPassphrase},
		{"no passphrase", enc, "", ErrPassphraseRequired},
		{"passphrase for a plaintext store", plain, "right", ErrNotEncrypted},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(c.dir, encOptions(c.pass))
			if !errors.Is(err, c.want) {
				if s != nil {
					s.Close()
				}
				t.Fatalf("Open: %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.dir) {
				t.Errorf("%q does not name the directory", err)
			}
		})
	}
	// The wrong passphrase changed nothing.
	s := openTest(t, enc, encOptions("right"))
	if v, err := s.Group([]byte("g")); err != nil || string(v) != "state" {
		t.Errorf("Group = %q, %v", v, err)
	}
}

// TestSealedValuesCannotBeSwapped: a value moved to another key (here, one
// group's state over another's) fails to open, at Open and at read.
func TestSealedValuesCannotBeSwapped(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, encOptions("pw"))
	var b Batch
	b.PutGroup([]byte("alice"), []byte("alice state"))
	b.PutGroup([]byte("bob"), []byte("bob state"))
	b.AppendLog([]byte("alice"), nil, []byte("one"))
	b.AppendLog([]byte("alice"), nil, []byte("two"))
	commit(t, s, &b)
	s.Close()

	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := db.Get(groupKey([]byte("bob")), nil)
	db.Put(groupKey([]byte("alice")), bob, nil)
	two, _ := db.Get(logKey([]byte("alice"), 2), nil)
	db.Put(logKey([]byte("alice"), 1), two, nil)
	db.Close()

	_, err = Open(dir, encOptions("pw"))
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(ce.Detail, "authentication") {
		t.Fatalf("Open after swapping group states: %v, want a CorruptError", err)
	}

	// The log is not verified at Open; its swapped entry fails when read.
	db, _ = leveldb.OpenFile(dir, nil)
	db.Delete(groupKey([]byte("alice")), nil)
	db.Put(metaKey(metaGroups), []byte{0, 0, 0, 0, 0, 0, 0, 1}, nil)
	db.Close()
	s = openTest(t, dir, encOptions("pw"))
	if _, err := s.LogAfter([]byte("alice"), 0, 10); !errors.Is(err, ErrCorrupt) {
		t.Errorf("reading a swapped log entry: %v, want ErrCorrupt", err)
	}
}
