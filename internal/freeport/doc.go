// Package freeport hands out loopback TCP ports for tests and the demo.
//
// A port the kernel picks for "127.0.0.1:0" comes from the ephemeral range
// (net.ipv4.ip_local_port_range), the same range it draws the local ports of
// outgoing connections from. Between closing the probe listener and the real
// server binding the port, any outgoing connection on the host (an etcd
// client dialling, a pg_basebackup) may take it, and the server then fails
// with "address already in use". Ports below the ephemeral range are never
// handed to outgoing connections, so Pick draws from there, checks the port
// can be bound, and never hands the same port out twice in one process.
package freeport
