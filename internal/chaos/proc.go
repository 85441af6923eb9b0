package chaos

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/regent-ha/regent/internal/proc"
)

// startLogged starts cmd through h (in its namespace, see proc.Netns) as
// the agents' user when asUser, with its output appended to logPath.
func (c *Cluster) startLogged(h *proc.Handle, cmd *exec.Cmd, logPath string, asUser bool) error {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log %s: %w", logPath, err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cred := c.user.Credential()
	if !asUser {
		cred = nil
	}
	if _, err := h.Start(cmd, cred, func(error) { out.Close() }); err != nil {
		out.Close()
		return err
	}
	return nil
}
