//go:build !unix

package fencing

import "os/exec"

// ownProcessGroup: without process groups only the command itself is
// killed at the timeout (exec.CommandContext's default).
func ownProcessGroup(*exec.Cmd) {}

func killProcessGroup(int) {}
