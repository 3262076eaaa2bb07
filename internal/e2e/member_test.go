package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/keypkgdir"
	"github.com/spacepanda/spacepanda/mlsgroup"
	"github.com/spacepanda/spacepanda/p2p"
	"github.com/spacepanda/spacepanda/store"
)

// loopback is where hosts listen, on both of the node's transports; they
// never dial anything else.
var loopback = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Names of the node's two keys in the store's identity namespace.
var (
	libp2pKeyName = []byte("libp2p")
	mlsKeyName    = []byte("mls")
)

// outboxRecipient is the recipient under which the p2p outbox keeps its
// Welcomes in the store (see outbox).
var outboxRecipient = []byte("p2p-outbox")

// validation is every member's say in credentials: a leaf's identity must
// bind its MLS signature key to a peer (keypkgdir.NewIdentity), so anything
// else is refused by every member, on every join, add, update and commit.
var validation = mlsgroup.ValidationOptions{Credentials: keypkgdir.CredentialValidator}

// directoryValidator is every node's validator for the KeyPackage
// directory: it accepts only the suite the nodes use, so that no one can
// make them verify records of costlier ones.
var directoryValidator = keypkgdir.Validator{Options: validation, Suites: []mlsgroup.CipherSuite{mlsgroup.DefaultCipherSuite}}

// member is one node: a data directory with its store, the identities kept
// in it, and, while online, a host. Its group state is replaced only after
// the state that follows has been committed to the store.
type member struct {
	t    *testing.T
	name string
	dir  string

	st     *store.Store
	key    crypto.PrivKey
	id     peer.ID
	signer *mlsgroup.Signer
	host   *p2p.Host
	pub    *keypkgdir.Publisher

	// groupID is set before the member joins the channel and not changed
	// after, so the validator reads it without a lock.
	groupID []byte
	epoch   atomic.Uint64 // the current epoch, for the validator

	mu         sync.Mutex
	group      *mlsgroup.Group
	seen       map[[32]byte]bool // hashes of the messages in the log
	plaintexts []string
	cursors    map[peer.ID][]byte // sync cursor into each provider's log
	joined     chan time.Time     // a Welcome was joined
	ch         *p2p.Channel
	stopRecv   context.CancelFunc
	recv       sync.WaitGroup
	closed     bool // the store is closed
}

// openMember opens (or creates) the member's store in dir and loads its
// identities, making them on first use.
func openMember(t *testing.T, name, dir string) *member {
	t.Helper()
	st, err := store.Open(dir, nil)
	if err != nil {
		t.Fatalf("%s: opening store: %v", name, err)
	}
	m := &member{t: t, name: name, dir: dir, st: st, seen: make(map[[32]byte]bool),
		cursors: make(map[peer.ID][]byte), joined: make(chan time.Time, 4)}
	rawKey, err1 := st.SignatureKey(libp2pKeyName)
	rawSigner, err2 := st.SignatureKey(mlsKeyName)
	switch {
	case errors.Is(err1, store.ErrNotFound) && errors.Is(err2, store.ErrNotFound):
		if m.key, err = p2p.GenerateIdentity(nil); err != nil {
			t.Fatal(err)
		}
		if m.signer, err = mlsgroup.GenerateSigner(mlsgroup.DefaultCipherSuite, rand.Reader); err != nil {
			t.Fatal(err)
		}
		if rawKey, err = crypto.MarshalPrivateKey(m.key); err != nil {
			t.Fatal(err)
		}
		if rawSigner, err = m.signer.MarshalBinary(); err != nil {
			t.Fatal(err)
		}
		var b store.Batch
		b.PutSignatureKey(libp2pKeyName, rawKey)
		b.PutSignatureKey(mlsKeyName, rawSigner)
		if err := st.Commit(&b); err != nil {
			t.Fatal(err)
		}
	case err1 != nil || err2 != nil:
		t.Fatalf("%s: loading identities: %v", name, errors.Join(err1, err2))
	default:
		if m.key, err = crypto.UnmarshalPrivateKey(rawKey); err != nil {
			t.Fatal(err)
		}
		if m.signer, err = mlsgroup.ParseSigner(rawSigner); err != nil {
			t.Fatal(err)
		}
	}
	if m.id, err = peer.IDFromPrivateKey(m.key); err != nil {
		t.Fatal(err)
	}
	m.loadGroups()
	return m
}

