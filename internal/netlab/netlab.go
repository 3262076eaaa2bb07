// Package netlab builds small virtual networks out of Linux network
// namespaces, so that tests (or a command) can run real daemons behind real
// NATs on one machine: an "internet" (a bridge in a switch namespace) with
// public hosts on it, and hosts each behind their own router namespace that
// masquerades with nftables. It shells out to iproute2 (`ip`) and nftables
// (`nft`) and needs root; Available says why a lab cannot be made here.
//
// The addresses are fixed: the internet is PublicNet (the hosts on it, the
// routers' WAN sides included, take .1, .2, ... in order), and the n-th
// NATed host sits alone on 10.n.0.0/24 behind its router at 10.n.0.1. The
// internet's range is one libp2p counts as public (manet.IsPublicAddr):
// the documentation ranges would be filtered out of hole punching and
// AutoNAT. Nothing leaves the lab, whose namespaces have no route to the
// machine's own network.
package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// PublicNet is the lab's internet. 100.128.0.0/24 lies just above the
// shared address space (100.64.0.0/10) and is ordinary unicast space, so
// libp2p treats its addresses as public; in the lab it reaches nothing
// outside.
const PublicNet = "100.128.0"

// NAT is how a router maps its hosts' flows to its public address.
type NAT int

const (
	// EndpointIndependent is plain masquerade: Linux keeps a flow's
	// source port when it is free, so one local socket appears under one
	// public address and port to every destination (RFC 4787
	// endpoint-independent mapping; filtering stays address and port
	// dependent, as conntrack only lets replies in).
	EndpointIndependent NAT = iota
	// Symmetric is masquerade with fully random ports: each new
	// destination sees the socket under another public port (RFC 4787
	// address and port dependent mapping), so the address a third party
	// observed is of no use to a peer.
	Symmetric
)

func (n NAT) String() string {
	switch n {
	case EndpointIndependent:
		return "endpoint-independent"
	case Symmetric:
		return "symmetric"
	}
	return "NAT(" + strconv.Itoa(int(n)) + ")"
}

// nftRule is the masquerade statement for each NAT type.
func (n NAT) nftRule() (string, error) {
	switch n {
	case EndpointIndependent:
		return "masquerade", nil
	case Symmetric:
		return "masquerade fully-random", nil
	}
	return "", fmt.Errorf("netlab: unknown NAT type %d", int(n))
}

// namePrefix starts every namespace netlab makes; the creating process's
// pid follows, so that New can remove what a killed run left behind.
const namePrefix = "spnl"

// Available returns nil when a lab can be made here, or says why not: not
// root, or iproute2 or nftables missing.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("netlab: network namespaces need root (CI runs as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("netlab: %s not found (install iproute2 and nftables): %w", tool, err)
		}
	}
	return nil
}

var labs atomic.Int64

// Lab is one virtual network. Close deletes every namespace it made; a
// process still running in one keeps running, so stop those first.
type Lab struct {
	prefix string
	inet   string // the switch namespace holding the bridge

	mu         sync.Mutex
	namespaces []string // in creation order
	public     int      // public addresses handed out
	lans       int      // NATed hosts made
	closed     bool
}

// Host is a namespace with one address on the lab's network.
type Host struct {
	// Namespace is the network namespace's name, for `ip netns exec`.
	Namespace string
	// Addr is the host's IPv4 address: on PublicNet for a public host or
	// a router, on its own LAN for a NATed host.
	Addr string
	// Public is the address the host's flows leave the lab's internet
	// with: Addr for a public host, its router's for a NATed one.
	Public string
}

// New makes a lab with an empty internet. It first deletes namespaces that
// earlier runs left behind when they were killed before their Close.
func New() (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	sweep()
	l := &Lab{prefix: fmt.Sprintf("%s%d-%d-", namePrefix, os.Getpid(), labs.Add(1))}
	inet, err := l.namespace("inet")
	if err != nil {
		l.Close()
		return nil, err
	}
	l.inet = inet
	if err := run("ip", "-n", inet, "link", "add", "br0", "type", "bridge"); err != nil {
		l.Close()
		return nil, err
	}
	if err := run("ip", "-n", inet, "link", "set", "br0", "up"); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// sweep deletes lab namespaces whose creating process is gone.
func sweep() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, namePrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			run("ip", "netns", "delete", name)
		}
	}
}

// namespace makes a namespace with its loopback up and records it for Close.
func (l *Lab) namespace(name string) (string, error) {
	full := l.prefix + name
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return "", errors.New("netlab: lab closed")
	}
	l.mu.Unlock()
	if err := run("ip", "netns", "add", full); err != nil {
		return "", err
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, full)
	l.mu.Unlock()
	if err := run("ip", "-n", full, "link", "set", "lo", "up"); err != nil {
		return "", err
	}
	return full, nil
}

