// Package switchover owns the planned switchover (DESIGN §5) as data and
// decisions: the durable record kept in etcd at switchovers/<id> (request,
// stage, state, append-only events), its stages, the pre-flight checks and
// the candidate choice, the stale-lock verdict, the timeout clock, and the
// pure next-step function Next, which classifies what the leader's agent
// does next with a switchover before it acts (VTOrc's detect → classify →
// act). In a standby cluster (Record.Standby, Inputs.Standby) the same
// stages move the standby leader's role and nobody leaves recovery
// (standby.go).
//
// The agent's HA loop drives it: it builds Inputs from its snapshot (and a
// bounded read or two), calls Next, and executes the Step. Records are read
// and written through the small Store interface, which the agent
// implements over its bounded etcd client, so every wait here is bounded
// by the lease deadline.
//
// switchover never talks to etcd, PostgreSQL or the REST API itself, and
// never imports agent: it is pure apart from Read, Update, Create and Trim,
// which go through the Store they are given. The record's JSON is a wire
// contract (etcd, GET /switchover/<id>, the event stream, regentctl):
// field names and values do not change.
package switchover