// loadGroups restores the one group a member of these tests can hold, and
// the hashes of the messages its log already has, as a node does at start.
func (m *member) loadGroups() {
	ids, err := m.st.GroupIDs()
	if err != nil {
		m.t.Fatal(err)
	}
	for _, id := range ids {
		data, err := m.st.Group(id)
		if err != nil {
			m.t.Fatal(err)
		}
		g, err := mlsgroup.LoadGroup(m.config(), data)
		if err != nil {
			m.t.Fatalf("%s: loading group: %v", m.name, err)
		}
		m.groupID = g.GroupID()
		m.setGroup(g)
		for after := uint64(0); ; {
			page, err := m.st.LogAfter(id, after, 128)
			if err != nil {
				m.t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				m.seen[sha256.Sum256(e.Data)] = true
			}
			after = page[len(page)-1].Seq
		}
	}
}

// config hands mlsgroup the member's one Storage: its store.
func (m *member) config() mlsgroup.Config {
	return mlsgroup.Config{Storage: m.st, Rand: rand.Reader, Now: time.Now, Validation: validation}
}

func (m *member) setGroup(g *mlsgroup.Group) {
	m.group = g
	m.epoch.Store(g.Epoch())
}

// start brings the member online on a new host with its stored identity,
// DHT datastore and Welcome outbox.
func (m *member) start(ctx context.Context, bootstrap []string, done func(p2p.PendingWelcome, error)) {
	m.t.Helper()
	h, err := p2p.New(ctx, p2p.Config{
		Identity:        m.key,
		ListenAddrs:     loopback,
		BootstrapPeers:  bootstrap,
		DHTMode:         p2p.DHTServer,
		Datastore:       m.st.Datastore(),
		Validators:      map[string]p2p.Validator{keypkgdir.Namespace: directoryValidator},
		WelcomeHandler:  m.handleWelcome,
		WelcomeStore:    outbox{m.st},
		WelcomeDone:     done,
		WelcomeRetryMax: 2 * time.Second,
		SyncProvider:    m.serveSync,
		PublishWait:     2 * time.Second,
		StreamTimeout:   10 * time.Second,
		Logger:          testLogger(m.name),
	})
	if err != nil {
		m.t.Fatalf("%s: starting host: %v", m.name, err)
	}
	m.host = h
}

// goOffline leaves the channel, stops the host and closes the store; the
// data directory stays.
func (m *member) goOffline() {
	m.t.Helper()
	m.leaveChannel()
	if m.host != nil {
		if err := m.host.Close(); err != nil {
			m.t.Errorf("%s: closing host: %v", m.name, err)
		}
		m.host = nil
	}
	if err := m.st.Close(); err != nil {
		m.t.Errorf("%s: closing store: %v", m.name, err)
	}
	m.closed = true
}

func (m *member) leaveChannel() {
	if m.ch == nil {
		return
	}
	m.stopRecv()
	m.ch.Close()
	m.recv.Wait()
	m.ch = nil
}

// handleWelcome joins the group a Welcome invites to, through the member's
// store, and acknowledges only once the joined state and the consumption of
// the KeyPackage are on disk, in one batch.
func (m *member) handleWelcome(_ context.Context, from peer.ID, welcome []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	joined, err := mlsgroup.Join(m.config(), welcome, m.signer, mlsgroup.JoinOptions{})
	var none *mlsgroup.NoMatchingKeyPackageError
	if errors.As(err, &none) && m.group != nil && slices.Contains(none.Status, mlsgroup.KeyPackageConsumed) {
		return nil // a duplicate of the Welcome this member joined with
	}
	if err != nil {
		m.t.Errorf("%s: joining from %s's Welcome: %v", m.name, from, err)
		return err
	}
	g := joined.Group
	state, err := g.MarshalBinary()
	if err != nil {
		return err
	}
	var b store.Batch
	b.PutGroup(g.GroupID(), state)
	if m.pub == nil || !m.pub.Used(joined.KeyPackageRef) {
		b.ConsumeKeyPackage(joined.KeyPackageRef)
	}
	if err := m.st.Commit(&b); err != nil {
		return err
	}
	m.groupID = g.GroupID()
	m.setGroup(g)
	m.joined <- time.Now()
	return nil
}

