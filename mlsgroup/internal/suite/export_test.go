package suite

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// TestExportRoundTrip: both sides of §8.3's external-init export agree, for
// every suite, and a kem_output for another key pair yields a different
// secret or an error, never the sender's.
func TestExportRoundTrip(t *testing.T) {
	for id := ID(1); id <= 7; id++ {
		t.Run(fmt.Sprintf("suite%d", id), func(t *testing.T) {
			s := mustLookup(t, id)
			priv, pub, err := s.DeriveKeyPair(bytes.Repeat([]byte{byte(id)}, s.Nh()))
			if err != nil {
				t.Fatal(err)
			}
			ctx := []byte("MLS 1.0 external init secret")
			enc, sent, err := s.ExportSender(pub, ctx, s.Nh())
			if err != nil {
				t.Fatal(err)
			}
			if len(sent) != s.Nh() {
				t.Fatalf("exported %d bytes, want %d", len(sent), s.Nh())
			}
			got, err := s.ExportReceiver(priv, enc, ctx, s.Nh())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, sent) {
				t.Fatal("receiver exported a different secret")
			}
			other, _, err := s.DeriveKeyPair(bytes.Repeat([]byte{byte(id) + 100}, s.Nh()))
			if err != nil {
				t.Fatal(err)
			}
			wrong, err := s.ExportReceiver(other, enc, ctx, s.Nh())
			if err == nil && bytes.Equal(wrong, sent) {
				t.Fatal("another private key exported the same secret")
			}
			if err != nil && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("unexpected error %v", err)
			}
			if again, _ := s.ExportReceiver(priv, enc, []byte("other context"), s.Nh()); bytes.Equal(again, sent) {
				t.Fatal("the exporter context does not bind the secret")
			}
		})
	}
}
