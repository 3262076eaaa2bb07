// Package buildinfo says which build of spacepanda is running, for
// `spacepandad version`, `spacepanda version` and the daemon's identity
// answer, so that the CLI can warn when it and the daemon differ.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// version may be set at link time (-ldflags "-X .../buildinfo.version=v1.2.3")
// by a release build; otherwise the module and VCS stamps decide.
var version string

var once = sync.OnceValue(func() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	// "(devel)" is what `go build` in a checkout reports; the commit says
	// more, and two binaries built from one checkout then agree.
	if (v == "" || v == "(devel)") && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "devel-" + rev + modified
	}
	if v == "" {
		return "(devel)"
	}
	return v
})

// Version is this binary's version: the link-time version if any, the
// module version for `go install`ed builds, else "devel-" and the commit.
func Version() string { return once() }
