package node

import (
	"encoding/hex"
	"testing"
)

// TestBootID: a broker's boot ID is random hex of bootIDBytes, the same
// on every call, and another broker's (another open of the node) differs.
func TestBootID(t *testing.T) {
	var a, b broker
	id := a.bootID()
	if raw, err := hex.DecodeString(id); err != nil || len(raw) != bootIDBytes || hex.EncodeToString(raw) != id {
		t.Fatalf("boot ID %q is not lower-case hex of %d bytes", id, bootIDBytes)
	}
	if again := a.bootID(); again != id {
		t.Fatalf("boot ID changed from %s to %s", id, again)
	}
	if other := b.bootID(); other == id {
		t.Fatalf("two brokers share the boot ID %s", id)
	}
}
