package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// TestIssuedPairVerifies: an issued pair loads and its certificate chains
// to the CA for 127.0.0.1 and localhost, as server and as client; two
// pairs get different serials.
func TestIssuedPairVerifies(t *testing.T) {
	dir := t.TempDir()
	ca := NewCA(t, dir, "ca")
	a, b := ca.Issue(t, dir, "a"), ca.Issue(t, dir, "b")
	leafA := load(t, a)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := leafA.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("verify for %s, usage %v: %v", host, usage, err)
			}
		}
	}
	if leafA.SerialNumber.Cmp(load(t, b).SerialNumber) == 0 {
		t.Errorf("two pairs share serial %s", leafA.SerialNumber)
	}
	other := NewCA(t, dir, "other")
	if _, err := leafA.Verify(x509.VerifyOptions{Roots: other.Pool()}); err == nil {
		t.Errorf("a pair verifies against an unrelated CA")
	}
}

func load(t *testing.T, p Pair) *x509.Certificate {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return pair.Leaf
}
