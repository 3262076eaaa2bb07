package config

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// newPeerID makes a real peer ID, so the tests do not depend on a
// hand-typed one staying valid.
func newPeerID(t testing.TB) string {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// env is a data directory with an optional config.toml, and the Sources
// that point at it.
func setup(t *testing.T, file string) (Sources, string) {
	t.Helper()
	dir := t.TempDir()
	if file != "" {
		if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return Sources{DataDirFlag: dir}, dir
}

// configErrors flattens Load's joined error into its *Errors.
func configErrors(t *testing.T, err error) []*Error {
	t.Helper()
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		var ce *Error
		if errors.As(err, &ce) && reflect.TypeOf(err) == reflect.TypeOf(ce) {
			out = append(out, ce)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		t.Errorf("error %v (%T) is not a *config.Error", err, err)
	}
	walk(err)
	return out
}

// wantError asserts that err holds exactly one *Error, for key from src.
func wantError(t *testing.T, err error, key, src string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Load succeeded, want an error for %s from %s", key, src)
	}
	errs := configErrors(t, err)
	if len(errs) != 1 {
		t.Fatalf("got %d errors, want 1: %v", len(errs), err)
	}
	e := errs[0]
	if e.Key != key || e.Source != src {
		t.Fatalf("error names key %q from %q, want %q from %q: %v", e.Key, e.Source, key, src, e)
	}
	if !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), src) {
		t.Fatalf("message %q does not name %q and %q", err, key, src)
	}
	return e
}

func TestLoadDefaults(t *testing.T) {
	src, dir := setup(t, "")
	c, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.DataDir = dir
	want.Socket = filepath.Join(dir, "spacepanda.sock")
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Load with nothing set = %+v, want %+v", c, want)
	}
	if c.ConfigFile != "" {
		t.Fatalf("ConfigFile = %q with no file", c.ConfigFile)
	}
}

// TestPrecedence sets one key of each type in successively higher layers
// and checks that each layer beats the one below it.
func TestPrecedence(t *testing.T) {
	type layer struct{ file, env, flag string }
	cases := []struct {
		key                 string
		file, env, flag     string // values in each layer's syntax
		get                 func(Config) any
		dflt, fv, ev, flagv any
	}{
		{key: "log.level", file: `[log]` + "\n" + `level = "debug"`, env: "warn", flag: "error",
			get: func(c Config) any { return c.Log.Level }, dflt: "info", fv: "debug", ev: "warn", flagv: "error"},
		{key: "listen", file: `listen = ["/ip4/127.0.0.1/tcp/1"]`, env: "/ip4/127.0.0.1/tcp/2, /ip4/127.0.0.1/tcp/3", flag: "/ip4/127.0.0.1/tcp/4",
			get:  func(c Config) any { return c.Listen },
			dflt: Default().Listen, fv: []string{"/ip4/127.0.0.1/tcp/1"},
			ev: []string{"/ip4/127.0.0.1/tcp/2", "/ip4/127.0.0.1/tcp/3"}, flagv: []string{"/ip4/127.0.0.1/tcp/4"}},
		{key: "settle_window", file: `settle_window = "2s"`, env: "3s", flag: "4m",
			get:  func(c Config) any { return c.SettleWindow.Duration },
			dflt: time.Second, fv: 2 * time.Second, ev: 3 * time.Second, flagv: 4 * time.Minute},
		{key: "sync_interval", file: `sync_interval = "2s"`, env: "3s", flag: "4m",
			get:  func(c Config) any { return c.SyncInterval.Duration },
			dflt: 30 * time.Second, fv: 2 * time.Second, ev: 3 * time.Second, flagv: 4 * time.Minute},
		{key: "key_packages.batch_size", file: "key_packages.batch_size = 2", env: "3", flag: "4",
			get: func(c Config) any { return c.KeyPackages.BatchSize }, dflt: 8, fv: 2, ev: 3, flagv: 4},
		{key: "mdns", file: "mdns = false", env: "true", flag: "false",
			get: func(c Config) any { return c.MDNS }, dflt: true, fv: false, ev: true, flagv: false},
		{key: "metrics.listen", file: `metrics = { listen = "127.0.0.1:1" }`, env: "[::1]:2", flag: "localhost:3",
			get: func(c Config) any { return c.Metrics.Listen }, dflt: "", fv: "127.0.0.1:1", ev: "[::1]:2", flagv: "localhost:3"},
		{key: "socket", file: `socket = "/tmp/a.sock"`, env: "/tmp/b.sock", flag: "/tmp/c.sock",
			get: func(c Config) any { return c.Socket }, dflt: nil, fv: "/tmp/a.sock", ev: "/tmp/b.sock", flagv: "/tmp/c.sock"},
	}
	for _, tc := range cases {
		t.Run(tc.key, func(t *testing.T) {
			envVar := envName(tc.key)
			for _, l := range []struct {
				name string
				layer
				want any
			}{
				{"default", layer{}, tc.dflt},
				{"file", layer{file: tc.file}, tc.fv},
				{"env", layer{file: tc.file, env: tc.env}, tc.ev},
				{"flag", layer{file: tc.file, env: tc.env, flag: tc.flag}, tc.flagv},
			} {
				src, dir := setup(t, l.file)
				if l.env != "" {
					src.Env = []string{"PATH=/bin", envVar + "=" + l.env}
				}
				if l.flag != "" {
					src.Flags = map[string]string{tc.key: l.flag}
				}
				c, err := Load(src)
				if err != nil {
					t.Fatalf("%s: %v", l.name, err)
				}
				want := l.want
				if want == nil { // the socket's default depends on the data dir
					want = filepath.Join(dir, "spacepanda.sock")
				}
				if got := tc.get(c); !reflect.DeepEqual(got, want) {
					t.Errorf("%s layer: %s = %#v, want %#v", l.name, tc.key, got, want)
				}
			}
		})
	}
}

