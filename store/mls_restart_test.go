package store

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// The store is mlsgroup's Storage. Only tests may say so with mlsgroup's
// own type: store's code does not import mlsgroup.
var _ mlsgroup.Storage = (*Store)(nil)

// TestKeyPackageStatusIsMLSGroups checks the statuses Store reports against
// the constants of mlsgroup, which Store cannot name.
func TestKeyPackageStatusIsMLSGroups(t *testing.T) {
	got := []KeyPackageStatus{KeyPackageUnknown, KeyPackageAvailable, KeyPackageExpired, KeyPackageConsumed}
	want := []mlsgroup.KeyPackageStatus{mlsgroup.KeyPackageUnknown, mlsgroup.KeyPackageAvailable, mlsgroup.KeyPackageExpired, mlsgroup.KeyPackageConsumed}
	if !slices.Equal(got, want) {
		t.Errorf("store's KeyPackage statuses %v, mlsgroup's %v", got, want)
	}
}

func init() { childRoles["mlsbob"] = childBob }

// bobOptions are those of Bob's node: an encrypted store, so that the
// private keys crossing the restarts are sealed at rest too.
func bobOptions() *Options {
	o := testOptions()
	o.Passphrase = []byte("bob's passphrase")
	return o
}

// noMatchReport is what a child whose join found no KeyPackage says of the
// error, which only exists in its process.
type noMatchReport struct {
	Is, As bool // errors.Is ErrNoMatchingKeyPackage, errors.As *NoMatchingKeyPackageError
	Refs   []string
	Status []mlsgroup.KeyPackageStatus
	Error  string
}

// childBob is Bob's node, one process per step of TestMLSJoinAcrossRestart.
// arg is one of:
//
//	keypackage FILE  make Bob's signature key and a KeyPackage (its private
//	                 keys into the store), write the KeyPackage to FILE
//	join FILE        join from the Welcome in FILE, then converse
//	load GROUP       load the group (hex ID) from the store, then converse
//
// Conversing reads stdin lines "recv HEX" (an MLSMessage to process) and
// "send HEX" (plaintext to encrypt), persists each new state in one batch
// with its log entry before answering on stdout, and ends at EOF.
func childBob(dir, arg string) (err error) {
	mode, file, _ := strings.Cut(arg, " ")
	s, err := Open(dir, bobOptions())
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, s.Close()) }()
	cfg := mlsgroup.Config{Storage: s, Rand: rand.Reader, Now: time.Now}

	if mode == "keypackage" {
		signer, err := mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, rand.Reader)
		if err != nil {
			return err
		}
		raw, err := signer.MarshalBinary()
		if err != nil {
			return err
		}
		var b Batch
		b.PutSignatureKey([]byte("bob"), raw)
		if err := s.Commit(&b); err != nil {
			return err
		}
		kp, err := mlsgroup.NewKeyPackage(s, []byte("bob"), signer, mlsgroup.KeyPackageOptions{}, rand.Reader, time.Now())
		if err != nil {
			return err
		}
		if err := os.WriteFile(file, kp.Bytes(), 0o600); err != nil {
			return err
		}
		fmt.Printf("keypackage %x\n", kp.Ref())
		return nil
	}

	var g *mlsgroup.Group
	switch mode {
	case "join":
		welcome, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		// A node on another directory has an identity of its own.
		signer, err := mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, rand.Reader)
		if err != nil {
			return err
		}
		if raw, err := s.SignatureKey([]byte("bob")); err == nil {
			if signer, err = mlsgroup.ParseSigner(raw); err != nil {
				return err
			}
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		j, err := mlsgroup.Join(cfg, welcome, signer, mlsgroup.JoinOptions{})
		if errors.Is(err, mlsgroup.ErrNoMatchingKeyPackage) {
			r := noMatchReport{Is: true, Error: err.Error()}
			var nm *mlsgroup.NoMatchingKeyPackageError
			if r.As = errors.As(err, &nm); r.As {
				for _, ref := range nm.Refs {
					r.Refs = append(r.Refs, hex.EncodeToString(ref))
				}
				r.Status = nm.Status
			}
			out, err := json.Marshal(r)
			fmt.Printf("nomatch %s\n", out)
			return err
		}
		if err != nil {
			return err
		}
		g = j.Group
		st, err := g.MarshalBinary()
		if err != nil {
			return err
		}
		var b Batch
		b.PutGroup(g.GroupID(), st)
		b.ConsumeKeyPackage(j.ConsumedKeyPackage)
		b.AppendLog(g.GroupID(), nil, fmt.Appendf(nil, "joined at epoch %d", g.Epoch()))
		if err := s.Commit(&b); err != nil {
			return err
		}
		fmt.Printf("joined %d %x\n", g.Epoch(), g.EpochAuthenticator())
	case "load":
		id, err := hex.DecodeString(file)
		if err != nil {
			return err
		}
		st, err := s.Group(id)
		if err != nil {
			return err
		}
		if g, err = mlsgroup.LoadGroup(cfg, st); err != nil {
			return err
		}
		fmt.Printf("loaded %d %x\n", g.Epoch(), g.EpochAuthenticator())
	default:
		return fmt.Errorf("mode %q", mode)
	}

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 1<<20)
	for in.Scan() {
		verb, arg, _ := strings.Cut(in.Text(), " ")
		data, err := hex.DecodeString(arg)
		if err != nil {
			return err
		}
		var next *mlsgroup.Group
		var entry, reply string
		switch verb {
		case "recv":
			rec, err := g.Process(data)
			if err != nil {
				return err
			}
			next = rec.Group
			entry = fmt.Sprintf("received kind %d in epoch %d: %s", rec.Kind, rec.Epoch, rec.Plaintext)
			reply = fmt.Sprintf("recv %d %d %x", rec.Kind, next.Epoch(), rec.Plaintext)
		case "send":
			sent, err := g.Encrypt(data, nil)
			if err != nil {
				return err
			}
			next = sent.Group
			entry = fmt.Sprintf("sent in epoch %d: %s", next.Epoch(), data)
			reply = fmt.Sprintf("sent %x", sent.Message)
		default:
			return fmt.Errorf("verb %q", verb)
		}
		st, err := next.MarshalBinary()
		if err != nil {
			return err
		}
		var b Batch
		b.PutGroup(g.GroupID(), st)
		b.AppendLog(g.GroupID(), nil, []byte(entry))
		if err := s.Commit(&b); err != nil {
			return err
		}
		g = next
		fmt.Println(reply)
	}
	return in.Err()
}

