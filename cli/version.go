package cli

import "github.com/spacepanda/spacepanda/internal/buildinfo"

// buildVersion is this binary's version; the daemon reports its own, and
// the two are compared to warn about a CLI and daemon of different builds.
func buildVersion() string { return buildinfo.Version() }