func TestEmptyEnvClearsList(t *testing.T) {
	src, _ := setup(t, `bootstrap = ["/ip4/192.0.2.1/tcp/4001/p2p/`+newPeerID(t)+`"]`)
	src.Env = []string{"SPACEPANDA_BOOTSTRAP="}
	c, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Bootstrap) != 0 {
		t.Fatalf("bootstrap = %q, want it cleared by the empty variable", c.Bootstrap)
	}
}

func TestFlagLists(t *testing.T) {
	a, b, d := newPeerID(t), newPeerID(t), newPeerID(t)
	src, _ := setup(t, `auto_accept = ["`+newPeerID(t)+`"]`)
	src.FlagLists = map[string][]string{"auto_accept": {a, b + "," + d}}
	c, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{a, b, d}; !reflect.DeepEqual(c.AutoAccept, want) {
		t.Fatalf("auto_accept = %q, want %q", c.AutoAccept, want)
	}

	src.Flags = map[string]string{"auto_accept": a}
	_, err = Load(src)
	wantError(t, err, "auto_accept", "flag --auto_accept")

	src.Flags = nil
	src.FlagLists = map[string][]string{"log.level": {"info"}}
	_, err = Load(src)
	wantError(t, err, "log.level", "flag --log.level")
}

func TestDataDirResolution(t *testing.T) {
	home, xdg, flag, envDir := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	cases := []struct {
		name string
		src  Sources
		want string
	}{
		{"flag beats all", Sources{DataDirFlag: flag, Env: []string{"SPACEPANDA_DATA_DIR=" + envDir}, XDGDataHome: xdg, Home: home}, flag},
		{"env beats XDG", Sources{Env: []string{"SPACEPANDA_DATA_DIR=" + envDir}, XDGDataHome: xdg, Home: home}, envDir},
		{"empty env is unset", Sources{Env: []string{"SPACEPANDA_DATA_DIR="}, XDGDataHome: xdg, Home: home}, filepath.Join(xdg, "spacepanda")},
		{"XDG beats home", Sources{XDGDataHome: xdg, Home: home}, filepath.Join(xdg, "spacepanda")},
		{"relative XDG ignored", Sources{XDGDataHome: "rel/dir", Home: home}, filepath.Join(home, ".local", "share", "spacepanda")},
		{"home", Sources{Home: home}, filepath.Join(home, ".local", "share", "spacepanda")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if c.DataDir != tc.want {
				t.Fatalf("DataDir = %q, want %q", c.DataDir, tc.want)
			}
			if want := filepath.Join(tc.want, "spacepanda.sock"); c.Socket != want {
				t.Fatalf("Socket = %q, want %q", c.Socket, want)
			}
		})
	}
	t.Run("nothing to go on", func(t *testing.T) {
		_, err := Load(Sources{})
		wantError(t, err, "data_dir", "resolution")
	})
}

