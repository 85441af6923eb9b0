package restapi

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

type switchoverReq struct {
	Leader    string `json:"leader"`
	Candidate string `json:"candidate"`
}

// bodyRequest builds a PATCH with body; cl < 0 omits Content-Length and
// marks the body chunked, cl == -2 omits the header with a known length.
func bodyRequest(t *testing.T, body string, cl int64) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPatch, "/config", rd)
	switch cl {
	case -1:
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
	case -2:
		r.ContentLength = 0
		r.Header.Del("Content-Length")
	default:
		r.ContentLength = cl
		r.Header.Set("Content-Length", strconv.FormatInt(cl, 10))
	}
	return r
}

func TestDecodeJSON(t *testing.T) {
	big := `{"leader":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	cases := []struct {
		name string
		body string
		cl   int64 // Content-Length; -1 chunked, -2 absent
		want int   // 0: success
	}{
		{"valid object", `{"leader":"pg1","candidate":"pg2"}`, -3, 0},
		{"unknown fields are ignored", `{"leader":"pg1","x":1}`, -3, 0},
		{"no Content-Length", "", -2, 411},
		{"chunked body", `{"leader":"pg1"}`, -1, 411},
		{"empty body", "", 0, 400},
		{"malformed", `{"leader":`, -3, 400},
		{"empty object", `{}`, -3, 400},
		{"empty object with spaces", " { \n } ", -3, 400},
		{"array", `[{"leader":"pg1"}]`, -3, 400},
		{"string", `"pg1"`, -3, 400},
		{"null", `null`, -3, 400},
		{"trailing garbage", `{"leader":"pg1"} x`, -3, 400},
		{"two objects", `{"leader":"pg1"}{"leader":"pg2"}`, -3, 400},
		{"wrong type", `{"leader":1}`, -3, 400},
		{"binary", "\x00\xff\xfe", -3, 400},
		{"declared too large", `{"leader":"pg1"}`, MaxBodyBytes + 1, 413},
		{"actually too large", big, -3, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl := tc.cl
			if cl == -3 {
				cl = int64(len(tc.body))
			}
			var v switchoverReq
			err := DecodeJSON(bodyRequest(t, tc.body, cl), &v)
			if tc.want == 0 {
				if err != nil || v.Leader != "pg1" {
					t.Fatalf("DecodeJSON = %v, %+v", err, v)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) || re.Status != tc.want {
				t.Fatalf("DecodeJSON error = %v, want a RequestError with status %d", err, tc.want)
			}
			rec := httptest.NewRecorder()
			re.Write(rec)
			if rec.Code != tc.want {
				t.Errorf("RequestError.Write status = %d", rec.Code)
			}
			errorOf(t, response{code: rec.Code, header: rec.Header(), body: rec.Body.String()})
		})
	}
}

func TestDecodeOptionalJSON(t *testing.T) {
	cases := []struct {
		name      string
		body      string
		cl        int64
		want      int
		wantForce bool
	}{
		{"no body", "", -2, 0, false},
		{"zero length", "", 0, 0, false},
		{"empty object", `{}`, 2, 0, false},
		{"object", `{"force":true}`, 14, 0, true},
		{"array", `[]`, 2, 400, false},
		{"malformed", `{"force"`, 8, 400, false},
		{"chunked", `{"force":true}`, -1, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var v struct {
				Force bool `json:"force"`
			}
			err := DecodeOptionalJSON(bodyRequest(t, tc.body, tc.cl), &v)
			var re *RequestError
			switch {
			case tc.want == 0 && err != nil:
				t.Fatalf("DecodeOptionalJSON = %v", err)
			case tc.want != 0 && (!errors.As(err, &re) || re.Status != tc.want):
				t.Fatalf("DecodeOptionalJSON = %v, want status %d", err, tc.want)
			}
			if v.Force != tc.wantForce {
				t.Errorf("force = %v, want %v", v.Force, tc.wantForce)
			}
		})
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteError(rec, http.StatusPreconditionFailed, "switchover is not possible", "pg2 is lagging", "pg3 has nofailover")
	r := response{code: rec.Code, header: rec.Header(), body: rec.Body.String()}
	e := errorOf(t, r)
	if r.code != 412 || e.Error != "switchover is not possible" || len(e.Reasons) != 2 || e.Reasons[1] != "pg3 has nofailover" {
		t.Errorf("WriteError wrote %d %s", r.code, r.body)
	}
	rec = httptest.NewRecorder()
	WriteError(rec, http.StatusConflict, `quote " and <html>`)
	if body := rec.Body.String(); strings.Contains(body, "reasons") || !strings.Contains(body, `quote \"`) {
		t.Errorf("WriteError without reasons = %s", body)
	}
}
