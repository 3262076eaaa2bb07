package store

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
)

// testdata/schema-v1 is a LevelDB directory written with schema 1's layout
// (no group counter). Regenerate it with
//
//	go test ./store -run TestMigrateFromSchemaV1 -update-fixtures
var updateFixtures = flag.Bool("update-fixtures", false, "rewrite testdata/schema-v1")

const fixtureV1 = "testdata/schema-v1"

// oldSecretKey and oldWelcomeKey are the layouts of schemas 1 and 2 for
// the retired epoch secrets and for Welcomes filed by recipient.
func oldSecretKey(group []byte, epoch uint64, id []byte) []byte {
	return append(binary.BigEndian.AppendUint64(lp(nsRetiredSecret, group), epoch), id...)
}

func oldWelcomeKey(recipient, id []byte) []byte { return append(lp(nsWelcome, recipient), id...) }

// writeSchemaV1 writes schema 1's records as that version laid them out.
func writeSchemaV1(dir string) error {
	db, err := leveldb.OpenFile(dir, levelOptions())
	if err != nil {
		return err
	}
	u64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	b := new(leveldb.Batch)
	b.Put(metaKey(metaSchema), binary.BigEndian.AppendUint32(nil, 1))
	for i := range 3 {
		g := fmt.Appendf(nil, "v1-group-%d", i)
		b.Put(groupKey(g), fmt.Appendf(nil, "v1 state of group %d", i))
		b.Put(oldSecretKey(g, 4, []byte("epoch")), fmt.Appendf(nil, "v1 epoch secret %d", i))
	}
	b.Put(kpKey([]byte("v1-ref")), encodeKP(1<<40, 0, []byte("v1 kp private")))
	b.Put(kpExpiryKey(1<<40, []byte("v1-ref")), []byte{0})
	for seq := uint64(1); seq <= 3; seq++ {
		b.Put(logKey([]byte("v1-group-0"), seq), fmt.Appendf(nil, "v1 message %d", seq))
	}
	b.Put(logHeadKey([]byte("v1-group-0")), u64(3))
	b.Put(oldWelcomeKey([]byte("v1-peer"), []byte("w")), []byte("v1 welcome"))
	if err := db.Write(b, syncWrite); err != nil {
		return err
	}
	// Flush everything into a table so the fixture is one .ldb file and a
	// MANIFEST, with no journal to replay.
	if err := db.CompactRange(util.Range{}); err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return err
	}
	for _, junk := range []string{"LOCK", "LOG", "LOG.old"} {
		os.Remove(filepath.Join(dir, junk))
	}
	return nil
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

