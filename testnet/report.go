package testnet

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Latency is a distribution in milliseconds.
type Latency struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Stats are one run's delivery figures: spacepanda's, or the baseline's.
type Stats struct {
	// Sent counts the Sends called; Acked those that returned without
	// error (a message whose Send failed was never promised to anyone,
	// but its deliveries still count if it got out).
	Sent  int `json:"sent"`
	Acked int `json:"acked"`
	// Expected is the deliveries owed: for each sent message, every other
	// member of its channel when it was sent.
	Expected      int            `json:"expected"`
	Delivered     int            `json:"delivered"`
	Lost          int            `json:"lost"`
	LostAcked     int            `json:"lost_acked"`
	Duplicates    int            `json:"duplicates"`
	DeliveryRatio float64        `json:"delivery_ratio"`
	LostByNode    map[string]int `json:"lost_by_node,omitempty"`
	// LatencyMs is from the call to Send to the receiver's event.
	LatencyMs Latency `json:"latency_ms"`
	// BytesPerMessage is the mean size of what was published per message
	// when the run can see it (the baseline), zero otherwise.
	BytesPerMessage float64 `json:"bytes_per_message,omitempty"`
	// CPUSeconds is the process's user and system time over the run's
	// phases; PeakHeapMB the most memory the Go runtime held from the OS
	// while it ran (sampled every 200 ms); MaxRSSMB the process's peak
	// resident set so far.
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakHeapMB float64 `json:"peak_heap_mb"`
	MaxRSSMB   float64 `json:"max_rss_mb"`
	// LoadSeconds is how long the load phase took.
	LoadSeconds float64 `json:"load_seconds"`
}

// Convergence is how long the channel took, after a fault (or at the end,
// Fault -1), until every running member showed one epoch with one epoch
// authenticator and no commit pending.
type Convergence struct {
	Fault     int     `json:"fault"`
	Kind      string  `json:"kind"`
	Channel   string  `json:"channel"`
	AtMs      float64 `json:"at_ms"` // since the load started
	Ms        float64 `json:"ms"`
	Converged bool    `json:"converged"`
	Err       string  `json:"err,omitempty"`
}

// Ratios are spacepanda's figures over the baseline's.
type Ratios struct {
	DeliveryRatio float64 `json:"delivery_ratio"`
	P50           float64 `json:"p50"`
	P95           float64 `json:"p95"`
	P99           float64 `json:"p99"`
	Max           float64 `json:"max"`
	CPU           float64 `json:"cpu"`
}

// Check is one assertion and whether it held.
type Check struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

// Report is what a run says, rebuilt from its event logs alone.
type Report struct {
	Scenario string `json:"scenario"`
	Mode     string `json:"mode"`
	Nodes    int    `json:"nodes"`
	Seed     int64  `json:"seed"`
	Stats
	// JoinMs is from the creator's Invite call to the invitee's joined
	// event.
	JoinMs      Latency       `json:"join_ms"`
	Convergence []Convergence `json:"convergence"`
	Epochs      int           `json:"epochs"`
	// Rollbacks are the rewinds: a member that had entered an epoch by
	// one commit went back for a late winning rival (the node's rewound
	// event). Rejoins are the members that found themselves on a branch
	// the group left and came back by external commit (rejoined).
	// CommitsLost are the member's own commits that lost their epoch and
	// were made again (commit_lost). Forks are the (channel, epoch) pairs
	// that members entered with more than one epoch authenticator: rival
	// states of one epoch, found from the epoch records, since the node
	// announces no fork event; ForkedEpochs names them. A fork healed by
	// rewinds or rejoins still counts here: whether it healed is what
	// Convergence says.
	Rollbacks    int      `json:"rollbacks"`
	Rejoins      int      `json:"rejoins"`
	CommitsLost  int      `json:"commits_lost"`
	Forks        int      `json:"forks"`
	ForkedEpochs []string `json:"forked_epochs,omitempty"`
	Errors       int      `json:"errors"`
	Baseline     *Stats   `json:"baseline,omitempty"`
	Ratios       *Ratios  `json:"ratios,omitempty"`
	Checks       []Check  `json:"checks"`
	Passed       bool     `json:"passed"`
	Faults       []Marker `json:"faults,omitempty"`
	// Start is when the load started, Unix nanoseconds: the zero of the
	// charts' time axes.
	Start int64 `json:"start"`
}

