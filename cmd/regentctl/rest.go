package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/internal/secret"
	"github.com/regent-ha/regent/internal/tlsfile"
	"github.com/regent-ha/regent/restapi"
)

// restOptions are how regentctl reaches the agents' REST API: HTTP Basic
// credentials for the write endpoints and TLS. Each comes from its flag,
// else from REGENT_API_*, else from the restapi section of -c regent.yml.
type restOptions struct {
	user     string
	password secret.String
	cacert   string
	cert     string
	key      string
	insecure bool

	tls *tls.Config // built by resolve; nil: Go's defaults
}

// restEnv names the environment variable of each REST flag.
var restEnv = map[string]string{
	"user": "REGENT_API_USER", "password": "REGENT_API_PASSWORD", "cacert": "REGENT_API_CACERT",
	"cert": "REGENT_API_CERT", "key": "REGENT_API_KEY", "insecure": "REGENT_API_INSECURE",
}

// addRESTFlags declares the REST flags. Their environment variables are
// read in resolve, not as flag defaults, so --help never prints a password.
func (r *restOptions) addFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&r.user, "user", "", "REST API user for write endpoints ($REGENT_API_USER; else restapi.authentication of -c)")
	f.Var((*secretValue)(&r.password), "password", "REST API password ($REGENT_API_PASSWORD, preferred: flags show in ps)")
	f.StringVar(&r.cacert, "cacert", "", "CA file to verify the agents' https certificates ($REGENT_API_CACERT; else restapi.cafile of -c)")
	f.StringVar(&r.cert, "cert", "", "client certificate for agents with verify_client ($REGENT_API_CERT)")
	f.StringVar(&r.key, "key", "", "client certificate's key ($REGENT_API_KEY)")
	f.BoolVar(&r.insecure, "insecure", false, "do not verify the agents' https certificates ($REGENT_API_INSECURE)")
}

// resolve fills unset options from the environment, then from the
// agent's restapi section (when -c was given), and loads the TLS files.
func (r *restOptions) resolve(cmd *cobra.Command, file *restapi.Config) error {
	flags := cmd.Flags()
	env := func(name string, dst *string) {
		if !flags.Changed(name) && *dst == "" {
			*dst = os.Getenv(restEnv[name])
		}
	}
	env("user", &r.user)
	pw := string(r.password)
	env("password", &pw)
	r.password = secret.String(pw)
	env("cacert", &r.cacert)
	env("cert", &r.cert)
	env("key", &r.key)
	if v := os.Getenv(restEnv["insecure"]); !flags.Changed("insecure") && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("$%s: %q is not a boolean", restEnv["insecure"], v)
		}
		r.insecure = b
	}
	if file != nil {
		if r.user == "" && r.password == "" {
			r.user, r.password = file.Authentication.Username, file.Authentication.Password
		}
		if r.cacert == "" {
			r.cacert = file.CAFile
		}
	}
	switch {
	case r.user != "" && r.password == "":
		return errors.New("--user given without a password: use $REGENT_API_PASSWORD or --password")
	case r.password != "" && r.user == "":
		return errors.New("a REST API password given without --user")
	}
	var err error
	r.tls, err = r.tlsConfig()
	return err
}

// tlsConfig builds the client TLS settings; nil when none is needed.
func (r *restOptions) tlsConfig() (*tls.Config, error) {
	if r.cacert == "" && r.cert == "" && r.key == "" && !r.insecure {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: r.insecure} //nolint:gosec // --insecure is the operator's explicit choice
	if r.cacert != "" {
		var err error
		if cfg.RootCAs, err = tlsfile.LoadCAPool("--cacert", r.cacert); err != nil {
			return nil, err
		}
	}
	switch {
	case r.cert != "" && r.key == "":
		return nil, errors.New("--cert given without --key")
	case r.key != "" && r.cert == "":
		return nil, errors.New("--key given without --cert")
	case r.cert != "":
		pair, err := tls.LoadX509KeyPair(r.cert, r.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// apiClient is newAPIClient with these options applied.
func (r *restOptions) apiClient(bases []string, timeout time.Duration) *apiClient {
	c := newAPIClient(bases, timeout)
	tr := c.http.Transport.(*http.Transport)
	if r.tls != nil {
		tr.TLSClientConfig = r.tls.Clone()
	}
	if r.user != "" {
		c.http.Transport = &basicAuth{next: tr, user: r.user, password: r.password}
	}
	return c
}

// basicAuth adds the credentials to every request (reads included: they
// are open, and it costs nothing).
type basicAuth struct {
	next     http.RoundTripper
	user     string
	password secret.String
}

func (b *basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context()) // a RoundTripper must not modify its request
	req.SetBasicAuth(b.user, b.password.Reveal())
	return b.next.RoundTrip(req)
}

// secretValue is a pflag.Value that keeps the password redacted in help
// and error output.
type secretValue secret.String

func (v *secretValue) String() string     { return secret.String(*v).String() }
func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }
func (v *secretValue) Type() string       { return "string" }
