// Command mlspeer is spacepanda's MLS interop peer: one MLS client (RFC
// 9420) built on package mlsgroup, driven by newline-delimited JSON on
// stdin and answering on stdout, in the protocol of the ts-mls interop peer
// (shared/interop/ts-mls-peer/README.md). Every MLS object it reads or
// writes is a TLS-serialized MLSMessage in standard base64, so it can be
// mixed with other implementations' peers in that peer's selftest.
//
// One process is one client with one Storage, the node's single provider
// of key material, which every group and KeyPackage of the process shares.
// State lives in memory only.
package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"time"
)

func main() {
	p := newPeer(rand.Reader, time.Now, os.Stderr)
	if err := p.serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mlspeer:", err)
		os.Exit(1)
	}
}
