package config

import (
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// Config is spacepandad's effective configuration. Each field's toml key is
// also its flag key, and its environment variable is SPACEPANDA_ followed by
// the key upper-cased with dots and dashes as underscores
// (key_packages.batch_size is SPACEPANDA_KEY_PACKAGES_BATCH_SIZE).
type Config struct {
	// DataDir holds the store, the identity and config.toml. It is not a
	// file key, since the file is found through it (see Load).
	DataDir string `toml:"-"`
	// ConfigFile is the file Load read, or "" if there was none.
	ConfigFile string `toml:"-"`
	// Warnings are problems Load did not refuse: SPACEPANDA_ variables
	// it does not know. The environment is ambient (a shell profile, a CI
	// runner, another tool's variables), so a stray name there must not
	// stop the daemon, but a misspelling should still be seen; the daemon
	// logs each at startup.
	Warnings []string `toml:"-"`

	// Listen lists the libp2p multiaddrs to listen on. An empty list
	// means p2p's defaults: every interface, on ports the system picks.
	Listen []string `toml:"listen"`
	// Bootstrap lists the peers dialled at start to join the DHT; each
	// must name its peer with /p2p/.
	Bootstrap []string `toml:"bootstrap"`
	// MDNS turns on discovery of peers on the local network.
	MDNS bool `toml:"mdns"`
	// Socket is the path of the JSON-RPC unix socket. "" in the file or
	// Default means <DataDir>/spacepanda.sock; Load always fills it.
	Socket string `toml:"socket"`
	// AutoAccept lists peer IDs whose channel invitations are accepted
	// without asking (DESIGN.md: a Welcome is otherwise held for the user,
	// since anyone can send one).
	AutoAccept []string `toml:"auto_accept"`
	// SettleWindow is how long a node waits for competing commits of one
	// epoch before it applies the one it has chosen.
	SettleWindow Duration `toml:"settle_window"`
	// SyncInterval is how often a node asks the members of each channel
	// for what it missed and compares its view of the group with theirs.
	SyncInterval Duration `toml:"sync_interval"`

	KeyPackages KeyPackages `toml:"key_packages"`
	NAT         NAT         `toml:"nat"`
	Log         Log         `toml:"log"`
	Metrics     Metrics     `toml:"metrics"`
}

// NAT sets how the node gets through NATs and helps others to (see
// p2p.Config's fields of the same names).
type NAT struct {
	// PortMap asks the home router for a port mapping (UPnP, NAT-PMP).
	PortMap bool `toml:"port_map"`
	// HolePunching upgrades relayed connections to direct ones (DCUtR)
	// and, while AutoNAT finds the node unreachable, keeps reservations
	// on relays: Relays if set, else relays among its connected peers.
	HolePunching bool `toml:"hole_punching"`
	// Relays are circuit relay multiaddrs, each ending in /p2p/<peer ID>.
	Relays []string `toml:"relays"`
	// RelayService makes a publicly reachable node relay for others,
	// within strict limits (short, small circuits).
	RelayService bool `toml:"relay_service"`
	// AutoNATService answers other nodes' AutoNAT (v1 and v2) requests,
	// telling them whether they are reachable. For public nodes.
	AutoNATService bool `toml:"autonat_service"`
	// Reachability is "auto" (AutoNAT decides), "public" or "private".
	// A public relay or bootstrap node says "public": the relay service
	// only starts once the node is known to be reachable.
	Reachability string `toml:"reachability"`
}

// KeyPackages sets how many KeyPackages a node publishes and how long they
// last (RFC 9420 section 10; the lifetime extension of section 7.2).
type KeyPackages struct {
	// BatchSize is how many KeyPackages are kept published at once: each
	// one can be used by a single Add (RFC 9420 section 16.8).
	BatchSize int `toml:"batch_size"`
	// Lifetime is the span from not_before to not_after of each new
	// KeyPackage's leaf node.
	Lifetime Duration `toml:"lifetime"`
	// RotateBefore is how long before not_after a KeyPackage is replaced.
	// It must be shorter than Lifetime.
	RotateBefore Duration `toml:"rotate_before"`
	// Republish is how often the directory records are put to the DHT
	// again, so that they outlive the DHT's record expiry. It must be
	// shorter than Lifetime.
	Republish Duration `toml:"republish"`
}

// Log sets the daemon's logger.
type Log struct {
	// Level is one of "debug", "info", "warn", "error".
	Level string `toml:"level"`
	// Format is "text" or "json".
	Format string `toml:"format"`
}

// Metrics sets the metrics HTTP endpoint.
type Metrics struct {
	// Listen is a loopback host:port (127.0.0.1, ::1 or localhost) to serve
	// metrics on, or "" for none. Loopback only, because the endpoint has
	// no authentication and the metrics describe the node's traffic.
	Listen string `toml:"listen"`
}

// Duration is a time.Duration written in TOML, the environment and flags
// the way time.ParseDuration reads it ("1s", "672h").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String is time.Duration's form without its zero minutes and seconds, so
// that the effective config says "672h" as the example does, not
// "672h0m0s".
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Default returns the configuration used for every key no layer sets.
// DataDir, ConfigFile and Socket are empty: they come from the data
// directory, which only Load resolves.
func Default() Config {
	return Config{
		Listen: []string{
			"/ip4/0.0.0.0/tcp/4001",
			"/ip4/0.0.0.0/udp/4001/quic-v1",
			"/ip6/::/tcp/4001",
			"/ip6/::/udp/4001/quic-v1",
		},
		Bootstrap:    []string{},
		MDNS:         true,
		AutoAccept:   []string{},
		SettleWindow: Duration{time.Second},
		SyncInterval: Duration{30 * time.Second},
		KeyPackages: KeyPackages{
			BatchSize:    8,
			Lifetime:     Duration{28 * 24 * time.Hour},
			RotateBefore: Duration{7 * 24 * time.Hour},
			Republish:    Duration{4 * time.Hour},
		},
		NAT: NAT{
			PortMap:      true,
			HolePunching: true,
			Relays:       []string{},
			Reachability: "auto",
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// ExampleFile is a config.toml that sets every key to its default, with a
// comment on each. Parsed, it equals Default.
//
//go:embed example.toml
var ExampleFile string

// TOML encodes c as a config file. Load, given that file, returns c again
// (with ConfigFile naming it); DataDir is written only as a comment.
func (c Config) TOML() ([]byte, error) {
	// Nil lists would vanish from the output; write them as [] so the
	// file says what is in effect.
	for _, l := range []*[]string{&c.Listen, &c.Bootstrap, &c.AutoAccept, &c.NAT.Relays} {
		if *l == nil {
			*l = []string{}
		}
	}
	body, err := toml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: encoding TOML: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# spacepanda effective configuration\n# data dir: %q\n", c.DataDir)
	if c.ConfigFile != "" {
		fmt.Fprintf(&b, "# read from: %q\n", c.ConfigFile)
	}
	b.WriteString("\n")
	b.Write(body)
	return b.Bytes(), nil
}
