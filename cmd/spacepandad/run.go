package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spacepanda/spacepanda/config"
	"github.com/spacepanda/spacepanda/internal/buildinfo"
	"github.com/spacepanda/spacepanda/node"
	"github.com/spacepanda/spacepanda/p2p"
	"github.com/spacepanda/spacepanda/rpc"
	"github.com/spacepanda/spacepanda/rpc/api"
)

// listFlag is a repeatable flag; each occurrence is one entry.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// flags maps each command-line flag to its config key; the flag's name is
// the key with dots and underscores as dashes, as users type them.
var (
	scalarKeys = map[string]string{
		"socket":        "socket",
		"mdns":          "mdns",
		"settle-window": "settle_window",
		"sync-interval": "sync_interval",
		"log-level":     "log.level",
		"log-format":    "log.format",
		"metrics":       "metrics.listen",

		"port-map":        "nat.port_map",
		"hole-punching":   "nat.hole_punching",
		"relay-service":   "nat.relay_service",
		"autonat-service": "nat.autonat_service",
		"reachability":    "nat.reachability",
	}
	listKeys = map[string]string{
		"listen":      "listen",
		"bootstrap":   "bootstrap",
		"auto-accept": "auto_accept",
		"relay":       "nat.relays",
	}
)

const usage = `spacepandad runs a spacepanda node in the foreground.

Usage:
  spacepandad [flags]     run the node
  spacepandad version     print the version
  spacepandad config      print the effective configuration as TOML

Configuration: defaults, then <data dir>/config.toml (or --config), then
SPACEPANDA_* environment variables, then flags.

Flags:
`

// run is the daemon; its exit status is the return value.
func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("spacepandad", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data-dir", "", "data directory (default $SPACEPANDA_DATA_DIR, else $XDG_DATA_HOME/spacepanda)")
	configFile := fs.String("config", "", "config file (default <data dir>/config.toml if it exists)")
	lists := map[string]*listFlag{}
	for name, help := range map[string]string{
		"listen":      "libp2p multiaddr to listen on (repeatable)",
		"bootstrap":   "bootstrap peer multiaddr ending in /p2p/<id> (repeatable)",
		"auto-accept": "peer ID whose invitations are accepted without asking (repeatable)",
		"relay":       "circuit relay multiaddr ending in /p2p/<id> (repeatable)",
	} {
		lists[name] = new(listFlag)
		fs.Var(lists[name], name, help)
	}
	fs.String("socket", "", "JSON-RPC socket path (default <data dir>/spacepanda.sock)")
	fs.Bool("mdns", false, "discover peers on the local network")
	fs.String("settle-window", "", "how long competing commits of an epoch are gathered (e.g. 1s)")
	fs.String("sync-interval", "", "how often each channel catches up with its members and compares views (e.g. 30s)")
	fs.String("log-level", "", "debug, info, warn or error")
	fs.String("log-format", "", "text or json")
	fs.String("metrics", "", "serve Prometheus metrics on this loopback host:port")
	fs.Bool("port-map", false, "ask the home router for a port mapping (UPnP, NAT-PMP)")
	fs.Bool("hole-punching", false, "upgrade relayed connections by hole punching; use relays while unreachable")
	fs.Bool("relay-service", false, "relay for others (public nodes only)")
	fs.Bool("autonat-service", false, "tell other nodes whether they are reachable (public nodes only)")
	fs.String("reachability", "", "auto, public or private")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cmd := ""
	switch fs.NArg() {
	case 0:
	case 1:
		cmd = fs.Arg(0)
	default:
		fmt.Fprintf(stderr, "spacepandad: unexpected arguments %q\n", fs.Args()[1:])
		return 2
	}
	if cmd == "version" {
		fmt.Fprintf(stdout, "spacepandad %s (api %d)\n", buildinfo.Version(), api.Version)
		return 0
	}
	if cmd != "" && cmd != "config" {
		fmt.Fprintf(stderr, "spacepandad: unknown command %q (want version or config)\n", cmd)
		return 2
	}

	src := config.Sources{
		Flags:       map[string]string{},
		FlagLists:   map[string][]string{},
		Env:         env,
		DataDirFlag: *dataDir,
		ConfigFlag:  *configFile,
		Home:        lookup(env, "HOME"),
		XDGDataHome: lookup(env, "XDG_DATA_HOME"),
	}
	// Only the flags given, so that a flag's default never hides the
	// file or the environment.
	fs.Visit(func(f *flag.Flag) {
		if k, ok := scalarKeys[f.Name]; ok {
			src.Flags[k] = f.Value.String()
		}
		if k, ok := listKeys[f.Name]; ok {
			src.FlagLists[k] = *lists[f.Name]
		}
	})
	cfg, err := config.Load(src)
	if err != nil {
		fmt.Fprintf(stderr, "spacepandad: configuration:\n%s\n", indent(err.Error()))
		return 2
	}
	if cmd == "config" {
		b, err := cfg.TOML()
		if err != nil {
			fmt.Fprintf(stderr, "spacepandad: %v\n", err)
			return 1
		}
		stdout.Write(b)
		return 0
	}
	if err := daemon(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "spacepandad: %v\n", err)
		return 1
	}
	return 0
}