func TestConfigFileInDataDir(t *testing.T) {
	src, dir := setup(t, "mdns = false\n")
	c, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "config.toml"); c.ConfigFile != want || c.MDNS {
		t.Fatalf("ConfigFile = %q, MDNS = %v; want %q read (mdns false)", c.ConfigFile, c.MDNS, want)
	}
}

func TestConfigFlag(t *testing.T) {
	src, _ := setup(t, "mdns = false\n")
	other := filepath.Join(t.TempDir(), "other.toml")
	if err := os.WriteFile(other, []byte(`log.level = "debug"`), 0o600); err != nil {
		t.Fatal(err)
	}
	src.ConfigFlag = other
	c, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	if c.ConfigFile != other || c.Log.Level != "debug" || !c.MDNS {
		t.Fatalf("got ConfigFile %q level %q mdns %v: want only %s read", c.ConfigFile, c.Log.Level, c.MDNS, other)
	}
}

func TestConfigFlagMissingFile(t *testing.T) {
	src, _ := setup(t, "")
	src.ConfigFlag = filepath.Join(t.TempDir(), "absent.toml")
	_, err := Load(src)
	wantError(t, err, "config", "flag --config")
	if !errors.Is(err, ErrConfigNotFound) {
		t.Fatalf("error %v is not ErrConfigNotFound", err)
	}
}