// serveSync serves the group's log from the store to members of the group,
// after a cursor that is the sequence number of the last entry sent.
func (m *member) serveSync(_ context.Context, from peer.ID, channel, after []byte, limit int) ([]p2p.SyncEntry, error) {
	m.mu.Lock()
	g := m.group
	m.mu.Unlock()
	if g == nil || !bytes.Equal(channel, g.GroupID()) {
		return nil, errors.New("no such channel")
	}
	if !slices.ContainsFunc(g.Members(), func(mb mlsgroup.Member) bool { return isPeer(mb, from) }) {
		return nil, errors.New("not a member")
	}
	var seq uint64
	switch len(after) {
	case 0:
	case 8:
		seq = binary.BigEndian.Uint64(after)
	default:
		return nil, errors.New("malformed cursor")
	}
	page, err := m.st.LogAfter(channel, seq, limit)
	if err != nil {
		return nil, err
	}
	entries := make([]p2p.SyncEntry, len(page))
	for i, e := range page {
		entries[i] = p2p.SyncEntry{Cursor: binary.BigEndian.AppendUint64(nil, e.Seq), Data: e.Data}
	}
	return entries, nil
}

// isPeer reports whether mb's leaf is bound to peer p. Its binding was
// checked when the leaf entered the group; PeerOf checks it again rather
// than trust a decoding alone.
func isPeer(mb mlsgroup.Member, p peer.ID) bool {
	id, err := keypkgdir.PeerOf(mb.Identity, mb.SignatureKey)
	return err == nil && id == p
}

// identity is the member's credential identity: its MLS signature key
// bound to its peer ID.
func (m *member) identity() []byte {
	m.t.Helper()
	id, err := keypkgdir.NewIdentity(m.key, m.signer.PublicKey())
	if err != nil {
		m.t.Fatal(err)
	}
	return id
}

// validate is the channel's MessageValidator: it reads what can be read of
// a message without keys, since it runs before the message is forwarded.
func (m *member) validate(_ context.Context, _ peer.ID, data []byte) p2p.Verdict {
	info, err := mlsgroup.InspectMessage(data)
	switch {
	case err != nil:
		return p2p.Reject
	case info.WireFormat != mlsgroup.WireFormatPublicMessage && info.WireFormat != mlsgroup.WireFormatPrivateMessage:
		return p2p.Reject
	case !bytes.Equal(info.GroupID, m.groupID):
		return p2p.Reject
	}
	cur := m.epoch.Load()
	// Handshake messages count only in the current epoch; application
	// messages stay readable for the past epochs a member keeps (§9.2,
	// §14). Older is not an attack, only late: ignored, not blamed.
	if info.Kind == mlsgroup.KindApplication && info.Epoch+mlsgroup.DefaultPastEpochs < cur ||
		info.Kind != mlsgroup.KindApplication && info.Epoch < cur {
		return p2p.Ignore
	}
	return p2p.Accept
}

