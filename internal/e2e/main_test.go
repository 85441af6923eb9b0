package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/regent-ha/regent/internal/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// Bounds on the events the tests wait for. Generous for 2 busy cores; a
// healthy agent is far faster (bootstrap ≈ initdb + 2 basebackups).
const (
	bootstrapTimeout = 90 * time.Second // includes the first agent build only via New
	rejoinTimeout    = 60 * time.Second
	replicateTimeout = 15 * time.Second
)

// str renders a JSON value (string or json.Number) for comparisons.
func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// num returns a JSON number as int64, or an error naming the field.
func num(doc map[string]any, field string) (int64, error) {
	v, ok := doc[field]
	if !ok {
		return 0, fmt.Errorf("%s missing", field)
	}
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("%s = %#v, not a number", field, v)
	}
	i, err := n.Int64()
	if err != nil {
		return 0, fmt.Errorf("%s = %s: %w", field, n, err)
	}
	return i, nil
}

// numAtLeast checks that doc[field] is a number of at least least.
func numAtLeast(doc map[string]any, field string, least int64) error {
	v, err := num(doc, field)
	if err != nil {
		return err
	}
	if v < least {
		return fmt.Errorf("%s = %d, want ≥ %d", field, v, least)
	}
	return nil
}

// getKey reads key from c's etcd (bounded by 5 s), failing the test when
// etcd does not answer; resp.Kvs is empty when the key does not exist.
func getKey(t *testing.T, c *testcluster.Cluster, key string) *clientv3.GetResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := c.Etcd().Get(ctx, key)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return resp
}

// waitRows waits until count(*) of query on every node equals want.
func waitRows(t *testing.T, nodes []*testcluster.Node, want int64, query string, args ...any) {
	t.Helper()
	for _, n := range nodes {
		waitReading(t, replicateTimeout, fmt.Sprintf("%q = %d on %s", query, want, n.Name), "got %d",
			func(ctx context.Context) (int64, error) { return n.QueryInt(ctx, query, args...) },
			func(got int64) bool { return got == want })
	}
}

// waitReading polls read (testcluster.Poll) until ok accepts what it
// read. The last state a timeout reports is read's error, or the reading
// printed with format.
func waitReading[T any](t *testing.T, timeout time.Duration, what, format string, read func(context.Context) (T, error), ok func(T) bool) {
	t.Helper()
	testcluster.Poll(t, timeout, what, func(ctx context.Context) error {
		v, err := read(ctx)
		if err != nil {
			return err
		}
		if !ok(v) {
			return fmt.Errorf(format, v)
		}
		return nil
	})
}
