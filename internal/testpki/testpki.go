// Package testpki makes throw-away certificate authorities and key pairs
// for tests of the TLS settings (restapi, etcd client, regentctl, e2e):
// one generator, so every test's certificates are made the same way.
//
// It is for tests only: keys are fresh P-256 keys, never stored beyond the
// test's directory. It imports nothing of Regent's.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// WriteFunc writes a PEM file; the default writes it 0600 for the test
// process. The e2e tests pass one that makes the agents' OS user its owner.
type WriteFunc func(path string, data []byte) error

func writeFile(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }

// CA is a certificate authority whose certificate is written as PEM.
type CA struct {
	Cert  *x509.Certificate
	Key   *ecdsa.PrivateKey
	File  string // the CA certificate, PEM
	write WriteFunc
}

// Pair is a certificate (PEM) and its PKCS #8 private key (PEM) as files.
type Pair struct{ CertFile, KeyFile string }

// NewCA creates a CA called name and writes its certificate to
// dir/name.pem. It fails the test on any error.
func NewCA(t testing.TB, dir, name string) *CA { return NewCAWith(t, dir, name, writeFile) }

// NewCAWith is NewCA writing its files (the CA's and those of the pairs it
// issues) with write.
func NewCAWith(t testing.TB, dir, name string, write WriteFunc) *CA {
	t.Helper()
	der, key := sign(t, name, &x509.Certificate{
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{Cert: cert, Key: key, File: filepath.Join(dir, name+".pem"), write: write}
	ca.writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

// Pool is a pool that trusts the CA alone.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Issue signs a certificate called name for 127.0.0.1 and localhost,
// usable by servers and clients, and writes it to dir/name.crt and its
// key to dir/name.key.
func (ca *CA) Issue(t testing.TB, dir, name string) Pair {
	t.Helper()
	der, key := sign(t, name, &x509.Certificate{
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:    []string{"localhost"},
	}, ca)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := Pair{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")}
	ca.writePEM(t, p.CertFile, "CERTIFICATE", der)
	ca.writePEM(t, p.KeyFile, "PRIVATE KEY", keyDER)
	return p
}

func (ca *CA) writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := ca.write(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})); err != nil {
		t.Fatal(err)
	}
}

// sign generates a key and a certificate from tmpl for name with a random
// serial, valid from an hour ago for a day (longer than any test), signed
// by ca (self-signed when ca is nil).
func sign(t testing.TB, name string, tmpl *x509.Certificate, ca *CA) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// A random serial: no counter shared between tests, and a renewed
	// certificate differs from the one it replaces.
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62)); err != nil {
		t.Fatal(err)
	}
	tmpl.Subject = pkix.Name{CommonName: name}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.Cert, ca.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}
