// Package testconfig writes the regent.yml that the tests of the commands
// (regent, regentctl) load: one valid agent configuration, with the parts
// a test varies given by the test. It is for tests only; nothing here is
// linked into a command.
package testconfig
