// Package bytesize renders byte counts for people (WAL lag in decision
// reasons, pre-flight verdicts and switchover events).
package bytesize
