package mlsgroup

import (
	"errors"
	"testing"
)

// TestProcessInOrder: with MaxGenerationsAhead negative, a message after
// a gap fails with ErrTooFarAhead and leaves the ratchet as it was, so
// that the gap's messages, and then it, are read in order later; Process
// without the option skips the gap as the Config allows, and the option
// does not outlive the call.
func TestProcessInOrder(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	m1, m2, m3 := alice.encrypt("1"), alice.encrypt("2"), alice.encrypt("3")
	inOrder := ProcessOptions{MaxGenerationsAhead: -1}

	if _, err := bob.g.ProcessWith(m2, inOrder); !errors.Is(err, ErrTooFarAhead) {
		t.Fatalf("a message after a gap, in order: %v, want ErrTooFarAhead", err)
	}
	for i, m := range [][]byte{m1, m2} {
		eff, err := bob.g.ProcessWith(m, inOrder)
		if err != nil {
			t.Fatalf("message %d in order: %v", i+1, err)
		}
		bob.set(eff.Group)
	}
	alice.encrypt("4")
	m5 := alice.encrypt("5")
	// The state handed out reads with the Config's window again: m5
	// skips m3 and m4.
	eff, err := bob.g.Process(m5)
	if err != nil {
		t.Fatalf("Process after ProcessWith, over a gap: %v", err)
	}
	bob.set(eff.Group)
	if bob.g.secrets.Skipped() != 2 {
		t.Errorf("skipped keys %d, want 2 (m3's and m4's)", bob.g.secrets.Skipped())
	}
	if eff, err := bob.g.ProcessWith(m3, inOrder); err != nil || string(eff.Plaintext) != "3" {
		t.Fatalf("m3: %v", err)
	}
}
