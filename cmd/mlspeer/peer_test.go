package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of in-process peers: fixed, so runs replay.
var testNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// client drives one in-process peer through the protocol over pipes, as
// the selftest drives a process over stdin and stdout.
type client struct {
	t    *testing.T
	name string
	in   *io.PipeWriter
	out  *bufio.Reader
	seq  int
}

func startPeer(t *testing.T, name string, seed byte) *client {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := newPeer(rand.NewChaCha8([32]byte{seed}), func() time.Time { return testNow }, io.Discard)
	done := make(chan error, 1)
	go func() {
		err := p.serve(inR, outW)
		outW.Close()
		done <- err
	}()
	t.Cleanup(func() {
		inW.Close()
		if err := <-done; err != nil {
			t.Errorf("%s: serve: %v", name, err)
		}
	})
	return &client{t: t, name: name, in: inW, out: bufio.NewReader(outR)}
}

// raw sends one line and returns the response line.
func (c *client) raw(line string) string {
	c.t.Helper()
	if _, err := io.WriteString(c.in, line+"\n"); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
	resp, err := c.out.ReadString('\n')
	if err != nil {
		c.t.Fatalf("%s: read: %v", c.name, err)
	}
	return strings.TrimSuffix(resp, "\n")
}

// request sends req with a fresh id and returns the decoded response,
// which must echo the id.
func (c *client) request(req map[string]any) map[string]any {
	c.t.Helper()
	c.seq++
	req["id"] = c.seq
	line, err := json.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	var resp map[string]any
	if err := json.Unmarshal([]byte(c.raw(string(line))), &resp); err != nil {
		c.t.Fatalf("%s %v: response is not JSON: %v", c.name, req["op"], err)
	}
	if id, _ := resp["id"].(float64); int(id) != c.seq {
		c.t.Fatalf("%s %v: response id %v, want %d", c.name, req["op"], resp["id"], c.seq)
	}
	return resp
}

// call is request for a request that must succeed.
func (c *client) call(req map[string]any) map[string]any {
	c.t.Helper()
	resp := c.request(req)
	if e, ok := resp["error"]; ok {
		c.t.Fatalf("%s %v: %v", c.name, req["op"], e)
	}
	return resp
}

// fail is request for a request that must fail.
func (c *client) fail(req map[string]any) string {
	c.t.Helper()
	resp := c.request(req)
	e, ok := resp["error"].(string)
	if !ok || e == "" {
		c.t.Fatalf("%s %v succeeded, want an error: %v", c.name, req["op"], resp)
	}
	return e
}

func enc(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestProtocolFraming(t *testing.T) {
	c := startPeer(t, "p", 1)
	cases := []struct{ in, want string }{
		{`{"op":"ping","id":7}`, `{"id":7,"ok":true,`},
		{`{"id":"seven","op":"ping"}`, `{"id":"seven","ok":true,`},
		{`{"op":"ping","id":{"n":[1]}}`, `{"id":{"n":[1]},"ok":true,`},
		{`{"op":"ping"}`, `{"ok":true,`},
		{`not json`, `{"error":"request must be a JSON object"}`},
		{`[1,2]`, `{"error":"request must be a JSON object"}`},
		{`null`, `{"error":"request must be a JSON object"}`},
		{`{"op":"nope","id":1}`, `{"id":1,"error":"unknown op 'nope'"}`},
		{`{"id":2}`, `{"id":2,"error":"unknown op ''"}`},
		{`{"op":"key_package","id":3,"identity":5}`, `{"id":3,"error":"field 'identity': unexpected JSON number"}`},
		{`{"op":"key_package","id":4}`, `{"id":4,"error":"field 'identity' must be a non-empty string"}`},
		{`{"op":"state","id":5,"group_id":"AAE"}`, `{"id":5,"error":"field 'group_id' is not valid standard base64"}`},
		{`{"op":"state","id":6,"group_id":"AA-_"}`, `{"id":6,"error":"field 'group_id' is not valid standard base64"}`},
		{`{"op":"state","id":7,"group_id":5}`, `{"id":7,"error":"field 'group_id' must be a base64 string"}`},
		{`{"op":"remove","id":8,"group_id":"AA==","leaf_index":-1}`, `{"id":8,"error":"field 'leaf_index': unexpected JSON number -1"}`},
		{`{"op":"add","id":9,"group_id":"AA==","key_packages":"AA=="}`, `{"id":9,"error":"field 'key_packages': unexpected JSON string"}`},
		{`{"op":"commit","id":10,"group_id":"AA==","ratchet_tree":"AA=="}`, `{"id":10,"error":"field 'ratchet_tree' must be a boolean in commit ops"}`},
		{`{"op":"join","id":11,"welcome":"AA==","ratchet_tree":true}`, `{"id":11,"error":"field 'ratchet_tree' must be a base64 string"}`},
	}
	for _, tc := range cases {
		if got := c.raw(tc.in); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s\n  -> %s\n  want prefix %s", tc.in, got, tc.want)
		}
	}
	// Blank lines get no response: the next response answers the next request.
	io.WriteString(c.in, "\n  \n")
	if got := c.raw(`{"op":"ping","id":9}`); !strings.HasPrefix(got, `{"id":9,`) {
		t.Errorf("after blank lines: %s", got)
	}
}

