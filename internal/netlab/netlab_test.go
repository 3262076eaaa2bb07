package netlab_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spacepanda/spacepanda/internal/netlab"
)

// newLab makes a lab that the test's cleanup deletes, or skips the test
// where namespaces cannot be made.
func newLab(t *testing.T) *netlab.Lab {
	t.Helper()
	if err := netlab.Available(); err != nil {
		t.Skipf("no network namespaces here: %v", err)
	}
	l, err := netlab.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// The helper process is this test binary run again inside a namespace,
// with NETLAB_HELPER saying what to be.
func TestMain(m *testing.M) {
	switch os.Getenv("NETLAB_HELPER") {
	case "":
		os.Exit(m.Run())
	case "udp-echo":
		// Answers each datagram with the address it came from, as the
		// far side of a NAT sees it.
		c, err := net.ListenPacket("udp4", os.Getenv("NETLAB_ADDR"))
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		buf := make([]byte, 64)
		for {
			_, from, err := c.ReadFrom(buf)
			if err != nil {
				os.Exit(1)
			}
			c.WriteTo([]byte(from.String()), from)
		}
	case "udp-probe":
		// Sends from one socket to each address in NETLAB_PEERS and prints
		// how each saw it; an unanswered probe prints "none".
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		buf := make([]byte, 64)
		for _, p := range strings.Split(os.Getenv("NETLAB_PEERS"), ",") {
			to, err := net.ResolveUDPAddr("udp4", p)
			if err != nil {
				fmt.Println("error:", err)
				os.Exit(1)
			}
			seen := "none"
			for try := 0; try < 5 && seen == "none"; try++ {
				c.WriteTo([]byte("?"), to)
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
				if n, _, err := c.ReadFrom(buf); err == nil {
					seen = string(buf[:n])
				}
			}
			fmt.Println(seen)
		}
		os.Exit(0)
	}
	os.Exit(2)
}

// helper starts this binary as helper kind in h, killed at cleanup.
func helper(t *testing.T, h *netlab.Host, kind string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := h.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), "NETLAB_HELPER="+kind), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

// TestNATMapping checks each NAT type through the lab: a NATed host's
// datagrams reach the internet from its router's address, under one port
// for every destination behind plain masquerade and under a port per
// destination behind the symmetric one; the internet cannot reach the
// NATed host's own address.
func TestNATMapping(t *testing.T) {
	for _, nat := range []netlab.NAT{netlab.EndpointIndependent, netlab.Symmetric} {
		t.Run(nat.String(), func(t *testing.T) {
			l := newLab(t)
			var echoes []string
			for _, name := range []string{"echo1", "echo2"} {
				h, err := l.AddPublic(name)
				if err != nil {
					t.Fatal(err)
				}
				addr := h.Addr + ":9999"
				_, sc := helper(t, h, "udp-echo", "NETLAB_ADDR="+addr)
				if !sc.Scan() || sc.Text() != "ready" {
					t.Fatalf("echo in %s did not start: %q", h.Namespace, sc.Text())
				}
				echoes = append(echoes, addr)
			}
			host, router, err := l.AddNATed("client", nat)
			if err != nil {
				t.Fatal(err)
			}
			if host.Public != router.Addr || !strings.HasPrefix(router.Addr, netlab.PublicNet+".") {
				t.Fatalf("host's public address %s, router's %s", host.Public, router.Addr)
			}
			cmd, sc := helper(t, host, "udp-probe", "NETLAB_PEERS="+strings.Join(echoes, ","))
			var seen []string
			for sc.Scan() {
				seen = append(seen, sc.Text())
			}
			cmd.Wait()
			if len(seen) != 2 {
				t.Fatalf("probe printed %q", seen)
			}
			var ports []string
			for _, s := range seen {
				ip, port, err := net.SplitHostPort(s)
				if err != nil {
					t.Fatalf("echo saw %q: %v", s, err)
				}
				if ip != router.Addr {
					t.Errorf("echo saw the host as %s, want its router's %s", ip, router.Addr)
				}
				ports = append(ports, port)
			}
			same := ports[0] == ports[1]
			t.Logf("%s: the two echoes saw %v", nat, seen)
			if nat == netlab.EndpointIndependent && !same {
				t.Errorf("plain masquerade mapped one socket to ports %v", ports)
			}
			// Two random ports collide once in about 28,000 runs.
			if nat == netlab.Symmetric && same {
				t.Errorf("fully random masquerade kept port %s for both destinations", ports[0])
			}

			// The internet has no way to the LAN.
			echo, err := l.AddPublic("probe")
			if err != nil {
				t.Fatal(err)
			}
			cmd, sc = helper(t, echo, "udp-probe", "NETLAB_PEERS="+host.Addr+":9")
			sc.Scan()
			cmd.Wait()
			if sc.Text() != "none" {
				t.Errorf("a public host reached the NATed host's own address: %q", sc.Text())
			}
		})
	}
}

// TestCloseDeletesNamespaces: nothing of a lab is left after Close.
func TestCloseDeletesNamespaces(t *testing.T) {
	if err := netlab.Available(); err != nil {
		t.Skipf("no network namespaces here: %v", err)
	}
	l, err := netlab.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := l.AddNATed("a", netlab.Symmetric); err != nil {
		l.Close()
		t.Fatal(err)
	}
	made := l.Namespaces()
	if len(made) != 3 {
		t.Errorf("made %q, want the internet, a router and a host", made)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		if slices.Contains(made, name) {
			t.Errorf("namespace %s is left after Close", name)
		}
	}
	if _, err := l.AddPublic("late"); err == nil {
		t.Error("a closed lab made a host")
	}
}
