package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestOpenCloseIdempotent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, testOptions())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Group([]byte("g")); !errors.Is(err, ErrClosed) {
		t.Errorf("Group after Close: %v, want ErrClosed", err)
	}
	var b Batch
	b.PutGroup([]byte("g"), []byte("s"))
	if err := s.Commit(&b); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v, want ErrClosed", err)
	}
	if err := s.Scrub(); !errors.Is(err, ErrClosed) {
		t.Errorf("Scrub after Close: %v, want ErrClosed", err)
	}
	// Close released the lock.
	s2, err := Open(dir, testOptions())
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	s2.Close()
}

func TestSecondOpenInProcessIsLocked(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, nil)
	_, err := Open(dir, testOptions())
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want *LockedError", err)
	}
	if le.Dir != dir || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name %s", err, dir)
	}
}

// TestCommitIsAllOrNothing: a batch whose last operation fails writes
// nothing of its earlier ones.
func TestCommitIsAllOrNothing(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	g := []byte("group")
	var b Batch
	b.PutGroup(g, []byte("state 1"))
	b.AppendLog(g, []byte("commit 1"))
	b.PutEpochSecret(g, 1, nil, []byte("secret 1"))
	b.ConsumeKeyPackage([]byte("never stored"))
	if err := s.Commit(&b); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Commit: %v, want ErrNotFound", err)
	}
	if _, err := s.Group(g); !errors.Is(err, ErrNotFound) {
		t.Errorf("group after failed commit: %v", err)
	}
	if h, _ := s.LogHead(g); h != 0 {
		t.Errorf("log head after failed commit: %d", h)
	}
	if sec, _ := s.EpochSecrets(g); len(sec) != 0 {
		t.Errorf("secrets after failed commit: %v", sec)
	}
	if ids, _ := s.GroupIDs(); len(ids) != 0 {
		t.Errorf("groups after failed commit: %q", ids)
	}

	// The same log numbering continues as if the failed batch never was.
	var ok Batch
	ok.PutGroup(g, []byte("state 1"))
	ok.AppendLog(g, []byte("commit 1"))
	commit(t, s, &ok)
	if got := ok.Seqs(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("Seqs = %v, want [1]", got)
	}
	if err := s.Commit(&ok); !errors.Is(err, ErrBatchCommitted) {
		t.Errorf("second Commit: %v, want ErrBatchCommitted", err)
	}
}

func TestBatchInvalidArguments(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	for name, fill := range map[string]func(*Batch){
		"empty group":        func(b *Batch) { b.PutGroup(nil, []byte("s")) },
		"empty channel":      func(b *Batch) { b.AppendLog(nil, []byte("e")) },
		"empty ref":          func(b *Batch) { b.PutKeyPackage(nil, []byte("k"), 1) },
		"empty welcome id":   func(b *Batch) { b.PutWelcome([]byte("peer"), nil, []byte("w")) },
		"oversized group":    func(b *Batch) { b.PutGroup(make([]byte, maxIDLen+1), []byte("s")) },
		"empty secret grp":   func(b *Batch) { b.DeleteEpochSecrets(nil, 3) },
		"empty sig key name": func(b *Batch) { b.PutSignatureKey(nil, []byte("k")) },
	} {
		t.Run(name, func(t *testing.T) {
			var b Batch
			b.PutGroup([]byte("fine"), []byte("s"))
			fill(&b)
			if err := s.Commit(&b); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("Commit: %v, want ErrInvalidArgument", err)
			}
			if _, err := s.Group([]byte("fine")); !errors.Is(err, ErrNotFound) {
				t.Errorf("a rejected batch wrote: %v", err)
			}
		})
	}
}

// TestBatchSeesItsOwnWrites: operations apply in order, and a range
// deletion covers keys the same batch put.
func TestBatchSeesItsOwnWrites(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	g := []byte("g")
	var b Batch
	for e := uint64(1); e <= 4; e++ {
		b.PutEpochSecret(g, e, []byte("epoch"), fmt.Appendf(nil, "secret %d", e))
		b.PutEpochSecret(g, e, []byte("m0"), fmt.Appendf(nil, "msgkey %d", e))
	}
	b.DeleteEpochSecrets(g, 3)
	b.DeleteEpochSecret(g, 4, []byte("m0"))
	b.PutGroup(g, []byte("v1"))
	b.PutGroup(g, []byte("v2")) // the same group twice counts once
	commit(t, s, &b)

	got, err := s.EpochSecrets(g)
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, e := range got {
		desc = append(desc, fmt.Sprintf("%d/%s=%s", e.Epoch, e.ID, e.Secret))
	}
	want := []string{"3/epoch=secret 3", "3/m0=msgkey 3", "4/epoch=secret 4"}
	if !slices.Equal(desc, want) {
		t.Errorf("secrets = %q, want %q", desc, want)
	}
	if v, _ := s.Group(g); string(v) != "v2" {
		t.Errorf("group = %q, want v2", v)
	}
	if s.groups != 1 {
		t.Errorf("group counter = %d, want 1", s.groups)
	}
}

func TestGroupsAndCounterAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	var b Batch
	for i := range 5 {
		id := fmt.Appendf(nil, "group-%d", i)
		b.PutGroup(id, []byte("state"))
		b.PutEpochSecret(id, 7, nil, []byte("s"))
	}
	commit(t, s, &b)
	var d Batch
	d.DeleteGroup([]byte("group-1"))
	d.DeleteGroup([]byte("group-3"))
	d.DeleteGroup([]byte("no such group"))
	commit(t, s, &d)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, nil)
	ids, err := s.GroupIDs()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{[]byte("group-0"), []byte("group-2"), []byte("group-4")}
	if !slices.EqualFunc(ids, want, bytes.Equal) {
		t.Errorf("GroupIDs = %q, want %q", ids, want)
	}
	if s.groups != 3 {
		t.Errorf("counter = %d, want 3", s.groups)
	}
	if sec, _ := s.EpochSecrets([]byte("group-1")); len(sec) != 0 {
		t.Errorf("DeleteGroup left secrets: %v", sec)
	}
}

