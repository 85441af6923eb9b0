package testcluster

import (
	"context"
	"time"
)

// Helpers the e2e tests share with the other harnesses' users.

// Eventually is Poll for checks whose failure should not stop the test:
// it returns nil once check does, or check's last error after timeout.
func Eventually(ctx context.Context, timeout time.Duration, check func(ctx context.Context) error) error {
	return poll(ctx, timeout, check)
}