func TestPing(t *testing.T) {
	c := startPeer(t, "p", 1)
	resp := c.call(map[string]any{"op": "ping"})
	if resp["ok"] != true || resp["implementation"] != implementation {
		t.Errorf("ping = %v", resp)
	}
	suites := fmt.Sprint(resp["suites"])
	for _, s := range []string{"1", "3", "83"} {
		if !strings.Contains(" "+strings.Trim(suites, "[]")+" ", " "+s+" ") {
			t.Errorf("ping suites %s lack %s", suites, s)
		}
	}
}

func TestKeyPackageOptions(t *testing.T) {
	c := startPeer(t, "p", 2)
	for _, req := range []map[string]any{
		{"op": "key_package", "identity": "bob"},
		{"op": "key_package", "identity": "bob", "suite": 2, "grease": false},
		{"op": "key_package", "identity": "bob", "suite": 3, "lifetime_s": 3600},
		{"op": "key_package", "identity": "bob", "suite": 5, "not_before": 0, "not_after": testNow.Unix() + 60},
		{"op": "key_package", "identity": "bob", "suite": 7, "not_after": testNow.Unix() + 60},
	} {
		resp := c.call(req)
		kp, err := base64.StdEncoding.DecodeString(resp["key_package"].(string))
		if err != nil || len(kp) < 100 {
			t.Errorf("%v: key_package %q: %v", req, resp["key_package"], err)
		}
		if ref, _ := resp["key_package_ref"].(string); ref == "" {
			t.Errorf("%v: no key_package_ref", req)
		}
	}
	for _, req := range []map[string]any{
		{"op": "key_package", "identity": "bob", "suite": 99},
		{"op": "key_package", "identity": "bob", "not_before": 10},
		{"op": "key_package", "identity": "bob", "not_before": 10, "not_after": 10},
		{"op": "key_package", "identity": "bob", "lifetime_s": 0},
		{"op": "key_package", "identity": ""},
	} {
		c.fail(req)
	}
}

// agree checks that every client sees the same epoch of gid: epoch,
// epoch_authenticator, tree hash, transcript hash, members and exporter.
func agree(t *testing.T, gid string, epoch int, clients ...*client) {
	t.Helper()
	var first, firstExp map[string]any
	for _, c := range clients {
		s := c.call(map[string]any{"op": "state", "group_id": gid})
		e := c.call(map[string]any{"op": "export", "group_id": gid, "label": "test", "context": enc("ctx"), "length": 16})
		if int(s["epoch"].(float64)) != epoch || s["active"] != true || s["status"] != "active" {
			t.Fatalf("%s: state epoch %v active %v status %v, want epoch %d active", c.name, s["epoch"], s["active"], s["status"], epoch)
		}
		if int(e["epoch"].(float64)) != epoch {
			t.Fatalf("%s: export epoch %v, want %d", c.name, e["epoch"], epoch)
		}
		if first == nil {
			first, firstExp = s, e
			continue
		}
		for _, k := range []string{"epoch_authenticator", "tree_hash", "confirmed_transcript_hash", "cipher_suite", "members"} {
			if fmt.Sprint(s[k]) != fmt.Sprint(first[k]) {
				t.Errorf("%s: %s = %v, %s has %v", c.name, k, s[k], clients[0].name, first[k])
			}
		}
		if e["secret"] != firstExp["secret"] {
			t.Errorf("%s: exporter secret differs from %s's", c.name, clients[0].name)
		}
	}
}

// deliver hands a commit to receivers, which must reach epoch.
func deliver(t *testing.T, gid, commit string, epoch int, receivers ...*client) {
	t.Helper()
	for _, c := range receivers {
		r := c.call(map[string]any{"op": "process", "group_id": gid, "message": commit})
		if r["type"] != "commit" || int(r["epoch"].(float64)) != epoch || r["removed"] != false {
			t.Fatalf("%s: process commit = %v, want epoch %d, not removed", c.name, r, epoch)
		}
	}
}

