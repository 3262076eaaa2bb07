package store

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-datastore/query"
)

// TestConcurrentMixedOperations is issue 4's acceptance 4, meant for -race:
// many goroutines share one store and mix every kind of operation while
// the background scrubber and expiry sweep run, and readers page the
// shared log as it grows. Afterwards every write is where it should be.
func TestConcurrentMixedOperations(t *testing.T) {
	const (
		workers = 16
		ops     = 100
		readers = 3
	)
	o := testOptions()
	o.ScrubDelay = time.Millisecond
	o.ExpiryInterval = 5 * time.Millisecond
	s := openTest(t, t.TempDir(), o)
	shared := []byte("shared channel")
	ctx := t.Context()

	var (
		mu   sync.Mutex
		seqs []uint64 // every seq given out on the shared channel
	)
	errc := make(chan error, workers+readers)
	stop := make(chan struct{})
	var wg, rg sync.WaitGroup

	for r := range readers {
		rg.Go(func() {
			// A forward reader must never find a gap: numbers are given
			// in commit order, so n+1 is never visible before n.
			var cursor uint64
			for {
				page, err := s.LogAfter(shared, cursor, 16)
				if err != nil {
					errc <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				for _, e := range page {
					if e.Seq != cursor+1 {
						errc <- fmt.Errorf("reader %d: after %d came %d", r, cursor, e.Seq)
						return
					}
					cursor = e.Seq
				}
				if len(page) == 0 {
					select {
					case <-stop:
						return
					default:
						time.Sleep(time.Millisecond)
					}
				}
			}
		})
	}

	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			g := fmt.Appendf(nil, "group-%d", w)
			var epoch uint64
			fail := func(err error) { errc <- fmt.Errorf("worker %d: %w", w, err) }
			for i := range ops {
				var err error
				switch rng.IntN(8) {
				case 0, 1: // a commit: state, indexed log entry, cursor, trim
					var b Batch
					epoch++
					b.PutGroup(g, fmt.Appendf(nil, "state %d", epoch))
					b.AppendLog(g, fmt.Appendf(nil, "commit %d", epoch), fmt.Appendf(nil, "commit %d", epoch))
					b.PutSyncCursor(g, []byte("peer"), fmt.Appendf(nil, "cursor %d", epoch))
					b.TrimLog(g, epoch)
					err = s.Commit(&b)
				case 2: // a message on the shared channel
					var b Batch
					b.AppendLog(shared, nil, fmt.Appendf(nil, "w%d m%d", w, i))
					if err = s.Commit(&b); err == nil {
						mu.Lock()
						seqs = append(seqs, b.Seqs()...)
						mu.Unlock()
					}
				case 3: // KeyPackages: put, read, consume, sweep
					ref := fmt.Appendf(nil, "kp-%d-%d", w, i)
					if err = s.PutKeyPackage(ref, []byte("private"), uint64(time.Now().Add(time.Hour).Unix()), false); err != nil {
						break
					}
					if _, st, kerr := s.KeyPackage(ref); kerr != nil || st != KeyPackageAvailable {
						err = fmt.Errorf("KeyPackage %s: %d, %v", ref, st, kerr)
						break
					}
					var b Batch
					b.ConsumeKeyPackage(ref)
					if err = s.Commit(&b); err == nil {
						_, err = s.ExpireKeyPackages(time.Now())
					}
				case 4: // reads
					if _, err = s.Group(g); errors.Is(err, ErrNotFound) {
						err = nil
					}
					if err == nil {
						_, err = s.LogBefore(shared, math.MaxUint64, 10)
					}
					if err == nil {
						_, err = s.SyncCursors(g)
					}
					if err == nil {
						if _, err = s.LogSeqOf(g, fmt.Appendf(nil, "commit %d", epoch)); epoch == 0 && errors.Is(err, ErrNotFound) {
							err = nil
						}
					}
					if err == nil {
						_, err = s.GroupIDs()
					}
				case 5: // the DHT's datastore
					d := s.Datastore()
					k := dsKey(fmt.Sprintf("/providers/%d/%d", w, i))
					if err = d.Put(ctx, k, []byte("record")); err == nil {
						var res query.Results
						if res, err = d.Query(ctx, query.Query{Prefix: "/providers", KeysOnly: true}); err == nil {
							_, err = res.Rest()
						}
					}
				case 6: // welcomes and invitations
					if err = s.PutWelcome(fmt.Appendf(nil, "w%d-%d", w, i), []byte("welcome")); err != nil {
						break
					}
					if err = s.DeleteWelcome(fmt.Appendf(nil, "w%d-%d", w, i-1)); err != nil {
						break
					}
					var b Batch
					b.PutInvitation(fmt.Appendf(nil, "i%d-%d", w, i), []byte("invitation"))
					b.DeleteInvitation(fmt.Appendf(nil, "i%d-%d", w, i-1))
					if err = s.Commit(&b); err == nil {
						_, err = s.Welcomes()
					}
					if err == nil {
						_, err = s.Invitations()
					}
				case 7:
					err = s.Scrub()
				}
				if err != nil {
					fail(err)
					return
				}
			}
			if st, err := s.Group(g); epoch > 0 && (err != nil || string(st) != fmt.Sprintf("state %d", epoch)) {
				fail(fmt.Errorf("final state %q, %v; want epoch %d", st, err, epoch))
			}
			if epoch == 0 {
				return
			}
			if c, err := s.SyncCursor(g, []byte("peer")); err != nil || string(c) != fmt.Sprintf("cursor %d", epoch) {
				fail(fmt.Errorf("final cursor %q, %v; want epoch %d", c, err, epoch))
			}
			// Only commits append to g, and each trims the ones before it.
			if seq, err := s.LogSeqOf(g, fmt.Appendf(nil, "commit %d", epoch)); err != nil || seq != epoch {
				fail(fmt.Errorf("LogSeqOf(last commit) = %d, %v; want %d", seq, err, epoch))
			}
			if _, err := s.LogSeqOf(g, fmt.Appendf(nil, "commit %d", epoch-1)); epoch > 1 && !errors.Is(err, ErrNotFound) {
				fail(fmt.Errorf("LogSeqOf(trimmed commit): %v, want ErrNotFound", err))
			}
		})
	}
	wg.Wait()
	close(stop)
	rg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}

	slices.Sort(seqs)
	for i, q := range seqs {
		if q != uint64(i+1) {
			t.Fatalf("shared channel numbers %v are not 1..%d", seqs, len(seqs))
		}
	}
	var all []LogEntry
	for cur := uint64(0); ; {
		p, err := s.LogAfter(shared, cur, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) == 0 {
			break
		}
		all = append(all, p...)
		cur = p[len(p)-1].Seq
	}
	if len(all) != len(seqs) {
		t.Errorf("shared log has %d entries, %d were appended", len(all), len(seqs))
	}
	t.Logf("%d workers x %d ops, %d shared messages", workers, ops, len(seqs))
}

// TestCloseDuringOperations: Close while goroutines work waits for calls in
// flight, and every call after it returns ErrClosed, none panics.
func TestCloseDuringOperations(t *testing.T) {
	o := testOptions()
	o.ScrubDelay = time.Millisecond
	s, err := Open(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				var b Batch
				b.PutGroup(fmt.Appendf(nil, "g%d", w), []byte("s"))
				b.AppendLog([]byte("ch"), nil, []byte("m"))
				b.PutSyncCursor([]byte("ch"), fmt.Appendf(nil, "g%d", w), fmt.Appendf(nil, "%d", i))
				err := s.Commit(&b)
				if err == nil {
					_, err = s.LogBefore([]byte("ch"), math.MaxUint64, 5)
				}
				if err == nil {
					_, err = s.Datastore().Has(t.Context(), dsKey("/x"))
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					errc <- err
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}
