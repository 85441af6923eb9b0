//go:build regent_unsafe_nofence

package agent

// A deliberately broken build for the chaos suite's self-test.
func init() {
	skipSelfFencing = true
	Version += "-UNSAFE-NOFENCE"
}
