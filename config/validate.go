package config

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// maxSocketPath is the longest unix socket path every platform we run on
// accepts: sockaddr_un's sun_path is 108 bytes on Linux and 104 on the BSDs
// and macOS, including the terminating NUL.
const maxSocketPath = 103

// validate checks every key of c and returns one *Error per problem, each
// naming the layer (from) that set the bad value.
func validate(c *Config, from map[string]string) []error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		src, ok := from[key]
		if !ok {
			src = "default"
		}
		errs = append(errs, &Error{Key: key, Source: src, Err: fmt.Errorf(format, args...)})
	}

	for i, s := range c.Listen {
		if _, err := ma.NewMultiaddr(s); err != nil {
			bad("listen", "entry %d %q is not a multiaddr: %v", i, s, err)
		}
	}
	for i, s := range c.Bootstrap {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			bad("bootstrap", "entry %d %q is not a multiaddr: %v", i, s, err)
			continue
		}
		// The peer ID is what authenticates a bootstrap peer: without it
		// anyone at that address could pose as one.
		if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
			bad("bootstrap", "entry %d %q does not end in /p2p/<peer ID>: %v", i, s, err)
		}
	}
	for i, s := range c.NAT.Relays {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			bad("nat.relays", "entry %d %q is not a multiaddr: %v", i, s, err)
			continue
		}
		// As for bootstrap peers: the relay is known by its peer ID.
		if _, err := peer.AddrInfoFromP2pAddr(m); err != nil {
			bad("nat.relays", "entry %d %q does not end in /p2p/<peer ID>: %v", i, s, err)
		}
	}
	switch c.NAT.Reachability {
	case "auto", "public", "private":
	default:
		bad("nat.reachability", "%q is not one of auto, public, private", c.NAT.Reachability)
	}
	for i, s := range c.AutoAccept {
		if _, err := peer.Decode(s); err != nil {
			bad("auto_accept", "entry %d %q is not a peer ID: %v", i, s, err)
		}
	}
	if len(c.Socket) > maxSocketPath {
		bad("socket", "path %q is %d bytes, longer than the %d a unix socket allows", c.Socket, len(c.Socket), maxSocketPath)
	}

	positive := func(key string, d Duration) bool {
		if d.Duration <= 0 {
			bad(key, "must be positive, got %s", d)
			return false
		}
		return true
	}
	positive("settle_window", c.SettleWindow)
	positive("sync_interval", c.SyncInterval)
	kp := c.KeyPackages
	if kp.BatchSize <= 0 {
		bad("key_packages.batch_size", "must be at least 1, got %d", kp.BatchSize)
	}
	if positive("key_packages.lifetime", kp.Lifetime) {
		// A KeyPackage replaced as soon as it is made, or records that
		// expire between two republishes, would leave the directory
		// empty most of the time.
		if positive("key_packages.rotate_before", kp.RotateBefore) && kp.RotateBefore.Duration >= kp.Lifetime.Duration {
			bad("key_packages.rotate_before", "%s must be shorter than key_packages.lifetime %s (from %s)",
				kp.RotateBefore, kp.Lifetime, sourceOf(from, "key_packages.lifetime"))
		}
		if positive("key_packages.republish", kp.Republish) && kp.Republish.Duration >= kp.Lifetime.Duration {
			bad("key_packages.republish", "%s must be shorter than key_packages.lifetime %s (from %s)",
				kp.Republish, kp.Lifetime, sourceOf(from, "key_packages.lifetime"))
		}
	} else {
		positive("key_packages.rotate_before", kp.RotateBefore)
		positive("key_packages.republish", kp.Republish)
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "%q is not one of text, json", c.Log.Format)
	}
	if c.Metrics.Listen != "" {
		if err := loopbackHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "%q: %v", c.Metrics.Listen, err)
		}
	}
	return errs
}

func sourceOf(from map[string]string, key string) string {
	if s, ok := from[key]; ok {
		return s
	}
	return "default"
}

func loopbackHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("port %q is not a number from 1 to 65535", port)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("host must be loopback (127.0.0.1, ::1 or localhost): the endpoint has no authentication")
}