// TestValidation checks that each kind of bad value is refused, and that
// the error names the key and the layer, with the file's line.
func TestValidation(t *testing.T) {
	cases := []struct {
		name string
		file string
		env  []string
		flag map[string]string
		key  string
		src  string // "FILE:n" stands for the config file's path and line n
	}{
		{name: "level in file", file: "mdns = true\n[log]\nlevel = \"loud\"\n", key: "log.level", src: "FILE:3"},
		{name: "level in env", env: []string{"SPACEPANDA_LOG_LEVEL=loud"}, key: "log.level", src: "env SPACEPANDA_LOG_LEVEL"},
		{name: "level in flag", flag: map[string]string{"log.level": "loud"}, key: "log.level", src: "flag --log.level"},
		{name: "format", file: "log.format = \"xml\"", key: "log.format", src: "FILE:1"},
		{name: "wrong type in file", file: "\nmdns = \"yes\"", key: "mdns", src: "FILE:2"},
		{name: "wrong type in env", env: []string{"SPACEPANDA_MDNS=yes"}, key: "mdns", src: "env SPACEPANDA_MDNS"},
		{name: "int in env", env: []string{"SPACEPANDA_KEY_PACKAGES_BATCH_SIZE=eight"}, key: "key_packages.batch_size", src: "env SPACEPANDA_KEY_PACKAGES_BATCH_SIZE"},
		{name: "string for int in file", file: "[key_packages]\nbatch_size = \"8\"", key: "key_packages.batch_size", src: "FILE:2"},
		{name: "batch size zero", flag: map[string]string{"key_packages.batch_size": "0"}, key: "key_packages.batch_size", src: "flag --key_packages.batch_size"},
		{name: "duration syntax in env", env: []string{"SPACEPANDA_SETTLE_WINDOW=1 second"}, key: "settle_window", src: "env SPACEPANDA_SETTLE_WINDOW"},
		{name: "duration syntax in file", file: "settle_window = \"soon\"", key: "settle_window", src: "FILE:1"},
		{name: "duration integer in file", file: "settle_window = 5", key: "settle_window", src: "FILE:1"},
		{name: "level in inline table", file: "\nlog = { format = \"json\", level = \"loud\" }", key: "log.level", src: "FILE:2"},
		{name: "duration integer in inline table", file: "key_packages = { lifetime = 5 }", key: "key_packages.lifetime", src: "FILE:1"},
		{name: "zero duration", file: "settle_window = \"0s\"", key: "settle_window", src: "FILE:1"},
		{name: "negative duration", env: []string{"SPACEPANDA_KEY_PACKAGES_REPUBLISH=-1h"}, key: "key_packages.republish", src: "env SPACEPANDA_KEY_PACKAGES_REPUBLISH"},
		{name: "rotate not before lifetime", file: "[key_packages]\nlifetime = \"24h\"\nrotate_before = \"24h\"\nrepublish = \"1h\"", key: "key_packages.rotate_before", src: "FILE:3"},
		{name: "republish beyond lifetime", flag: map[string]string{"key_packages.republish": "700h"}, key: "key_packages.republish", src: "flag --key_packages.republish"},
		{name: "listen not a multiaddr", file: "listen = [\"/ip4/0.0.0.0/tcp/1\", \"0.0.0.0:4001\"]", key: "listen", src: "FILE:1"},
		{name: "listen bad protocol", env: []string{"SPACEPANDA_LISTEN=/ip4/0.0.0.0/tcpx/1"}, key: "listen", src: "env SPACEPANDA_LISTEN"},
		{name: "bootstrap without p2p", flag: map[string]string{"bootstrap": "/ip4/192.0.2.1/tcp/4001"}, key: "bootstrap", src: "flag --bootstrap"},
		{name: "bootstrap not a multiaddr", file: "bootstrap = [\"example.org:4001\"]", key: "bootstrap", src: "FILE:1"},
		{name: "relay without p2p", flag: map[string]string{"nat.relays": "/ip4/192.0.2.1/udp/4001/quic-v1"}, key: "nat.relays", src: "flag --nat.relays"},
		{name: "relay not a multiaddr", file: "[nat]\nrelays = [\"relay.example.org\"]", key: "nat.relays", src: "FILE:2"},
		{name: "reachability unknown", env: []string{"SPACEPANDA_NAT_REACHABILITY=maybe"}, key: "nat.reachability", src: "env SPACEPANDA_NAT_REACHABILITY"},
		{name: "auto_accept not a peer ID", env: []string{"SPACEPANDA_AUTO_ACCEPT=alice"}, key: "auto_accept", src: "env SPACEPANDA_AUTO_ACCEPT"},
		{name: "metrics on all interfaces", file: "[metrics]\nlisten = \"0.0.0.0:9090\"", key: "metrics.listen", src: "FILE:2"},
		{name: "metrics on a name", env: []string{"SPACEPANDA_METRICS_LISTEN=example.org:9090"}, key: "metrics.listen", src: "env SPACEPANDA_METRICS_LISTEN"},
		{name: "metrics without port", flag: map[string]string{"metrics.listen": "127.0.0.1"}, key: "metrics.listen", src: "flag --metrics.listen"},
		{name: "socket too long", flag: map[string]string{"socket": "/" + strings.Repeat("s", 200)}, key: "socket", src: "flag --socket"},
		{name: "unknown flag", flag: map[string]string{"colour": "blue"}, key: "colour", src: "flag --colour"},
		{name: "syntax error", file: "mdns = true\nlisten = [\n", key: "(file)", src: "FILE:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, dir := setup(t, tc.file)
			src.Env, src.Flags = tc.env, tc.flag
			_, err := Load(src)
			want := strings.Replace(tc.src, "FILE", filepath.Join(dir, "config.toml"), 1)
			if strings.HasSuffix(want, ":") { // any line will do
				e := configErrors(t, err)
				if len(e) != 1 || e[0].Key != tc.key || !strings.HasPrefix(e[0].Source, want) {
					t.Fatalf("got %v, want one error for %s from %s<line>", err, tc.key, want)
				}
				return
			}
			wantError(t, err, tc.key, want)
		})
	}
}

