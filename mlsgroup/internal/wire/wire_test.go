package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// TestDeserializationVectors runs deserialization.json: each variable-length
// header decodes to its length and re-encodes to the same bytes (§2.1.2).
func TestDeserializationVectors(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/mls-vectors/deserialization.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct {
		Header string `json:"vlbytes_header"`
		Length uint32 `json:"length"`
	}
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	for i, v := range vs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			hdr, err := hex.DecodeString(v.Header)
			if err != nil {
				t.Fatal(err)
			}
			s := cryptobyte.String(hdr)
			var n uint32
			if !ReadVarint(&s, &n) || !s.Empty() {
				t.Fatalf("header %x does not decode cleanly", hdr)
			}
			if n != v.Length {
				t.Fatalf("length = %d, want %d", n, v.Length)
			}
			var b cryptobyte.Builder
			AddVarint(&b, uint64(n))
			if got := b.BytesOrPanic(); !bytes.Equal(got, hdr) {
				t.Fatalf("re-encoded as %x, want %x", got, hdr)
			}
		})
	}
}

// TestVarintRejects covers the encodings §2.1.2 forbids.
func TestVarintRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"reserved prefix 0b11", []byte{0xc0, 0, 0, 0, 0, 0, 0, 1}},
		{"two bytes for 63", []byte{0x40, 0x3f}},
		{"four bytes for 16383", []byte{0x80, 0x00, 0x3f, 0xff}},
		{"truncated two-byte", []byte{0x40}},
		{"truncated four-byte", []byte{0x80, 0x00, 0x40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := cryptobyte.String(tc.in)
			var n uint32
			if ReadVarint(&s, &n) {
				t.Fatalf("accepted %x as %d", tc.in, n)
			}
		})
	}
	var b cryptobyte.Builder
	AddVarint(&b, MaxVarint+1)
	if _, err := b.Bytes(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("encoding 2^30: err = %v, want ErrTooLong", err)
	}
}

// opaquePair is a tiny structure for exercising Marshal and Unmarshal.
type opaquePair struct{ A, B []byte }

func (p *opaquePair) Marshal(b *cryptobyte.Builder) { AddOpaque(b, p.A); AddOpaque(b, p.B) }

func (p *opaquePair) Unmarshal(s *cryptobyte.String) error {
	if !ReadOpaqueCopy(s, &p.A) || !ReadOpaqueCopy(s, &p.B) {
		return Errorf("opaquePair")
	}
	return nil
}

func TestRoundTripAndTrailingData(t *testing.T) {
	in := &opaquePair{A: bytes.Repeat([]byte{7}, 70), B: []byte("x")}
	enc, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if enc[0] != 0x40 || enc[1] != 70 {
		t.Fatalf("70-byte vector header = %x, want 4046", enc[:2])
	}
	var out opaquePair
	if err := Unmarshal(enc, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.A, in.A) || !bytes.Equal(out.B, in.B) {
		t.Fatal("round trip changed the value")
	}
	enc[2] ^= 1 // decoded values own their bytes
	if out.A[0] != 7 {
		t.Fatal("decoded value aliases the input")
	}
	if err := Unmarshal(append(enc, 0), &out); !errors.Is(err, ErrTrailingData) {
		t.Fatalf("trailing byte: err = %v, want ErrTrailingData", err)
	}
	if err := Unmarshal(enc[:len(enc)-1], &out); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: err = %v, want ErrMalformed", err)
	}
	s := cryptobyte.String([]byte{2})
	var v bool
	if ReadBool(&s, &v) {
		t.Fatal("boolean 2 accepted")
	}
}