func TestSignatureKeysAndWelcomes(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	var b Batch
	b.PutSignatureKey([]byte("default"), []byte("ed25519 private"))
	b.PutWelcome([]byte("peerA"), []byte("w1"), []byte("welcome 1"))
	b.PutWelcome([]byte("peerA"), []byte("w2"), []byte("welcome 2"))
	b.PutWelcome([]byte("peerB"), []byte("w1"), []byte("welcome 3"))
	commit(t, s, &b)

	if k, err := s.SignatureKey([]byte("default")); err != nil || string(k) != "ed25519 private" {
		t.Errorf("SignatureKey = %q, %v", k, err)
	}
	if _, err := s.SignatureKey([]byte("other")); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing SignatureKey: %v", err)
	}
	a, err := s.Welcomes([]byte("peerA"))
	if err != nil || len(a) != 2 || string(a[0].Data) != "welcome 1" || string(a[1].ID) != "w2" {
		t.Errorf("Welcomes(peerA) = %+v, %v", a, err)
	}
	var d Batch
	d.DeleteWelcome([]byte("peerA"), []byte("w1"))
	commit(t, s, &d)
	all, err := s.PendingWelcomes()
	if err != nil || len(all) != 2 || string(all[0].Recipient) != "peerA" || string(all[1].Recipient) != "peerB" {
		t.Errorf("PendingWelcomes = %+v, %v", all, err)
	}
}

func TestEpochSecretDoesNotPrint(t *testing.T) {
	e := EpochSecret{Epoch: 3, ID: []byte("m"), Secret: []byte("TOPSECRET")}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, e); strings.Contains(out, "TOPSECRET") || strings.Contains(out, "544f50") {
			t.Errorf("%s prints the secret: %s", f, out)
		}
	}
}

func TestLogPaging(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	ch, other := []byte("channel"), []byte("channel2") // other sorts right after ch
	for i := 1; i <= 25; i++ {
		var b Batch
		b.AppendLog(ch, fmt.Appendf(nil, "m%d", i))
		b.AppendLog(other, []byte("x"))
		commit(t, s, &b)
		if got := b.Seqs(); !slices.Equal(got, []uint64{uint64(i), uint64(i)}) {
			t.Fatalf("append %d: Seqs = %v", i, got)
		}
	}
	seqs := func(p []LogEntry) []uint64 {
		var out []uint64
		for _, e := range p {
			if string(e.Data) != fmt.Sprintf("m%d", e.Seq) {
				t.Fatalf("entry %d holds %q", e.Seq, e.Data)
			}
			out = append(out, e.Seq)
		}
		return out
	}

	// Forward from the start, 10 at a time.
	var fwd []uint64
	for cur := uint64(0); ; {
		p, err := s.LogAfter(ch, cur, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) == 0 {
			break
		}
		fwd = append(fwd, seqs(p)...)
		cur = p[len(p)-1].Seq
	}
	if len(fwd) != 25 || !slices.IsSorted(fwd) || fwd[0] != 1 {
		t.Errorf("forward paging = %v", fwd)
	}
	// Backward from the newest.
	var back []uint64
	for cur := uint64(math.MaxUint64); ; {
		p, err := s.LogBefore(ch, cur, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) == 0 {
			break
		}
		back = append(back, seqs(p)...)
		cur = p[len(p)-1].Seq
	}
	slices.Reverse(back)
	if !slices.Equal(back, fwd) {
		t.Errorf("backward paging = %v, want %v reversed", back, fwd)
	}
	// Pages from the middle, both ways.
	if p, _ := s.LogAfter(ch, 20, 100); !slices.Equal(seqs(p), []uint64{21, 22, 23, 24, 25}) {
		t.Errorf("LogAfter(20) = %v", seqs(p))
	}
	if p, _ := s.LogBefore(ch, 4, 100); !slices.Equal(seqs(p), []uint64{3, 2, 1}) {
		t.Errorf("LogBefore(4) = %v", seqs(p))
	}
	if _, err := s.LogAfter(ch, 0, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("limit 0: %v", err)
	}

	// Trimming deletes the old entries; numbers are never reused.
	var trim Batch
	trim.TrimLog(ch, 21)
	commit(t, s, &trim)
	if p, _ := s.LogAfter(ch, 0, 100); !slices.Equal(seqs(p), []uint64{21, 22, 23, 24, 25}) {
		t.Errorf("after TrimLog: %v", seqs(p))
	}
	var all Batch
	all.TrimLog(ch, math.MaxUint64)
	all.AppendLog(ch, []byte("m26"))
	commit(t, s, &all)
	if p, _ := s.LogAfter(ch, 0, 100); !slices.Equal(seqs(p), []uint64{26}) {
		t.Errorf("after trimming all and appending: %v", seqs(p))
	}
	if h, _ := s.LogHead(ch); h != 26 {
		t.Errorf("LogHead = %d, want 26", h)
	}
	if p, _ := s.LogAfter(other, 24, 100); len(p) != 1 || p[0].Seq != 25 {
		t.Errorf("the other channel was touched: %v", p)
	}
}