func TestUnknownFileKeysListed(t *testing.T) {
	src, dir := setup(t, "mdns = true\ncolour = \"blue\"\n[log]\nlevel = \"info\"\nverbose = true\n")
	_, err := Load(src)
	errs := configErrors(t, err)
	path := filepath.Join(dir, "config.toml")
	got := map[string]string{}
	for _, e := range errs {
		got[e.Key] = e.Source
		if !strings.Contains(e.Error(), "unknown key") {
			t.Errorf("error %v does not say the key is unknown", e)
		}
	}
	want := map[string]string{"colour": path + ":2", "log.verbose": path + ":5"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unknown keys reported as %v, want %v", got, want)
	}
}

// TestAllProblemsReported: a user fixing a config sees every problem in
// one run, not one per run.
func TestAllProblemsReported(t *testing.T) {
	src, _ := setup(t, "[log]\nlevel = \"loud\"\nformat = \"xml\"\n")
	src.Env = []string{"SPACEPANDA_SETTLE_WINDOW=0s"}
	_, err := Load(src)
	keys := map[string]bool{}
	for _, e := range configErrors(t, err) {
		keys[e.Key] = true
	}
	if want := map[string]bool{"log.level": true, "log.format": true, "settle_window": true}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("errors for %v, want %v", keys, want)
	}

	// A file the decoder refuses does not hide bad variables and flags.
	src, _ = setup(t, "colour = \"blue\"\n")
	src.Env = []string{"SPACEPANDA_MDNS=maybe"}
	src.Flags = map[string]string{"key_packages.batch_size": "many"}
	_, err = Load(src)
	keys = map[string]bool{}
	for _, e := range configErrors(t, err) {
		keys[e.Key] = true
	}
	if want := map[string]bool{"colour": true, "mdns": true, "key_packages.batch_size": true}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("errors for %v, want %v", keys, want)
	}
}

// TestBadFileLeavesNoHalfConfig: a decode error must not let part of the
// file through into an apparently loaded Config.
func TestBadFileLeavesNoHalfConfig(t *testing.T) {
	src, _ := setup(t, "mdns = false\nsettle_window = 5\n")
	c, err := Load(src)
	if err == nil {
		t.Fatal("want an error")
	}
	if !reflect.DeepEqual(c, Config{}) {
		t.Fatalf("Load returned %+v with its error, want the zero Config", c)
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{
		672 * time.Hour: "672h", 90 * time.Minute: "1h30m", time.Minute: "1m", 10 * time.Second: "10s",
		time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s", 0: "0s", -time.Hour: "-1h",
	} {
		if got := (Duration{d}).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(want); err != nil || back != d {
			t.Errorf("%q parses back as %v, %v; want %v", want, back, err, d)
		}
	}
}

func TestExampleIsDefault(t *testing.T) {
	src, dir := setup(t, ExampleFile)
	c, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.DataDir, want.ConfigFile = dir, filepath.Join(dir, "config.toml")
	want.Socket = filepath.Join(dir, "spacepanda.sock")
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("example parses to\n%+v\nwant Default\n%+v", c, want)
	}
	// Documented means present: a key added to Config must be added to
	// the example too.
	lines, _ := keyLines([]byte(ExampleFile))
	for _, k := range keys() {
		if _, ok := lines[k.name]; !ok {
			t.Errorf("example.toml does not set %s", k.name)
		}
	}
}

