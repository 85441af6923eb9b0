//go:build regent_unsafe_nofence

package agent

import "github.com/regent-ha/regent/internal/buildinfo"

// A deliberately broken build for the chaos suite's self-test.
func init() {
	skipSelfFencing = true
	buildinfo.Version += "-UNSAFE-NOFENCE"
}
