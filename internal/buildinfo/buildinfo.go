package buildinfo

// Version is Regent's version. It is a variable so a build can set it
// (-ldflags "-X github.com/regent-ha/regent/internal/buildinfo.Version=…")
// and the chaos suite's deliberately unsafe build can mark itself.
var Version = "0.1.0"
