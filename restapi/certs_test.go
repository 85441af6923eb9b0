package restapi

import (
	"crypto/tls"
	"testing"

	"github.com/regent-ha/regent/internal/testpki"
)

// pki is a CA with a server and a client certificate, and a client
// certificate from an unrelated CA.
type pki struct {
	dir            string
	ca             *testpki.CA
	server, client testpki.Pair
	stranger       testpki.Pair
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "regent-ca")
	other := testpki.NewCA(t, dir, "other-ca")
	return pki{
		dir: dir, ca: ca,
		server:   ca.Issue(t, dir, "server"),
		client:   ca.Issue(t, dir, "client"),
		stranger: other.Issue(t, dir, "stranger"),
	}
}

// clientTLS trusts the test CA and presents cert, if given.
func (p pki) clientTLS(t *testing.T, cert *testpki.Pair) *tls.Config {
	t.Helper()
	cfg := &tls.Config{RootCAs: p.ca.Pool(), MinVersion: tls.VersionTLS12}
	if cert != nil {
		pair, err := tls.LoadX509KeyPair(cert.CertFile, cert.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}
