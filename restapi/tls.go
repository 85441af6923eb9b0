package restapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/regent-ha/regent/internal/tlsfile"
)

// validateTLS checks the TLS keys: pairs set together, files readable and
// holding what they should, verify_client known and usable. Every error
// names its key.
func (c Config) validateTLS() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch {
	case c.CertFile != "" && c.KeyFile == "":
		add("restapi.certfile: set without restapi.keyfile")
	case c.KeyFile != "" && c.CertFile == "":
		add("restapi.keyfile: set without restapi.certfile")
	case c.TLS():
		if _, err := loadKeyPair(c.CertFile, c.KeyFile); err != nil {
			errs = append(errs, err)
		}
	}
	if c.CAFile != "" {
		if _, err := loadCAs(c.CAFile); err != nil {
			errs = append(errs, err)
		}
	}
	switch c.VerifyClient {
	case "", VerifyClientNone:
	case VerifyClientOptional, VerifyClientRequired:
		if !c.TLS() {
			add("restapi.verify_client: %q needs TLS (restapi.certfile and restapi.keyfile)", c.VerifyClient)
		}
		if c.CAFile == "" {
			add("restapi.verify_client: %q needs restapi.cafile to verify client certificates", c.VerifyClient)
		}
	default:
		add("restapi.verify_client: %q is not none, optional or required", c.VerifyClient)
	}
	return errors.Join(errs...)
}

// loadKeyPair reads certfile and keyfile; errors name the key at fault.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("restapi.certfile: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("restapi.keyfile: %w", err)
	}
	if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(certPEM) {
		return tls.Certificate{}, fmt.Errorf("restapi.certfile: no PEM certificate in %s", certFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error describes the key, never its bytes.
		return tls.Certificate{}, fmt.Errorf("restapi.keyfile: %s is not the PEM private key of restapi.certfile %s: %w", keyFile, certFile, err)
	}
	return pair, nil
}

// loadCAs reads cafile into a pool.
func loadCAs(caFile string) (*x509.CertPool, error) {
	return tlsfile.LoadCAPool("restapi.cafile", caFile)
}

// verifyClient is VerifyClient with the default applied.
func (c Config) verifyClient() string {
	if c.VerifyClient == "" {
		return VerifyClientNone
	}
	return c.VerifyClient
}

// KeyPair is the API's certificate and key (restapi.certfile and
// keyfile), reloadable: the TLS configs built on it serve the newest pair
// on every handshake. Safe for concurrent use.
type KeyPair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// LoadKeyPair reads certfile and keyfile; nil, nil when TLS is off.
func LoadKeyPair(c Config) (*KeyPair, error) {
	if !c.TLS() {
		return nil, nil
	}
	kp := &KeyPair{certFile: c.CertFile, keyFile: c.KeyFile}
	if err := kp.Reload(); err != nil {
		return nil, err
	}
	return kp, nil
}

// Reload reads both files again. A pair that does not load (missing, not
// PEM, a key of another certificate) leaves the current one in use and is
// returned as the error.
func (k *KeyPair) Reload() error {
	pair, err := loadKeyPair(k.certFile, k.keyFile)
	if err != nil {
		return err
	}
	k.cur.Store(&pair)
	return nil
}

// Certificate returns the pair in use.
func (k *KeyPair) Certificate() *tls.Certificate { return k.cur.Load() }

func (k *KeyPair) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.cur.Load(), nil
}

func (k *KeyPair) getClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.cur.Load(), nil
}

// ServerTLSConfig is the server side: the key pair, and client
// certificates verified against cafile per verify_client. It is nil, nil
// when TLS is off.
func (c Config) ServerTLSConfig() (*tls.Config, error) { return c.withFiles(c.serverTLSWith) }

// withFiles builds a TLS config on the key pair of certfile and keyfile;
// nil, nil when TLS is off.
func (c Config) withFiles(build func(*KeyPair) (*tls.Config, error)) (*tls.Config, error) {
	kp, err := LoadKeyPair(c)
	if err != nil || kp == nil {
		return nil, err
	}
	return build(kp)
}

// serverTLSWith builds the server side on kp, which serves the newest
// pair on every handshake.
func (c Config) serverTLSWith(kp *KeyPair) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: kp.getCertificate}
	if c.CAFile != "" {
		var err error
		if cfg.ClientCAs, err = loadCAs(c.CAFile); err != nil {
			return nil, err
		}
	}
	switch c.verifyClient() {
	case VerifyClientOptional:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case VerifyClientRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// serverTLSConfig is the running server's TLS config on its key pair
// (loaded now when Options gave none); nil, nil when TLS is off.
func (s *Server) serverTLSConfig() (*tls.Config, error) {
	if !s.cfg.TLS() {
		return nil, nil
	}
	kp := s.keyPair.Load()
	if kp == nil {
		var err error
		if kp, err = LoadKeyPair(s.cfg); err != nil {
			return nil, err
		}
		s.keyPair.Store(kp)
	}
	return s.cfg.serverTLSWith(kp)
}

// ReloadTLS reads restapi.certfile and keyfile again (SIGHUP): new
// handshakes get the new pair, open connections keep theirs. A pair that
// does not load keeps the current one in use; the error says why. It does
// nothing when TLS is off or before Run loaded the first pair.
func (s *Server) ReloadTLS() error {
	kp := s.keyPair.Load()
	if kp == nil {
		return nil
	}
	if err := kp.Reload(); err != nil {
		s.log.Error("REST API TLS certificate not reloaded; the current one stays in use", "err", err)
		return err
	}
	s.log.Info("REST API TLS certificate reloaded", "certfile", kp.certFile, "not_after", notAfter(kp.Certificate()))
	return nil
}

// notAfter is the leaf certificate's expiry, for the log.
func notAfter(c *tls.Certificate) time.Time {
	if c == nil || c.Leaf == nil {
		return time.Time{}
	}
	return c.Leaf.NotAfter
}

// PeerTLSConfig is the client side for calling the other members' APIs
// (GET /patroni in elections and switchover checks), as Patroni does:
// their certificates are verified against cafile (the system roots when
// unset), and this member presents its own certificate, which peers with
// verify_client need. It is nil, nil when TLS is off.
func (c Config) PeerTLSConfig() (*tls.Config, error) { return c.withFiles(c.PeerTLSConfigWith) }

// PeerTLSConfigWith is PeerTLSConfig presenting kp's newest pair, so that
// a reload renews the client certificate too. nil, nil when kp is nil.
func (c Config) PeerTLSConfigWith(kp *KeyPair) (*tls.Config, error) {
	if kp == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetClientCertificate: kp.getClientCertificate}
	if c.CAFile != "" {
		var err error
		if cfg.RootCAs, err = loadCAs(c.CAFile); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}
