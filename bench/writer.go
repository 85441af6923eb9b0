package bench

import (
	"context"
	"fmt"
	"time"
)

// The switchover writer (a testcluster.Writer routed by trying every
// node): a numbered INSERT every writeEvery.
const (
	writeEvery = 10 * time.Millisecond
	// writeTimeout bounds one try on one node, connect included.
	writeTimeout = 250 * time.Millisecond
)

// PollUntil calls check every `every` until it returns nil, and returns
// its last error if that does not happen within timeout.
func PollUntil(ctx context.Context, timeout, every time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}
