package agent

// skipSelfFencing disables the safety invariant: a leader past its deadline
// or without the lease keeps PostgreSQL writable. It exists only so the
// fault-injection suite can prove it catches a broken agent (split brain,
// lost writes); it is true only in a binary built with
// `-tags regent_unsafe_nofence`, never in a release.
var skipSelfFencing = false