// plug connects namespace ns to the internet's bridge with a veth pair,
// ns's end named ifname, and gives it the next public address.
func (l *Lab) plug(ns, ifname string) (string, error) {
	l.mu.Lock()
	l.public++
	n := l.public
	l.mu.Unlock()
	if n > 250 {
		return "", errors.New("netlab: internet full")
	}
	port := fmt.Sprintf("p%d", n)
	addr := fmt.Sprintf("%s.%d", PublicNet, n)
	steps := [][]string{
		{"ip", "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", port, "netns", l.inet},
		{"ip", "-n", l.inet, "link", "set", port, "master", "br0"},
		{"ip", "-n", l.inet, "link", "set", port, "up"},
		{"ip", "-n", ns, "addr", "add", addr + "/24", "dev", ifname},
		{"ip", "-n", ns, "link", "set", ifname, "up"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return "", err
		}
	}
	return addr, nil
}

// AddPublic makes a host on the internet with the next public address.
func (l *Lab) AddPublic(name string) (*Host, error) {
	ns, err := l.namespace(name)
	if err != nil {
		return nil, err
	}
	addr, err := l.plug(ns, "eth0")
	if err != nil {
		return nil, err
	}
	return &Host{Namespace: ns, Addr: addr, Public: addr}, nil
}

// AddNATed makes a host alone on its own LAN behind a router of its own:
// the router's WAN side takes the next public address, and it masquerades
// the LAN's flows out of it as nat says. It returns the host and the
// router.
func (l *Lab) AddNATed(name string, nat NAT) (host, router *Host, err error) {
	rule, err := nat.nftRule()
	if err != nil {
		return nil, nil, err
	}
	l.mu.Lock()
	l.lans++
	n := l.lans
	l.mu.Unlock()
	if n > 250 {
		return nil, nil, errors.New("netlab: too many LANs")
	}
	rns, err := l.namespace(name + "-router")
	if err != nil {
		return nil, nil, err
	}
	wan, err := l.plug(rns, "wan0")
	if err != nil {
		return nil, nil, err
	}
	hns, err := l.namespace(name)
	if err != nil {
		return nil, nil, err
	}
	lan := fmt.Sprintf("10.%d.0", n)
	steps := [][]string{
		{"ip", "link", "add", "lan0", "netns", rns, "type", "veth", "peer", "name", "eth0", "netns", hns},
		{"ip", "-n", rns, "addr", "add", lan + ".1/24", "dev", "lan0"},
		{"ip", "-n", rns, "link", "set", "lan0", "up"},
		{"ip", "-n", hns, "addr", "add", lan + ".2/24", "dev", "eth0"},
		{"ip", "-n", hns, "link", "set", "eth0", "up"},
		{"ip", "-n", hns, "route", "add", "default", "via", lan + ".1"},
		{"ip", "netns", "exec", rns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			return nil, nil, err
		}
	}
	// Only what leaves by the WAN side is translated; the router answers
	// nothing itself, so unsolicited packets from the internet that
	// conntrack does not map to a LAN flow are dropped, as a home
	// router's firewall would.
	ruleset := fmt.Sprintf(`table ip netlab {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "wan0" %s
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
		iifname "lan0" oifname "wan0" accept
		iifname "wan0" oifname "lan0" ct state established,related accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan0" ct state new drop
	}
}
`, rule)
	cmd := exec.Command("ip", "netns", "exec", rns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("netlab: nft in %s: %v: %s", rns, err, bytes.TrimSpace(out))
	}
	return &Host{Namespace: hns, Addr: lan + ".2", Public: wan}, &Host{Namespace: rns, Addr: wan, Public: wan}, nil
}

// Prefix is the command line that runs what follows it inside the host's
// namespace.
func (h *Host) Prefix() []string { return []string{"ip", "netns", "exec", h.Namespace} }

// Command is exec.Command for name and args run inside the host's
// namespace. `ip netns exec` execs the program in its own place, so the
// Cmd's process is the program itself and signals reach it.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append(append(h.Prefix()[1:], name), args...)...)
}

// Close deletes every namespace of the lab, the last made first, and
// returns the errors joined. It is idempotent.
func (l *Lab) Close() error {
	l.mu.Lock()
	names := l.namespaces
	l.namespaces, l.closed = nil, true
	l.mu.Unlock()
	var errs []error
	for i := len(names) - 1; i >= 0; i-- {
		if err := run("ip", "netns", "delete", names[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Namespaces lists the lab's namespaces, for a test to check that Close
// removed them.
func (l *Lab) Namespaces() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.namespaces...)
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netlab: %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
