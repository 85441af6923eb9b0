//go:build !linux

package fencing

import (
	"fmt"
	"os"
	"runtime"
)

// OpenLinux reports that no watchdog device is supported on this platform;
// the error wraps os.ErrNotExist, so automatic mode leads without one.
func OpenLinux(path string) (Device, error) {
	return nil, fmt.Errorf("watchdog %s: not supported on %s: %w", path, runtime.GOOS, os.ErrNotExist)
}
