package genconfig

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its last test: every
// goroutine has an owner and a way out (house style 7).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
