package mlsgroup

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// member is one simulated client in a scenario: its own storage (the
// node's one provider), signature key and group state.
type member struct {
	t      testing.TB
	name   string
	st     *MemoryStorage
	signer *Signer
	g      *Group
	rand   io.Reader
	now    time.Time
	// reload makes every step persist and reload the storage and group
	// state, checking that the round trip changes nothing.
	reload bool
	// pskLookup is the member's Config.ExternalPSK.
	pskLookup func(id []byte) ([]byte, error)
}

func newMember(t testing.TB, name string, cs CipherSuite, seed uint64) *member {
	t.Helper()
	r := seeded(seed)
	signer, err := GenerateSigner(cs, r)
	if err != nil {
		t.Fatal(err)
	}
	return &member{t: t, name: name, st: new(MemoryStorage), signer: signer, rand: r, now: testNow}
}

func (m *member) cfg() Config {
	return Config{Storage: m.st, Rand: m.rand, Now: func() time.Time { return m.now }, ExternalPSK: m.pskLookup}
}

// keyPackage makes a KeyPackage whose private keys go to m's storage.
func (m *member) keyPackage() *KeyPackage {
	m.t.Helper()
	kp, err := NewKeyPackage(m.st, []byte(m.name), m.signer, KeyPackageOptions{}, m.rand, m.now)
	if err != nil {
		m.t.Fatalf("%s: NewKeyPackage: %v", m.name, err)
	}
	m.roundTrip()
	return kp
}

func (m *member) create(groupID string) {
	m.t.Helper()
	g, err := CreateGroup(m.cfg(), []byte(groupID), []byte(m.name), m.signer, GroupOptions{})
	if err != nil {
		m.t.Fatalf("%s: CreateGroup: %v", m.name, err)
	}
	m.set(g)
}

// set installs a new state, after a persist-and-reload round trip when
// m.reload is on.
func (m *member) set(g *Group) {
	m.t.Helper()
	m.g = g
	m.roundTrip()
}

func (m *member) roundTrip() {
	m.t.Helper()
	if !m.reload {
		return
	}
	sb, err := m.st.MarshalBinary()
	if err != nil {
		m.t.Fatal(err)
	}
	st := new(MemoryStorage)
	if err := st.UnmarshalBinary(sb); err != nil {
		m.t.Fatalf("%s: reload storage: %v", m.name, err)
	}
	if sb2, _ := st.MarshalBinary(); !bytes.Equal(sb, sb2) {
		m.t.Fatalf("%s: storage changed in a round trip", m.name)
	}
	m.st = st
	if m.g == nil {
		return
	}
	data, err := m.g.MarshalBinary()
	if err != nil {
		m.t.Fatalf("%s: MarshalBinary: %v", m.name, err)
	}
	g, err := LoadGroup(m.cfg(), data)
	if err != nil {
		m.t.Fatalf("%s: LoadGroup: %v", m.name, err)
	}
	data2, err := g.MarshalBinary()
	if err != nil {
		m.t.Fatal(err)
	}
	if !bytes.Equal(data, data2) {
		m.t.Fatalf("%s: group state changed in a round trip (%d vs %d bytes)", m.name, len(data), len(data2))
	}
	m.g = g
}

// commit creates and merges a commit. It returns the merge's Effects
// with Message set to the commit the step before published, so that
// callers hold both the commit and its Welcome.
func (m *member) commit(opts CommitOptions) *Effects {
	m.t.Helper()
	sent, err := m.g.Commit(opts)
	if err != nil {
		m.t.Fatalf("%s: Commit: %v", m.name, err)
	}
	if sent.Welcome != nil {
		m.t.Fatalf("%s: Commit handed out a Welcome before the commit was merged", m.name)
	}
	m.set(sent.Group)
	merged, err := m.g.MergeCommit()
	if err != nil {
		m.t.Fatalf("%s: MergeCommit: %v", m.name, err)
	}
	m.set(merged.Group)
	merged.Message = sent.Message
	return merged
}

func (m *member) join(welcome []byte, opts JoinOptions) {
	m.t.Helper()
	j, err := Join(m.cfg(), welcome, m.signer, opts)
	if err != nil {
		m.t.Fatalf("%s: Join: %v", m.name, err)
	}
	m.st.ConsumeKeyPackage(j.ConsumedKeyPackage)
	m.set(j.Group)
}

func (m *member) process(msg []byte) *Effects {
	m.t.Helper()
	r, err := m.g.Process(msg)
	if err != nil {
		m.t.Fatalf("%s: Process: %v", m.name, err)
	}
	m.set(r.Group)
	return r
}

func (m *member) encrypt(text string) []byte {
	m.t.Helper()
	sent, err := m.g.Encrypt([]byte(text), nil)
	if err != nil {
		m.t.Fatalf("%s: Encrypt: %v", m.name, err)
	}
	m.set(sent.Group)
	return sent.Message
}

// send has from encrypt text and every member of to decrypt it.
func send(t testing.TB, from *member, text string, to ...*member) {
	t.Helper()
	msg := from.encrypt(text)
	for _, m := range to {
		r := m.process(msg)
		if r.Kind != KindApplication || string(r.Plaintext) != text || r.Sender.LeafIndex != from.g.LeafIndex() {
			t.Fatalf("%s got %q (kind %d) from leaf %d, want %q from %s", m.name, r.Plaintext, r.Kind, r.Sender.LeafIndex, text, from.name)
		}
	}
}

// agree checks that all members share the epoch and its secrets.
func agree(t testing.TB, ms ...*member) {
	t.Helper()
	a := ms[0].g
	for _, m := range ms[1:] {
		g := m.g
		if g.Epoch() != a.Epoch() || !bytes.Equal(g.EpochAuthenticator(), a.EpochAuthenticator()) ||
			!bytes.Equal(g.TreeHash(), a.TreeHash()) || !bytes.Equal(g.ConfirmedTranscriptHash(), a.ConfirmedTranscriptHash()) {
			t.Fatalf("%s and %s disagree: epoch %d/%d", ms[0].name, m.name, a.Epoch(), g.Epoch())
		}
		ea, _ := a.Export("test", nil, 32)
		eb, _ := g.Export("test", nil, 32)
		if !bytes.Equal(ea, eb) {
			t.Fatalf("%s and %s export different secrets", ms[0].name, m.name)
		}
		if len(a.Members()) != len(g.Members()) {
			t.Fatalf("%s and %s disagree on the members", ms[0].name, m.name)
		}
	}
}
