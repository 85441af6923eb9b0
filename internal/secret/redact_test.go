package secret

import (
	"strings"
	"testing"
)

func TestRedactText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"password=hunter2 ok", "password=****** ok"},
		{"PGPASSWORD=hunter2 psql -h x", "PGPASSWORD=****** psql -h x"},
		{`{"password": "hunter2", "user": "bob"}`, `{"password": "******", "user": "bob"}`},
		{"ipmitool -U admin --password hunter2 power off", "ipmitool -U admin --password ****** power off"},
		{"ipmitool -U admin -P hunter2", "ipmitool -U admin -P hunter2"}, // a bare flag letter is not recognised
		{"token: abc.def", "token: ******"},
		{"AWS_SECRET_ACCESS_KEY=wJalrXUt", "AWS_SECRET_ACCESS_KEY=******"},
		{"api_key=k1 api-key=k2 apikey=k3", "api_key=****** api-key=****** apikey=******"},
		{"host=db user=bob password='hunter2' dbname=x", "host=db user=bob password='******' dbname=x"},
		{"postgres://bob:hunter2@db:5432/x", "postgres://bob:******@db:5432/x"},
		{"fenced pg1 in 2.1s, exit 0", "fenced pg1 in 2.1s, exit 0"},
		{"no secrets here: passing=yes", "no secrets here: passing=yes"},
	}
	for _, tc := range cases {
		if got := RedactText(tc.in); got != tc.want {
			t.Errorf("RedactText(%q)\n  = %q\nwant %q", tc.in, got, tc.want)
		}
	}
	if got := RedactText("line1\npassword=a\nsecret: b\n"); strings.Contains(got, "=a") || strings.Contains(got, ": b") {
		t.Errorf("multi-line output not redacted: %q", got)
	}
}
