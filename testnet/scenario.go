package testnet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/pelletier/go-toml/v2"
)

// Modes a scenario runs in.
const (
	// ModeMocknet runs every node in this process over go-libp2p's
	// mocknet: links with latency and bandwidth, partitions, hundreds of
	// nodes.
	ModeMocknet = "mocknet"
	// ModeLoopback runs every node in this process over real TCP and QUIC
	// hosts on 127.0.0.1.
	ModeLoopback = "loopback"
)

// Fault kinds.
const (
	FaultPartition   = "partition"    // Groups lose every link between them
	FaultHeal        = "heal"         // every link a partition or offline cut comes back
	FaultOffline     = "offline"      // Nodes lose every link; they keep running
	FaultOnline      = "online"       // Nodes get their links back
	FaultCrash       = "crash"        // Nodes stop (Close; their data stays)
	FaultRestart     = "restart"      // Nodes open again on their data
	FaultCommitStorm = "commit-storm" // Nodes each commit an update to Channel at once
)

// Scenario is a declarative simulation: the same file and seed make the
// same nodes, channels, message schedule and faults.
type Scenario struct {
	Name        string `toml:"name"`
	Description string `toml:"description"`
	// Mode is "mocknet" (the default), "loopback" or "process".
	Mode string `toml:"mode"`
	// Seed drives every random choice: who sends, which channel, bodies.
	Seed  int64 `toml:"seed"`
	Nodes int   `toml:"nodes"`
	// Links is every link's profile; Profiles override it for some nodes
	// (a link takes the worse of its two ends).
	Links    Link      `toml:"links"`
	Profiles []Profile `toml:"profiles"`
	Channels []Channel `toml:"channels"`
	Load     Load      `toml:"load"`
	Faults   []Fault   `toml:"faults"`
	// Drain bounds the wait, after the last message is sent, for every
	// delivery and for convergence; zero means 30 s.
	Drain  Duration `toml:"drain"`
	Assert Assert   `toml:"assert"`
	// Parallel bounds how many nodes open at once; zero means 8.
	Parallel int `toml:"parallel"`
	// Node adjusts every node's settings.
	Node NodeSettings `toml:"node"`
}

// NodeSettings are the node settings a scenario may change; zero fields
// keep the test settings (node/nodetest.Config: a 300 ms settle window,
// sync every 2 s).
type NodeSettings struct {
	SettleWindow Duration `toml:"settle_window"`
	SyncInterval Duration `toml:"sync_interval"`
}

// Link is a link profile.
type Link struct {
	Latency Duration `toml:"latency"`
	// Bandwidth in bytes per second; zero means unlimited.
	Bandwidth float64 `toml:"bandwidth"`
}

// Profile gives some nodes a link profile of their own.
type Profile struct {
	Nodes []int `toml:"nodes"`
	Link
}

// Channel is a channel the scenario creates before the load starts.
type Channel struct {
	Name string `toml:"name"`
	// Creator is the index of the node that creates it and invites the
	// members, one after another.
	Creator int `toml:"creator"`
	// Members are node indices; empty means every node. The creator is
	// a member whether listed or not.
	Members []int `toml:"members"`
	// Range, if set as [first, last], adds the nodes first..last.
	Range []int `toml:"range"`
}

// Load is the message load.
type Load struct {
	// Messages in all, sent at Rate per second over all channels.
	Messages int     `toml:"messages"`
	Rate     float64 `toml:"rate"`
	// Size of each body in bytes; zero means 64.
	Size int `toml:"size"`
	// Senders, if above zero, limits the senders of each channel to its
	// first Senders members.
	Senders int `toml:"senders"`
}

// Fault is a fault and when it happens, after the load starts.
type Fault struct {
	At      Duration `toml:"at"`
	Kind    string   `toml:"kind"`
	Nodes   []int    `toml:"nodes"`
	Groups  [][]int  `toml:"groups"`
	Channel string   `toml:"channel"`
}

// Assert are the scenario's pass conditions; zero fields assert nothing.
type Assert struct {
	// MinDelivery is the least delivery ratio, 0..1.
	MinDelivery float64 `toml:"min_delivery"`
	// MaxLost is the most messages lost; -1 (the default when
	// MinDelivery is unset) asserts nothing.
	MaxLost *int `toml:"max_lost"`
	// MaxLostAcked is the most messages lost whose Send had returned
	// without error: what the node promised.
	MaxLostAcked *int     `toml:"max_lost_acked"`
	MaxP99       Duration `toml:"max_p99"`
	// MustConverge asserts that every channel converges after every
	// fault and at the end.
	MustConverge bool `toml:"must_converge"`
	// MaxP99Ratio bounds p99 over the baseline's p99 (with --baseline).
	MaxP99Ratio float64 `toml:"max_p99_ratio"`
}

// Duration is a time.Duration written as "20ms" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText formats it back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// LoadScenario reads and checks a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseScenario(data)
}

// ParseScenario decodes and checks a scenario; unknown keys are errors,
// so that a misspelt fault is not silently a scenario without it.
func ParseScenario(data []byte) (*Scenario, error) {
	var s Scenario
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("testnet: scenario: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("testnet: scenario %q: %w", s.Name, err)
	}
	return &s, nil
}

