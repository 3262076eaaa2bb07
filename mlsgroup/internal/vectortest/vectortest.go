// Package vectortest loads the MLS working group's test vectors
// (mlsgroup/testdata/mls-vectors) for the tests of mlsgroup and its
// internal packages. It is test support, imported only by _test files: it
// reads files, which mlsgroup itself never does.
package vectortest

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// HexBytes is a hex string of the vector files; JSON null decodes to nil.
type HexBytes []byte

// UnmarshalJSON implements json.Unmarshaler.
func (h *HexBytes) UnmarshalJSON(data []byte) error {
	var s *string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if s == nil {
		*h = nil
		return nil
	}
	b, err := hex.DecodeString(*s)
	*h = b
	return err
}

// dir is the vectors' directory, found from this file's place in the
// module so that tests in any package can load them.
func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "mls-vectors")
}

// Load reads the vector file name (a JSON array) and fails tb if it cannot
// be read or decoded, or holds no vectors: a test that silently ran no
// vector could not fail.
func Load[T any](tb testing.TB, name string) []T {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(dir(), name))
	if err != nil {
		tb.Fatal(err)
	}
	var vs []T
	if err := json.Unmarshal(data, &vs); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	if len(vs) == 0 {
		tb.Fatalf("%s: no vectors", name)
	}
	return vs
}

// LoadInto is Load for a caller that declares the slice itself: out must
// point to a slice of the vectors' type.
func LoadInto(tb testing.TB, name string, out any) {
	tb.Helper()
	raw := Load[json.RawMessage](tb, name)
	data, err := json.Marshal(raw)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
}
