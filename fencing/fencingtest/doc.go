// Package fencingtest provides a fake watchdog device with an injected clock,
// in the spirit of net/http/httptest. It never touches a real device.
package fencingtest
