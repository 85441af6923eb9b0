package restapi

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
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
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("restapi.cafile: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("restapi.cafile: no PEM certificate in %s", caFile)
	}
	return pool, nil
}

// verifyClient is VerifyClient with the default applied.
func (c Config) verifyClient() string {
	if c.VerifyClient == "" {
		return VerifyClientNone
	}
	return c.VerifyClient
}

// ServerTLSConfig is the server side: the key pair, and client
// certificates verified against cafile per verify_client. It is nil, nil
// when TLS is off.
func (c Config) ServerTLSConfig() (*tls.Config, error) {
	if !c.TLS() {
		return nil, nil
	}
	pair, err := loadKeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if c.CAFile != "" {
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

// PeerTLSConfig is the client side for calling the other members' APIs
// (GET /patroni in elections and switchover checks), as Patroni does:
// their certificates are verified against cafile (the system roots when
// unset), and this member presents its own certificate, which peers with
// verify_client need. It is nil, nil when TLS is off.
func (c Config) PeerTLSConfig() (*tls.Config, error) {
	if !c.TLS() {
		return nil, nil
	}
	pair, err := loadKeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	if c.CAFile != "" {
		if cfg.RootCAs, err = loadCAs(c.CAFile); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}
