// Package restapi serves Regent's Patroni-compatible REST API
// (patroni-compat.md §2): the HAProxy health checks (/primary, /replica,
// /read-only, …), /liveness and /readiness, the status document GET
// /patroni, and the fresh DCS reads GET /cluster, /history and /config.
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
// etcd per health request. The few endpoints that must read the DCS fresh
// go through the small Backend interface, bounded by a per-request timeout.
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
// first, in Patroni's order: a client certificate when verify_client asks
// for one on https (403), then HTTP Basic when restapi.authentication is
// set (401). Reads, HEAD and OPTIONS stay open for health checks. Run
// serves TLS when certfile and keyfile are set. Credentials are compared
// in constant time and never logged.
//
// restapi must never import Regent's agent, dcs, postgres or fencing
// packages: the agent implements Backend, Switchovers and Commands and
// calls Publish. Further endpoints can be added through Server.Mount.
package restapi