// Marker is a fault on the time axis.
type Marker struct {
	Index int     `json:"index"`
	Kind  string  `json:"kind"`
	AtMs  float64 `json:"at_ms"`
}

// sentMsg is what analysis keeps of a sent message.
type sentMsg struct {
	t     int64
	from  string
	to    []string
	acked bool
}

// Analyze rebuilds a run's report from its records. sc, if nil, is read
// from the scenario record of the harness log.
func Analyze(recs []Record, sc *Scenario) (*Report, error) {
	if sc == nil {
		for _, r := range recs {
			if r.Ev == EvScenario {
				s, err := ParseScenario([]byte(r.Text))
				if err != nil {
					return nil, err
				}
				sc = s
				break
			}
		}
		if sc == nil {
			return nil, fmt.Errorf("testnet: the logs hold no scenario record")
		}
	}
	rep := &Report{Scenario: sc.Name, Mode: sc.Mode, Nodes: sc.Nodes, Seed: sc.Seed, Convergence: []Convergence{}, Checks: []Check{}}
	for _, r := range recs {
		if r.Ev == EvPhase && r.Kind == "load" && r.Run == RunSpacepanda {
			rep.Start = r.T
			break
		}
	}
	rep.Stats = stats(recs, RunSpacepanda)
	if slices.ContainsFunc(recs, func(r Record) bool { return r.Run == RunBaseline && r.Ev == EvSent }) {
		b := stats(recs, RunBaseline)
		rep.Baseline = &b
		rep.Ratios = &Ratios{
			DeliveryRatio: ratio(rep.DeliveryRatio, b.DeliveryRatio),
			P50:           ratio(rep.LatencyMs.P50, b.LatencyMs.P50),
			P95:           ratio(rep.LatencyMs.P95, b.LatencyMs.P95),
			P99:           ratio(rep.LatencyMs.P99, b.LatencyMs.P99),
			Max:           ratio(rep.LatencyMs.Max, b.LatencyMs.Max),
			CPU:           ratio(rep.CPUSeconds, b.CPUSeconds),
		}
	}

	auths := map[string]map[string]bool{} // chan/epoch -> authenticators
	invited := map[string]int64{}         // chan/peer -> time of the Invite call
	var joins []float64
	for _, r := range recs {
		if r.Run != RunSpacepanda {
			continue
		}
		switch r.Ev {
		case EvInvited:
			invited[r.Chan+"/"+r.Peer] = r.T
		case EvJoined:
			if t, ok := invited[r.Chan+"/"+r.Node]; ok {
				joins = append(joins, ms(r.T-t))
				delete(invited, r.Chan+"/"+r.Node)
			}
		case EvEpoch:
			rep.Epochs++
			if r.Text != "" {
				k := fmt.Sprintf("%s/%d", r.Chan, r.Epoch)
				if auths[k] == nil {
					auths[k] = map[string]bool{}
				}
				auths[k][r.Text] = true
			}
		case EvCommitLost:
			rep.CommitsLost++
		case EvRewound:
			rep.Rollbacks++
		case EvRejoined:
			rep.Rejoins++
		case EvFork:
			rep.Forks++
		case EvError:
			rep.Errors++
		case EvFault:
			rep.Faults = append(rep.Faults, Marker{Index: r.Fault, Kind: r.Kind, AtMs: ms(r.T - rep.Start)})
		case EvConverged:
			rep.Convergence = append(rep.Convergence, Convergence{
				Fault: r.Fault, Kind: r.Kind, Channel: r.Chan, AtMs: ms(r.T-rep.Start) - r.Ms,
				Ms: r.Ms, Converged: r.Err == "", Err: r.Err,
			})
		}
	}
	for k, a := range auths {
		if len(a) > 1 {
			rep.Forks++
			rep.ForkedEpochs = append(rep.ForkedEpochs, k)
		}
	}
	sort.Strings(rep.ForkedEpochs)
	rep.JoinMs = distribution(joins)
	rep.check(sc)
	return rep, nil
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return math.Round(a/b*1000) / 1000
}

func ms(ns int64) float64 { return math.Round(float64(ns)/1e3) / 1e3 }

