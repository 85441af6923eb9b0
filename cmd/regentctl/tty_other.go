//go:build !linux

package main

import "os"

// isTerminal is false off Linux: output is plain appended lines.
func isTerminal(*os.File) bool { return false }

// termWidth is the classic default.
func termWidth(*os.File) int { return 80 }
