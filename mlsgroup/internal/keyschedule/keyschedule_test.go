package keyschedule

import (
	"bytes"
	"testing"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/mls"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/suite"
)

func newTestEpoch(t testing.TB, s *suite.Suite) *Epoch {
	t.Helper()
	e, err := NewEpoch(s, testSecret(s, 1), testSecret(s, 2), nil, []byte("group context"))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestEpochZeroInputs checks §8's "0": an absent commit or PSK secret is
// the all-zero KDF.Nh string.
func TestEpochZeroInputs(t *testing.T) {
	allSuites(t, func(t *testing.T, s *suite.Suite) {
		zero := make([]byte, s.Nh())
		a, err := NewEpoch(s, testSecret(s, 1), nil, nil, []byte("gc"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewEpoch(s, testSecret(s, 1), zero, zero, []byte("gc"))
		if err != nil {
			t.Fatal(err)
		}
		if !a.EpochAuthenticator.Equal(b.EpochAuthenticator) || !a.InitSecret.Equal(b.InitSecret) {
			t.Fatal("nil and all-zero inputs give different epochs")
		}
		none, err := PSKSecret(s, nil)
		if err != nil || !bytes.Equal(none.Bytes(), zero) {
			t.Fatalf("psk_secret of no PSKs: %v", err)
		}
	})
}

func TestEpochInputErrors(t *testing.T) {
	s := lookup(t, 1)
	short := make([]byte, s.Nh()-1)
	_, err := NewEpoch(s, short, nil, nil, nil)
	wantErr(t, "short init_secret", err, ErrSecretLength)
	_, err = NewEpoch(s, nil, nil, nil, nil)
	wantErr(t, "absent init_secret", err, ErrSecretLength)
	_, err = NewEpoch(s, testSecret(s, 1), short, nil, nil)
	wantErr(t, "short commit_secret", err, ErrSecretLength)
	_, err = NewEpoch(s, testSecret(s, 1), nil, short, nil)
	wantErr(t, "short psk_secret", err, ErrSecretLength)
	_, err = NewEpochFromJoiner(s, short, nil, nil)
	wantErr(t, "short joiner_secret", err, ErrSecretLength)
	_, err = WelcomeSecret(s, testSecret(s, 1), short)
	wantErr(t, "short psk_secret for welcome_secret", err, ErrSecretLength)

	e := newTestEpoch(t, s)
	if _, err := e.Export("label", nil, 255*s.Nh()); err != nil {
		t.Fatalf("Export of 255·Nh bytes: %v", err)
	}
	_, err = e.Export("label", nil, 255*s.Nh()+1)
	wantErr(t, "Export beyond HKDF's limit", err, ErrExportLength)
	_, err = e.Export("label", nil, -1)
	wantErr(t, "Export of a negative length", err, ErrExportLength)

	_, err = PSKSecret(s, make([]PSK, 0x10000))
	wantErr(t, "2^16 PSKs", err, ErrTooManyPSKs)

	ac := &mls.AuthenticatedContent{WireFormat: mls.WireFormatPublicMessage,
		Content: mls.FramedContent{ContentType: mls.ContentApplication}}
	_, err = ConfirmedTranscriptHash(s, nil, ac)
	wantErr(t, "transcript hash of application data", err, ErrNotCommit)
}

// TestNewEpochFromJoinerCopies checks that the Welcome path leaves the
// caller's joiner_secret alone when the epoch is wiped.
func TestNewEpochFromJoinerCopies(t *testing.T) {
	s := lookup(t, 1)
	joiner := testSecret(s, 3)
	e, err := NewEpochFromJoiner(s, joiner, nil, []byte("gc"))
	if err != nil {
		t.Fatal(err)
	}
	e.Wipe()
	if !bytes.Equal(joiner, testSecret(s, 3)) {
		t.Fatal("Wipe cleared the caller's joiner_secret")
	}
	for _, p := range e.secrets() {
		if !p.IsZero() {
			t.Fatal("Wipe left a secret behind")
		}
	}
}

func TestEpochPersistence(t *testing.T) {
	allSuites(t, func(t *testing.T, s *suite.Suite) {
		e := newTestEpoch(t, s)
		e.JoinerSecret.Wipe() // a wiped secret persists as empty
		state, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Epoch
		if err := got.UnmarshalBinary(state); err != nil {
			t.Fatal(err)
		}
		if got.Suite() != s {
			t.Fatalf("suite %v, want %v", got.Suite().ID(), s.ID())
		}
		want, have := e.secrets(), got.secrets()
		for i := range want {
			if !want[i].Equal(*have[i]) {
				t.Fatalf("secret %d changed across the round trip", i)
			}
		}
		for n := range len(state) {
			wantErr(t, "truncated epoch state", got.UnmarshalBinary(state[:n]), ErrMalformedState)
		}
		wantErr(t, "epoch state with a trailing byte", got.UnmarshalBinary(append(state, 0)), ErrMalformedState)
	})
}

// TestPSKOrderMatters checks that the PSKLabel chain binds position: §8.4
// requires the Commit and GroupSecrets to list PSKs in the same order.
func TestPSKOrderMatters(t *testing.T) {
	s := lookup(t, 1)
	a, err := NewPSK(&mls.PreSharedKeyID{Type: mls.PSKExternal, ID: []byte("a"), Nonce: testSecret(s, 1)}, secret.New(testSecret(s, 5)))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewPSK(&mls.PreSharedKeyID{Type: mls.PSKExternal, ID: []byte("b"), Nonce: testSecret(s, 2)}, secret.New(testSecret(s, 6)))
	if err != nil {
		t.Fatal(err)
	}
	ab, _ := PSKSecret(s, []PSK{a, b})
	ba, _ := PSKSecret(s, []PSK{b, a})
	if ab.Equal(ba) {
		t.Fatal("psk_secret ignores the order of the PSKs")
	}
}

func BenchmarkSecretTreeNext(b *testing.B) {
	s, _ := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	tree := NewSecretTree(s, testSecret(s, 7), 2)
	for b.Loop() {
		if _, _, _, err := tree.Next(1, Application); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKeySchedule(b *testing.B) {
	s, _ := suite.Lookup(suite.MLS128DHKEMX25519AES128GCMSHA256Ed25519)
	initSecret, commitSecret := testSecret(s, 1), testSecret(s, 2)
	gc := bytes.Repeat([]byte{9}, 120)
	for b.Loop() {
		if _, err := NewEpoch(s, initSecret, commitSecret, nil, gc); err != nil {
			b.Fatal(err)
		}
	}
}
