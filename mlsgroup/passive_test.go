package mlsgroup

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup/internal/secret"
	"github.com/spacepanda/spacepanda/mlsgroup/internal/vectortest"
)

// hexBytes is a hex string of the vectors.
type hexBytes = vectortest.HexBytes

// passiveVector is one entry of the passive-client-*.json files (see
// testdata/mls-vectors/FORMATS.md, "Passive Client Scenarios").
type passiveVector struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		ID  hexBytes `json:"psk_id"`
		PSK hexBytes `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                hexBytes `json:"key_package"`
	SignaturePriv             hexBytes `json:"signature_priv"`
	EncryptionPriv            hexBytes `json:"encryption_priv"`
	InitPriv                  hexBytes `json:"init_priv"`
	Welcome                   hexBytes `json:"welcome"`
	RatchetTree               hexBytes `json:"ratchet_tree"`
	InitialEpochAuthenticator hexBytes `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []hexBytes `json:"proposals"`
		Commit             hexBytes   `json:"commit"`
		EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

func loadPassiveVectors(t *testing.T, name string) []passiveVector {
	return vectortest.Load[passiveVector](t, name)
}

// padKey left-pads a private key that a vector wrote without its leading
// zero byte (P-521 keys of 65 bytes, see the vectors' README).
func padKey(k []byte, n int) []byte {
	if len(k) >= n {
		return k
	}
	return append(make([]byte, n-len(k)), k...)
}

// privateKeyLen is the private key length of a suite's KEM and signature
// scheme that vectors may shorten.
func privateKeyLen(cs CipherSuite) int {
	if cs == P521_AES256GCM_SHA512_P521 {
		return 66
	}
	return 0
}

// runPassiveClient follows one passive client scenario: the vector's
// KeyPackage private keys go into a MemoryStorage in the format
// NewKeyPackage writes, the client joins from the Welcome through it, and
// then processes every epoch's proposals and commit, checking the epoch
// authenticator each time.
func runPassiveClient(t *testing.T, v *passiveVector) {
	cs := CipherSuite(v.CipherSuite)
	kp, err := ParseKeyPackage(v.KeyPackage)
	if err != nil {
		t.Fatalf("key_package: %v", err)
	}
	if kp.CipherSuite() != cs {
		t.Fatalf("key_package is for cipher suite %d, the vector's cipher_suite is %d", kp.CipherSuite(), cs)
	}
	n := privateKeyLen(cs)
	sigPriv := padKey(v.SignaturePriv, n)
	if pub, err := kp.suite.SignaturePublicKey(sigPriv); err != nil || !bytes.Equal(pub, kp.SignatureKey()) {
		t.Fatalf("signature_priv does not match the KeyPackage: %v", err)
	}
	signer, err := newSigner(kp.suite, sigPriv, kp.SignatureKey())
	if err != nil {
		t.Fatal(err)
	}
	var st MemoryStorage
	priv, err := (&keyPackagePrivate{
		msg:     kp.Bytes(),
		initKey: secret.New(padKey(v.InitPriv, n)),
		leafKey: secret.New(padKey(v.EncryptionPriv, n)),
	}).marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutKeyPackage(kp.Ref(), priv, kp.kp.LeafNode.Lifetime.NotAfter, false); err != nil {
		t.Fatal(err)
	}
	psks := make(map[string][]byte)
	for _, p := range v.ExternalPSKs {
		psks[string(p.ID)] = p.PSK
	}
	cfg := Config{
		Storage: &st,
		Rand:    seeded(uint64(cs)),
		Now:     func() time.Time { return testNow },
		ExternalPSK: func(id []byte) ([]byte, error) {
			if v, ok := psks[string(id)]; ok {
				return v, nil
			}
			return nil, fmt.Errorf("no PSK %x", id)
		},
	}
	j, err := Join(cfg, v.Welcome, signer, JoinOptions{RatchetTree: v.RatchetTree})
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if !bytes.Equal(j.ConsumedKeyPackage, kp.Ref()) {
		t.Fatalf("joined with KeyPackage %x, want %x", j.ConsumedKeyPackage, kp.Ref())
	}
	g := j.Group
	if got := g.EpochAuthenticator(); !bytes.Equal(got, v.InitialEpochAuthenticator) {
		t.Fatalf("initial epoch_authenticator %x, want %x", got, v.InitialEpochAuthenticator)
	}
	for i, e := range v.Epochs {
		for k, p := range e.Proposals {
			r, err := g.Process(p)
			if err != nil {
				t.Fatalf("epoch %d (from %d): proposal %d: %v", i+1, g.Epoch(), k, err)
			}
			if r.Kind != KindProposal {
				t.Fatalf("epoch %d: proposal %d processed as kind %d", i+1, k, r.Kind)
			}
			g = r.Group
		}
		r, err := g.Process(e.Commit)
		if err != nil {
			t.Fatalf("epoch %d (from %d): commit: %v", i+1, g.Epoch(), err)
		}
		if r.Kind != KindCommit || r.Group.Epoch() != g.Epoch()+1 {
			t.Fatalf("epoch %d: commit processed as kind %d, epoch %d", i+1, r.Kind, r.Group.Epoch())
		}
		g = r.Group
		if got := g.EpochAuthenticator(); !bytes.Equal(got, e.EpochAuthenticator) {
			t.Fatalf("epoch %d: epoch_authenticator %x, want %x", i+1, got, e.EpochAuthenticator)
		}
	}
}

func testPassiveClient(t *testing.T, file string) {
	for i, v := range loadPassiveVectors(t, file) {
		t.Run(fmt.Sprintf("suite%d/%d", v.CipherSuite, i), func(t *testing.T) {
			runPassiveClient(t, &v)
		})
	}
}

// TestPassiveClientWelcome: joining from a Welcome (§12.4.3.1), with the
// tree in the Welcome or out of band and with or without an external PSK
// (§8.4), gives the vectors' epoch authenticator (§8.7).
func TestPassiveClientWelcome(t *testing.T) { testPassiveClient(t, "passive-client-welcome.json") }

// TestPassiveClientHandlingCommit: a joiner follows two epochs of commits
// (§12.4.2) with proposals by value and by reference (§12.1, §12.2).
func TestPassiveClientHandlingCommit(t *testing.T) {
	testPassiveClient(t, "passive-client-handling-commit.json")
}

// TestPassiveClientRandom: a joiner follows 200 random epochs.
func TestPassiveClientRandom(t *testing.T) { testPassiveClient(t, "passive-client-random.json") }
