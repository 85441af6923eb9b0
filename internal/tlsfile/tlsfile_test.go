package tlsfile

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadCAPool: a PEM certificate loads; a missing file and a file
// without a certificate are errors that start with the key.
func TestLoadCAPool(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewTLSServer(nil)
	srv.Close()
	good := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	want := x509.NewCertPool()
	want.AddCert(srv.Certificate())
	pool, err := LoadCAPool("etcd.cacert", good)
	if err != nil || !pool.Equal(want) {
		t.Errorf("LoadCAPool(good) = %v, %v; want the server's certificate", pool, err)
	}
	_, err = LoadCAPool("etcd.cacert", filepath.Join(dir, "none.pem"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "etcd.cacert: ") {
		t.Errorf("missing file: %v, want a not-exist error naming etcd.cacert", err)
	}
	_, err = LoadCAPool("--cacert", junk)
	if err == nil || err.Error() != "--cacert: no PEM certificate in "+junk {
		t.Errorf("junk file: %v, want no PEM certificate naming --cacert", err)
	}
}
