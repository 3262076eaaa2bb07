package cli

import "runtime/debug"

// buildVersion is the main module's version when the binary was built from a
// tagged module (go install ...@v1.2.3), else "devel-" and the first 12
// hex digits of the VCS revision, else "devel" (e.g. built with
// -buildvcs=false, or from a tree that is not a checkout).
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return version(bi)
}

func version(bi *debug.BuildInfo) string {
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
