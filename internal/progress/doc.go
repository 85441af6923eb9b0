// Package progress describes the progress of long work a member does
// beside its HA loop — a replica being created — in the one shape the
// member key, the REST API and regentctl share. It does no I/O and
// imports nothing of Regent's, so dcs, postgres and restapi can all use it.
package progress
