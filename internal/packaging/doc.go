// Package packaging holds the test of the Debian package: it builds the
// package with `make deb` (packaging/nfpm.yaml), installs it on this
// machine with dpkg -i, checks what it put where, and removes it again.
// It has no code of its own; the package definition lives in
// packaging/ at the repository root.
package packaging