func TestTOMLRoundTrip(t *testing.T) {
	src, dir := setup(t, "")
	src.Flags = map[string]string{
		"listen":                     "/ip4/127.0.0.1/tcp/5000",
		"bootstrap":                  "/ip4/192.0.2.1/tcp/4001/p2p/" + newPeerID(t),
		"auto_accept":                newPeerID(t),
		"mdns":                       "false",
		"settle_window":              "1500ms",
		"sync_interval":              "45s",
		"key_packages.batch_size":    "3",
		"key_packages.lifetime":      "48h",
		"key_packages.rotate_before": "12h",
		"key_packages.republish":     "90m",
		"log.level":                  "debug",
		"log.format":                 "json",
		"metrics.listen":             "127.0.0.1:9090",
		"nat.port_map":               "false",
		"nat.hole_punching":          "false",
		"nat.relays":                 "/ip4/192.0.2.2/udp/4001/quic-v1/p2p/" + newPeerID(t),
		"nat.relay_service":          "true",
		"nat.autonat_service":        "true",
		"nat.reachability":           "public",
	}
	c, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    Config
	}{{"loaded", c}, {"nil lists", func() Config { d := c; d.Bootstrap, d.AutoAccept, d.NAT.Relays = nil, nil, nil; return d }()}} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.c.TOML()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "effective.toml")
			if err := os.WriteFile(path, out, 0o600); err != nil {
				t.Fatal(err)
			}
			back, err := Load(Sources{DataDirFlag: dir, ConfigFlag: path})
			if err != nil {
				t.Fatalf("reading back\n%s: %v", out, err)
			}
			want := tc.c
			want.ConfigFile = path
			for _, l := range []*[]string{&want.Bootstrap, &want.AutoAccept, &want.NAT.Relays} {
				if *l == nil {
					*l = []string{}
				}
			}
			if !reflect.DeepEqual(back, want) {
				t.Fatalf("TOML\n%s\nreads back as %+v, want %+v", out, back, want)
			}
		})
	}
}

// FuzzLoadTOML feeds arbitrary bytes as config.toml: Load must return a
// Config or an error, never panic, and never both.
func FuzzLoadTOML(f *testing.F) {
	f.Add([]byte(ExampleFile))
	f.Add([]byte("[log]\nlevel = \"loud\"\n"))
	f.Add([]byte("log = { level = \"debug\", format = 1 }\n"))
	f.Add([]byte("[[log]]\nlevel = 1\n"))
	f.Add([]byte("key_packages.lifetime = 5\nlisten = [[1]]\n"))
	f.Add([]byte("x = {"))
	dir := f.TempDir()
	path := filepath.Join(dir, "config.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(Sources{DataDirFlag: dir})
		if err != nil && !reflect.DeepEqual(c, Config{}) {
			t.Fatalf("Load returned a Config with error %v", err)
		}
	})
}

// An unknown SPACEPANDA_ variable is named but does not stop the daemon:
// CI runners and shells carry variables of their own (this suite's
// SPACEPANDA_REQUIRE_INTEROP is one).
func TestUnknownEnvWarns(t *testing.T) {
	src, _ := setup(t, "")
	src.Env = []string{"SPACEPANDA_LOG_LEVL=debug", "SPACEPANDA_LOG_LEVEL=warn", "SPACEPANDA_REQUIRE_INTEROP=1"}
	c, err := Load(src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"env SPACEPANDA_LOG_LEVL: unknown variable, ignored",
		"env SPACEPANDA_REQUIRE_INTEROP: unknown variable, ignored",
	}
	if !slices.Equal(c.Warnings, want) {
		t.Fatalf("warnings %q, want %q", c.Warnings, want)
	}
	if c.Log.Level != "warn" {
		t.Fatalf("log.level %q: the known variable beside them was not applied", c.Log.Level)
	}
}
