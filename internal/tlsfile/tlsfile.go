package tlsfile

import (
	"crypto/x509"
	"fmt"
	"os"
)

// LoadCAPool reads the PEM certificates in path into a new pool. key names
// the setting or flag that gave path ("etcd.cacert", "--cacert"); every
// error starts with it. A file without a single PEM certificate is an
// error, not an empty pool that would trust nothing.
func LoadCAPool(key, path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate in %s", key, path)
	}
	return pool, nil
}
