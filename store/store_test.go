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
	b.AppendLog(g, []byte("m1"), []byte("message 1"))
	b.PutSyncCursor(g, []byte("peer"), []byte("cursor 1"))
	b.PutInvitation([]byte("inv"), []byte("welcome"))
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
	if _, err := s.LogSeqOf(g, []byte("m1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("message ID after failed commit: %v", err)
	}
	if c, err := s.SyncCursor(g, []byte("peer")); c != nil || err != nil {
		t.Errorf("sync cursor after failed commit: %q, %v", c, err)
	}
	if inv, _ := s.Invitations(); len(inv) != 0 {
		t.Errorf("invitations after failed commit: %v", inv)
	}
	if ids, _ := s.GroupIDs(); len(ids) != 0 {
		t.Errorf("groups after failed commit: %q", ids)
	}

	// The same log numbering continues as if the failed batch never was.
	var ok Batch
	ok.PutGroup(g, []byte("state 1"))
	ok.AppendLog(g, nil, []byte("commit 1"))
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
		"empty channel":      func(b *Batch) { b.AppendLog(nil, []byte("id"), []byte("e")) },
		"oversized msg id":   func(b *Batch) { b.AppendLog([]byte("c"), make([]byte, maxIDLen+1), []byte("e")) },
		"empty trim channel": func(b *Batch) { b.TrimLog(nil, 3) },
		"empty ref":          func(b *Batch) { b.PutKeyPackage(nil, []byte("k"), 1, false) },
		"empty last resort":  func(b *Batch) { b.PutKeyPackage(nil, []byte("k"), 1, true) },
		"empty welcome id":   func(b *Batch) { b.PutWelcome(nil, []byte("w")) },
		"oversized welcome":  func(b *Batch) { b.PutWelcome(make([]byte, maxIDLen+1), []byte("w")) },
		"empty welcome del":  func(b *Batch) { b.DeleteWelcome(nil) },
		"empty invitation":   func(b *Batch) { b.PutInvitation(nil, []byte("w")) },
		"oversized invite":   func(b *Batch) { b.PutInvitation(make([]byte, maxIDLen+1), []byte("w")) },
		"empty invite del":   func(b *Batch) { b.DeleteInvitation(nil) },
		"empty cursor chan":  func(b *Batch) { b.PutSyncCursor(nil, []byte("p"), []byte("c")) },
		"empty cursor peer":  func(b *Batch) { b.PutSyncCursor([]byte("c"), nil, []byte("c")) },
		"oversized peer":     func(b *Batch) { b.PutSyncCursor([]byte("c"), make([]byte, maxIDLen+1), []byte("c")) },
		"empty cursor":       func(b *Batch) { b.PutSyncCursor([]byte("c"), []byte("p"), nil) },
		"empty cursors del":  func(b *Batch) { b.DeleteSyncCursors(nil) },
		"oversized group":    func(b *Batch) { b.PutGroup(make([]byte, maxIDLen+1), []byte("s")) },
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
	for i := 1; i <= 4; i++ {
		b.AppendLog(g, fmt.Appendf(nil, "m%d", i), fmt.Appendf(nil, "entry %d", i))
		b.PutSyncCursor(g, fmt.Appendf(nil, "peer%d", i), fmt.Appendf(nil, "cursor %d", i))
	}
	b.TrimLog(g, 3)
	b.DeleteSyncCursors(g)
	b.PutSyncCursor(g, []byte("peer4"), []byte("cursor 4'"))
	b.PutInvitation([]byte("i"), []byte("first"))
	b.DeleteInvitation([]byte("i"))
	b.PutWelcome([]byte("w"), []byte("first"))
	b.PutWelcome([]byte("w"), []byte("second"))
	b.PutGroup(g, []byte("v1"))
	b.PutGroup(g, []byte("v2")) // the same group twice counts once
	commit(t, s, &b)

	for i, want := range []uint64{0, 0, 3, 4} {
		seq, err := s.LogSeqOf(g, fmt.Appendf(nil, "m%d", i+1))
		if want == 0 && !errors.Is(err, ErrNotFound) || want != 0 && (err != nil || seq != want) {
			t.Errorf("LogSeqOf(m%d) = %d, %v; want %d", i+1, seq, err, want)
		}
	}
	if cs, err := s.SyncCursors(g); err != nil || len(cs) != 1 || string(cs["peer4"]) != "cursor 4'" {
		t.Errorf("SyncCursors = %q, %v", cs, err)
	}
	if _, err := s.Invitation([]byte("i")); !errors.Is(err, ErrNotFound) {
		t.Errorf("invitation put and deleted in one batch: %v", err)
	}
	if ws, err := s.Welcomes(); err != nil || len(ws) != 1 || string(ws[0]) != "second" {
		t.Errorf("Welcomes = %q, %v", ws, err)
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
		b.AppendLog(id, nil, []byte("created"))
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
	if p, _ := s.LogAfter([]byte("group-1"), 0, 10); len(p) != 1 {
		t.Errorf("DeleteGroup touched the log: %v", p)
	}
}

func TestSignatureKeys(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	var b Batch
	b.PutSignatureKey([]byte("default"), []byte("ed25519 private"))
	commit(t, s, &b)

	if k, err := s.SignatureKey([]byte("default")); err != nil || string(k) != "ed25519 private" {
		t.Errorf("SignatureKey = %q, %v", k, err)
	}
	if _, err := s.SignatureKey([]byte("other")); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing SignatureKey: %v", err)
	}
}

func TestLogPaging(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	ch, other := []byte("channel"), []byte("channel2") // other sorts right after ch
	for i := 1; i <= 25; i++ {
		var b Batch
		b.AppendLog(ch, nil, fmt.Appendf(nil, "m%d", i))
		b.AppendLog(other, nil, []byte("x"))
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
	all.AppendLog(ch, nil, []byte("m26"))
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

// TestLogAfterWithin: a page stops before the entry that would take its
// data past the budget, but always holds a first entry, however large;
// paging on from its last entry misses none.
func TestLogAfterWithin(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	ch := []byte("channel")
	sizes := []int{10, 10, 10, 50, 10, 10}
	for i, n := range sizes {
		var b Batch
		b.AppendLog(ch, nil, bytes.Repeat([]byte{byte('a' + i)}, n))
		commit(t, s, &b)
	}
	var pages [][]uint64
	for cur := uint64(0); ; {
		p, err := s.LogAfterWithin(ch, cur, 10, 25)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) == 0 {
			break
		}
		var seqs []uint64
		for _, e := range p {
			if want := bytes.Repeat([]byte{byte('a' + e.Seq - 1)}, sizes[e.Seq-1]); !bytes.Equal(e.Data, want) {
				t.Fatalf("entry %d holds %q", e.Seq, e.Data)
			}
			seqs = append(seqs, e.Seq)
		}
		pages = append(pages, seqs)
		cur = p[len(p)-1].Seq
	}
	// 10+10 fit 25, a third 10 does not; 50 alone goes over, as a first
	// entry; then 10+10.
	want := [][]uint64{{1, 2}, {3}, {4}, {5, 6}}
	if !slices.EqualFunc(pages, want, slices.Equal) {
		t.Fatalf("pages %v, want %v", pages, want)
	}
	if p, _ := s.LogAfterWithin(ch, 0, 1, 1000); len(p) != 1 {
		t.Fatalf("limit 1 gave %d entries", len(p))
	}
	if _, err := s.LogAfterWithin(ch, 0, 10, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("zero budget: %v", err)
	}
}
