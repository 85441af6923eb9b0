// Package secret holds the String type for passwords and tokens read from
// configuration: it behaves as a string in code and redacts itself whenever
// it is printed, logged or marshalled, so a secret never reaches a log line,
// an API response or a dumped config.
package secret
