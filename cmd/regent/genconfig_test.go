package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/regent-ha/regent/cmd/internal/testconfig"
	"github.com/regent-ha/regent/internal/freeport"
)

// TestGenerateConfigSample: without --dsn the command prints a sample that
// `regent validate` accepts (with its secrets in the environment).
func TestGenerateConfigSample(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"generate-config", "--name", "pg4", "--scope", "sales", "--etcd", "http://10.0.0.21:2379,http://10.0.0.22:2379"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("generate-config: exit %d\n%s", code, stderr.String())
	}
	path := testconfig.WriteDoc(t, stdout.String())
	for _, k := range []string{"PGSUPERPASS", "PGREPLPASS", "RESTAPI_PASSWORD"} {
		t.Setenv(k, "placeholder")
	}
	var vout, verr bytes.Buffer
	if code := run([]string{"validate", "-c", path}, &vout, &verr); code != exitOK {
		t.Fatalf("validate of the generated sample: exit %d\n%s\n%s", code, verr.String(), stdout.String())
	}
}

func TestGenerateConfigErrors(t *testing.T) {
	port, err := freeport.Pick() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"generate-config", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"generate-config", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"generate-config", "--dsn", "host=127.0.0.1 port=notaport"}, exitFailed, "dsn:"},
		{[]string{"generate-config", "--dsn", fmt.Sprintf("host=127.0.0.1 port=%d user=postgres connect_timeout=5", port)}, exitFailed, "connect to PostgreSQL"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.msg) || stdout.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want exit %d and %q", tc.args, code, stderr.String(), stdout.String(), tc.code, tc.msg)
		}
	}
}
