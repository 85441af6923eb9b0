package restapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/regent-ha/regent/restapi"
)

// reloader is a Commands that only knows how to reload.
type reloader struct{ restapi.Commands }

func (reloader) Reload(context.Context) (int, string) { return http.StatusAccepted, "reload scheduled" }

// Writes need the configured credentials; health checks stay open.
func ExampleAuthentication() {
	srv := restapi.New(restapi.Options{
		Config:   restapi.Config{Authentication: restapi.Authentication{Username: "admin", Password: "s3cret"}},
		Commands: reloader{},
	})
	send := func(user, pass string) {
		req := httptest.NewRequest(http.MethodPost, "/reload", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Body.String(), rec.Header().Get("WWW-Authenticate"))
	}
	send("", "")
	send("admin", "guess")
	send("admin", "s3cret")
	// Output:
	// 401 no auth header received Basic realm="Patroni"
	// 401 not authenticated Basic realm="Patroni"
	// 202 reload scheduled
}
