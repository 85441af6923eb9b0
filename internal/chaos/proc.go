package chaos

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/regent-ha/regent/internal/proc"
)

// startLogged starts cmd through h (in its namespace, see proc.Netns) as
// the agents' user when asUser, with its output appended to h.Log.
func (c *Cluster) startLogged(h *proc.Handle, cmd *exec.Cmd, asUser bool) error {
	out, err := os.OpenFile(h.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log %s: %w", h.Log, err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	cred := c.user.Credential()
	if !asUser {
		cred = nil
	}
	// The child writes the log through its own copy of the descriptor, and
	// this process never writes to out: closing it loses nothing.
	closeOut := func(error) { _ = out.Close() }
	if _, err := h.Start(cmd, cred, closeOut); err != nil {
		closeOut(err)
		return err
	}
	return nil
}
