package testnet

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Event kinds of the logs.
const (
	EvSent       = "sent"        // a node's Send was called (Msg, Chan, To)
	EvAcked      = "acked"       // that Send returned without error
	EvSendFailed = "send_failed" // it returned an error (Err)
	EvRecv       = "recv"        // a node received a message (Msg, From)
	EvInvited    = "invited"     // the creator invites Peer into Chan
	EvJoined     = "joined"      // a node joined Chan
	EvEpoch      = "epoch"       // a node entered Epoch of Chan, whose authenticator is Text
	EvCommitLost = "commit_lost" // a node's commit lost its epoch and is made again
	EvRewound    = "rewound"     // a node went back to Epoch of Chan for a late winning commit: a rollback
	EvRejoined   = "rejoined"    // a node found itself on a branch the group left and rejoined Chan by external commit, into Epoch
	EvFork       = "fork"        // reserved: the node announces no fork event yet (forks are found from epoch authenticators)
	EvRestart    = "restart"     // a node opened again on its data
	EvError      = "error"       // a node reported an error event (Err)

	// Harness records, in harness.jsonl.
	EvPhase     = "phase"     // the run entered phase Kind
	EvFault     = "fault"     // fault number Fault (Kind) happened
	EvConverged = "converged" // Chan converged after fault Fault (-1: the end); Ms, or Err when it did not
	EvResources = "resources" // CPU and memory of the run (Run), in Value fields
	EvScenario  = "scenario"  // the scenario, as TOML, in Text
	EvRecut     = "recut"     // how many connections over cut links had to be closed again (Bytes)
)

// Runs a record belongs to.
const (
	RunSpacepanda = "spacepanda"
	RunBaseline   = "baseline"
)

// Record is one line of an event log: what a node (or the harness) saw,
// when, in which run. The same Record type reads and writes every log, so
// that analyze rebuilds exactly what run reported.
type Record struct {
	T    int64    `json:"t"` // Unix nanoseconds
	Run  string   `json:"run"`
	Node string   `json:"node,omitempty"`
	Ev   string   `json:"ev"`
	Chan string   `json:"chan,omitempty"`
	Msg  string   `json:"msg,omitempty"`
	From string   `json:"from,omitempty"`
	Peer string   `json:"peer,omitempty"`
	To   []string `json:"to,omitempty"`
	// Epoch, Fault, Bytes and Ms are numbers some kinds carry.
	Epoch uint64  `json:"epoch,omitempty"`
	Fault int     `json:"fault,omitempty"`
	Bytes int     `json:"bytes,omitempty"`
	Ms    float64 `json:"ms,omitempty"`
	Kind  string  `json:"kind,omitempty"`
	Err   string  `json:"err,omitempty"`
	Text  string  `json:"text,omitempty"`
	// Values are named figures (resources).
	Values map[string]float64 `json:"values,omitempty"`
}

// Logs writes the event logs of a run: one JSON-lines file per node and
// run under dir/events/, and the harness's own records in
// dir/events/harness.jsonl. Writes are buffered; Close flushes them.
type Logs struct {
	dir string

	mu    sync.Mutex
	files map[string]*logFile
	err   error
}

type logFile struct {
	f *os.File
	w *bufio.Writer
	e *json.Encoder
}

// NewLogs makes dir/events and writes the logs there.
func NewLogs(dir string) (*Logs, error) {
	if err := os.MkdirAll(filepath.Join(dir, "events"), 0o755); err != nil {
		return nil, err
	}
	return &Logs{dir: dir, files: map[string]*logFile{}}, nil
}

// fileName is a node's log file for a run; the harness has its own.
func fileName(r Record) string {
	if r.Node == "" {
		return "harness.jsonl"
	}
	return r.Run + "-" + r.Node + ".jsonl"
}

// Write appends r to its log.
func (l *Logs) Write(r Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	name := fileName(r)
	lf := l.files[name]
	if lf == nil {
		f, err := os.Create(filepath.Join(l.dir, "events", name))
		if err != nil {
			l.err = err
			return
		}
		w := bufio.NewWriterSize(f, 64<<10)
		lf = &logFile{f: f, w: w, e: json.NewEncoder(w)}
		l.files[name] = lf
	}
	if err := lf.e.Encode(r); err != nil {
		l.err = err
	}
}

// Flush writes out what is buffered, so that a run's logs can be read
// while it goes on.
func (l *Logs) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lf := range l.files {
		if err := lf.w.Flush(); err != nil && l.err == nil {
			l.err = err
		}
	}
}

// Close flushes and closes every file; it returns the first error any
// write met.
func (l *Logs) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := []error{l.err}
	for _, lf := range l.files {
		errs = append(errs, lf.w.Flush(), lf.f.Close())
	}
	l.files = map[string]*logFile{}
	return errors.Join(errs...)
}

// ReadLogs reads every log under dir/events, in time order.
func ReadLogs(dir string) ([]Record, error) {
	names, err := filepath.Glob(filepath.Join(dir, "events", "*.jsonl"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("testnet: no event logs in %s", filepath.Join(dir, "events"))
	}
	var all []Record
	for _, name := range names {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		recs, err := decodeLog(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("testnet: %s: %w", name, err)
		}
		all = append(all, recs...)
	}
	slices.SortStableFunc(all, func(a, b Record) int {
		switch {
		case a.T < b.T:
			return -1
		case a.T > b.T:
			return 1
		}
		return 0
	})
	return all, nil
}

// decodeLog reads JSON lines; a torn last line (a run killed while
// writing) is dropped, anything else malformed is an error.
func decodeLog(r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	var out []Record
	var bad error
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if bad != nil {
			return nil, bad
		}
		var rec Record
		if err := json.Unmarshal([]byte(text), &rec); err != nil {
			bad = fmt.Errorf("line %d: %w", line, err)
			continue
		}
		if rec.Ev == "" {
			bad = fmt.Errorf("line %d: no event kind", line)
			continue
		}
		out = append(out, rec)
	}
	return out, sc.Err()
}
