package main

import (
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// The three tests below are the defects OpenMLS (through Wire's
// CoreCrypto) found in the peer, which the ts-mls selftest does not reach.

// TestEmptyApplicationMessage: an application message with an empty
// plaintext is reported with "plaintext":"", so that the other side can
// tell it from a response that lacks the field.
func TestEmptyApplicationMessage(t *testing.T) {
	alice, bob := startPeer(t, "alice", 1), startPeer(t, "bob", 2)
	gid := enc("empty")
	alice.call(map[string]any{"op": "create_group", "group_id": gid, "identity": "alice"})
	kp := bob.call(map[string]any{"op": "key_package", "identity": "bob"})
	add := alice.call(map[string]any{"op": "add", "group_id": gid, "key_packages": []any{kp["key_package"]}})
	bob.call(map[string]any{"op": "join", "welcome": add["welcome"]})
	m := alice.call(map[string]any{"op": "encrypt", "group_id": gid, "plaintext": ""})
	line := bob.raw(`{"op":"process","id":1,"message":"` + m["message"].(string) + `"}`)
	if !strings.Contains(line, `"type":"application"`) || !strings.Contains(line, `"plaintext":""`) {
		t.Fatalf("empty application message: %s, want \"plaintext\":\"\"", line)
	}
}

// TestIdentitiesHaveOwnSignatureKeys: one peer's KeyPackages for two
// identities carry two signature keys, so both can be in one group (RFC
// 9420 §7.3 wants every leaf's signature key unique), and join finds the
// key of the KeyPackage the Welcome names, for each identity in turn.
func TestIdentitiesHaveOwnSignatureKeys(t *testing.T) {
	alice, p := startPeer(t, "alice", 1), startPeer(t, "p", 2)
	gid1, gid2 := enc("one"), enc("two")
	alice.call(map[string]any{"op": "create_group", "group_id": gid1, "identity": "alice"})
	alice.call(map[string]any{"op": "create_group", "group_id": gid2, "identity": "alice"})
	bob := p.call(map[string]any{"op": "key_package", "identity": "bob"})
	carol := p.call(map[string]any{"op": "key_package", "identity": "carol"})
	bob2 := p.call(map[string]any{"op": "key_package", "identity": "bob"})

	// Both identities in group one: alice's commit refuses two leaves with
	// one signature key.
	add := alice.call(map[string]any{"op": "add", "group_id": gid1, "key_packages": []any{bob["key_package"], carol["key_package"]}})
	s := alice.call(map[string]any{"op": "state", "group_id": gid1})
	members := s["members"].([]any)
	if len(members) != 3 {
		t.Fatalf("group one has %d members, want 3", len(members))
	}
	keys := map[string]string{}
	for _, m := range members {
		m := m.(map[string]any)
		keys[m["identity"].(string)] = m["signature_key"].(string)
	}
	if keys["bob"] == keys["carol"] {
		t.Fatalf("bob and carol share signature key %s", keys["bob"])
	}
	// The Welcome names bob's KeyPackage first: the peer joins as bob.
	if j := p.call(map[string]any{"op": "join", "welcome": add["welcome"]}); j["leaf_index"] != 1.0 {
		t.Fatalf("join of group one = %v, want leaf 1 (bob)", j)
	}
	// Group two gets only carol's KeyPackage, which is not the first the
	// peer made, and bob's second one: one key per identity, whatever the
	// KeyPackage.
	add = alice.call(map[string]any{"op": "add", "group_id": gid2, "key_packages": []any{carol["key_package"]}})
	if j := p.call(map[string]any{"op": "join", "welcome": add["welcome"]}); j["leaf_index"] != 1.0 {
		t.Fatalf("join of group two as carol = %v", j)
	}
	st := p.call(map[string]any{"op": "state", "group_id": gid2})
	for _, m := range st["members"].([]any) {
		m := m.(map[string]any)
		if m["identity"] == "carol" && m["signature_key"] != keys["carol"] {
			t.Fatalf("carol's key in group two %v, in group one %s", m["signature_key"], keys["carol"])
		}
	}
	kpBob2 := parseKP(t, bob2["key_package"])
	if got := base64.StdEncoding.EncodeToString(kpBob2.SignatureKey()); got != keys["bob"] {
		t.Fatalf("bob's second KeyPackage has key %s, his first %s", got, keys["bob"])
	}
	chat(t, gid2, alice, p)
}

func parseKP(t *testing.T, v any) *mlsgroup.KeyPackage {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(v.(string))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := mlsgroup.ParseKeyPackage(raw)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// TestKeyPackagesFitX509Groups: a group whose required_capabilities lists
// basic and x509 credentials (Wire's groups do) accepts the peer's
// KeyPackages, and the peer, once joined, commits with a leaf that still
// meets them; the peer's own groups and external joins advertise the same.
func TestKeyPackagesFitX509Groups(t *testing.T) {
	const x509 = 2
	rc, err := mlsgroup.RequiredCapabilities{Credentials: []uint16{1, x509}}.Extension()
	if err != nil {
		t.Fatal(err)
	}
	st := new(mlsgroup.MemoryStorage)
	rng := rand.NewChaCha8([32]byte{9})
	signer, err := mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, rng)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mlsgroup.Config{Storage: st, Rand: rng, Now: func() time.Time { return testNow }}
	g, err := mlsgroup.CreateGroup(cfg, []byte("wire"), []byte("creator"), signer, mlsgroup.GroupOptions{
		Extensions: []mlsgroup.Extension{rc},
		Leaf:       mlsgroup.KeyPackageOptions{Capabilities: mlsgroup.Capabilities{Credentials: []uint16{x509}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := startPeer(t, "p", 3)
	kp := parseKP(t, p.call(map[string]any{"op": "key_package", "identity": "bob"})["key_package"])
	sent, err := g.Commit(mlsgroup.CommitOptions{Proposals: []mlsgroup.Proposal{mlsgroup.AddProposal(kp)}})
	if err != nil {
		t.Fatalf("adding the peer's KeyPackage to a group requiring x509: %v", err)
	}
	merged, err := sent.Group.MergeCommit()
	if err != nil {
		t.Fatal(err)
	}
	g = merged.Group
	gid := base64.StdEncoding.EncodeToString([]byte("wire"))
	p.call(map[string]any{"op": "join", "welcome": base64.StdEncoding.EncodeToString(merged.Welcome)})
	up := p.call(map[string]any{"op": "update", "group_id": gid})
	commit, _ := base64.StdEncoding.DecodeString(up["commit"].(string))
	if _, err := g.Process(commit); err != nil {
		t.Fatalf("the peer's update in a group requiring x509: %v", err)
	}
}