func TestMigrateFromSchemaV1(t *testing.T) {
	if *updateFixtures {
		os.RemoveAll(fixtureV1)
		if err := writeSchemaV1(fixtureV1); err != nil {
			t.Fatal(err)
		}
		// The empty journal LevelDB leaves is not part of the fixture.
		logs, _ := filepath.Glob(filepath.Join(fixtureV1, "*.log"))
		for _, l := range logs {
			if fi, err := os.Stat(l); err == nil && fi.Size() == 0 {
				os.Remove(l)
			}
		}
	}
	dir := t.TempDir()
	copyDir(t, fixtureV1, dir)

	s := openTest(t, dir, nil)
	v, err := s.db.Get(metaKey(metaSchema), nil)
	if err != nil || binary.BigEndian.Uint32(v) != schemaVersion {
		t.Fatalf("schema after Open = %x, %v; want %d", v, err, schemaVersion)
	}
	if s.groups != 3 {
		t.Errorf("migrated group counter = %d, want 3", s.groups)
	}
	for i := range 3 {
		g := fmt.Appendf(nil, "v1-group-%d", i)
		if st, err := s.Group(g); err != nil || string(st) != fmt.Sprintf("v1 state of group %d", i) {
			t.Errorf("group %d = %q, %v", i, st, err)
		}
	}
	wantKP(t, s, []byte("v1-ref"), KeyPackageAvailable, []byte("v1 kp private"))
	if p, err := s.LogAfter([]byte("v1-group-0"), 1, 10); err != nil || len(p) != 2 || string(p[1].Data) != "v1 message 3" {
		t.Errorf("log = %v, %v", p, err)
	}
	// Schema 3 dropped the epoch secrets and filed the Welcome by its ID.
	if n, err := s.countKeys([]byte{nsRetiredSecret}); err != nil || n != 0 {
		t.Errorf("%d retired epoch secrets left (%v)", n, err)
	}
	if w, err := s.Welcomes(); err != nil || len(w) != 1 || string(w[0]) != "v1 welcome" {
		t.Errorf("welcomes = %q, %v", w, err)
	}
	if v, err := s.get("read", welcomeKey([]byte("w"))); err != nil || string(v) != "v1 welcome" {
		t.Errorf("welcome under its ID = %q, %v", v, err)
	}
	if err := s.DeleteWelcome([]byte("w")); err != nil {
		t.Fatal(err)
	}
	if w, err := s.Welcomes(); err != nil || len(w) != 0 {
		t.Errorf("welcomes after DeleteWelcome = %q, %v", w, err)
	}
	// The migrated store behaves as a new one: a new group is counted.
	var b Batch
	b.PutGroup([]byte("new"), []byte("state"))
	b.AppendLog([]byte("v1-group-0"), []byte("id"), []byte("after migration"))
	commit(t, s, &b)
	if seq := b.Seqs(); seq[0] != 4 {
		t.Errorf("log continued at %d, want 4", seq[0])
	}
	s.Close()
	// The migration's deletions were scrubbed: the fixture's table held
	// the secrets, and no file does now.
	if hits := filesContaining(t, dir, []byte("v1 epoch secret")); len(hits) > 0 {
		t.Errorf("retired epoch secrets still in %v", hits)
	}
	s = openTest(t, dir, nil)
	if s.groups != 4 {
		t.Errorf("counter after reopen = %d, want 4", s.groups)
	}
	if seq, err := s.LogSeqOf([]byte("v1-group-0"), []byte("id")); err != nil || seq != 4 {
		t.Errorf("LogSeqOf after reopen = %d, %v", seq, err)
	}
}

// TestMigrateEncryptedWelcomesFromSchemaV2: an encrypted schema-2 store's
// Welcomes, sealed under their old keys, are resealed under their new
// ones, and its epoch secrets go.
func TestMigrateEncryptedWelcomesFromSchemaV2(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, encOptions("pw"))
	for _, w := range []struct{ to, id, v string }{{"p2p-outbox", "w1", "SEALED-welcome-1"}, {"p2p-outbox", "w2", "SEALED-welcome-2"}} {
		k := oldWelcomeKey([]byte(w.to), []byte(w.id))
		v, err := s.sealValue(k, []byte(w.v))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.db.Put(k, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	k := oldSecretKey([]byte("g"), 3, []byte("epoch"))
	v, err := s.sealValue(k, []byte("SEALED-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.db.Put(k, v, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Put(metaKey(metaSchema), binary.BigEndian.AppendUint32(nil, 2), syncWrite); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = openTest(t, dir, encOptions("pw"))
	if v, err := s.db.Get(metaKey(metaSchema), nil); err != nil || binary.BigEndian.Uint32(v) != schemaVersion {
		t.Fatalf("schema = %x, %v", v, err)
	}
	ws, err := s.Welcomes()
	if err != nil || len(ws) != 2 || string(ws[0]) != "SEALED-welcome-1" || string(ws[1]) != "SEALED-welcome-2" {
		t.Fatalf("Welcomes = %q, %v", ws, err)
	}
	if n, err := s.countKeys([]byte{nsRetiredSecret}); err != nil || n != 0 {
		t.Errorf("%d retired epoch secrets left (%v)", n, err)
	}
	if err := s.DeleteWelcome([]byte("w1")); err != nil {
		t.Fatal(err)
	}
	if ws, _ := s.Welcomes(); len(ws) != 1 || string(ws[0]) != "SEALED-welcome-2" {
		t.Errorf("after DeleteWelcome(w1): %q", ws)
	}
}

func TestSchemaTooNew(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	s.Close()
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Put(metaKey(metaSchema), binary.BigEndian.AppendUint32(nil, schemaVersion+1), nil)
	db.Close()
	if _, err := Open(dir, testOptions()); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: %v, want ErrSchemaTooNew", err)
	}
}
