package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A crashWorkload is what TestCrashRecovery's child process runs until it
// is killed, and what the parent checks the reopened store against.
//
// Run drives the store with one transition after another and calls ack
// with a line describing each, only after its Commit returned: an acked
// line is a promise that the transition is durable. Verify checks a
// reopened store against every line acked so far, over all runs, and
// checks the store's own consistency; it returns how many acked
// transitions it confirmed.
//
// opaqueWorkload drives the store with opaque bytes shaped like MLS
// transitions, which makes the store's own invariants easy to check;
// mlsWorkload (mls_crash_test.go) runs the real thing: KeyPackages,
// Welcomes, commits and messages from a scripted peer that must decrypt
// after each restart.
type crashWorkload interface {
	Run(s *Store, rng *rand.Rand, ack func(line string)) error
	Verify(s *Store, acks []string) (confirmed int, err error)
}

var crashWorkloads = map[string]crashWorkload{"opaque": opaqueWorkload{}}

// opaqueWorkload keeps up to maxGroups groups. A group's state is its
// epoch, the number of messages processed in the epoch, and a hash chain
// over its commits; its log holds a join entry, then commit and message
// entries, each message entry indexed by its message ID; its sync cursor is
// derived from the chain and the message count, so that a state and cursor
// that disagree cannot pass, and the index must point at every message
// entry. Transitions:
//
//	kp:     PutKeyPackage
//	join:   ConsumeKeyPackage + PutGroup + AppendLog + PutSyncCursor
//	commit: PutGroup + AppendLog + PutSyncCursor
//	msg:    PutGroup + AppendLog(with its message ID) + PutSyncCursor
type opaqueWorkload struct{}

const maxGroups = 12

type opaqueGroup struct {
	id    []byte
	epoch uint64
	msgs  uint64 // processed in this epoch
	chain [32]byte
}

func (g opaqueGroup) state() []byte {
	b := binary.BigEndian.AppendUint64(nil, g.epoch)
	b = binary.BigEndian.AppendUint64(b, g.msgs)
	b = append(b, g.chain[:]...)
	// Pad to a realistic state size; the padding is derived, so a torn
	// value would not pass.
	for len(b) < 1024 {
		h := sha256.Sum256(b[len(b)-32:])
		b = append(b, h[:]...)
	}
	return b
}

func parseState(id, b []byte) (opaqueGroup, error) {
	g := opaqueGroup{id: id}
	if len(b) < 48 {
		return g, fmt.Errorf("state of %d bytes", len(b))
	}
	g.epoch, g.msgs = binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])
	copy(g.chain[:], b[16:48])
	if !bytes.Equal(g.state(), b) {
		return g, errors.New("state padding does not match")
	}
	return g, nil
}

func (g opaqueGroup) derive(what string, n uint64) []byte {
	h := sha256.Sum256(fmt.Appendf(g.chain[:], "%s/%d/%d", what, g.epoch, n))
	return h[:]
}

// msgID is the message ID of message n of epoch.
func msgID(epoch, n uint64) []byte { return fmt.Appendf(nil, "m%d/%d", epoch, n) }

func (g opaqueGroup) cursor() []byte { return g.derive("cursor", g.msgs) }

var crashPeer = []byte("peer")

func (opaqueWorkload) Run(s *Store, rng *rand.Rand, ack func(string)) error {
	ids, err := s.GroupIDs()
	if err != nil {
		return err
	}
	var groups []opaqueGroup
	for _, id := range ids {
		st, err := s.Group(id)
		if err != nil {
			return err
		}
		g, err := parseState(id, st)
		if err != nil {
			return err
		}
		groups = append(groups, g)
	}
	for {
		var b Batch
		var line string
		kps, err := s.KeyPackages()
		if err != nil {
			return err
		}
		switch r := rng.IntN(100); {
		case r < 12:
			ref := make([]byte, 16)
			for i := range ref {
				ref[i] = byte(rng.Uint32())
			}
			b.PutKeyPackage(ref, append([]byte("kp private "), ref...), 1<<40, false)
			line = "kp " + hex.EncodeToString(ref)
		case r < 25:
			if len(groups) >= maxGroups || len(kps) == 0 {
				continue
			}
			ref := kps[rng.IntN(len(kps))].Ref
			g := opaqueGroup{id: fmt.Appendf(nil, "group-%x", ref[:4])}
			g.chain = sha256.Sum256(ref)
			b.ConsumeKeyPackage(ref)
			b.PutGroup(g.id, g.state())
			b.AppendLog(g.id, nil, fmt.Appendf(nil, "join %x %x", ref, g.chain))
			b.PutSyncCursor(g.id, crashPeer, g.cursor())
			if err := s.Commit(&b); err != nil {
				return err
			}
			groups = append(groups, g)
			ack(fmt.Sprintf("join %s %x %d", g.id, ref, b.Seqs()[0]))
			continue
		case r < 55:
			if len(groups) == 0 {
				continue
			}
			i := rng.IntN(len(groups))
			g := groups[i]
			g.epoch, g.msgs = g.epoch+1, 0
			g.chain = sha256.Sum256(fmt.Appendf(g.chain[:], "commit %d", g.epoch))
			b.PutGroup(g.id, g.state())
			b.AppendLog(g.id, nil, fmt.Appendf(nil, "commit %d %x", g.epoch, g.chain))
			b.PutSyncCursor(g.id, crashPeer, g.cursor())
			if err := s.Commit(&b); err != nil {
				return err
			}
			groups[i] = g
			ack(fmt.Sprintf("commit %s %d %d", g.id, g.epoch, b.Seqs()[0]))
			continue
		default:
			if len(groups) == 0 {
				continue
			}
			i := rng.IntN(len(groups))
			g := groups[i]
			b.AppendLog(g.id, msgID(g.epoch, g.msgs), fmt.Appendf(nil, "msg %d %d", g.epoch, g.msgs))
			g.msgs++
			b.PutSyncCursor(g.id, crashPeer, g.cursor())
			b.PutGroup(g.id, g.state())
			if err := s.Commit(&b); err != nil {
				return err
			}
			groups[i] = g
			ack(fmt.Sprintf("msg %s %d %d %d", g.id, g.epoch, g.msgs-1, b.Seqs()[0]))
			continue
		}
		if err := s.Commit(&b); err != nil {
			return err
		}
		ack(line)
	}
}

