// Package chaostest runs seeded chaos schedules against real spacepandad
// processes: application messages from random members, concurrent
// commits, partitions of the members into two halves, and SIGKILL of a
// daemon with a restart after a delay. After a schedule every member must
// be in one epoch with one epoch authenticator, and every message whose
// send the daemon acknowledged must be in every member's history exactly
// once (issue 10, acceptance 4).
//
// Each daemon listens on a loopback address of its own (127.a.b.c) and
// runs under a group ID of its own, so that nftables can tell the daemons
// apart: spacepandad dials without port reuse, so an outgoing connection
// would leave from 127.0.0.1 whoever makes it; a source NAT rule keyed on
// the socket's group ID rewrites it to the dialler's own address. A
// partition is then a table of its own that drops packets between two
// address sets in both directions, and healing deletes it.
package chaostest

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Host is a daemon as the firewall knows it: the loopback address it
// listens on and the group ID its process runs under.
type Host struct {
	Addr netip.Addr
	Gid  uint32
}

// Available says why nftables cannot be used here, or nil: nft must be
// installed and the process allowed to make tables (root, or
// CAP_NET_ADMIN; setting a daemon's group ID needs root as well).
func Available() error {
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("nft is not installed: %w", err)
	}
	if os.Geteuid() != 0 {
		return errors.New("not root: running daemons under group IDs of their own and changing nftables need root")
	}
	name := tableName("probe")
	if err := nft(fmt.Sprintf("table ip %s {\n}\n", name)); err != nil {
		return fmt.Errorf("nft may not make tables here: %w", err)
	}
	return nft(fmt.Sprintf("delete table ip %s\n", name))
}

var tables atomic.Uint64

// tableName is unique to this process and call, so that tests running
// at once (in this process or others) never touch each other's tables.
func tableName(what string) string {
	return fmt.Sprintf("spacepanda_chaos_%d_%d_%s", os.Getpid(), tables.Add(1), what)
}

// nft runs an nft script.
func nft(script string) error {
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %v: %s\nscript:\n%s", err, strings.TrimSpace(out.String()), script)
	}
	return nil
}

// Firewall owns a test's nftables tables: the source NAT that gives each
// daemon's outgoing connections its own address, and at most one
// partition at a time. Both are deleted in t.Cleanup, also when the test
// fails.
type Firewall struct {
	nat string

	mu  sync.Mutex
	cut string // the partition's table, "" when healed
}

// NewFirewall installs the source NAT for hosts.
func NewFirewall(t testing.TB, hosts []Host) *Firewall {
	t.Helper()
	f := &Firewall{nat: tableName("nat")}
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n\tchain post {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n", f.nat)
	for _, h := range hosts {
		fmt.Fprintf(&b, "\t\tmeta skgid %d ip daddr 127.0.0.0/8 snat to %s\n", h.Gid, h.Addr)
	}
	b.WriteString("\t}\n}\n")
	if err := nft(b.String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Heal(); err != nil {
			t.Error(err)
		}
		if err := nft(fmt.Sprintf("delete table ip %s\n", f.nat)); err != nil {
			t.Error(err)
		}
	})
	return f
}

// Partition drops every packet between an address of a and one of b, in
// both directions. Two chains, because no one hook sees both directions
// with their real addresses: a dialler's packets carry its own address
// only after the source NAT (postrouting), and the answers of the side
// that was dialled are translated back to 127.0.0.1 in output already,
// so they are caught before that (priority raw).
func (f *Firewall) Partition(a, b []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut != "" {
		return fmt.Errorf("chaostest: a partition is already in place (%s)", f.cut)
	}
	set := func(as []netip.Addr) string {
		s := make([]string, len(as))
		for i, a := range as {
			s[i] = a.String()
		}
		return "{ " + strings.Join(s, ", ") + " }"
	}
	name := tableName("cut")
	rules := fmt.Sprintf("\t\tip saddr %s ip daddr %s drop\n\t\tip saddr %[2]s ip daddr %[1]s drop\n", set(a), set(b))
	script := fmt.Sprintf("table ip %s {\n"+
		"\tchain out {\n\t\ttype filter hook output priority raw; policy accept;\n%s\t}\n"+
		"\tchain post {\n\t\ttype filter hook postrouting priority srcnat + 100; policy accept;\n%[2]s\t}\n}\n", name, rules)
	if err := nft(script); err != nil {
		return err
	}
	f.cut = name
	return nil
}

// Heal deletes the partition, if there is one.
func (f *Firewall) Heal() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut == "" {
		return nil
	}
	if err := nft(fmt.Sprintf("delete table ip %s\n", f.cut)); err != nil {
		return err
	}
	f.cut = ""
	return nil
}
