// Package boundedlog keeps a log of etcd keys bounded: the entries live
// under one prefix, their names sort oldest first (a timestamp or a
// zero-padded sequence leads them), and the oldest go once there are more
// than the log keeps. The agent's decisions/ and switchovers/ logs use it.
//
// It never talks to etcd itself: the caller lists the names from its
// watch-fed view and removes the entries with its own bounded writes.
package boundedlog
