package restapi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/regent-ha/regent/restapi"
)

// The HA loop publishes a Snapshot each tick; health checks answer from it.
func ExampleServer_Publish() {
	srv := restapi.New(restapi.Options{Config: restapi.Config{Listen: "127.0.0.1:8008"}})

	probe := func(method, target string) int {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest(method, target, nil))
		return rec.Code
	}
	fmt.Println("before the first tick:", probe(http.MethodGet, "/primary"))

	now := time.Now()
	loc := uint64(0x3000060)
	srv.Publish(&restapi.Snapshot{
		Status: restapi.Status{
			State: "running", Role: "master", XLog: &restapi.XLog{Location: &loc},
			DCSLastSeen: now.Unix(), Patroni: restapi.Agent{Version: "3.0.2", Scope: "demo"},
		},
		LeaderUntil:    now.Add(20 * time.Second), // last acked renewal + ttl − safety margin
		ViewFreshUntil: now.Add(30 * time.Second), // last DCS read + ttl
		LivenessUntil:  now.Add(40 * time.Second),
	})
	fmt.Println("OPTIONS /:", probe(http.MethodOptions, "/"))
	fmt.Println("GET /replica:", probe(http.MethodGet, "/replica"))
	fmt.Println("GET /liveness:", probe(http.MethodGet, "/liveness"))
	// Output:
	// before the first tick: 503
	// OPTIONS /: 200
	// GET /replica: 503
	// GET /liveness: 200
}

func ExampleConfig_APIURL() {
	c := restapi.Config{Listen: "0.0.0.0:8008", ConnectAddress: "10.0.0.11:8008",
		Authentication: restapi.Authentication{Username: "admin", Password: "s3cret"}}
	c.SetDefaults()
	fmt.Println(c.Validate(), c.APIURL())
	// Output: <nil> http://10.0.0.11:8008/patroni
}
