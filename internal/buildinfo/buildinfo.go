package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// DefaultVersion is the version of a build that was not given one: a plain
// `go build` or `go install` outside `make build`/`make release`, which set
// Version from `git describe`. "-dev" marks it as an unreleased build; see
// docs/operations.md ("Versions") for why the numbering starts at 1.0.0.
const DefaultVersion = "1.0.0-dev"

// Version is Regent's version. It is a variable so a build can set it
// (-ldflags "-X github.com/regent-ha/regent/internal/buildinfo.Version=…",
// see the Makefile) and the chaos suite's deliberately unsafe build can
// mark itself.
var Version = DefaultVersion

// Commit and Date are set by the Makefile's -ldflags (the commit's short
// hash, "-dirty" when the tree had changes, and the build time in RFC 3339,
// UTC). Empty in other builds: Info falls back to what the Go toolchain
// stamped into the binary.
var (
	Commit string
	Date   string
)

// Info describes the running binary.
type Info struct {
	Version string
	Commit  string // "unknown" when neither -ldflags nor the toolchain recorded it
	Date    string // "unknown" likewise
	Go      string // the Go release that built it
}

// Get returns this binary's Info.
func Get() Info {
	info := Info{Version: Version, Commit: Commit, Date: Date, Go: runtime.Version()}
	if info.Commit == "" || info.Date == "" {
		// `go build` inside a git checkout stamps the revision and commit
		// time (-buildvcs); use them when the Makefile did not say.
		if bi, ok := debug.ReadBuildInfo(); ok {
			vcs := map[string]string{}
			for _, s := range bi.Settings {
				vcs[s.Key] = s.Value
			}
			if info.Commit == "" && vcs["vcs.revision"] != "" {
				info.Commit = short(vcs["vcs.revision"])
				if vcs["vcs.modified"] == "true" {
					info.Commit += "-dirty"
				}
			}
			if info.Date == "" {
				info.Date = vcs["vcs.time"]
			}
		}
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	if info.Date == "" {
		info.Date = "unknown"
	}
	return info
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// String is what `regent version` and `regentctl version` print after the
// program's name: one line per field, stable for scripts.
func (i Info) String() string {
	return fmt.Sprintf("%s\ncommit: %s\nbuilt: %s\ngo: %s\n", i.Version, i.Commit, i.Date, i.Go)
}
