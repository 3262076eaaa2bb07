package mlsgroup

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestStateGolden pins the persisted state format (version 2): a group
// created from fixed randomness encodes to the bytes in the golden file,
// and the golden bytes load and encode back unchanged. A layout change
// must bump stateVersion and keep loading what nodes have on disk. (A
// staged commit's Welcome cannot be pinned: HPKE draws its own randomness;
// TestStagedWelcomeSurvivesRestart covers its encoding.)
func TestStateGolden(t *testing.T) {
	m := newMember(t, "alice", DefaultCipherSuite, 42)
	m.create("golden")
	got, err := m.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want := golden(t, "testdata/state-v2.hex", got)
	if !bytes.Equal(got, want) {
		t.Fatalf("state encoding changed; if on purpose, bump stateVersion and run with -update")
	}
	g, err := LoadGroup(m.cfg(), want)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := g.MarshalBinary(); !bytes.Equal(again, want) {
		t.Fatal("golden state changed in a round trip")
	}
}

// TestStateV1Loads: a version 1 state, as nodes before the staged
// Welcome wrote it, still loads, and encodes as version 2 with nothing
// else changed.
func TestStateV1Loads(t *testing.T) {
	m := newMember(t, "alice", DefaultCipherSuite, 42)
	want := golden(t, "testdata/state-v1.hex", nil)
	g, err := LoadGroup(m.cfg(), want)
	if err != nil {
		t.Fatal(err)
	}
	again, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if again[0] != stateVersion || !bytes.Equal(again[1:], want[1:]) {
		t.Fatal("a version 1 state without a staged commit changed beyond its version")
	}
}

// golden reads a golden file, first writing got to it under -update.
func golden(t *testing.T, file string, got []byte) []byte {
	t.Helper()
	if *updateGolden && got != nil {
		if err := os.WriteFile(file, []byte(hex.EncodeToString(got)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// TestLoadGroupCorrupt: every truncation of a real state, and a flipped
// byte in its tree, is refused rather than loaded.
func TestLoadGroupCorrupt(t *testing.T) {
	alice, bob := twoMembers(t, DefaultCipherSuite, false)
	send(t, alice, "x", bob)
	data, err := bob.g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n += 7 {
		if _, err := LoadGroup(bob.cfg(), data[:n]); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("truncated to %d: err = %v", n, err)
		}
	}
	i := bytes.Index(data, []byte("alice"))
	bad := bytes.Clone(data)
	bad[i] ^= 1
	if _, err := LoadGroup(bob.cfg(), bad); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("flipped identity: err = %v", err)
	}
}
