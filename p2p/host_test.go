package p2p

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-datastore"
	"github.com/ipfs/go-datastore/query"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// versionValidator accepts values "v<digit>..." and prefers the highest.
type versionValidator struct{}

func (versionValidator) Validate(_ string, value []byte) error {
	if len(value) < 2 || value[0] != 'v' || value[1] < '0' || value[1] > '9' {
		return errors.New("not a version")
	}
	return nil
}

func (versionValidator) Select(_ string, values [][]byte) (int, error) {
	best := 0
	for i, v := range values {
		if bytes.Compare(v, values[best]) > 0 {
			best = i
		}
	}
	return best, nil
}

// TestDHTValues: among 10 hosts, a value put by one is found by every
// other; a value the validator prefers less never replaces a better one;
// invalid values and unknown namespaces are refused; a missing key is
// ErrNotFound, and a bounded context bounds the lookup.
func TestDHTValues(t *testing.T) {
	hosts := newHosts(t, 10, func(i int, cfg *Config) {
		cfg.Validators = map[string]Validator{"test": versionValidator{}}
	})
	connectSparse(t, hosts, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitForRoutingTables(t, hosts)

	if err := hosts[0].PutValue(ctx, "/test/a", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if err := hosts[5].PutValue(ctx, "/test/a", []byte("v1")); err != nil {
		// Host 5 may already hold v2, which it prefers.
		t.Logf("putting the older value: %v", err)
	}
	for i, h := range hosts {
		v, err := h.GetValue(ctx, "/test/a")
		if err != nil || string(v) != "v2" {
			t.Errorf("host %d: %q, %v; want v2", i, v, err)
		}
	}
	if err := hosts[1].PutValue(ctx, "/test/b", []byte("x")); err == nil {
		t.Error("invalid value stored")
	}
	if err := hosts[1].PutValue(ctx, "/other/b", []byte("v1")); err == nil {
		t.Error("value of an unknown namespace stored")
	}
	_, err := hosts[2].GetValue(ctx, "/test/missing")
	if !errors.Is(err, ErrNotFound) || !errors.Is(err, routing.ErrNotFound) {
		t.Errorf("missing key: %v, want ErrNotFound", err)
	}
	short, cancelShort := context.WithTimeout(ctx, time.Nanosecond)
	defer cancelShort()
	if _, err := hosts[2].GetValue(short, "/test/missing"); err == nil {
		t.Error("lookup with an expired context succeeded")
	}
}

// TestDHTRefusesIPFSNamespaces: a peer running kad-dht's defaults, which
// take IPFS's pk and ipns namespaces, cannot make a host store a public key
// record under /pk/, while a record in a configured namespace is stored and
// served.
func TestDHTRefusesIPFSNamespaces(t *testing.T) {
	t.Parallel()
	ds := dssync.MutexWrap(datastore.NewMapDatastore())
	cfg := testConfig(t)
	cfg.Validators = map[string]Validator{"test": versionValidator{}}
	cfg.Datastore = ds
	target := newHost(t, cfg)

	key, other := identity(t)
	lh, err := libp2p.New(libp2p.Identity(key), libp2p.ListenAddrStrings(loopbackAddrs[0]), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lh.Close() })
	foreign, err := dht.New(lh, dht.ProtocolPrefix(DHTProtocolPrefix), dht.Mode(dht.ModeServer),
		dht.NamespacedValidator("test", versionValidator{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { foreign.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := lh.Connect(ctx, peer.AddrInfo{ID: target.ID(), Addrs: target.host.Addrs()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the target in the routing table", func() bool { return foreign.RoutingTable().Find(target.ID()) != "" })

	pub, err := crypto.MarshalPublicKey(key.GetPublic())
	if err != nil {
		t.Fatal(err)
	}
	// The valid record first: once a peer's record fails validation, the
	// host refuses its PUTs for a while without looking at them.
	if err := foreign.PutValue(ctx, "/test/a", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	pkKey := routing.KeyForPublicKey(other)
	if err := foreign.PutValue(ctx, pkKey, pub); err != nil {
		t.Logf("putting %q: %v", pkKey, err)
	}
	stored := func(prefix string) bool {
		res, err := ds.Query(ctx, query.Query{Prefix: prefix, KeysOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		entries, err := res.Rest()
		if err != nil {
			t.Fatal(err)
		}
		return len(entries) > 0
	}
	if !stored("/test") {
		t.Fatal("the record in a configured namespace was not stored")
	}
	if v, err := target.GetValue(ctx, "/test/a"); err != nil || string(v) != "v1" {
		t.Fatalf("the record in a configured namespace: %q, %v", v, err)
	}
	if stored("/pk") {
		t.Error("the record under /pk/ was stored")
	}
	if v, err := target.GetValue(ctx, pkKey); err == nil {
		t.Errorf("the target serves %q: %x", pkKey, v)
	}
}

// waitForRoutingTables waits until every host's DHT routing table holds
// every other host.
func waitForRoutingTables(tb testing.TB, hosts []*Host) {
	tb.Helper()
	waitFor(tb, 30*time.Second, "routing tables", func() bool {
		for _, h := range hosts {
			if h.dht.RoutingTable().Size() < len(hosts)-1 {
				h.dht.RefreshRoutingTable()
				return false
			}
		}
		return true
	})
}

func TestConfigValidate(t *testing.T) {
	id, err := GenerateIdentity(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no identity", Config{}, "no Identity"},
		{"bad listen address", Config{Identity: id, ListenAddrs: []string{"tcp/1"}}, "listen address"},
		{"bootstrap without /p2p/", Config{Identity: id, BootstrapPeers: []string{"/ip4/127.0.0.1/tcp/1"}}, "bootstrap peer"},
		{"watermarks", Config{Identity: id, ConnLow: 10, ConnHigh: 5}, "ConnLow"},
		{"DHT mode", Config{Identity: id, DHTMode: 7}, "DHTMode"},
		{"message size", Config{Identity: id, MaxMessageSize: 1 << 30}, "MaxMessageSize"},
		{"sync pages", Config{Identity: id, MaxSyncPages: -1}, "MaxSyncPages -1"},
		{"peer streams", Config{Identity: id, MaxPeerStreams: -1}, "MaxPeerStreams -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.validate()
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("validate: %v, want ErrConfig about %s", err, tc.want)
			}
		})
	}
	cfg, err := Config{Identity: id}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.listen) != len(DefaultListenAddrs) || cfg.MaxRecordAge != 48*time.Hour || cfg.Logger == nil ||
		cfg.MaxSyncPages != 1024 || cfg.MaxPeerStreams != 4 {
		t.Fatalf("defaults not filled: %+v", cfg)
	}
}

// TestHostLifecycle: Close is idempotent and ends the host's goroutines;
// a bootstrap peer that is down does not stop New.
func TestHostLifecycle(t *testing.T) {
	cfg := testConfig(t)
	_, ghost := identity(t)
	cfg.BootstrapPeers = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/1/p2p/%s", ghost)}
	h := newHost(t, cfg)
	if len(h.Addrs()) != 2 || !strings.HasPrefix(h.Addrs()[0], "/ip4/127.0.0.1/") {
		t.Fatalf("Addrs = %v", h.Addrs())
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := h.QueueWelcome(PendingWelcome{ID: []byte("x"), To: ghost, Welcome: []byte("w"), Expires: time.Now().Add(time.Hour)}); !errors.Is(err, ErrClosed) {
		t.Fatalf("QueueWelcome after Close: %v", err)
	}
}

// TestSimultaneousDial: two hosts dialling each other at the same moment
// both succeed. With TCP port reuse they would meet in one TCP
// simultaneous open, both as initiator, and the handshake would fail.
func TestSimultaneousDial(t *testing.T) {
	for round := range 10 {
		a, b := newHost(t, testConfig(t)), newHost(t, testConfig(t))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs := make(chan error, 2)
		go func() { errs <- a.Connect(ctx, b.Addrs()[0]) }()
		go func() { errs <- b.Connect(ctx, a.Addrs()[0]) }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
		cancel()
		a.Close()
		b.Close()
	}
}