// stats counts one run's deliveries: each (message, receiver) pair owed
// is delivered once or lost; further copies are duplicates.
func stats(recs []Record, run string) Stats {
	var st Stats
	sent := map[string]*sentMsg{}
	for _, r := range recs {
		if r.Run != run {
			continue
		}
		switch r.Ev {
		case EvSent:
			st.Sent++
			sent[r.Msg] = &sentMsg{t: r.T, from: r.Node, to: r.To}
			st.BytesPerMessage += float64(r.Bytes)
		case EvAcked:
			if m := sent[r.Msg]; m != nil {
				m.acked = true
				st.Acked++
			}
		case EvResources:
			st.CPUSeconds = r.Values["cpu_seconds"]
			st.PeakHeapMB = r.Values["peak_heap_mb"]
			st.MaxRSSMB = r.Values["max_rss_mb"]
			st.LoadSeconds = r.Values["load_seconds"]
		}
	}
	if st.Sent > 0 {
		st.BytesPerMessage = math.Round(st.BytesPerMessage/float64(st.Sent)*10) / 10
	}
	got := map[string]int{} // msg/receiver -> copies
	var lat []float64
	for _, d := range firstDeliveries(recs, run, sent, got) {
		lat = append(lat, d.ms)
	}
	for _, n := range got {
		st.Duplicates += n - 1
	}
	st.LostByNode = map[string]int{}
	for id, m := range sent {
		for _, to := range m.to {
			if to == m.from {
				continue
			}
			st.Expected++
			if got[id+"/"+to] > 0 {
				st.Delivered++
				continue
			}
			st.Lost++
			st.LostByNode[to]++
			if m.acked {
				st.LostAcked++
			}
		}
	}
	if len(st.LostByNode) == 0 {
		st.LostByNode = nil
	}
	if st.Expected > 0 {
		st.DeliveryRatio = float64(st.Delivered) / float64(st.Expected)
	}
	st.LatencyMs = distribution(lat)
	return st
}

// delivery is the first copy of a message at one of its receivers.
type delivery struct {
	t  int64   // when it arrived
	ms float64 // how long after its Send was called
}

// firstDeliveries are the first copies of each owed (message, receiver)
// pair, in time order; got counts every copy by pair.
func firstDeliveries(recs []Record, run string, sent map[string]*sentMsg, got map[string]int) []delivery {
	var out []delivery
	for _, r := range recs {
		if r.Run != run || r.Ev != EvRecv {
			continue
		}
		m := sent[r.Msg]
		if m == nil || r.Node == m.from || !slices.Contains(m.to, r.Node) {
			continue
		}
		k := r.Msg + "/" + r.Node
		got[k]++
		if got[k] == 1 {
			out = append(out, delivery{t: r.T, ms: ms(r.T - m.t)})
		}
	}
	return out
}

// sentOf is every message a run sent, by ID.
func sentOf(recs []Record, run string) map[string]*sentMsg {
	sent := map[string]*sentMsg{}
	for _, r := range recs {
		if r.Run == run && r.Ev == EvSent {
			sent[r.Msg] = &sentMsg{t: r.T, from: r.Node, to: r.To}
		}
	}
	return sent
}

// distribution summarises values by nearest-rank percentiles.
func distribution(v []float64) Latency {
	if len(v) == 0 {
		return Latency{}
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return Latency{N: len(s), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: s[len(s)-1],
		Mean: math.Round(sum/float64(len(s))*1000) / 1000}
}

// check evaluates the scenario's assertions.
func (rep *Report) check(sc *Scenario) {
	a := sc.Assert
	add := func(name, want, got string, ok bool) {
		rep.Checks = append(rep.Checks, Check{Name: name, Want: want, Got: got, OK: ok})
	}
	if rep.Sent == 0 && sc.Load.Messages > 0 {
		add("messages sent", fmt.Sprint(sc.Load.Messages), "0", false)
	}
	if a.MinDelivery > 0 {
		add("delivery ratio", fmt.Sprintf(">= %g", a.MinDelivery), fmt.Sprintf("%.6f", rep.DeliveryRatio), rep.DeliveryRatio >= a.MinDelivery)
	}
	if a.MaxLost != nil {
		add("lost", fmt.Sprintf("<= %d", *a.MaxLost), fmt.Sprint(rep.Lost), rep.Lost <= *a.MaxLost)
	}
	if a.MaxLostAcked != nil {
		add("lost after their Send returned", fmt.Sprintf("<= %d", *a.MaxLostAcked), fmt.Sprint(rep.LostAcked), rep.LostAcked <= *a.MaxLostAcked)
	}
	if a.MaxP99.Duration > 0 {
		want := float64(a.MaxP99.Duration) / 1e6
		add("p99 latency (ms)", fmt.Sprintf("<= %g", want), fmt.Sprint(rep.LatencyMs.P99), rep.LatencyMs.P99 <= want)
	}
	if a.MaxP99Ratio > 0 && rep.Ratios != nil {
		add("p99 over the baseline's", fmt.Sprintf("<= %g", a.MaxP99Ratio), fmt.Sprint(rep.Ratios.P99), rep.Ratios.P99 <= a.MaxP99Ratio)
	}
	if a.MustConverge {
		bad := 0
		for _, c := range rep.Convergence {
			if !c.Converged {
				bad++
			}
		}
		ok := bad == 0 && len(rep.Convergence) > 0
		add("converged", "every channel after every fault and at the end",
			fmt.Sprintf("%d of %d", len(rep.Convergence)-bad, len(rep.Convergence)), ok)
	}
	rep.Passed = true
	for _, c := range rep.Checks {
		rep.Passed = rep.Passed && c.OK
	}
}

// WriteJSON writes the report to dir/report.json.
func (rep *Report) WriteJSON(dir string) error {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), append(data, '\n'), 0o644)
}