// joinChannel subscribes to the group's channel and processes what arrives
// on it, in order, until the member leaves it.
func (m *member) joinChannel(ctx context.Context) {
	m.t.Helper()
	ch, err := m.host.JoinChannel(m.groupID, m.validate)
	if err != nil {
		m.t.Fatalf("%s: joining channel: %v", m.name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	m.ch, m.stopRecv = ch, cancel
	m.recv.Go(func() {
		for {
			msg, err := ch.Next(ctx)
			if err != nil {
				return
			}
			if _, err := m.receive(msg.Data); err != nil {
				m.t.Errorf("%s: message from %s: %v", m.name, msg.From, err)
			}
		}
	})
}

// receive processes a message of the group, from the channel or from a
// sync, unless the log already has it (this member's own application
// messages, duplicates), and persists the new state with the message
// appended to the log before taking it.
func (m *member) receive(data []byte) (applied bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := sha256.Sum256(data)
	if m.seen[h] {
		return false, nil
	}
	rec, err := m.group.Process(data)
	if err != nil {
		return false, err
	}
	if err := m.persist(rec.Group, data); err != nil {
		return false, err
	}
	if rec.Kind == mlsgroup.KindApplication {
		m.plaintexts = append(m.plaintexts, string(rec.Plaintext))
	}
	return true, nil
}

// persist commits g, and logs message if there is one, then takes g.
// Callers hold mu.
func (m *member) persist(g *mlsgroup.Group, message []byte) error {
	state, err := g.MarshalBinary()
	if err != nil {
		return err
	}
	var b store.Batch
	b.PutGroup(g.GroupID(), state)
	if message != nil {
		b.AppendLog(g.GroupID(), message)
	}
	if err := m.st.Commit(&b); err != nil {
		return err
	}
	if message != nil {
		m.seen[sha256.Sum256(message)] = true
	}
	m.setGroup(g)
	return nil
}

// send encrypts plaintext for the group, logs and persists, then publishes.
func (m *member) send(ctx context.Context, plaintext string) error {
	m.mu.Lock()
	sent, err := m.group.Encrypt([]byte(plaintext), nil)
	if err == nil {
		err = m.persist(sent.Group, sent.Message)
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: sending: %w", m.name, err)
	}
	return m.ch.Publish(ctx, sent.Message)
}

// commitUpdate commits a fresh UpdatePath for this member's leaf. The
// staged state is persisted before the commit leaves; the commit is merged,
// and logged, when its echo comes back through the channel.
func (m *member) commitUpdate(ctx context.Context) error {
	m.mu.Lock()
	sent, err := m.group.Commit(mlsgroup.CommitOptions{Path: true})
	if err == nil {
		err = m.persist(sent.Group, nil)
	}
	m.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: committing: %w", m.name, err)
	}
	return m.ch.Publish(ctx, sent.Message)
}

// catchUp syncs the group's log from p, after the cursor this member holds
// for p, processing what it lacks in order.
func (m *member) catchUp(ctx context.Context, p *member) (applied, skipped int, err error) {
	err = m.host.Sync(ctx, p.id, m.groupID, m.cursors[p.id], func(e p2p.SyncEntry) error {
		ok, err := m.receive(e.Data)
		if err != nil {
			return err
		}
		if ok {
			applied++
		} else {
			skipped++
		}
		m.cursors[p.id] = bytes.Clone(e.Cursor)
		return nil
	})
	return applied, skipped, err
}

func (m *member) logHead() uint64 {
	n, err := m.st.LogHead(m.groupID)
	if err != nil {
		m.t.Errorf("%s: log head: %v", m.name, err)
		return math.MaxUint64
	}
	return n
}

func (m *member) state() *mlsgroup.Group {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.group
}

func (m *member) received() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.plaintexts)
}

// outbox keeps p2p's Welcome outbox in the store's Welcome namespace. The
// store files Welcomes by recipient, while p2p's WelcomeStore hands over
// only an ID and an opaque value (which holds the recipient in p2p's
// encoding), so they all go under one recipient.
type outbox struct{ st *store.Store }

func (o outbox) PutWelcome(id, value []byte) error {
	var b store.Batch
	b.PutWelcome(outboxRecipient, id, value)
	return o.st.Commit(&b)
}

func (o outbox) DeleteWelcome(id []byte) error {
	var b store.Batch
	b.DeleteWelcome(outboxRecipient, id)
	return o.st.Commit(&b)
}

func (o outbox) Welcomes() ([][]byte, error) {
	ws, err := o.st.Welcomes(outboxRecipient)
	if err != nil {
		return nil, err
	}
	values := make([][]byte, len(ws))
	for i, w := range ws {
		values[i] = w.Data
	}
	return values, nil
}

// testLogger logs a host's events to stderr when E2E_LOG is set.
func testLogger(name string) *slog.Logger {
	if os.Getenv("E2E_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("member", name)
}

// waitFor polls cond until it holds, failing the test when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
