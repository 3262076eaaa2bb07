package mlsgroup

import "testing"

// recordingStorage is a Storage that remembers what NewKeyPackage passed.
type recordingStorage struct {
	MemoryStorage
	lastResort map[string]bool
}

func (r *recordingStorage) PutKeyPackage(ref, private []byte, notAfter uint64, lastResort bool) error {
	if r.lastResort == nil {
		r.lastResort = make(map[string]bool)
	}
	r.lastResort[string(ref)] = lastResort
	return r.MemoryStorage.PutKeyPackage(ref, private, notAfter, lastResort)
}

// TestLastResortIsTheStoragesRule: NewKeyPackage hands
// KeyPackageOptions.LastResort to the Storage; MemoryStorage then keeps a
// consumed last-resort KeyPackage available (two Welcomes to it both
// join), while a consumed one-time KeyPackage reports KeyPackageConsumed,
// and the flag survives MarshalBinary.
func TestLastResortIsTheStoragesRule(t *testing.T) {
	bob := newMember(t, "bob", DefaultCipherSuite, 2)
	rec := new(recordingStorage)
	mk := func(lastResort bool) *KeyPackage {
		kp, err := NewKeyPackage(rec, []byte("bob"), bob.signer, KeyPackageOptions{LastResort: lastResort}, bob.rand, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if rec.lastResort[string(kp.Ref())] != lastResort {
			t.Fatalf("NewKeyPackage passed lastResort %v, want %v", !lastResort, lastResort)
		}
		return kp
	}
	last, once := mk(true), mk(false)
	data, err := rec.MemoryStorage.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	bob.st = new(MemoryStorage)
	if err := bob.st.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}

	for i, group := range []string{"first", "second"} {
		alice := newMember(t, "alice", DefaultCipherSuite, uint64(10+i))
		alice.create(group)
		sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(last)}})
		j, err := Join(bob.cfg(), sent.Welcome, bob.signer, JoinOptions{})
		if err != nil {
			t.Fatalf("join %d with the last-resort KeyPackage: %v", i, err)
		}
		bob.st.ConsumeKeyPackage(j.ConsumedKeyPackage)
		if _, status, _ := bob.st.KeyPackage(last.Ref()); status != KeyPackageAvailable {
			t.Fatalf("last-resort KeyPackage after join %d: status %d", i, status)
		}
	}

	alice := newMember(t, "alice", DefaultCipherSuite, 20)
	alice.create("third")
	sent := alice.commit(CommitOptions{Proposals: []Proposal{AddProposal(once)}})
	j, err := Join(bob.cfg(), sent.Welcome, bob.signer, JoinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bob.st.ConsumeKeyPackage(j.ConsumedKeyPackage)
	if _, status, _ := bob.st.KeyPackage(once.Ref()); status != KeyPackageConsumed {
		t.Fatalf("one-time KeyPackage after its join: status %d", status)
	}
	if _, err := Join(bob.cfg(), sent.Welcome, bob.signer, JoinOptions{}); err == nil {
		t.Fatal("a consumed one-time KeyPackage joined again")
	}
}

// TestExpiryKeepsNewestLastResort: expiry deletes every KeyPackage past
// its lifetime except the newest last-resort one, without which the node
// could not be invited; an older last-resort one goes.
func TestExpiryKeepsNewestLastResort(t *testing.T) {
	var st MemoryStorage
	for _, kp := range []struct {
		ref        string
		notAfter   uint64
		lastResort bool
	}{{"old-lr", 100, true}, {"new-lr", 200, true}, {"once", 150, false}, {"alive", 900, false}} {
		if err := st.PutKeyPackage([]byte(kp.ref), []byte("p"), kp.notAfter, kp.lastResort); err != nil {
			t.Fatal(err)
		}
	}
	st.ExpireKeyPackages(500)
	for ref, want := range map[string]KeyPackageStatus{
		"old-lr": KeyPackageExpired, "new-lr": KeyPackageAvailable, "once": KeyPackageExpired, "alive": KeyPackageAvailable,
	} {
		if _, got, _ := st.KeyPackage([]byte(ref)); got != want {
			t.Errorf("%s: status %d, want %d", ref, got, want)
		}
	}
}