// Summary writes the report for a person at a terminal.
func (rep *Report) Summary(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("scenario %s: %d nodes, %s, seed %d\n", rep.Scenario, rep.Nodes, rep.Mode, rep.Seed)
	line := func(name string, s Stats) {
		p("  %-10s sent %d (acked %d)  delivered %d/%d (%.4f%%)  lost %d  dup %d  latency ms p50 %.1f p95 %.1f p99 %.1f max %.1f  cpu %.1fs\n",
			name, s.Sent, s.Acked, s.Delivered, s.Expected, 100*s.DeliveryRatio, s.Lost, s.Duplicates,
			s.LatencyMs.P50, s.LatencyMs.P95, s.LatencyMs.P99, s.LatencyMs.Max, s.CPUSeconds)
	}
	line("spacepanda", rep.Stats)
	if rep.Baseline != nil {
		line("gossipsub", *rep.Baseline)
		r := rep.Ratios
		p("  ratio      delivery %.4f  p50 %.2fx  p95 %.2fx  p99 %.2fx  max %.2fx  cpu %.2fx\n", r.DeliveryRatio, r.P50, r.P95, r.P99, r.Max, r.CPU)
	}
	if len(rep.LostByNode) > 0 {
		var parts []string
		for n, c := range rep.LostByNode {
			parts = append(parts, fmt.Sprintf("%s:%d", n, c))
		}
		sort.Strings(parts)
		if len(parts) > 12 {
			parts = append(parts[:12], fmt.Sprintf("... (%d nodes)", len(parts)))
		}
		p("  lost by node: %s\n", strings.Join(parts, " "))
	}
	p("  join ms    n %d p50 %.1f p95 %.1f max %.1f\n", rep.JoinMs.N, rep.JoinMs.P50, rep.JoinMs.P95, rep.JoinMs.Max)
	p("  epochs %d  commits lost %d  rollbacks %d  rejoins %d  forks %d  errors %d  peak Go memory %.0f MB  max RSS %.0f MB\n",
		rep.Epochs, rep.CommitsLost, rep.Rollbacks, rep.Rejoins, rep.Forks, rep.Errors, rep.PeakHeapMB, rep.MaxRSSMB)
	if len(rep.ForkedEpochs) > 0 {
		f := rep.ForkedEpochs
		if len(f) > 8 {
			f = append(f[:8:8], fmt.Sprintf("... (%d)", len(rep.ForkedEpochs)))
		}
		p("  forked (channel/epoch): %s\n", strings.Join(f, " "))
	}
	for _, c := range rep.Convergence {
		what := "the end"
		if c.Fault >= 0 {
			what = fmt.Sprintf("fault %d (%s) at %s", c.Fault, c.Kind, time.Duration(c.AtMs*1e6).Round(time.Millisecond))
		}
		if c.Converged {
			p("  converged  %-10s after %s in %.0f ms\n", c.Channel, what, c.Ms)
		} else {
			p("  NOT converged %-7s after %s: %s\n", c.Channel, what, c.Err)
		}
	}
	for _, c := range rep.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		p("  %s %s: want %s, got %s\n", mark, c.Name, c.Want, c.Got)
	}
	if rep.Passed {
		p("PASS\n")
	} else {
		p("FAIL\n")
	}
}
