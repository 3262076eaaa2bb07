// Package buildinfo says which build of spacepanda is running, for
// `spacepandad version`, `spacepanda version` and the daemon's identity
// answer, so that the CLI can warn when it and the daemon differ.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// version may be set at link time (-ldflags "-X .../buildinfo.version=v1.2.3")
// by a release build; otherwise the build stamps decide.
var version string

var once = sync.OnceValue(func() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return FromBuildInfo(bi)
})

// Version is this binary's version: the link-time version if any, else
// FromBuildInfo of its own build.
func Version() string { return once() }

// FromBuildInfo is the main module's version when the binary was built
// from a tagged module (go install ...@v1.2.3), else "devel-" and the
// first 12 hex digits of the VCS revision (so two binaries built from one
// checkout agree), else "devel" (built with -buildvcs=false, or outside a
// checkout).
func FromBuildInfo(bi *debug.BuildInfo) string {
	// "(devel)" is what the go command records for a main module built
	// from its own source tree rather than fetched at a version.
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			rev := s.Value
			if len(rev) > 12 {
				rev = rev[:12]
			}
			return "devel-" + rev
		}
	}
	return "devel"
}
