// Package version names the build of qpnode, qpd and qpctl.
//
// A release build stamps the version with the linker:
//
//	go build -ldflags "-X github.com/quicproquo/quicproquo/internal/version.stamped=v1.2.3" ./...
//
// Without a stamp the version comes from the Go build information: the
// module version when built with `go install module@version`, else the VCS
// revision (with "+dirty" for a modified tree) when the build recorded it,
// else "dev".
package version

import "runtime/debug"

// stamped is set at build time with -ldflags -X.
var stamped string

// String is the version of this build.
func String() string {
	if stamped != "" {
		return stamped
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "dev-" + rev + dirty
}
