package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

// Issue 4's acceptance 5. Every Commit is one synced LevelDB write, so its
// latency is mostly the fsync of the disk under the test's temp directory.

func benchVariants(b *testing.B, f func(b *testing.B, s *Store)) {
	for _, pass := range []string{"", "pw"} {
		b.Run(map[string]string{"": "plain", "pw": "encrypted"}[pass], func(b *testing.B) {
			f(b, openTest(b, b.TempDir(), encOptions(pass)))
		})
	}
}

// BenchmarkCommitBatch: the batch of a processed MLS message (2 KiB state,
// a 256 B log entry indexed by its message ID, the sync cursor advanced).
func BenchmarkCommitBatch(b *testing.B) {
	benchVariants(b, func(b *testing.B, s *Store) {
		g := []byte("benchmark group")
		state, entry := bytes.Repeat([]byte{1}, 2048), bytes.Repeat([]byte{2}, 256)
		n := uint64(0)
		for b.Loop() {
			n++
			var batch Batch
			batch.PutGroup(g, state)
			batch.AppendLog(g, binary.BigEndian.AppendUint64([]byte("message "), n), entry)
			batch.PutSyncCursor(g, []byte("peer"), binary.BigEndian.AppendUint64(nil, n))
			if err := s.Commit(&batch); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLogAppend appends 256 B entries, one per synced commit and 100
// per synced commit.
func BenchmarkLogAppend(b *testing.B) {
	for _, per := range []int{1, 100} {
		b.Run(fmt.Sprintf("per-commit=%d", per), func(b *testing.B) {
			benchVariants(b, func(b *testing.B, s *Store) {
				ch, entry := []byte("channel"), bytes.Repeat([]byte{7}, 256)
				b.SetBytes(int64(per * len(entry)))
				for b.Loop() {
					var batch Batch
					for range per {
						batch.AppendLog(ch, nil, entry)
					}
					if err := s.Commit(&batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(per*b.N)/b.Elapsed().Seconds(), "entries/s")
			})
		})
	}
}

// BenchmarkLogPage reads 100-entry pages of 256 B entries from a 10 000
// entry log, both ways, walking the whole log with cursors.
func BenchmarkLogPage(b *testing.B) {
	const n, page = 10000, 100
	for _, dir := range []string{"forward", "backward"} {
		b.Run(dir, func(b *testing.B) {
			benchVariants(b, func(b *testing.B, s *Store) {
				ch, entry := []byte("channel"), bytes.Repeat([]byte{7}, 256)
				for i := 0; i < n; i += 1000 {
					var batch Batch
					for range 1000 {
						batch.AppendLog(ch, nil, entry)
					}
					if err := s.Commit(&batch); err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(page * int64(len(entry)))
				cur := uint64(0)
				if dir == "backward" {
					cur = math.MaxUint64
				}
				for b.Loop() {
					var p []LogEntry
					var err error
					if dir == "forward" {
						p, err = s.LogAfter(ch, cur, page)
					} else {
						p, err = s.LogBefore(ch, cur, page)
					}
					if err != nil {
						b.Fatal(err)
					}
					if len(p) < page { // wrapped around: start over
						cur = map[string]uint64{"forward": 0, "backward": math.MaxUint64}[dir]
						continue
					}
					cur = p[len(p)-1].Seq
				}
				b.ReportMetric(float64(page*b.N)/b.Elapsed().Seconds(), "entries/s")
			})
		})
	}
}

// BenchmarkLogSeqOf looks message IDs up in logs of 1 000 and 100 000
// entries, as deduplication after a restart does: one read of the index,
// so the time should not grow with the log.
func BenchmarkLogSeqOf(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("log=%d", n), func(b *testing.B) {
			s := openTest(b, b.TempDir(), nil)
			ch, entry := []byte("channel"), bytes.Repeat([]byte{7}, 64)
			id := func(i int) []byte { return binary.BigEndian.AppendUint64([]byte("message "), uint64(i)) }
			for i := 0; i < n; i += 5000 {
				var batch Batch
				for j := i; j < min(i+5000, n); j++ {
					batch.AppendLog(ch, id(j), entry)
				}
				if err := s.Commit(&batch); err != nil {
					b.Fatal(err)
				}
			}
			i := 0
			for b.Loop() {
				if seq, err := s.LogSeqOf(ch, id(i)); err != nil || seq != uint64(i+1) {
					b.Fatalf("LogSeqOf(%d) = %d, %v", i, seq, err)
				}
				i = (i + 7919) % n
			}
		})
	}
}
