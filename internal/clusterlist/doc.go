// Package clusterlist turns a cluster view into the member table that
// `regentctl list` and `regent-demo` print, in patronictl's shape: member,
// host, role (from the keys, not the member's own claim), state, timeline
// and lag. Its boxed Table also draws regentctl's other tables (topology,
// history, decisions), so they all have one shape. It only formats; it
// never reads etcd itself.
package clusterlist
