package mlsgroup

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time the process has used, on all threads.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times and reports, beside the wall time, the CPU time
// per operation on all cores: on a shared machine it shows what an
// operation costs when the wall time is inflated by other load.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	start := cpuTime(b)
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N)/1e6, "cpu-ms/op")
}

// The benchmarks follow ../shared/interop/ts-mls-peer/bench.mjs, on suite
// 1: KeyPackage generation; one commit adding N members (with the ratchet
// tree in the Welcome) and one of them joining; an update commit in the
// sparse group that such an Add leaves (every parent blank: the worst
// case, one HPKE encryption per other member); 1 KiB application messages.

// BenchmarkKeyPackage is KeyPackage generation: two HPKE key pairs, two
// signatures, encoding, and the private keys stored.
func BenchmarkKeyPackage(b *testing.B) {
	m := newMember(b, "bench", DefaultCipherSuite, 1)
	loop(b, func() {
		if _, err := NewKeyPackage(m.st, []byte("bench"), m.signer, KeyPackageOptions{}, m.rand, m.now); err != nil {
			b.Fatal(err)
		}
	})
}

var benchSizes = []int{10, 100, 1000}

// addSetup is a one-member group and the KeyPackages of n joiners, whose
// last one's private keys are in joiner's storage.
func addSetup(b *testing.B, n int) (creator, joiner *member, kps []Proposal) {
	b.Helper()
	creator = newMember(b, "creator", DefaultCipherSuite, 1)
	creator.create(fmt.Sprintf("bench-%d", n))
	joiner = newMember(b, "joiner", DefaultCipherSuite, 2)
	others := new(MemoryStorage)
	for i := range n {
		signer, err := GenerateSigner(DefaultCipherSuite, joiner.rand)
		if err != nil {
			b.Fatal(err)
		}
		st := others
		if i == n-1 {
			st = joiner.st
		}
		kp, err := NewKeyPackage(st, fmt.Appendf(nil, "member-%d", i), signer, KeyPackageOptions{}, joiner.rand, joiner.now)
		if err != nil {
			b.Fatal(err)
		}
		kps = append(kps, AddProposal(kp))
		joiner.signer = signer
	}
	return creator, joiner, kps
}

// BenchmarkAdd is one commit adding N members: validating N KeyPackages,
// the new tree, the GroupInfo with the ratchet tree, and N GroupSecrets
// sealed in the Welcome.
func BenchmarkAdd(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			creator, _, kps := addSetup(b, n)
			loop(b, func() {
				if _, err := creator.g.Commit(CommitOptions{Proposals: kps}); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkJoin is one of the N new members joining from that Welcome:
// decrypting it, and validating the whole tree (§12.4.3.1).
func BenchmarkJoin(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			creator, joiner, kps := addSetup(b, n)
			sent, err := creator.g.Commit(CommitOptions{Proposals: kps})
			if err != nil {
				b.Fatal(err)
			}
			loop(b, func() {
				if _, err := Join(joiner.cfg(), sent.Welcome, joiner.signer, JoinOptions{}); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkUpdateSparse1000 is an update commit (an empty commit with a
// path) in the group a single Add of 1000 leaves: create, by the creator,
// and process, by the last joiner.
func BenchmarkUpdateSparse1000(b *testing.B) {
	creator, joiner, kps := addSetup(b, 1000)
	sent := creator.commit(CommitOptions{Proposals: kps})
	j, err := Join(joiner.cfg(), sent.Welcome, joiner.signer, JoinOptions{})
	if err != nil {
		b.Fatal(err)
	}
	update, err := creator.g.Commit(CommitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("create", func(b *testing.B) {
		loop(b, func() {
			if _, err := creator.g.Commit(CommitOptions{}); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("process", func(b *testing.B) {
		loop(b, func() {
			if _, err := j.Group.Process(update.Message); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// BenchmarkMessage1KiB is 1 KiB application messages from one member to
// another, all reporting messages per second: "sequential" encrypts and
// decrypts each message in turn on one goroutine; "encrypt" and "decrypt"
// time each side alone; "pipelined" runs sender and receiver on goroutines
// of their own, as two nodes would, so that encrypting one message
// overlaps decrypting an earlier one. Its wire is a channel of 32
// messages, the buffer go-libp2p-pubsub gives a subscription by default: a
// wire of one message measures goroutine hand-offs (each a futex wake on
// this VM), not MLS.
func BenchmarkMessage1KiB(b *testing.B) {
	payload := make([]byte, 1024)
	// run sets a sub-benchmark up for 1 KiB messages and reports its rate.
	run := func(name string, f func(b *testing.B, alice, bob *member)) {
		b.Run(name, func(b *testing.B) {
			alice, bob := twoMembersB(b)
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			f(b, alice, bob)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
	run("sequential", func(b *testing.B, alice, bob *member) {
		for b.Loop() {
			benchReceive(b, bob, benchSend(b, alice, payload))
		}
	})
	run("encrypt", func(b *testing.B, alice, _ *member) {
		for b.Loop() {
			benchSend(b, alice, payload)
		}
	})
	run("decrypt", func(b *testing.B, alice, bob *member) {
		msgs := make([][]byte, b.N)
		for i := range msgs {
			msgs[i] = benchSend(b, alice, payload)
		}
		b.ResetTimer()
		for _, msg := range msgs {
			benchReceive(b, bob, msg)
		}
	})
	run("pipelined", func(b *testing.B, alice, bob *member) {
		wire := make(chan []byte, 32)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for msg := range wire {
				benchReceive(b, bob, msg)
			}
		}()
		for b.Loop() {
			wire <- benchSend(b, alice, payload)
		}
		close(wire)
		<-done
	})
}

// benchSend encrypts payload as m and moves m to the next state.
func benchSend(b *testing.B, m *member, payload []byte) []byte {
	sent, err := m.g.Encrypt(payload, nil)
	if err != nil {
		b.Fatal(err)
	}
	m.g = sent.Group
	return sent.Message
}

// benchReceive processes msg as m and moves m to the next state.
func benchReceive(b *testing.B, m *member, msg []byte) {
	r, err := m.g.Process(msg)
	if err != nil {
		b.Error(err)
		return
	}
	m.g = r.Group
}

func twoMembersB(b *testing.B) (alice, bob *member) {
	alice = newMember(b, "alice", DefaultCipherSuite, 1)
	bob = newMember(b, "bob", DefaultCipherSuite, 2)
	alice.create("bench-messages")
	sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(bob.keyPackage())}})
	bob.join(sent.Welcome, JoinOptions{})
	return alice, bob
}
