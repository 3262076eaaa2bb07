package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/mlsgroup"
)

// mlsWorkload is the crash workload with real MLS (issue 4, acceptance 1):
// the child is a node with one *Store as its mlsgroup.Storage, and the
// parent plays the network and a scripted peer.
//
// The peer's messages exist independently of the child's crashes, as a
// network's do: the parent generates them ahead of time into a script (a
// file next to the data directory) and the child processes them in order,
// resuming after each restart where its store says it stopped. The peer
// cannot be replayed from a seed inside the child instead: HPKE
// encapsulation draws its ephemeral keys from the system, as Go's
// crypto/hpke takes no reader, so a commit with an UpdatePath, or a
// Welcome, is never the same twice.
//
// The child's transitions, each one Batch (or NewKeyPackage's own synced
// write) acknowledged only after it committed:
//
//	signer: PutSignatureKey, the node's identity, once per store
//	kp:     NewKeyPackage with the store as Storage (at most 3 unused)
//	create: CreateGroup + Commit(Add the peer) + MergeCommit:
//	        PutGroup + AppendLog + PutWelcome (the Welcome waits in the store
//	        for delivery to the peer)
//	join:   Join from a script Welcome: PutGroup + ConsumeKeyPackage +
//	        AppendLog + progress
//	commit, msg: Process of the peer's next message: PutGroup + AppendLog +
//	        progress (+ DeleteWelcome: the peer's first message in a group the
//	        child created acknowledges the Welcome)
//	remove: Process of the peer's commit removing the child from a group:
//	        DeleteGroup + AppendLog + progress (the log stays)
//
// where progress is an entry in mlsProgress, a test-only channel counting the
// script steps done, which is where the child resumes.
//
// The parent learns what the child published (acknowledged KeyPackages, and
// Welcomes waiting in the store, from which the peer joins) and extends the
// script with Welcomes to the child's KeyPackages, application messages,
// commits (UpdatePath, adding and removing a third member), framed publicly
// or privately, and now and then a commit removing the child from one of the
// peer's groups, so that groups, and the KeyPackages to join them, come and
// go. After every kill it checks the reopened store against the
// script (mlsWorkload.Verify), including that every group decrypts the
// peer's next message.
type mlsWorkload struct {
	rng    *rand.Rand      // the script's choices
	rnd    io.Reader       // the peer's randomness
	cfg    mlsgroup.Config // the peer's, with keys in its own storage
	keys   *mlsgroup.MemoryStorage
	signer *mlsgroup.Signer
	carol  *mlsgroup.Signer // a third member the peer adds and removes
	carols *mlsgroup.MemoryStorage

	steps    []mlsStep
	groups   map[string]*mlsPeerGroup
	childKPs []*mlsgroup.KeyPackage // acknowledged and not yet used by a join step
	knownKPs map[string]bool        // every child KeyPackageRef acknowledged
	peerKPs  []*mlsgroup.KeyPackage // published for the child's own groups, unused
	created  int                    // groups the peer created
	alive    int                    // ... and has not removed the child from

	decryptions, replays int
}

func init() { crashWorkloads["mls"] = &mlsWorkload{} }

const (
	// mlsProgress is a test-only log channel with one entry per script
	// step processed: its head is the number of steps done.
	mlsProgress = "mls-script-progress"
	// mlsSignerName is the child's signature key in the store.
	mlsSignerName = "node"
	// mlsScriptFile is the script's name next to the data directory.
	mlsScriptFile = "mls-script.json"
	// Bounds that keep the store, and the parent's work, small.
	mlsMaxPeerGroups  = 5 // at a time
	mlsMaxChildGroups = 3
	mlsMaxChildKPs    = 3
	// mlsAhead is how many steps the script keeps ahead of the child.
	mlsAhead = 60
)

var mlsSuite = mlsgroup.DefaultCipherSuite

// mlsScript is what the child reads at startup.
type mlsScript struct {
	// PeerKeyPackages are the peer's KeyPackages for the child's own groups.
	PeerKeyPackages [][]byte
	Steps           []mlsStep
}

// mlsStep is one message of the peer to the child. The unexported fields
// are the parent's.
type mlsStep struct {
	Kind    string // "join", "commit", "remove" or "msg"
	Group   []byte
	Message []byte // the Welcome, or the MLSMessage

	entry string          // the group log entry the child must write
	ref   []byte          // join: the child's KeyPackageRef it uses
	peer  *mlsgroup.Group // the peer's state after sending it
}

