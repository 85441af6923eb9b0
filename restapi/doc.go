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
// restapi must never import Regent's agent, dcs, postgres or fencing
// packages: the agent implements Backend and calls Publish. Command
// endpoints (switchover, failover, restart, PATCH /config, …) are added by
// other packages through Server.Mount.
package restapi