// TestMLSJoinAcrossRestart is issue 4's acceptance 2, the seed's flow with
// a process per step: Bob's node generates a KeyPackage and exits; Alice
// adds Bob; Bob's next process on the same data directory joins from the
// Welcome (RFC 9420 §12.4.3.1) with the private keys the first one stored,
// and the two talk both ways, across a commit; a third process loads the
// group from the store and goes on talking. A node on another directory
// cannot join (the KeyPackage was never held there), and Bob cannot join
// twice (the join consumed it).
func TestMLSJoinAcrossRestart(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "bob")
	kpFile, welcomeFile := filepath.Join(root, "keypackage"), filepath.Join(root, "welcome")

	c := startChild(t, "mlsbob", dir, "keypackage "+kpFile)
	line := c.await(t, "keypackage ")
	waitChild(t, c)
	raw, err := os.ReadFile(kpFile)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := mlsgroup.ParseKeyPackage(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := kp.Validate(time.Now(), mlsgroup.ValidationOptions{}); err != nil {
		t.Fatal(err)
	}
	ref := hex.EncodeToString(kp.Ref())
	if line != "keypackage "+ref {
		t.Fatalf("Bob said %q, the KeyPackage's ref is %s", line, ref)
	}

	cfg := mlsgroup.Config{Storage: new(mlsgroup.MemoryStorage), Rand: rand.Reader, Now: time.Now}
	signer, err := mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := mlsgroup.CreateGroup(cfg, []byte("alice and bob"), []byte("alice"), signer, mlsgroup.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := alice.Commit(mlsgroup.CommitOptions{Proposals: []mlsgroup.Proposal{mlsgroup.AddProposal(kp)}})
	if err != nil {
		t.Fatal(err)
	}
	merged, err := sent.Group.MergeCommit()
	if err != nil {
		t.Fatal(err)
	}
	alice = merged.Group
	if err := os.WriteFile(welcomeFile, merged.Welcome, 0o600); err != nil {
		t.Fatal(err)
	}

	c = startChild(t, "mlsbob", dir, "join "+welcomeFile)
	wantSameEpoch(t, c.await(t, "joined "), alice)
	alice = converse(t, c, alice, "after the join")
	c.stdin.Close()
	waitChild(t, c)

	c = startChild(t, "mlsbob", dir, fmt.Sprintf("load %x", alice.GroupID()))
	wantSameEpoch(t, c.await(t, "loaded "), alice)
	alice = converse(t, c, alice, "after a restart")
	c.stdin.Close()
	waitChild(t, c)

	c = startChild(t, "mlsbob", filepath.Join(root, "elsewhere"), "join "+welcomeFile)
	wantNoMatch(t, c, ref, mlsgroup.KeyPackageUnknown, "never held")
	c = startChild(t, "mlsbob", dir, "join "+welcomeFile)
	wantNoMatch(t, c, ref, mlsgroup.KeyPackageConsumed, "already consumed")

	// Bob's log holds the conversation, in order, across his processes.
	s := openTest(t, dir, bobOptions())
	log, err := readLog(s, alice.GroupID())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"joined at epoch 1"}
	for i, when := range []string{"after the join", "after a restart"} {
		want = append(want,
			fmt.Sprintf("received kind 1 in epoch %d: hello Bob, %s", i+1, when),
			fmt.Sprintf("sent in epoch %d: hello Alice, %s", i+1, when),
			fmt.Sprintf("received kind 3 in epoch %d: ", i+1),
			fmt.Sprintf("sent in epoch %d: hello Alice, %s, epoch %d", i+2, when, i+2))
	}
	if !slices.Equal(log, want) {
		t.Errorf("Bob's log:\n%q\nwant\n%q", log, want)
	}
}