// mlsPeerGroup is the peer's view of one group.
type mlsPeerGroup struct {
	own    bool            // created by the child
	ref    []byte          // own: the peer's KeyPackageRef it was created with
	joined *mlsgroup.Group // own: the peer's state from the child's Welcome
	steps  []int           // the script steps in this group, in order
	head   *mlsgroup.Group // the peer's latest state
	ended  bool            // the last step removes the child
}

func newMLSWorkload(rng *rand.Rand) (*mlsWorkload, error) {
	rnd, keys := newChaCha8(rng), new(mlsgroup.MemoryStorage)
	w := &mlsWorkload{
		rng:      rng,
		rnd:      rnd,
		cfg:      mlsgroup.Config{Storage: keys, Rand: rnd, Now: time.Now},
		keys:     keys,
		carols:   new(mlsgroup.MemoryStorage),
		groups:   make(map[string]*mlsPeerGroup),
		knownKPs: make(map[string]bool),
	}
	var err error
	if w.signer, err = mlsgroup.GenerateSigner(mlsSuite, rnd); err != nil {
		return nil, err
	}
	if w.carol, err = mlsgroup.GenerateSigner(mlsSuite, rnd); err != nil {
		return nil, err
	}
	return w, nil
}

// newChaCha8 is a deterministic io.Reader for mlsgroup, seeded from rng.
func newChaCha8(rng *rand.Rand) *rand.ChaCha8 {
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], rng.Uint64())
	}
	return rand.NewChaCha8(seed)
}

// mlsChild is the node in the child process.
type mlsChild struct {
	s        *Store
	cfg      mlsgroup.Config
	signer   *mlsgroup.Signer
	script   mlsScript
	done     int // script steps processed
	groups   map[string]*mlsgroup.Group
	own      int             // groups this node created
	welcomes map[string]bool // groups whose Welcome waits for the peer
	ack      func(string)
}

// Run is the child's side: it does one transition after another, chosen
// by rng, and idles when none is possible until it is killed.
func (*mlsWorkload) Run(s *Store, rng *rand.Rand, ack func(string)) error {
	c, err := startMLSChild(s, rng, ack)
	if err != nil {
		return err
	}
	for {
		var did bool
		switch r := rng.IntN(100); {
		case r < 10:
			did, err = c.newKeyPackage()
		case r < 16:
			did, err = c.createGroup()
		default:
			did, err = c.nextStep()
		}
		if err != nil {
			return err
		}
		if !did {
			time.Sleep(time.Millisecond)
		}
	}
}

func startMLSChild(s *Store, rng *rand.Rand, ack func(string)) (*mlsChild, error) {
	rnd := newChaCha8(rng)
	c := &mlsChild{
		s:        s,
		cfg:      mlsgroup.Config{Storage: s, Rand: rnd, Now: time.Now},
		groups:   make(map[string]*mlsgroup.Group),
		welcomes: make(map[string]bool),
		ack:      ack,
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(s.Dir()), mlsScriptFile))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &c.script); err != nil {
		return nil, err
	}
	if err := c.loadSigner(); err != nil {
		return nil, err
	}
	if c.done, err = logHeadInt(s, mlsProgress); err != nil {
		return nil, err
	}
	ids, err := s.GroupIDs()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		st, err := s.Group(id)
		if err != nil {
			return nil, err
		}
		if c.groups[string(id)], err = mlsgroup.LoadGroup(c.cfg, st); err != nil {
			return nil, fmt.Errorf("group %s: %w", id, err)
		}
		if bytes.HasPrefix(id, []byte("child-")) {
			c.own++
		}
	}
	ws, err := outboxWelcomes(s)
	if err != nil {
		return nil, err
	}
	for _, wl := range ws {
		c.welcomes[string(wl.ID)] = true
	}
	return c, nil
}

func logHeadInt(s *Store, ch string) (int, error) {
	h, err := s.LogHead([]byte(ch))
	return int(h), err
}

