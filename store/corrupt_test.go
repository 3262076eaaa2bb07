package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/syndtr/goleveldb/leveldb/util"
)

const damageGroups = 40

// damageFixture writes damageGroups group states of 100 KiB, enough for
// LevelDB to spread them over several table files, and compacts everything
// into tables. It returns the table files in key order.
func damageFixture(t *testing.T, dir string) []string {
	t.Helper()
	s, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	for i := range damageGroups {
		var b Batch
		b.PutGroup(fmt.Appendf(nil, "group-%02d", i), bytes.Repeat([]byte{byte(i)}, 100<<10))
		b.AppendLog(fmt.Appendf(nil, "group-%02d", i), nil, []byte("joined"))
		commit(t, s, &b)
	}
	if err := s.db.CompactRange(util.Range{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // waits for the replaced tables to go
		t.Fatal(err)
	}
	tables, _ := filepath.Glob(filepath.Join(dir, "*.ldb"))
	if len(tables) < 2 {
		t.Fatalf("want several tables, have %v", tables)
	}
	slices.Sort(tables)
	return tables
}

// tableHolding returns the table file containing needle.
func tableHolding(t *testing.T, tables []string, needle string) string {
	t.Helper()
	for _, f := range tables {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(needle)) {
			return f
		}
	}
	t.Fatalf("no table holds %q", needle)
	return ""
}

func wantCorrupt(t *testing.T, dir string) *CorruptError {
	t.Helper()
	s, err := Open(dir, testOptions())
	if err == nil {
		ids, _ := s.GroupIDs()
		s.Close()
		t.Fatalf("Open succeeded on a damaged store, with %d of %d groups", len(ids), damageGroups)
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v, want a *CorruptError", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "store.Recover") {
		t.Errorf("the error does not name the directory and the recovery path: %v", err)
	}
	return ce
}

func groupCount(t *testing.T, dir string) int {
	t.Helper()
	s := openTest(t, dir, nil)
	defer s.Close()
	ids, err := s.GroupIDs()
	if err != nil {
		t.Fatal(err)
	}
	return len(ids)
}

// TestDamageNeverSilentlyDropsGroups damages a store in the ways a disk
// can, and checks that Open refuses it with a CorruptError, and that
// Recover either gets every group back or says how many were lost, keeps a
// backup, and leaves the store refusing to open until told to accept the
// loss.
func TestDamageNeverSilentlyDropsGroups(t *testing.T) {
	for _, c := range []struct {
		name     string
		damage   func(t *testing.T, dir string, tables []string)
		lossless bool // Recover gets every group back
	}{
		{"truncated table", func(t *testing.T, dir string, tables []string) {
			f := tableHolding(t, tables, "group-39")
			fi, _ := os.Stat(f)
			if err := os.Truncate(f, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"flipped byte in a group's block", func(t *testing.T, dir string, tables []string) {
			f := tableHolding(t, tables, "group-20")
			b, _ := os.ReadFile(f)
			i := bytes.Index(b, []byte("group-20"))
			b[i+1000] ^= 0xff // inside group-20's state
			os.WriteFile(f, b, 0o644)
		}, false},
		{"missing table", func(t *testing.T, dir string, tables []string) {
			os.Remove(tableHolding(t, tables, "group-39"))
		}, false},
		{"lost CURRENT", func(t *testing.T, dir string, tables []string) {
			os.Remove(filepath.Join(dir, "CURRENT"))
		}, true},
		{"damaged manifest", func(t *testing.T, dir string, tables []string) {
			ms, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
			b, _ := os.ReadFile(ms[0])
			for i := 10; i < len(b); i += 7 {
				b[i] ^= 0x5a
			}
			os.WriteFile(ms[0], b, 0o644)
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			tables := damageFixture(t, dir)
			c.damage(t, dir, tables)
			ce := wantCorrupt(t, dir)
			t.Logf("Open: %s", ce.Detail)

			res, err := Recover(dir, nil)
			if saved, _ := filepath.Glob(filepath.Join(res.Backup, "*.ldb")); res.Backup == "" || len(saved) == 0 {
				t.Fatalf("no backup copy in %q", res.Backup)
			}
			if c.lossless {
				if err != nil {
					t.Fatalf("Recover: %v", err)
				}
				if n := groupCount(t, dir); n != damageGroups {
					t.Fatalf("%d groups after recovery, want %d", n, damageGroups)
				}
				return
			}
			if !errors.Is(err, ErrGroupsLost) || res.GroupsFound >= damageGroups || res.GroupsRecorded != damageGroups {
				t.Fatalf("Recover = %+v, %v; want ErrGroupsLost with %d recorded", res, err, damageGroups)
			}
			t.Logf("Recover: %v", err)
			// Until the loss is accepted, the store still refuses to open.
			wantCorrupt(t, dir)
			res2, err := Recover(dir, &RecoverOptions{AcceptGroupMismatch: true})
			if err != nil {
				t.Fatalf("Recover accepting the loss: %v", err)
			}
			if res2.Backup == res.Backup {
				t.Errorf("the second recovery overwrote the first backup")
			}
			if n := groupCount(t, dir); uint64(n) != res.GroupsFound {
				t.Errorf("%d groups after accepting, Recover found %d", n, res.GroupsFound)
			}
		})
	}
}

func TestRecoverRefusesAnOpenStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	openTest(t, dir, nil)
	if _, err := Recover(dir, nil); !errors.Is(err, ErrLocked) {
		t.Fatalf("Recover on an open store: %v, want ErrLocked", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".backup-") {
			t.Errorf("a refused recovery left a backup %s", e.Name())
		}
	}
}

// TestErrorsHideGoleveldb: no error that leaves the package has a goleveldb
// type anywhere in its chain.
func TestErrorsHideGoleveldb(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	tables := damageFixture(t, dir)
	var errs []error
	s := openTest(t, dir, nil)
	_, err := s.Group([]byte("nope"))
	errs = append(errs, err)
	_, err = Open(dir, testOptions())
	errs = append(errs, err)
	s.Close()
	_, err = s.Group([]byte("x"))
	errs = append(errs, err)
	os.Truncate(tables[len(tables)-1], 100)
	_, err = Open(dir, testOptions())
	errs = append(errs, err)
	_, err = Recover(dir, nil)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("expected an error")
		}
		walkErrors(err, func(e error) {
			if p := reflect.TypeOf(e).String(); strings.Contains(p, "leveldb") {
				t.Errorf("%v: chain holds a %s", err, p)
			}
			if p := reflect.TypeOf(e); p.Kind() == reflect.Pointer && strings.Contains(p.Elem().PkgPath(), "goleveldb") {
				t.Errorf("%v: chain holds a %s", err, p)
			}
		})
	}
}

