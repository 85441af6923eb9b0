package proc

import (
	"os"
	"strings"
)

// AgentEnv is the environment of an agent run as user with its home in
// home: ours, minus the libpq variables (PG*) that could point it at
// another server and our own HOME, USER and LOGNAME.
func AgentEnv(home, user string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || k == "HOME" || k == "USER" || k == "LOGNAME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "USER="+user, "LOGNAME="+user)
}