// loadSigner reads the node's signature key, or makes and stores one.
func (c *mlsChild) loadSigner() error {
	raw, err := c.s.SignatureKey([]byte(mlsSignerName))
	if err == nil {
		c.signer, err = mlsgroup.ParseSigner(raw)
		return err
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if c.signer, err = mlsgroup.GenerateSigner(mlsSuite, c.cfg.Rand); err != nil {
		return err
	}
	if raw, err = c.signer.MarshalBinary(); err != nil {
		return err
	}
	var b Batch
	b.PutSignatureKey([]byte(mlsSignerName), raw)
	if err := c.s.Commit(&b); err != nil {
		return err
	}
	c.ack("signer " + hex.EncodeToString(c.signer.PublicKey()))
	return nil
}

func (c *mlsChild) newKeyPackage() (bool, error) {
	held, err := c.s.KeyPackages()
	if err != nil || len(held) >= mlsMaxChildKPs {
		return false, err
	}
	kp, err := mlsgroup.NewKeyPackage(c.s, []byte("child"), c.signer, mlsgroup.KeyPackageOptions{}, c.cfg.Rand, time.Now())
	if err != nil {
		return false, err
	}
	c.ack(fmt.Sprintf("kp %x %x", kp.Ref(), kp.Bytes()))
	return true, nil
}

// createGroup starts a group with the peer, from the first of the peer's
// KeyPackages that no group of this node used.
func (c *mlsChild) createGroup() (bool, error) {
	if c.own >= mlsMaxChildGroups {
		return false, nil
	}
	for _, raw := range c.script.PeerKeyPackages {
		kp, err := mlsgroup.ParseKeyPackage(raw)
		if err != nil {
			return false, err
		}
		id := ownGroupID(kp.Ref())
		if c.groups[string(id)] != nil {
			continue
		}
		g, err := mlsgroup.CreateGroup(c.cfg, id, []byte("child"), c.signer, mlsgroup.GroupOptions{})
		if err != nil {
			return false, err
		}
		sent, err := g.Commit(mlsgroup.CommitOptions{Proposals: []mlsgroup.Proposal{mlsgroup.AddProposal(kp)}})
		if err != nil {
			return false, err
		}
		// There is no delivery service to wait for: the commit is
		// accepted, and the Welcome leaves through the store.
		merged, err := sent.Group.MergeCommit()
		if err != nil {
			return false, err
		}
		g = merged.Group
		st, err := g.MarshalBinary()
		if err != nil {
			return false, err
		}
		var b Batch
		b.PutGroup(id, st)
		b.AppendLog(id, nil, fmt.Appendf(nil, "create %x", kp.Ref()))
		b.PutWelcome(id, outboxWelcome{ID: id, Data: merged.Welcome}.marshal())
		if err := c.s.Commit(&b); err != nil {
			return false, err
		}
		c.groups[string(id)] = g
		c.welcomes[string(id)] = true
		c.own++
		c.ack("create " + string(id))
		return true, nil
	}
	return false, nil
}

func ownGroupID(peerRef []byte) []byte { return fmt.Appendf(nil, "child-%x", peerRef[:8]) }

// nextStep processes the script's next message.
func (c *mlsChild) nextStep() (bool, error) {
	if c.done >= len(c.script.Steps) {
		return false, nil
	}
	i, step := c.done, c.script.Steps[c.done]
	id := step.Group
	var b Batch
	var g *mlsgroup.Group
	if step.Kind == "join" {
		j, err := mlsgroup.Join(c.cfg, step.Message, c.signer, mlsgroup.JoinOptions{})
		if err != nil {
			return false, fmt.Errorf("step %d: %w", i, err)
		}
		if g = j.Group; !bytes.Equal(g.GroupID(), id) {
			return false, fmt.Errorf("step %d: joined %q, want %q", i, g.GroupID(), id)
		}
		b.ConsumeKeyPackage(j.ConsumedKeyPackage)
		b.AppendLog(id, nil, fmt.Appendf(nil, "join %d %x", i, j.ConsumedKeyPackage))
	} else {
		cur := c.groups[string(id)]
		if cur == nil {
			return false, fmt.Errorf("step %d: no group %q", i, id)
		}
		rec, err := cur.Process(step.Message)
		if err != nil {
			return false, fmt.Errorf("step %d (%s in %q at epoch %d): %w", i, step.Kind, id, cur.Epoch(), err)
		}
		g = rec.Group
		switch {
		case step.Kind == "msg" && rec.Kind == mlsgroup.KindApplication:
			b.AppendLog(id, nil, fmt.Appendf(nil, "msg %d %s", i, rec.Plaintext))
		case step.Kind == "commit" && rec.Kind == mlsgroup.KindCommit && !g.Removed():
			b.AppendLog(id, nil, fmt.Appendf(nil, "commit %d %d", i, g.Epoch()))
		case step.Kind == "remove" && rec.Kind == mlsgroup.KindCommit && g.Removed():
			b.AppendLog(id, nil, fmt.Appendf(nil, "removed %d", i))
			b.DeleteGroup(id)
		default:
			return false, fmt.Errorf("step %d: %s processed as kind %d", i, step.Kind, rec.Kind)
		}
		if c.welcomes[string(id)] {
			b.DeleteWelcome(id)
		}
	}
	if !g.Removed() {
		st, err := g.MarshalBinary()
		if err != nil {
			return false, err
		}
		b.PutGroup(id, st)
	}
	b.AppendLog([]byte(mlsProgress), nil, strconv.AppendInt(nil, int64(i), 10))
	if err := c.s.Commit(&b); err != nil {
		return false, err
	}
	c.groups[string(id)] = g
	if g.Removed() {
		delete(c.groups, string(id))
	}
	delete(c.welcomes, string(id))
	c.done++
	c.ack(fmt.Sprintf("%s %d", step.Kind, i))
	return true, nil
}

// observe learns what the child published in a run: its acknowledged
// KeyPackages, and the Welcomes waiting in the store, from which the peer
// joins the child's groups. It reads the store and changes nothing in it.
func (w *mlsWorkload) observe(s *Store, acks []string) error {
	for _, a := range acks {
		f := strings.Fields(a)
		if f[0] != "kp" || w.knownKPs[f[1]] {
			continue
		}
		raw, err := hex.DecodeString(f[2])
		if err != nil {
			return err
		}
		kp, err := mlsgroup.ParseKeyPackage(raw)
		if err != nil {
			return err
		}
		if err := kp.Validate(time.Now(), mlsgroup.ValidationOptions{}); err != nil {
			return err
		}
		w.knownKPs[f[1]] = true
		w.childKPs = append(w.childKPs, kp)
	}
	ws, err := outboxWelcomes(s)
	if err != nil {
		return err
	}
	for _, wl := range ws {
		if w.groups[string(wl.ID)] != nil {
			continue
		}
		j, err := mlsgroup.Join(w.cfg, wl.Data, w.signer, mlsgroup.JoinOptions{})
		if err != nil {
			return fmt.Errorf("peer joining %s: %w", wl.ID, err)
		}
		if !bytes.Equal(j.Group.GroupID(), wl.ID) || !bytes.Equal(wl.ID, ownGroupID(j.ConsumedKeyPackage)) {
			return fmt.Errorf("Welcome stored as %s is to group %s with KeyPackage %x", wl.ID, j.Group.GroupID(), j.ConsumedKeyPackage)
		}
		w.keys.ConsumeKeyPackage(j.ConsumedKeyPackage)
		w.peerKPs = slices.DeleteFunc(w.peerKPs, func(kp *mlsgroup.KeyPackage) bool {
			return bytes.Equal(kp.Ref(), j.ConsumedKeyPackage)
		})
		w.groups[string(wl.ID)] = &mlsPeerGroup{own: true, ref: j.ConsumedKeyPackage, joined: j.Group, head: j.Group}
	}
	return nil
}

// extend generates the peer's next messages until the script is mlsAhead
// steps ahead of done, and writes it for the next child.
func (w *mlsWorkload) extend(scriptPath string, done int) error {
	for len(w.peerKPs) < 2 {
		kp, err := mlsgroup.NewKeyPackage(w.keys, []byte("peer"), w.signer, mlsgroup.KeyPackageOptions{}, w.rnd, time.Now())
		if err != nil {
			return err
		}
		w.peerKPs = append(w.peerKPs, kp)
	}
	var ids []string
	for id, pg := range w.groups {
		if !pg.ended {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids) // not map order: the seed chooses
	for len(w.steps)-done < mlsAhead {
		if len(w.childKPs) > 0 && w.alive < mlsMaxPeerGroups && (len(ids) == 0 || w.rng.IntN(8) == 0) {
			id, err := w.createPeerGroup()
			if err != nil {
				return err
			}
			ids = append(ids, id)
			continue
		}
		if len(ids) == 0 {
			break
		}
		k := w.rng.IntN(len(ids))
		if err := w.send(ids[k]); err != nil {
			return err
		}
		if w.groups[ids[k]].ended {
			ids = slices.Delete(ids, k, k+1)
		}
	}
	sc := mlsScript{Steps: w.steps}
	for _, kp := range w.peerKPs {
		sc.PeerKeyPackages = append(sc.PeerKeyPackages, kp.Bytes())
	}
	raw, err := json.Marshal(sc)
	if err != nil {
		return err
	}
	return os.WriteFile(scriptPath, raw, 0o600)
}

// createPeerGroup makes a group of the peer with the child in it, from the
// child's oldest unused KeyPackage.
func (w *mlsWorkload) createPeerGroup() (string, error) {
	kp := w.childKPs[0]
	w.childKPs = w.childKPs[1:]
	id := fmt.Sprintf("peer-%d", w.created)
	w.created++
	w.alive++
	g, err := mlsgroup.CreateGroup(w.cfg, []byte(id), []byte("peer"), w.signer, mlsgroup.GroupOptions{})
	if err != nil {
		return "", err
	}
	sent, err := g.Commit(mlsgroup.CommitOptions{Proposals: []mlsgroup.Proposal{mlsgroup.AddProposal(kp)}})
	if err != nil {
		return "", err
	}
	merged, err := sent.Group.MergeCommit()
	if err != nil {
		return "", err
	}
	g = merged.Group
	pg := &mlsPeerGroup{}
	w.groups[id] = pg
	entry := fmt.Sprintf("join %d %x", len(w.steps), kp.Ref())
	w.addStep(pg, mlsStep{Kind: "join", Group: []byte(id), Message: merged.Welcome, entry: entry, ref: kp.Ref(), peer: g})
	return id, nil
}

// send makes the peer's next message in a group: an application message
// two times in three, else a commit.
func (w *mlsWorkload) send(id string) error {
	pg := w.groups[id]
	i := len(w.steps)
	if w.rng.IntN(3) > 0 {
		text := fmt.Sprintf("peer's message %d in %s", i, id)
		sent, err := pg.head.Encrypt([]byte(text), fmt.Appendf(nil, "ad %d", i))
		if err != nil {
			return err
		}
		entry := fmt.Sprintf("msg %d %s", i, text)
		w.addStep(pg, mlsStep{Kind: "msg", Group: []byte(id), Message: sent.Message, entry: entry, peer: sent.Group})
		return nil
	}
	opts := mlsgroup.CommitOptions{Framing: mlsgroup.FramingPrivate}
	if w.rng.IntN(2) == 0 {
		opts.Framing = mlsgroup.FramingPublic
	}
	leaves := make(map[string]uint32)
	for _, m := range pg.head.Members() {
		leaves[string(m.Identity)] = m.LeafIndex
	}
	carol, hasCarol := leaves["carol"]
	kind := "commit"
	switch r := w.rng.IntN(3); {
	case !pg.own && w.rng.IntN(6) == 0:
		kind = "remove"
		opts.Proposals = []mlsgroup.Proposal{mlsgroup.RemoveProposal(leaves["child"])}
	case r == 0 && !hasCarol:
		kp, err := mlsgroup.NewKeyPackage(w.carols, []byte("carol"), w.carol, mlsgroup.KeyPackageOptions{}, w.rnd, time.Now())
		if err != nil {
			return err
		}
		opts.Proposals = []mlsgroup.Proposal{mlsgroup.AddProposal(kp)}
	case r == 0:
		opts.Proposals = []mlsgroup.Proposal{mlsgroup.RemoveProposal(carol)}
	default:
		opts.Path = true
	}
	sent, err := pg.head.Commit(opts)
	if err != nil {
		return err
	}
	merged, err := sent.Group.MergeCommit()
	if err != nil {
		return err
	}
	g := merged.Group
	entry := fmt.Sprintf("commit %d %d", i, g.Epoch())
	if kind == "remove" {
		entry = fmt.Sprintf("removed %d", i)
		pg.ended = true
		w.alive--
	}
	w.addStep(pg, mlsStep{Kind: kind, Group: []byte(id), Message: sent.Message, entry: entry, peer: g})
	return nil
}

func (w *mlsWorkload) addStep(pg *mlsPeerGroup, st mlsStep) {
	pg.steps = append(pg.steps, len(w.steps))
	pg.head = st.peer
	w.steps = append(w.steps, st)
}

// Verify checks a reopened store against the script: done is the head of
// mlsProgress, and every group's state and log are exactly those after the
// script's steps before done (the log entry for entry, the epoch and epoch
// authenticator the peer's), and no later step left a trace. Every group
// loads and decrypts the peer's next message; a group whose last step was
// an application message refuses that message again (the state kept the
// consumption of its key). Every acknowledged transition is there.
func (w *mlsWorkload) Verify(s *Store, acks []string) (int, error) {
	done, err := logHeadInt(s, mlsProgress)
	if err != nil {
		return 0, err
	}
	progress, err := readLog(s, []byte(mlsProgress))
	if err != nil {
		return 0, err
	}
	for i, e := range progress {
		if e != strconv.Itoa(i) {
			return 0, fmt.Errorf("progress entry %d is %q", i, e)
		}
	}
	if len(progress) != done || done > len(w.steps) {
		return 0, fmt.Errorf("progress head %d, %d entries, script of %d steps", done, len(progress), len(w.steps))
	}

	ids, err := s.GroupIDs()
	if err != nil {
		return 0, err
	}
	stored := make(map[string]bool)
	for _, id := range ids {
		stored[string(id)] = true
	}
	waiting, err := outboxWelcomes(s)
	if err != nil {
		return 0, err
	}
	welcomes := make(map[string]bool)
	for _, wl := range waiting {
		welcomes[string(wl.ID)] = true
	}
	for id, pg := range w.groups {
		exists := pg.own || pg.steps[0] < done
		removed := pg.ended && slices.Max(pg.steps) < done
		if want := exists && !removed; want != stored[id] {
			return 0, fmt.Errorf("group %s: stored %v, want %v", id, stored[id], want)
		}
		delete(stored, id)
		if !exists {
			continue
		}
		if err := w.verifyGroup(s, id, pg, done, welcomes[id]); err != nil {
			return 0, fmt.Errorf("group %s after %d steps: %w", id, done, err)
		}
	}
	if len(stored) > 0 {
		return 0, fmt.Errorf("groups the peer does not know of: %v", stored)
	}
	joined := make(map[string]bool) // the KeyPackageRefs of the joins done
	for i, st := range w.steps {
		if st.Kind != "join" {
			continue
		}
		want := KeyPackageAvailable
		if i < done {
			want = KeyPackageConsumed
			joined[hex.EncodeToString(st.ref)] = true
		}
		if _, status, err := s.KeyPackage(st.ref); err != nil || status != want {
			return 0, fmt.Errorf("KeyPackage of join step %d: status %d (%v), want %d", i, status, err, want)
		}
	}

	confirmed := 0
	for _, a := range acks {
		if err := w.verifyAck(s, a, done, joined); err != nil {
			return confirmed, fmt.Errorf("acknowledged %.60q lost: %w", a, err)
		}
		confirmed++
	}
	return confirmed, nil
}

func (w *mlsWorkload) verifyGroup(s *Store, id string, pg *mlsPeerGroup, done int, welcome bool) error {
	var want []string
	peer, last := pg.joined, -1
	if pg.own {
		want = append(want, fmt.Sprintf("create %x", pg.ref))
	}
	for _, i := range pg.steps {
		if i < done {
			want = append(want, w.steps[i].entry)
			peer, last = w.steps[i].peer, i
		}
	}
	got, err := readLog(s, []byte(id))
	if err != nil {
		return err
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("log %q, want %q", got, want)
	}
	if want := pg.own && last < 0; welcome != want {
		return fmt.Errorf("Welcome waiting: %v, want %v", welcome, want)
	}
	if last >= 0 && w.steps[last].Kind == "remove" {
		// Its state is gone (and with it the past epochs mlsgroup kept
		// in it); the log stays.
		if _, err := s.Group([]byte(id)); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("removed group's state: %v, want ErrNotFound", err)
		}
		return nil
	}

	raw, err := s.Group([]byte(id))
	if err != nil {
		return err
	}
	cfg := mlsgroup.Config{Storage: s, Rand: w.rnd, Now: time.Now}
	g, err := mlsgroup.LoadGroup(cfg, raw)
	if err != nil {
		return err
	}
	if g.Epoch() != peer.Epoch() || !bytes.Equal(g.EpochAuthenticator(), peer.EpochAuthenticator()) {
		return fmt.Errorf("state at epoch %d, the peer at %d (or another history)", g.Epoch(), peer.Epoch())
	}
	if last >= 0 && w.steps[last].Kind == "msg" {
		if _, err := g.Process(w.steps[last].Message); !errors.Is(err, mlsgroup.ErrReplay) {
			return fmt.Errorf("the last message processed, again: %v, want ErrReplay", err)
		}
		w.replays++
	}
	probe := fmt.Sprintf("probe %d", w.decryptions)
	sent, err := peer.Encrypt([]byte(probe), nil)
	if err != nil {
		return err
	}
	rec, err := g.Process(sent.Message)
	if err != nil {
		return fmt.Errorf("the peer's next message: %w", err)
	}
	if string(rec.Plaintext) != probe {
		return fmt.Errorf("the peer's next message decrypts to %q", rec.Plaintext)
	}
	w.decryptions++
	return nil
}

func (w *mlsWorkload) verifyAck(s *Store, a string, done int, joined map[string]bool) error {
	f := strings.Fields(a)
	switch f[0] {
	case "signer":
		raw, err := s.SignatureKey([]byte(mlsSignerName))
		if err != nil {
			return err
		}
		sg, err := mlsgroup.ParseSigner(raw)
		if err != nil {
			return err
		}
		if hex.EncodeToString(sg.PublicKey()) != f[1] {
			return errors.New("another signature key is stored")
		}
	case "kp":
		ref, _ := hex.DecodeString(f[1])
		_, status, err := s.KeyPackage(ref)
		if err != nil {
			return err
		}
		want := KeyPackageAvailable
		if joined[f[1]] {
			want = KeyPackageConsumed
		}
		if status != want {
			return fmt.Errorf("status %d, want %d", status, want)
		}
	case "create":
		if _, err := s.Group([]byte(f[1])); err != nil {
			return err
		}
	case "join", "commit", "remove", "msg":
		if i, _ := strconv.Atoi(f[1]); i >= done || w.steps[i].Kind != f[0] {
			return fmt.Errorf("only %d steps done", done)
		}
	default:
		return errors.New("unknown acknowledgement")
	}
	return nil
}

// readLog returns a channel's whole log.
func readLog(s *Store, ch []byte) ([]string, error) {
	var out []string
	var last uint64
	for {
		page, err := s.LogAfter(ch, last, 256)
		if err != nil || len(page) == 0 {
			return out, err
		}
		for _, e := range page {
			if e.Seq != last+1 {
				return nil, fmt.Errorf("log of %s jumps from %d to %d", ch, last, e.Seq)
			}
			last = e.Seq
			out = append(out, string(e.Data))
		}
	}
}

// awaitLines reads up to n lines from c, for at most timeout.
func awaitLines(c *child, n int, timeout time.Duration) []string {
	var lines []string
	deadline := time.After(timeout)
	for len(lines) < n {
		select {
		case l, ok := <-c.lines:
			if !ok {
				return lines
			}
			lines = append(lines, l)
		case <-deadline:
			return lines
		}
	}
	return lines
}

// TestMLSCrashRecovery is issue 4's acceptance 1 with a real MLS workload:
// a child node (mlsWorkload) is killed with SIGKILL at random moments, at
// least 50 times, while it generates KeyPackages, creates groups, joins
// groups and processes the scripted peer's commits and messages, each as one
// batch. After every kill the parent reopens the store and checks it
// against the script (mlsWorkload.Verify): every group loads and decrypts
// the peer's next message, no acknowledged transition is lost, and no
// commit is half applied.
func TestMLSCrashRecovery(t *testing.T) {
	const kills = 60
	root := t.TempDir()
	dir := filepath.Join(root, "node")
	script := filepath.Join(root, mlsScriptFile)
	seed := uint64(time.Now().UnixNano())
	if env := os.Getenv("SPACEPANDA_CRASH_SEED"); env != "" {
		// Replays a run's kills as closely as timing allows.
		var err error
		if seed, err = strconv.ParseUint(env, 10, 64); err != nil {
			t.Fatalf("SPACEPANDA_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with SPACEPANDA_CRASH_SEED)", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	w, err := newMLSWorkload(rand.New(rand.NewPCG(seed, 4)))
	if err != nil {
		t.Fatal(err)
	}
	var acks []string
	start := time.Now()
	confirmed, done, startupKills, unacked := 0, 0, 0, 0
	acked := 0 // script steps acknowledged
	for i := range kills {
		if err := w.extend(script, done); err != nil {
			t.Fatalf("extending the script: %v", err)
		}
		c := startChild(t, "crash", dir, fmt.Sprintf("mls %d", rng.Uint64()))
		var run []string
		// A quarter of the kills land during startup (opening, replaying
		// the journal, the opening scrub, loading the groups); the rest
		// after a random number of transitions, and a random time into
		// the next one, which is mostly MLS work, then the synced write.
		// Counting transitions rather than time keeps every run doing
		// work however loaded the machine is.
		if rng.IntN(4) == 0 {
			startupKills++
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		} else {
			c.await(t, "ready")
			// Beyond the script, the child has few transitions to do
			// (a signature key, KeyPackages and groups up to a bound).
			run = awaitLines(c, rng.IntN(min(16, len(w.steps)-done+2)), 5*time.Second)
			time.Sleep(time.Duration(rng.IntN(8000)) * time.Microsecond)
		}
		c.kill()
		for l := range c.lines {
			if l != "ready" {
				run = append(run, l)
			}
		}
		acks = append(acks, run...)
		for _, a := range run {
			if f := strings.Fields(a); f[0] != "signer" && f[0] != "kp" && f[0] != "create" {
				acked, _ = strconv.Atoi(f[1])
				acked++
			}
		}
		if strings.Contains(c.errb.String(), "child crash:") {
			t.Fatalf("run %d failed on its own: %s", i, c.errb)
		}

		s, err := Open(dir, testOptions())
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", i+1, err)
		}
		err = w.observe(s, run)
		var n int
		if err == nil {
			n, err = w.Verify(s, acks)
		}
		if err == nil {
			done, err = logHeadInt(s, mlsProgress)
		}
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("kill %d (%d acks this run): %v", i+1, len(run), err)
		}
		confirmed += n
		if done > acked {
			unacked++ // killed in or just after the synced write of a step
			acked = done
		}
	}
	kinds := map[string]int{}
	for _, a := range acks {
		kinds[strings.Fields(a)[0]]++
	}
	t.Logf("acks by kind: %v", kinds)
	t.Logf("%d SIGKILLs (%d during startup), %d clean reopens, %d acknowledged transitions (%d confirmed present over all verifications), %d of %d script steps done, %d groups",
		kills, startupKills, kills, len(acks), confirmed, done, len(w.steps), len(w.groups))
	t.Logf("%d runs ended with a step durable but not acknowledged (killed in its synced write or just after); %d decryptions of the peer's next message after a restart, %d replays refused; %v",
		unacked, w.decryptions, w.replays, time.Since(start).Round(time.Millisecond))
	if kinds["join"] == 0 || kinds["create"] == 0 || kinds["commit"] < 20 || kinds["msg"] < 40 {
		t.Errorf("the workload barely ran: %v", kinds)
	}
}

// outboxWelcome is a Welcome in the store's outbox as this test encodes
// it: the store keeps values by ID and lists values only, so the value
// carries its ID (u16 length | ID | Welcome), as p2p's encoding does.
type outboxWelcome struct{ ID, Data []byte }

func (w outboxWelcome) marshal() []byte {
	v := binary.BigEndian.AppendUint16(nil, uint16(len(w.ID)))
	return append(append(v, w.ID...), w.Data...)
}

func outboxWelcomes(s *Store) ([]outboxWelcome, error) {
	vs, err := s.Welcomes()
	if err != nil {
		return nil, err
	}
	var out []outboxWelcome
	for _, v := range vs {
		if len(v) < 2 || len(v) < 2+int(binary.BigEndian.Uint16(v)) {
			return nil, fmt.Errorf("outbox value %x", v)
		}
		n := 2 + int(binary.BigEndian.Uint16(v))
		out = append(out, outboxWelcome{ID: v[2:n], Data: v[n:]})
	}
	return out, nil
}
