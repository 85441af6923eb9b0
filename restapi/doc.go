// Package restapi serves Regent's Patroni-compatible REST API
// (patroni-compat.md §2): the HAProxy health checks (/primary, /replica,
// /read-only, …), /liveness and /readiness, the status document GET
// /patroni, and the fresh DCS reads GET /cluster, /history and /config.
//
// It owns the `restapi:` section of regent.yml (Config), the health-check
// decision rules of §2.3, the JSON error format ({"error": …,
// "reasons": […]}) and the request-body rules that later command endpoints
// share (DecodeJSON).
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
// restapi must never import Regent's agent, dcs, postgres or fencing
// packages: the agent implements Backend and Switchovers and calls Publish.
// Other command endpoints (restart, PATCH /config, …) are added by other
// packages through Server.Mount.
package restapi
