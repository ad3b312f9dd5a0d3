// Package version is the build's version, stamped at link time by
// `make release` (hack/release.sh) into every binary:
//
//	go build -ldflags "-X github.com/loopguard/loopguard/internal/version.Version=v0.1.0 \
//	  -X github.com/loopguard/loopguard/internal/version.Commit=0123abcd" ./cmd/...
//
// Unstamped builds report the module version (`go install ...@v0.1.0`) or
// "dev", and the VCS revision the go command recorded.
package version

import (
	"runtime"
	"runtime/debug"
)

// Set with -ldflags -X; empty in an unstamped build.
var (
	Version = ""
	Commit  = ""
)

// Get is Version, else the module version, else "dev".
func Get() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// GetCommit is Commit, else the first 12 digits of the VCS revision, else
// "unknown".
func GetCommit() string {
	if Commit != "" {
		return Commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "unknown"
}

// GoVersion is the Go release that built the binary.
func GoVersion() string { return runtime.Version() }

// KeysAndValues are the version as logr key/value pairs, for a startup log.
func KeysAndValues() []any {
	return []any{"version", Get(), "commit", GetCommit(), "goVersion", GoVersion(), "platform", runtime.GOOS + "/" + runtime.GOARCH}
}