func (s *Scenario) check() error {
	if s.Mode == "" {
		s.Mode = ModeMocknet
	}
	if s.Mode != ModeMocknet && s.Mode != ModeLoopback && s.Mode != ModeProcess {
		return fmt.Errorf("mode %q is not mocknet, loopback or process", s.Mode)
	}
	if s.Nodes < 2 {
		return errors.New("at least 2 nodes")
	}
	if s.Load.Size == 0 {
		s.Load.Size = 64
	}
	if s.Load.Messages < 0 || s.Load.Rate < 0 || s.Load.Size < 0 {
		return errors.New("negative load")
	}
	if s.Load.Messages > 0 && s.Load.Rate == 0 {
		return errors.New("load.rate is required with load.messages")
	}
	if s.Drain.Duration == 0 {
		s.Drain.Duration = 30 * time.Second
	}
	if s.Parallel == 0 {
		s.Parallel = 8
	}
	okNode := func(i int) bool { return i >= 0 && i < s.Nodes }
	if len(s.Channels) == 0 {
		return errors.New("no channels")
	}
	names := map[string]bool{}
	for i := range s.Channels {
		c := &s.Channels[i]
		if c.Name == "" || names[c.Name] {
			return fmt.Errorf("channel %d: missing or repeated name %q", i, c.Name)
		}
		names[c.Name] = true
		if !okNode(c.Creator) {
			return fmt.Errorf("channel %s: creator %d out of range", c.Name, c.Creator)
		}
		if len(c.Range) != 0 {
			if len(c.Range) != 2 || !okNode(c.Range[0]) || !okNode(c.Range[1]) || c.Range[0] > c.Range[1] {
				return fmt.Errorf("channel %s: range %v", c.Name, c.Range)
			}
			for j := c.Range[0]; j <= c.Range[1]; j++ {
				c.Members = append(c.Members, j)
			}
		}
		if len(c.Members) == 0 {
			for j := range s.Nodes {
				c.Members = append(c.Members, j)
			}
		}
		for _, m := range c.Members {
			if !okNode(m) {
				return fmt.Errorf("channel %s: member %d out of range", c.Name, m)
			}
		}
		// The creator first, then the others in order, each once.
		ms := []int{c.Creator}
		for _, m := range c.Members {
			if !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
		}
		c.Members = ms
	}
	for i := range s.Profiles {
		for _, n := range s.Profiles[i].Nodes {
			if !okNode(n) {
				return fmt.Errorf("profile %d: node %d out of range", i, n)
			}
		}
	}
	for i, f := range s.Faults {
		for _, n := range f.Nodes {
			if !okNode(n) {
				return fmt.Errorf("fault %d: node %d out of range", i, n)
			}
		}
		for _, g := range f.Groups {
			for _, n := range g {
				if !okNode(n) {
					return fmt.Errorf("fault %d: node %d out of range", i, n)
				}
			}
		}
		switch f.Kind {
		case FaultPartition:
			if len(f.Groups) < 2 {
				return fmt.Errorf("fault %d: a partition needs two groups or more", i)
			}
		case FaultHeal:
		case FaultOffline, FaultOnline, FaultCrash, FaultRestart:
			if len(f.Nodes) == 0 {
				return fmt.Errorf("fault %d: %s needs nodes", i, f.Kind)
			}
		case FaultCommitStorm:
			if len(f.Nodes) == 0 || !names[f.Channel] {
				return fmt.Errorf("fault %d: a commit storm needs nodes and a channel", i)
			}
		default:
			return fmt.Errorf("fault %d: unknown kind %q", i, f.Kind)
		}
		if s.Mode != ModeMocknet && (f.Kind == FaultPartition || f.Kind == FaultHeal || f.Kind == FaultOffline || f.Kind == FaultOnline) {
			return fmt.Errorf("fault %d: %s needs mocknet links", i, f.Kind)
		}
		if i > 0 && f.At.Duration < s.Faults[i-1].At.Duration {
			return fmt.Errorf("fault %d: faults must be in time order", i)
		}
	}
	if s.Assert.MinDelivery < 0 || s.Assert.MinDelivery > 1 {
		return errors.New("assert.min_delivery is a ratio, 0..1")
	}
	return nil
}

// channel returns the index of the named channel, or -1.
func (s *Scenario) channel(name string) int {
	for i, c := range s.Channels {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// linkFor is the profile of the link between nodes a and b: the higher
// latency and the lower bandwidth of their two profiles.
func (s *Scenario) linkFor(a, b int) Link {
	l := s.Links
	for _, p := range s.Profiles {
		for _, n := range p.Nodes {
			if n != a && n != b {
				continue
			}
			l.Latency.Duration = max(l.Latency.Duration, p.Latency.Duration)
			if p.Bandwidth > 0 && (l.Bandwidth == 0 || p.Bandwidth < l.Bandwidth) {
				l.Bandwidth = p.Bandwidth
			}
		}
	}
	return l
}