func (opaqueWorkload) Verify(s *Store, acks []string) (int, error) {
	// Replay every group's log from the start: it must end exactly at the
	// stored state, the sync cursor must be the one of that state, and the
	// message-ID index must point at every message entry.
	ids, err := s.GroupIDs()
	if err != nil {
		return 0, err
	}
	groups := make(map[string]opaqueGroup)
	logs := make(map[string]map[uint64]string)
	consumed := make(map[string]bool)
	for _, id := range ids {
		st, err := s.Group(id)
		if err != nil {
			return 0, err
		}
		g, err := parseState(id, st)
		if err != nil {
			return 0, fmt.Errorf("group %s: %w", id, err)
		}
		groups[string(id)] = g
		log, ref, err := replayLog(s, g)
		if err != nil {
			return 0, fmt.Errorf("group %s: state and log disagree: %w", id, err)
		}
		logs[string(id)] = log
		consumed[ref] = true
		cur, err := s.SyncCursor(id, crashPeer)
		if err != nil {
			return 0, err
		}
		if !bytes.Equal(cur, g.cursor()) {
			return 0, fmt.Errorf("group %s at epoch %d msg %d has sync cursor %x", id, g.epoch, g.msgs, cur)
		}
	}

	confirmed := 0
	for _, line := range acks {
		f := strings.Fields(line)
		num := func(i int) uint64 { n, _ := strconv.ParseUint(f[i], 10, 64); return n }
		var err error
		switch f[0] {
		case "kp":
			ref, _ := hex.DecodeString(f[1])
			_, st, kerr := s.KeyPackage(ref)
			switch {
			case kerr != nil:
				err = kerr
			case st == KeyPackageConsumed && !consumed[string(ref)]:
				err = errors.New("consumed, but no group joined with it")
			case st != KeyPackageAvailable && st != KeyPackageConsumed:
				err = fmt.Errorf("status %d", st)
			}
		case "join":
			ref, _ := hex.DecodeString(f[2])
			_, st, _ := s.KeyPackage(ref)
			if st != KeyPackageConsumed {
				err = fmt.Errorf("KeyPackage status %d after the join", st)
			} else {
				err = wantLog(groups, logs, f[1], num(3), "join "+f[2])
			}
		case "commit":
			if g, ok := groups[f[1]]; ok && g.epoch < num(2) {
				err = fmt.Errorf("group at epoch %d", g.epoch)
			} else {
				err = wantLog(groups, logs, f[1], num(3), "commit "+f[2]+" ")
			}
		case "msg":
			if g, ok := groups[f[1]]; ok && (g.epoch < num(2) || g.epoch == num(2) && g.msgs <= num(3)) {
				err = fmt.Errorf("group at epoch %d msg %d", g.epoch, g.msgs)
			} else {
				err = wantLog(groups, logs, f[1], num(4), fmt.Sprintf("msg %s %s", f[2], f[3]))
			}
		default:
			err = errors.New("unknown ack")
		}
		if err != nil {
			return confirmed, fmt.Errorf("acknowledged %q lost: %w", line, err)
		}
		confirmed++
	}
	return confirmed, nil
}

func wantLog(groups map[string]opaqueGroup, logs map[string]map[uint64]string, id string, seq uint64, prefix string) error {
	if _, ok := groups[id]; !ok {
		return errors.New("group missing")
	}
	if e, ok := logs[id][seq]; !ok || !strings.HasPrefix(e, prefix) {
		return fmt.Errorf("log entry %d is %q", seq, e)
	}
	return nil
}

