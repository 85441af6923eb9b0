package etcdembed

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.etcd.io/etcd/server/v3/embed"
	"gopkg.in/yaml.v3"
)

// StartFile starts a server from an etcd configuration file, the YAML
// file `etcd --config-file` reads (etcd's own parser: embed.ConfigFromFile),
// with etcd's own logging (to stderr unless the file says otherwise), and
// waits until it serves clients, bounded by ctx. Unlike etcd, it refuses a
// key etcd does not know, naming it: etcd ignores a misspelt key, and a
// file under test must not pass with a setting that does nothing.
//
// The returned Server's Config holds only the member name.
func StartFile(ctx context.Context, path string) (*Server, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("etcd config file: %w", err)
	}
	if err := checkConfigKeys(data); err != nil {
		return nil, fmt.Errorf("etcd config file %s: %w", path, err)
	}
	ec, err := embed.ConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("etcd config file %s: %w", path, err)
	}
	return start(ctx, ec, Config{Name: ec.Name, Dir: ec.Dir})
}

// transportKeys are the sections of nested TLS settings; their keys are
// named like the client flags ("cert-file") or, for the peer section,
// like the peer flags without "peer-".
var transportKeys = map[string]bool{"client-transport-security": true, "peer-transport-security": true}

// mainKeys are settings etcd's main program defines as flags beside
// embed's (etcdmain), which its config file accepts too.
var mainKeys = map[string]bool{"initial-cluster-state": true, "discovery-fallback": true}

// checkConfigKeys refuses a key that is neither an etcd server flag nor a
// TLS section, nor a TLS setting named like a flag.
func checkConfigKeys(data []byte) error {
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	embed.NewConfig().AddFlags(fs)
	known := func(k string) bool { return fs.Lookup(k) != nil || mainKeys[k] }
	var errs []string
	for k, v := range doc {
		if !transportKeys[k] {
			if !known(k) {
				errs = append(errs, fmt.Sprintf("%s: unknown key", k))
			}
			continue
		}
		sub, ok := v.(map[string]any)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: not a mapping", k))
			continue
		}
		for s := range sub {
			if !known(s) && !known("peer-"+s) && !known("peer-cert-"+s) {
				errs = append(errs, fmt.Sprintf("%s.%s: unknown key", k, s))
			}
		}
	}
	sort.Strings(errs)
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