func daemon(ctx context.Context, cfg config.Config, stdout, stderr io.Writer) error {
	log := newLogger(cfg.Log, stderr)
	for _, w := range cfg.Warnings {
		log.Warn("configuration: " + w)
	}
	if err := dataDir(cfg.DataDir); err != nil {
		return err
	}
	ncfg, err := nodeConfig(cfg, log)
	if err != nil {
		return err
	}
	n, err := node.Open(ctx, ncfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := n.Close(); err != nil {
			log.Error("closing the node", "err", err)
		}
	}()

	ln, err := rpc.Listen(cfg.Socket)
	if err != nil {
		return err
	}
	srv := rpc.New(n, rpc.Options{Version: buildinfo.Version(), Logger: log.With("component", "rpc"), SocketPath: cfg.Socket})

	var metricsDone chan error
	var ms *http.Server
	if cfg.Metrics.Listen != "" {
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics: %w", err)
		}
		ms = &http.Server{Handler: metricsHandler(n), ReadHeaderTimeout: 5 * time.Second}
		metricsDone = make(chan error, 1)
		go func() { metricsDone <- ms.Serve(mln) }()
		defer ms.Close()
		fmt.Fprintf(stdout, "metrics: http://%s/metrics\n", mln.Addr())
	}

	fmt.Fprintf(stdout, "spacepandad %s\n", buildinfo.Version())
	fmt.Fprintf(stdout, "peer id: %s\n", n.ID())
	for _, a := range n.Addrs() {
		fmt.Fprintf(stdout, "listening: %s\n", a)
	}
	fmt.Fprintf(stdout, "socket: %s\n", cfg.Socket)
	fmt.Fprintf(stdout, "data dir: %s\n", cfg.DataDir)
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	log.Info("serving", "peer", n.ID(), "socket", cfg.Socket)

	err = srv.ServeListener(ctx, ln)
	log.Info("shutting down")
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// dataDir makes the data directory, 0700, or checks that an existing one
// is this user's alone: it holds the node's private keys (identity, MLS
// secrets, KeyPackage private keys) and usually the socket, so a
// directory others may read or write would hand them the keys or let
// them plant files; one of another uid is theirs to change at will.
// MkdirAll leaves an existing directory's mode as it is, hence the check.
func dataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("data directory %s: no owner in its status", dir)
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return fmt.Errorf("data directory %s (mode %04o) is owned by uid %d, not by this user (uid %d): it holds the node's private keys, so it must be yours alone; "+
			"use a directory of your own (--data-dir), or as root `chown -R %d %s && chmod 700 %s`",
			dir, fi.Mode().Perm(), st.Uid, uid, uid, dir, dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("data directory %s has mode %04o (owner uid %d): other users may enter it, and it holds the node's private keys; fix it with `chmod 700 %s`",
			dir, perm, st.Uid, dir)
	}
	return nil
}

// nodeConfig copies what the node needs out of the daemon's config.
func nodeConfig(cfg config.Config, log *slog.Logger) (node.Config, error) {
	nc := node.Config{
		DataDir:        cfg.DataDir,
		ListenAddrs:    cfg.Listen,
		BootstrapPeers: cfg.Bootstrap,
		MDNS:           cfg.MDNS,
		SettleWindow:   cfg.SettleWindow.Duration,
		SyncInterval:   cfg.SyncInterval.Duration,
		KeyPackages: node.KeyPackageSchedule{
			BatchSize:         cfg.KeyPackages.BatchSize,
			Lifetime:          cfg.KeyPackages.Lifetime.Duration,
			RotateBefore:      cfg.KeyPackages.RotateBefore.Duration,
			RepublishInterval: cfg.KeyPackages.Republish.Duration,
		},
		Logger: log,
	}
	nc.P2P.NATPortMap = cfg.NAT.PortMap
	nc.P2P.HolePunching = cfg.NAT.HolePunching
	nc.P2P.StaticRelays = cfg.NAT.Relays
	nc.P2P.RelayService = cfg.NAT.RelayService
	nc.P2P.AutoNATService = cfg.NAT.AutoNATService
	nc.P2P.Reachability = map[string]p2p.Reachability{
		"auto": p2p.ReachabilityAuto, "public": p2p.ReachabilityPublic, "private": p2p.ReachabilityPrivate,
	}[cfg.NAT.Reachability] // config validated it
	for _, s := range cfg.AutoAccept {
		// config validated these; a failure here is a bug, said plainly.
		id, err := peer.Decode(s)
		if err != nil {
			return nc, fmt.Errorf("auto_accept: %q: %w", s, err)
		}
		nc.AutoAccept = append(nc.AutoAccept, id)
	}
	return nc, nil
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func lookup(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
