package chaos

import (
	"os/exec"

	"github.com/regent-ha/regent/internal/proc"
)

// startLogged starts cmd through h (in its namespace, see proc.Netns) as
// the agents' user when asUser, with its output appended to h.Log.
func (c *Cluster) startLogged(h *proc.Handle, cmd *exec.Cmd, asUser bool) error {
	cred := c.user.Credential()
	if !asUser {
		cred = nil
	}
	return h.StartLogged(cmd, cred)
}
