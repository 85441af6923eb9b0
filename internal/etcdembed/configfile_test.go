package etcdembed

import (
	"strings"
	"testing"
)

func TestCheckConfigKeys(t *testing.T) {
	for _, tc := range []struct {
		name, file, wantErr string
	}{
		{"flags and TLS sections", "name: etcd1\ndata-dir: /var/lib/etcd\ninitial-cluster-state: new\n" +
			"client-transport-security:\n  cert-file: a\n  key-file: b\n  client-cert-auth: true\n  trusted-ca-file: c\n" +
			"peer-transport-security:\n  cert-file: a\n  client-cert-auth: true\n  allowed-cn: x\n", ""},
		{"misspelt top-level key", "name: etcd1\ndatadir: /var/lib/etcd\n", "datadir: unknown key"},
		{"misspelt TLS key", "client-transport-security:\n  client-cert-auht: true\n", "client-transport-security.client-cert-auht: unknown key"},
		{"TLS section not a mapping", "peer-transport-security: on\n", "peer-transport-security: not a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkConfigKeys([]byte(tc.file))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