// chat has each client send one message that every other decrypts.
func chat(t *testing.T, gid string, clients ...*client) {
	t.Helper()
	for _, s := range clients {
		text := "hello from " + s.name
		m := s.call(map[string]any{"op": "encrypt", "group_id": gid, "plaintext": enc(text), "authenticated_data": enc("ad")})
		for _, r := range clients {
			if r == s {
				continue
			}
			// No group_id: the peer finds the group from the message.
			got := r.call(map[string]any{"op": "process", "message": m["message"]})
			if got["type"] != "application" || got["plaintext"] != enc(text) {
				t.Errorf("%s: got %v from %s", r.name, got, s.name)
			}
		}
	}
}

// TestGroupLifeCycle drives in-process peers through every op of the
// protocol, as the interop selftest does across processes, in each suite
// (83 is the X-Wing suite: an end-to-end test of the post-quantum KEM).
func TestGroupLifeCycle(t *testing.T) {
	for _, suite := range []int{1, 2, 3, 4, 5, 6, 7, 83} {
		t.Run(fmt.Sprintf("suite%d", suite), func(t *testing.T) {
			testGroupLifeCycle(t, suite)
		})
	}
}

func testGroupLifeCycle(t *testing.T, suite int) {
	alice, bob, carol := startPeer(t, "alice", 1), startPeer(t, "bob", 2), startPeer(t, "carol", 3)
	gid := enc(fmt.Sprintf("group-%d", suite))

	// Create; add bob by a commit carrying the tree (§12.4.3.3).
	cg := alice.call(map[string]any{"op": "create_group", "group_id": gid, "identity": "alice", "suite": suite})
	if cg["epoch"] != 0.0 || cg["leaf_index"] != 0.0 {
		t.Fatalf("create_group = %v", cg)
	}
	alice.fail(map[string]any{"op": "create_group", "group_id": gid, "identity": "alice", "suite": suite})
	agree(t, gid, 0, alice)
	kpB := bob.call(map[string]any{"op": "key_package", "identity": "bob", "suite": suite, "grease": false})
	add := alice.call(map[string]any{"op": "add", "group_id": gid, "key_packages": []any{kpB["key_package"]}})
	if add["epoch"] != 1.0 || add["welcome"] == nil {
		t.Fatalf("add = %v", add)
	}
	jb := bob.call(map[string]any{"op": "join", "welcome": add["welcome"]})
	if jb["group_id"] != gid || jb["leaf_index"] != 1.0 || jb["epoch"] != 1.0 {
		t.Fatalf("join = %v", jb)
	}
	bob.fail(map[string]any{"op": "join", "welcome": add["welcome"]}) // KeyPackage consumed
	agree(t, gid, 1, alice, bob)
	chat(t, gid, alice, bob)

	// Bad input is refused and the peer carries on.
	m := alice.call(map[string]any{"op": "encrypt", "group_id": gid, "plaintext": enc("tamper me")})
	raw, _ := base64.StdEncoding.DecodeString(m["message"].(string))
	raw[len(raw)-5] ^= 1
	bob.fail(map[string]any{"op": "process", "group_id": gid, "message": base64.StdEncoding.EncodeToString(raw)})
	bob.fail(map[string]any{"op": "process", "group_id": gid, "message": "AAEC"})
	bob.fail(map[string]any{"op": "process", "message": add["welcome"]})
	bob.fail(map[string]any{"op": "state", "group_id": enc("nope")})
	if r := bob.call(map[string]any{"op": "process", "group_id": gid, "message": m["message"]}); r["plaintext"] != enc("tamper me") {
		t.Fatalf("untampered message after errors: %v", r)
	}

	// Updates: bob's private commit, alice's public one.
	up := bob.call(map[string]any{"op": "update", "group_id": gid})
	deliver(t, gid, up["commit"].(string), 2, alice)
	up = alice.call(map[string]any{"op": "update", "group_id": gid, "public": true})
	if wf := wireFormatOf(t, up["commit"]); wf != wirePublicMessage {
		t.Fatalf("public update has wire format %d", wf)
	}
	deliver(t, gid, up["commit"].(string), 3, bob)
	agree(t, gid, 3, alice, bob)

	// Proposal by reference, committed without the tree in the Welcome:
	// carol joins with the tree out of band.
	kpC := carol.call(map[string]any{"op": "key_package", "identity": "carol", "suite": suite, "lifetime_s": 3600})
	prop := bob.call(map[string]any{"op": "propose_add", "group_id": gid, "key_package": kpC["key_package"], "public": true})
	if wf := wireFormatOf(t, prop["proposal"]); wf != wirePublicMessage {
		t.Fatalf("public proposal has wire format %d", wf)
	}
	if r := alice.call(map[string]any{"op": "process", "group_id": gid, "message": prop["proposal"]}); r["type"] != "proposal" || r["epoch"] != 3.0 {
		t.Fatalf("process proposal = %v", r)
	}
	if s := alice.call(map[string]any{"op": "state", "group_id": gid}); s["pending_proposals"] != 1.0 {
		t.Fatalf("pending_proposals = %v", s["pending_proposals"])
	}
	alice.fail(map[string]any{"op": "encrypt", "group_id": gid, "plaintext": enc("x")}) // proposals pending
	cm := alice.call(map[string]any{"op": "commit", "group_id": gid, "ratchet_tree": false})
	deliver(t, gid, cm["commit"].(string), 4, bob)
	carol.fail(map[string]any{"op": "join", "welcome": cm["welcome"]})
	tree := alice.call(map[string]any{"op": "ratchet_tree", "group_id": gid})
	if j := carol.call(map[string]any{"op": "join", "welcome": cm["welcome"], "ratchet_tree": tree["ratchet_tree"]}); j["leaf_index"] != 2.0 {
		t.Fatalf("carol join = %v", j)
	}
	agree(t, gid, 4, alice, bob, carol)
	chat(t, gid, alice, bob, carol)

	// Carol removes bob (inline remove in a commit); bob learns it.
	rm := carol.call(map[string]any{"op": "commit", "group_id": gid, "remove": []any{1}})
	deliver(t, gid, rm["commit"].(string), 5, alice)
	if r := bob.call(map[string]any{"op": "process", "group_id": gid, "message": rm["commit"]}); r["removed"] != true {
		t.Fatalf("bob after his removal: %v", r)
	}
	if s := bob.call(map[string]any{"op": "state", "group_id": gid}); s["active"] != false || s["status"] != "removedFromGroup" {
		t.Fatalf("removed bob's state: %v %v", s["active"], s["status"])
	}
	bob.fail(map[string]any{"op": "encrypt", "group_id": gid, "plaintext": enc("zombie")})
	agree(t, gid, 5, alice, carol)

	// Bob comes back by external commit from alice's GroupInfo, after
	// forgetting the group.
	bob.call(map[string]any{"op": "drop_group", "group_id": gid})
	bob.fail(map[string]any{"op": "drop_group", "group_id": gid})
	gi := alice.call(map[string]any{"op": "group_info", "group_id": gid})
	ej := bob.call(map[string]any{"op": "external_join", "group_info": gi["group_info"], "identity": "bob"})
	if ej["group_id"] != gid || ej["epoch"] != 6.0 || ej["leaf_index"] != 1.0 {
		t.Fatalf("external_join = %v", ej)
	}
	if wf := wireFormatOf(t, ej["commit"]); wf != wirePublicMessage {
		t.Fatalf("external commit has wire format %d", wf)
	}
	deliver(t, gid, ej["commit"].(string), 6, alice, carol)
	agree(t, gid, 6, alice, bob, carol)

	// Alice removes carol with leaf_indices; then bob leaves by proposing
	// his own removal, which alice commits.
	rm = alice.call(map[string]any{"op": "remove", "group_id": gid, "leaf_indices": []any{2}})
	if _, ok := rm["welcome"]; ok {
		t.Errorf("remove returned a welcome")
	}
	deliver(t, gid, rm["commit"].(string), 7, bob)
	if r := carol.call(map[string]any{"op": "process", "message": rm["commit"]}); r["removed"] != true {
		t.Fatalf("carol after her removal: %v", r)
	}
	leave := bob.call(map[string]any{"op": "propose_remove", "group_id": gid, "leaf_index": 1})
	alice.call(map[string]any{"op": "process", "group_id": gid, "message": leave["proposal"]})
	lc := alice.call(map[string]any{"op": "commit", "group_id": gid})
	if r := bob.call(map[string]any{"op": "process", "group_id": gid, "message": lc["commit"]}); r["removed"] != true {
		t.Fatalf("bob after leaving: %v", r)
	}
	agree(t, gid, 8, alice)
}

func wireFormatOf(t *testing.T, msg any) int {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(msg.(string))
	if err != nil || len(raw) < 4 {
		t.Fatalf("message %v: %v", msg, err)
	}
	return int(raw[2])<<8 | int(raw[3])
}
