// Package restapi serves Regent's Patroni-compatible REST API
// (patroni-compat.md §2): the HAProxy health checks (/primary, /replica,
// /read-only, …), /liveness and /readiness, the status document GET
// /patroni, and the cluster reads GET /cluster, /history, /config and
// /decisions.
//
// It owns the `restapi:` section of regent.yml (Config), the health-check
// decision rules of §2.3, the JSON error format ({"error": …,
// "reasons": […]}) and the request-body rules that later command endpoints
// share (DecodeJSON), and the typed documents that cross the API to
// clients (records.go: the decision log of GET /decisions, the watchdog
// and synchronous-mode blocks of GET /patroni), so a client reads them
// without linking the agent.
//
// The HA loop publishes an immutable Snapshot once per tick through
// Server.Publish (an atomic.Pointer store). Health checks and GET /patroni
// answer from the latest Snapshot only: restapi never queries PostgreSQL or
// etcd per health request. The cluster reads go through the small Backend
// interface, bounded by a per-request timeout; the agent answers them from
// its watch-fed cluster view, so no request rate becomes etcd load.
//
// The switchover endpoints (switchover*.go) are served here over the
// Switchovers interface: Regent's PATCH /switchover, GET /switchover/<id>,
// its Server-Sent Events stream /switchover/<id>/events, GET /switchovers
// and DELETE /switchover/<id>, and Patroni's POST /switchover, POST
// /failover and DELETE /switchover with their exact codes and texts. The
// handlers only validate and relay: the switchover runs in the agents' HA
// loops, and a client (or its stream) going away never affects it.
//
// The operator endpoints (commands.go, restart.go) validate and relay to
// the Commands interface: PATCH and PUT /config, POST and DELETE /restart,
// POST /reload and POST /reinitialize, with Patroni's codes and texts.
//
// Every write (POST, PUT, PATCH, DELETE, on any path) passes checkAccess
// first, in Patroni's order: the client address against restapi.allowlist
// and, with allowlist_include_members, the members' api_url hosts (Members)
// (403), a client certificate when verify_client asks for one on https
// (403), then HTTP Basic when restapi.authentication is set (401, and 429
// for an address that keeps guessing). Reads, HEAD and OPTIONS stay open
// for health checks. Config.Validate refuses a non-loopback listen address
// whose writes need neither credentials nor a client certificate, unless
// allow_unauthenticated. Run serves TLS when certfile and keyfile are set,
// from a KeyPair that ReloadTLS renews. Event streams are capped by
// max_streams. Credentials are compared in constant time and never logged.
//
// restapi must never import Regent's agent, dcs, postgres or fencing
// packages: the agent implements Backend, Switchovers and Commands and
// calls Publish. Further endpoints can be added through Server.Mount.
package restapi