// replayLog checks a group's log against its state and returns the log
// and the KeyPackageRef the group was joined with.
func replayLog(s *Store, g opaqueGroup) (map[uint64]string, string, error) {
	log := make(map[uint64]string)
	var r opaqueGroup
	var ref []byte
	var last uint64
	for {
		page, err := s.LogAfter(g.id, last, 64)
		if err != nil {
			return nil, "", err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			if e.Seq != last+1 {
				return nil, "", fmt.Errorf("log jumps from %d to %d", last, e.Seq)
			}
			last = e.Seq
			line := string(e.Data)
			log[e.Seq] = line
			f := strings.Fields(line)
			switch {
			case e.Seq == 1 && f[0] == "join":
				ref, _ = hex.DecodeString(f[1])
				r = opaqueGroup{id: g.id, chain: sha256.Sum256(ref)}
				if f[2] != hex.EncodeToString(r.chain[:]) {
					return nil, "", errors.New("join entry does not match its ref")
				}
			case f[0] == "commit":
				r.epoch, r.msgs = r.epoch+1, 0
				r.chain = sha256.Sum256(fmt.Appendf(r.chain[:], "commit %d", r.epoch))
				if line != fmt.Sprintf("commit %d %x", r.epoch, r.chain) {
					return nil, "", fmt.Errorf("entry %d %q breaks the chain", e.Seq, line)
				}
			case f[0] == "msg":
				if line != fmt.Sprintf("msg %d %d", r.epoch, r.msgs) {
					return nil, "", fmt.Errorf("entry %d %q out of order", e.Seq, line)
				}
				if seq, err := s.LogSeqOf(g.id, msgID(r.epoch, r.msgs)); err != nil || seq != e.Seq {
					return nil, "", fmt.Errorf("entry %d %q indexed at %d, %v", e.Seq, line, seq, err)
				}
				r.msgs++
			default:
				return nil, "", fmt.Errorf("entry %d %q unexpected", e.Seq, line)
			}
		}
	}
	if r.epoch != g.epoch || r.msgs != g.msgs || r.chain != g.chain {
		return nil, "", fmt.Errorf("log ends at epoch %d msg %d, state is at epoch %d msg %d", r.epoch, r.msgs, g.epoch, g.msgs)
	}
	return log, string(ref), nil
}

// crashOptions are the child's: scrubs and expiry sweeps run in the
// background, so kills also land in the middle of compactions.
func crashOptions() *Options {
	o := testOptions()
	o.ScrubDelay = 5 * time.Millisecond
	o.ExpiryInterval = 20 * time.Millisecond
	return o
}

func childCrash(dir, arg string) error {
	name, seedStr, _ := strings.Cut(arg, " ")
	seed, _ := strconv.ParseUint(seedStr, 10, 64)
	s, err := Open(dir, crashOptions())
	if err != nil {
		return err
	}
	fmt.Println("ready")
	// os.Stdout is unbuffered: each line is one write(2) of less than
	// PIPE_BUF, which a kill cannot tear.
	return crashWorkloads[name].Run(s, rand.New(rand.NewPCG(seed, 1)), func(line string) { fmt.Println(line) })
}

// TestCrashRecovery is issue 4's acceptance 1: a child process runs the
// workload and is killed with SIGKILL at random moments, at least 50 times.
// After every kill the parent reopens the store (which must open cleanly)
// and verifies that every acknowledged transition of every run is there,
// and that no transition is half applied.
func TestCrashRecovery(t *testing.T) {
	const kills = 50
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	var acks []string
	start := time.Now()
	verified, restarts := 0, 0
	for i := range kills {
		c := startChild(t, "crash", dir, fmt.Sprintf("opaque %d", rng.Uint64()))
		// Half the kills land during startup (opening, replaying the
		// journal, the opening scrub); half while the workload runs.
		if rng.IntN(2) == 0 {
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		} else {
			c.await(t, "ready")
			time.Sleep(time.Duration(5+rng.IntN(80)) * time.Millisecond)
		}
		c.kill()
		n := 0
		for l := range c.lines {
			if l != "ready" {
				acks = append(acks, l)
				n++
			}
		}
		if strings.Contains(c.errb.String(), "child crash:") {
			t.Fatalf("run %d failed on its own: %s", i, c.errb)
		}

		s, err := Open(dir, testOptions())
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", i+1, err)
		}
		restarts++
		confirmed, err := opaqueWorkload{}.Verify(s, acks)
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("kill %d (%d acks this run): %v", i+1, n, err)
		}
		verified += confirmed
	}
	kinds := map[string]int{}
	for _, a := range acks {
		kinds[strings.Fields(a)[0]]++
	}
	s := openTest(t, dir, nil)
	g, err := s.GroupIDs()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	ids := len(g)
	t.Logf("acks by kind: %v", kinds)
	t.Logf("%d SIGKILLs, %d clean reopens, %d acknowledged transitions (%d confirmed present over all verifications), %d groups, %v",
		kills, restarts, len(acks), verified, ids, time.Since(start).Round(time.Millisecond))
	if len(acks) < 100 {
		t.Errorf("only %d acknowledged transitions: the workload barely ran", len(acks))
	}
}
