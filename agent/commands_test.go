package agent

import (
	"testing"

	"github.com/regent-ha/regent/postgres"
	"github.com/regent-ha/regent/restapi"
)

// TestRestartConditionsMet: POST /restart's conditions, as Patroni reads
// them: every condition given must hold; a stopped server restarts unless
// restart_pending was asked for.
func TestRestartConditionsMet(t *testing.T) {
	replica := postgres.Status{InRecovery: true, ServerVersion: 150004}
	primary := postgres.Status{ServerVersion: 150004, PendingRestart: true}
	for _, tt := range []struct {
		name    string
		req     restapi.RestartRequest
		st      postgres.Status
		running bool
		want    bool
	}{
		{"no conditions", restapi.RestartRequest{}, replica, true, true},
		{"restart_pending and a setting pends", restapi.RestartRequest{RestartPending: true}, primary, true, true},
		{"restart_pending and nothing pends", restapi.RestartRequest{RestartPending: true}, replica, true, false},
		{"restart_pending on a stopped server", restapi.RestartRequest{RestartPending: true}, primary, false, false},
		{"role replica on a replica", restapi.RestartRequest{Role: "replica"}, replica, true, true},
		{"role primary on a replica", restapi.RestartRequest{Role: "primary"}, replica, true, false},
		{"role master (Patroni's old name) on a primary", restapi.RestartRequest{Role: "master"}, primary, true, true},
		{"a stopped server counts as a replica", restapi.RestartRequest{Role: "replica"}, primary, false, true},
		{"postgres_version newer than the server", restapi.RestartRequest{PostgresVersion: "15.5"}, replica, true, true},
		{"postgres_version not newer than the server", restapi.RestartRequest{PostgresVersion: "15.4"}, replica, true, false},
		{"postgres_version on a stopped server", restapi.RestartRequest{PostgresVersion: "15.4"}, replica, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := restartConditionsMet(tt.req, tt.st, tt.running); got != tt.want {
				t.Errorf("restartConditionsMet = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestServerOlderThan: server_version_num against Patroni's version
// strings, both numbering schemes; an unreadable version is never newer.
func TestServerOlderThan(t *testing.T) {
	for _, tt := range []struct {
		num     int
		version string
		want    bool
	}{
		{150004, "15.5", true},
		{150004, "15.4", false},
		{150004, "16", true},
		{150004, "15", false},
		{90605, "9.6", false},
		{90500, "9.6", true},
		{150004, "fifteen", false},
		{150004, "15.x", false},
	} {
		if got := serverOlderThan(tt.num, tt.version); got != tt.want {
			t.Errorf("serverOlderThan(%d, %q) = %v, want %v", tt.num, tt.version, got, tt.want)
		}
	}
}
