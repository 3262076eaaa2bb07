package vectortest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vectorFiles are the working group's 16 files that issue 2 vendors.
var vectorFiles = []string{
	"crypto-basics.json", "deserialization.json", "key-schedule.json",
	"message-protection.json", "messages.json", "passive-client-handling-commit.json",
	"passive-client-random.json", "passive-client-welcome.json", "psk_secret.json",
	"secret-tree.json", "transcript-hashes.json", "tree-math.json",
	"tree-operations.json", "tree-validation.json", "treekem.json", "welcome.json",
}

// TestVendored checks that every vector file is here, and, where the
// team's ../shared copy exists beside the repository, that each is that
// file byte for byte: a vendored vector edited by accident would
// otherwise change what conformance means without anyone noticing.
func TestVendored(t *testing.T) {
	for _, name := range vectorFiles {
		if _, err := os.Stat(filepath.Join(dir(), name)); err != nil {
			t.Errorf("vendored vector file missing: %v", err)
		}
	}
	shared := filepath.Join(dir(), "..", "..", "..", "..", "shared", "testdata", "mls-vectors")
	entries, err := os.ReadDir(shared)
	if err != nil {
		t.Skipf("no upstream copy to compare with (%v); the files are present", err)
	}
	compared := 0
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		want, err := os.ReadFile(filepath.Join(shared, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir(), e.Name()))
		if err != nil {
			t.Errorf("%s is in %s but not vendored: %v", e.Name(), shared, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s", e.Name(), filepath.Join(shared, e.Name()))
		}
		compared++
	}
	if compared != len(vectorFiles) {
		t.Errorf("compared %d files with %s, want %d", compared, shared, len(vectorFiles))
	}
}