func walkErrors(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		walkErrors(u.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walkErrors(e, fn)
		}
	}
}

// TestDamagedJournal: LevelDB drops a journal block that fails its
// checksum and replays the rest; the group counter turns the groups that
// block held into an error instead of a silence.
func TestDamagedJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store") // Recover's backup goes beside it
	s := openTest(t, dir, nil)
	for i := range 20 {
		var b Batch
		b.PutGroup(fmt.Appendf(nil, "group-%02d", i), bytes.Repeat([]byte{byte(i)}, 10<<10))
		commit(t, s, &b)
	}
	s.Close() // nothing was deleted, so nothing was compacted: all in the journal
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(logs) != 1 {
		t.Fatalf("journals %v", logs)
	}
	b, _ := os.ReadFile(logs[0])
	b[len(b)/3] ^= 0xff
	os.WriteFile(logs[0], b, 0o644)

	ce := wantCorrupt(t, dir)
	if !strings.Contains(ce.Detail, "20 recorded") {
		t.Errorf("detail %q does not give the counts", ce.Detail)
	}
	res, err := Recover(dir, nil)
	if !errors.Is(err, ErrGroupsLost) || res.GroupsRecorded != 20 || res.GroupsFound >= 20 {
		t.Fatalf("Recover = %+v, %v", res, err)
	}
}

// TestOpenSurvivesCompactionDuringTableCheck runs a compaction that
// replaces a table between Open's listing of the tables and its look at
// each file, as LevelDB's background compaction may on its own right after
// opening: the replaced table is gone, and that is not corruption.
func TestOpenSurvivesCompactionDuringTableCheck(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	for i := range 100 {
		if err := s.db.Put([]byte{nsLog, byte(i)}, make([]byte, 100), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.db.CompactRange(util.Range{}); err != nil {
		t.Fatal(err)
	}
	before, err := s.listTables()
	if err != nil || len(before) == 0 {
		t.Fatalf("no tables to replace: %v, %v", before, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	replaced := false
	afterTableListing = func(s *Store) {
		afterTableListing = func(*Store) {}
		if err := s.db.Put([]byte{nsLog, 0}, []byte("newer"), nil); err != nil {
			t.Error(err)
		}
		if err := s.db.CompactRange(util.Range{}); err != nil {
			t.Error(err)
		}
		s.awaitObsoleteFiles()
		now, err := s.listTables()
		if err != nil {
			t.Error(err)
		}
		for num := range before {
			if _, ok := now[num]; !ok {
				replaced = true
			}
		}
	}
	defer func() { afterTableListing = func(*Store) {} }()
	s2, err := Open(dir, testOptions())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s2.Close()
	if !replaced {
		t.Fatal("the compaction replaced no listed table; the test proves nothing")
	}
}
