package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/keypkgdir"
	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/p2p"
)

// TestInviteOfflineThenCatchUp follows a group from invitation to catch-up
// over real hosts on loopback, each member on its own store: KeyPackages
// go through the DHT, an invitee who is offline gets the Welcome from the
// inviter's persistent outbox when it returns and joins with the
// KeyPackage keys its reopened store kept (RFC 9420 §12.4.3.1, §16.8), the
// channel's validator sorts messages by group and epoch before they are
// forwarded, and a member who was away processes what it missed, commits
// included (§12.4.2), from another member's log.
func TestInviteOfflineThenCatchUp(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lap := func(step string, since time.Time) {
		t.Logf("%-44s %s", step, time.Since(since).Round(time.Millisecond))
	}

	// 1. A DHT node that is not a member, and three members, each with its
	// own data directory; bob and carol publish KeyPackages, alice fetches
	// them through the DHT.
	step := time.Now()
	relayKey, err := p2p.GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := p2p.New(ctx, p2p.Config{
		Identity: relayKey, ListenAddrs: loopback, DHTMode: p2p.DHTServer,
		Validators: map[string]p2p.Validator{keypkgdir.Namespace: directoryValidator},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	welcomeDone := make(chan error, 4)
	alice := openMember(t, "alice", t.TempDir())
	bob := openMember(t, "bob", t.TempDir())
	carol := openMember(t, "carol", t.TempDir())
	members := []*member{alice, bob, carol}
	alice.start(ctx, relay.Addrs(), func(_ p2p.PendingWelcome, err error) { welcomeDone <- err })
	bob.start(ctx, relay.Addrs(), nil)
	carol.start(ctx, relay.Addrs(), nil)
	defer func() {
		for _, m := range members {
			if !m.closed {
				m.goOffline()
			}
		}
	}()
	for _, m := range members {
		waitFor(ctx, t, m.name+"'s routing table", func() bool { return m.host.RoutingTableSize() > 0 })
	}
	for _, m := range []*member{bob, carol} {
		m.pub, err = keypkgdir.NewPublisher(keypkgdir.PublisherConfig{
			DHT: m.host, Identity: m.key, Storage: m.st, Signer: m.signer, BatchSize: 2,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.pub.Publish(ctx); err != nil {
			t.Fatalf("%s publishing KeyPackages: %v", m.name, err)
		}
	}
	dir := &keypkgdir.Directory{DHT: alice.host, Validator: directoryValidator}
	bobKP, err := dir.Fetch(ctx, bob.id)
	if err != nil {
		t.Fatalf("fetching bob's KeyPackage: %v", err)
	}
	carolKP, err := dir.Fetch(ctx, carol.id)
	if err != nil {
		t.Fatalf("fetching carol's KeyPackage: %v", err)
	}
	if bobPeer, err := keypkgdir.PeerOf(bobKP.Identity(), bobKP.SignatureKey()); err != nil || bobPeer != bob.id {
		t.Fatalf("bob's fetched KeyPackage names %s (%v)", bobPeer, err)
	}
	if carolPeer, err := keypkgdir.PeerOf(carolKP.Identity(), carolKP.SignatureKey()); err != nil || carolPeer != carol.id {
		t.Fatalf("carol's fetched KeyPackage names %s (%v)", carolPeer, err)
	}
	lap("1. KeyPackages published and fetched", step)

	// 2. Bob goes offline. Alice creates the group and adds both in one
	// commit; as the only member of epoch 0 nobody can commit against her,
	// so she merges at once and persists before any Welcome leaves.
	step = time.Now()
	bob.goOffline()
	bob.pub = nil
	waitFor(ctx, t, "alice to see bob gone", func() bool { return !slices.Contains(alice.host.Connected(), bob.id) })
	g, err := mlsgroup.CreateGroup(alice.config(), randomID(t), alice.identity(), alice.signer, mlsgroup.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := g.Commit(mlsgroup.CommitOptions{Proposals: []mlsgroup.Proposal{
		mlsgroup.AddProposal(bobKP), mlsgroup.AddProposal(carolKP)}})
	if err != nil {
		t.Fatal(err)
	}
	merged, _, err := sent.Group.MergeCommit()
	if err != nil {
		t.Fatal(err)
	}
	alice.mu.Lock()
	alice.groupID = merged.GroupID()
	err = alice.persist(merged, nil)
	alice.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	addCommit := sent.Message // of epoch 0: stale from now on
	welcomeID := sha256.Sum256(sent.Welcome)
	err = alice.host.QueueWelcome(p2p.PendingWelcome{ID: welcomeID[:], To: bob.id, Welcome: sent.Welcome, Expires: bobKP.NotAfter()})
	if err != nil {
		t.Fatal(err)
	}
	if queued, err := alice.st.Welcomes(outboxRecipient); err != nil || len(queued) != 1 {
		t.Fatalf("alice's stored outbox holds %d Welcomes (%v), want 1", len(queued), err)
	}
	if err := alice.host.SendWelcome(ctx, carol.id, sent.Welcome); err != nil {
		t.Fatalf("Welcome to carol: %v", err)
	}
	if _, status, _ := carol.st.KeyPackage(carolKP.Ref()); status != mlsgroup.KeyPackageConsumed {
		t.Fatalf("carol's KeyPackage has status %d after the join, want consumed", status)
	}
	lap("2. group created, carol joined", step)

	// 3. Bob returns with the same identity on the same data directory,
	// knowing only the relay; the Welcome reaches him, he joins with the
	// KeyPackage keys his store kept, and the acknowledgement empties
	// alice's outbox.
	step = time.Now()
	bob = openMember(t, "bob", bob.dir)
	members[1] = bob
	if _, status, _ := bob.st.KeyPackage(bobKP.Ref()); status != mlsgroup.KeyPackageAvailable {
		t.Fatalf("bob's reopened store has his KeyPackage with status %d", status)
	}
	online := time.Now()
	bob.start(ctx, relay.Addrs(), nil)
	if p, err := keypkgdir.PeerOf(bobKP.Identity(), bobKP.SignatureKey()); err != nil || p != bob.id {
		t.Fatal("bob came back with another identity")
	}
	var joinedAt time.Time
	select {
	case joinedAt = <-bob.joined:
	case <-time.After(5*time.Second - time.Since(online)):
		t.Fatal("bob got no Welcome within 5 s of coming online")
	}
	select {
	case err := <-welcomeDone:
		if err != nil {
			t.Fatalf("alice's outbox: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("alice never learnt that bob acknowledged")
	}
	if queued, err := alice.st.Welcomes(outboxRecipient); err != nil || len(queued) != 0 {
		t.Fatalf("alice's stored outbox holds %d Welcomes (%v) after the acknowledgement", len(queued), err)
	}
	if _, status, _ := bob.st.KeyPackage(bobKP.Ref()); status != mlsgroup.KeyPackageConsumed {
		t.Fatalf("bob's KeyPackage has status %d after the join, want consumed", status)
	}
	t.Logf("bob joined %s after coming online", joinedAt.Sub(online).Round(time.Millisecond))
	for _, m := range members {
		if e := m.state().Epoch(); e != 1 {
			t.Fatalf("%s is in epoch %d, want 1", m.name, e)
		}
	}
	lap("3. bob back online and joined", step)

	// 4. The channel: the validator accepts the group's messages, ignores
	// a stale epoch and rejects garbage and other groups' messages, here
	// directly and over the network, where the relay forwards anything.
	step = time.Now()
	for _, m := range members {
		m.joinChannel(ctx)
	}
	relayCh, err := relay.JoinChannel(alice.groupID, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer relayCh.Close()
	waitFor(ctx, t, "channel peers", func() bool {
		for _, m := range members {
			if len(m.ch.Peers()) < len(members) { // the other members and the relay
				return false
			}
		}
		return true
	})
	time.Sleep(1500 * time.Millisecond) // a heartbeat or so, for the meshes
	foreign := otherGroupMessage(t)
	// Encrypted for the validators only; the state that used the key is
	// dropped, and the message is never sent.
	fresh, err := alice.state().Encrypt([]byte("never sent"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want p2p.Verdict
	}{
		{"current epoch", fresh.Message, p2p.Accept},
		{"stale commit", addCommit, p2p.Ignore},
		{"garbage", []byte("not an MLS message"), p2p.Reject},
		{"KeyPackage", bobKP.Bytes(), p2p.Reject},
		{"other group", foreign, p2p.Reject},
	} {
		for _, m := range members {
			if got := m.validate(ctx, relay.ID(), tc.data); got != tc.want {
				t.Errorf("%s's validator on %s: %d, want %d", m.name, tc.name, got, tc.want)
			}
		}
	}
	for _, bad := range [][]byte{[]byte("not an MLS message"), addCommit, foreign} {
		if err := relayCh.Publish(ctx, bad); err != nil {
			t.Fatal(err)
		}
	}
	if err := alice.ch.Publish(ctx, []byte("garbage")); !errors.Is(err, p2p.ErrMessageRejected) {
		t.Fatalf("alice publishing garbage: %v, want ErrMessageRejected", err)
	}
	var log uint64
	for i := range 6 {
		m := members[i%3]
		log++
		if err := m.send(ctx, fmt.Sprintf("hello %d from %s", i, m.name)); err != nil {
			t.Fatal(err)
		}
		waitLogs(ctx, t, members, log)
	}
	for _, m := range members {
		if n := len(m.received()); n != 4 { // the others' messages
			t.Fatalf("%s decrypted %d messages, want 4", m.name, n)
		}
	}
	// Carol's cursor into alice's log, before she leaves: everything in it
	// she has already.
	applied, skipped, err := carol.catchUp(ctx, alice)
	if err != nil || applied != 0 || skipped != int(log) {
		t.Fatalf("carol's first sync: %d applied, %d skipped, %v; want 0, %d, nil", applied, skipped, err, log)
	}
	lap(fmt.Sprintf("4. channel: %d messages, 3 bad ones dropped", log), step)

	// 5. Carol goes offline; alice and bob exchange 50 application messages
	// and 3 commits. Carol returns and catches up from alice's log.
	step = time.Now()
	carol.goOffline()
	online2 := []*member{alice, bob}
	var want []string
	commits := 0
	for i := range 53 {
		m := online2[i%2]
		log++
		if i == 10 || i == 25 || i == 40 {
			commits++
			if err := m.commitUpdate(ctx); err != nil {
				t.Fatal(err)
			}
		} else {
			text := fmt.Sprintf("while carol is away %d from %s", i, m.name)
			want = append(want, text)
			if err := m.send(ctx, text); err != nil {
				t.Fatal(err)
			}
		}
		waitLogs(ctx, t, online2, log)
	}
	if a, b := alice.state(), bob.state(); a.Epoch() != 4 || !bytes.Equal(a.EpochAuthenticator(), b.EpochAuthenticator()) {
		t.Fatalf("alice in epoch %d, bob in %d, authenticators equal: %t", a.Epoch(), b.Epoch(), bytes.Equal(a.EpochAuthenticator(), b.EpochAuthenticator()))
	}
	lap(fmt.Sprintf("5a. %d messages, %d commits without carol", len(want), commits), step)

	step = time.Now()
	cursors := carol.cursors
	carol = openMember(t, "carol", carol.dir)
	members[2] = carol
	carol.cursors = cursors // see the report: the store has no place for them
	before := len(carol.received())
	carol.start(ctx, relay.Addrs(), nil)
	// New returns once the bootstrap peer is dialled, not once the DHT
	// can look anyone up; the node waits for that before syncing.
	waitFor(ctx, t, "carol's routing table", func() bool { return carol.host.RoutingTableSize() > 0 })
	applied, skipped, err = carol.catchUp(ctx, alice)
	if err != nil {
		t.Fatalf("carol catching up: %v", err)
	}
	if applied != 53 || skipped != 0 {
		t.Fatalf("carol's catch-up applied %d entries and skipped %d, want 53 and 0", applied, skipped)
	}
	a, c := alice.state(), carol.state()
	if c.Epoch() != a.Epoch() || !bytes.Equal(c.EpochAuthenticator(), a.EpochAuthenticator()) {
		t.Fatalf("carol in epoch %d, alice in %d; authenticators equal: %t", c.Epoch(), a.Epoch(), bytes.Equal(c.EpochAuthenticator(), a.EpochAuthenticator()))
	}
	if got := carol.received()[before:]; !slices.Equal(got, want) {
		t.Fatalf("carol caught up with %d plaintexts, want the %d sent in order", len(got), len(want))
	}
	if h := carol.logHead(); h != log {
		t.Fatalf("carol's log holds %d entries, want %d", h, log)
	}
	// Alice's log is for the group's members only.
	err = relay.Sync(ctx, alice.id, alice.groupID, nil, func(p2p.SyncEntry) error { return nil })
	if !errors.Is(err, p2p.ErrSyncRefused) {
		t.Fatalf("a non-member syncing alice's log: %v, want ErrSyncRefused", err)
	}
	lap(fmt.Sprintf("5b. carol caught up: %d entries via Sync", applied), step)

	// Back on the channel, carol is a full member again.
	step = time.Now()
	carol.joinChannel(ctx)
	waitFor(ctx, t, "carol in the mesh", func() bool {
		return slices.Contains(alice.ch.Peers(), carol.id) && slices.Contains(bob.ch.Peers(), carol.id)
	})
	time.Sleep(1500 * time.Millisecond)
	log++
	if err := carol.send(ctx, "back"); err != nil {
		t.Fatal(err)
	}
	waitLogs(ctx, t, members, log)
	for _, m := range []*member{alice, bob} {
		if got := m.received(); got[len(got)-1] != "back" {
			t.Fatalf("%s last decrypted %q", m.name, got[len(got)-1])
		}
	}
	lap("6. carol back on the channel", step)
	t.Logf("total %s; %d log entries per member; epoch %d", time.Since(start).Round(time.Millisecond), log, a.Epoch())
}

// waitLogs waits until every member's log holds n entries.
func waitLogs(ctx context.Context, t *testing.T, ms []*member, n uint64) {
	t.Helper()
	waitFor(ctx, t, fmt.Sprintf("%d log entries", n), func() bool {
		for _, m := range ms {
			if m.logHead() < n {
				return false
			}
		}
		return true
	})
}

// otherGroupMessage is an application message of a group of nobody here.
func otherGroupMessage(t *testing.T) []byte {
	t.Helper()
	cfg := mlsgroup.Config{Storage: &mlsgroup.MemoryStorage{}, Rand: rand.Reader, Now: time.Now}
	signer, err := mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	g, err := mlsgroup.CreateGroup(cfg, randomID(t), []byte("mallory"), signer, mlsgroup.GroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sent, err := g.Encrypt([]byte("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sent.Message
}

func randomID(t *testing.T) []byte {
	t.Helper()
	id := make([]byte, 32)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return id
}
