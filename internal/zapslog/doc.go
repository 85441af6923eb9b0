// Package zapslog adapts etcd's zap logging (client and embedded server) to
// the agent's log/slog logger. It only forwards entries: it never decides
// what etcd logs, and it never writes anywhere but the slog.Logger it is
// given.
package zapslog