func waitChild(t *testing.T, c *child) {
	t.Helper()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, c.errb)
	}
}

// wantSameEpoch checks a "joined|loaded EPOCH AUTHENTICATOR" line against
// Alice's state.
func wantSameEpoch(t *testing.T, line string, alice *mlsgroup.Group) {
	t.Helper()
	if f := strings.Fields(line); len(f) != 3 || f[1] != strconv.FormatUint(alice.Epoch(), 10) ||
		f[2] != hex.EncodeToString(alice.EpochAuthenticator()) {
		t.Fatalf("Bob said %q; Alice is at epoch %d, authenticator %x", line, alice.Epoch(), alice.EpochAuthenticator())
	}
}

// converse has Alice and Bob's process exchange messages both ways, then
// Alice commit a key update and Bob answer in the new epoch.
func converse(t *testing.T, c *child, alice *mlsgroup.Group, when string) *mlsgroup.Group {
	t.Helper()
	bobReceives := func(msg []byte, kind mlsgroup.MessageKind, plain string) {
		t.Helper()
		fmt.Fprintf(c.stdin, "recv %x\n", msg)
		want := fmt.Sprintf("recv %d %d %x", kind, alice.Epoch(), plain)
		if got := c.await(t, "recv "); got != want {
			t.Fatalf("Bob said %q, want %q", got, want)
		}
	}
	bobSends := func(plain string) {
		t.Helper()
		fmt.Fprintf(c.stdin, "send %x\n", plain)
		msg, err := hex.DecodeString(strings.TrimPrefix(c.await(t, "sent "), "sent "))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := alice.Process(msg)
		if err != nil {
			t.Fatalf("Alice processing Bob's message: %v", err)
		}
		if alice = rec.Group; string(rec.Plaintext) != plain {
			t.Fatalf("Alice read %q, want %q", rec.Plaintext, plain)
		}
	}

	hello := "hello Bob, " + when
	sent, err := alice.Encrypt([]byte(hello), nil)
	if err != nil {
		t.Fatal(err)
	}
	alice = sent.Group
	bobReceives(sent.Message, mlsgroup.KindApplication, hello)
	bobSends("hello Alice, " + when)

	if sent, err = alice.Commit(mlsgroup.CommitOptions{Path: true}); err != nil {
		t.Fatal(err)
	}
	merged, err := sent.Group.MergeCommit()
	if err != nil {
		t.Fatal(err)
	}
	alice = merged.Group
	bobReceives(sent.Message, mlsgroup.KindCommit, "")
	bobSends(fmt.Sprintf("hello Alice, %s, epoch %d", when, alice.Epoch()))
	return alice
}

// wantNoMatch checks the report of a child whose join failed for want of
// the KeyPackage ref, with the given status.
func wantNoMatch(t *testing.T, c *child, ref string, status mlsgroup.KeyPackageStatus, text string) {
	t.Helper()
	line := c.await(t, "nomatch ")
	waitChild(t, c)
	var r noMatchReport
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "nomatch ")), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Is || !r.As || !slices.Equal(r.Refs, []string{ref}) || !slices.Equal(r.Status, []mlsgroup.KeyPackageStatus{status}) {
		t.Errorf("join failed with %+v; want errors.Is and errors.As, ref %s with status %d", r, ref, status)
	}
	if !strings.Contains(r.Error, ref) || !strings.Contains(r.Error, text) {
		t.Errorf("error %q does not name ref %s as %q", r.Error, ref, text)
	}
	t.Logf("the join failed as it should: %s", r.Error)
}
