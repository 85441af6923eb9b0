package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
	"github.com/regent-ha/regent/internal/clusterlist"
	"github.com/regent-ha/regent/internal/lenient"
)

// defaultWatch is the redraw interval of a bare --watch (patronictl's -W).
const defaultWatch = 2 * time.Second

// clearScreen moves the cursor home and clears a terminal before a redraw.
const clearScreen = "\033[H\033[2J"

func newListCmd(s *settings) *cobra.Command {
	var output string
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the members: role, state, timeline and lag",
		Long: `List the members: role, state, timeline and lag, from etcd.
--watch redraws every 2s (--watch=5s for another interval) until Ctrl-C.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "table", "json", "yaml"); err != nil {
				return err
			}
			show := func(w io.Writer, c *dcs.Cluster) error { return printList(w, s.scope, c, output) }
			if every > 0 {
				return watch(cmd, s, every, show)
			}
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			return show(cmd.OutOrStdout(), c)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	addWatchFlag(cmd, &every)
	return cmd
}

// printList writes the member list in the chosen format.
func printList(w io.Writer, scope string, c *dcs.Cluster, output string) error {
	rows := clusterlist.Rows(c)
	if rows == nil {
		rows = []clusterlist.Row{}
	}
	switch output {
	case "json":
		return printJSON(w, rows)
	case "yaml":
		return printYAML(w, rows)
	}
	if err := clusterlist.Render(w, scope, c); err != nil {
		return err
	}
	return clusterNotes(w, c, time.Now())
}

// clusterNotes are patronictl's lines under the table: maintenance mode
// and a scheduled switchover; and Regent's: failsafe mode active.
func clusterNotes(w io.Writer, c *dcs.Cluster, now time.Time) error {
	var notes []string
	if configPaused(c) {
		notes = append(notes, " Maintenance mode: on")
	}
	notes = append(notes, failsafeNotes(c, now)...)
	if f := c.Failover; f.ScheduledAt != "" {
		line := " Switchover scheduled at: " + f.ScheduledAt
		if f.Leader != "" {
			line += "\n                    from: " + f.Leader
		}
		if f.Member != "" {
			line += "\n                      to: " + f.Member
		}
		notes = append(notes, line)
	}
	if len(notes) == 0 {
		return nil
	}
	_, err := io.WriteString(w, strings.Join(notes, "\n")+"\n")
	return err
}

// configPaused reads "pause" from the config key (lenient, as Patroni).
func configPaused(c *dcs.Cluster) bool {
	if c.Config == nil {
		return false
	}
	var cfg map[string]any
	if json.Unmarshal(c.Config.Data, &cfg) != nil {
		return false
	}
	return lenient.Truthy(cfg["pause"])
}

// watch redraws show every interval until the command's context ends
// (Ctrl-C), which is a normal exit. A failed read is shown, not fatal.
func watch(cmd *cobra.Command, s *settings, every time.Duration, show func(io.Writer, *dcs.Cluster) error) error {
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	tty := s.tty(out)
	for {
		c, err := s.cluster(ctx)
		if ctx.Err() != nil {
			return nil //nolint:nilerr // Ctrl-C ends a watch: a normal exit, whatever the last read did
		}
		if tty {
			fmt.Fprint(out, clearScreen)
		}
		fmt.Fprintln(out, time.Now().Format("2006-01-02 15:04:05 MST"))
		if err == nil {
			err = show(out, c)
		}
		if err != nil {
			fmt.Fprintf(out, "error: %v\n", err)
		}
		if !tty {
			fmt.Fprintln(out)
		}
		if !sleepCtx(ctx, every) {
			return nil
		}
	}
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// addWatchFlag adds -W/--watch with an optional interval.
func addWatchFlag(cmd *cobra.Command, every *time.Duration) {
	f := cmd.Flags()
	f.VarP((*watchValue)(every), "watch", "W", "redraw until Ctrl-C, every 2s or --watch=<interval> (e.g. 5s or 5)")
	f.Lookup("watch").NoOptDefVal = defaultWatch.String()
}

// watchValue is an interval: a Go duration or a number of seconds.
type watchValue time.Duration

func (v *watchValue) String() string {
	if *v == 0 {
		return ""
	}
	return time.Duration(*v).String()
}

func (v *watchValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		sec, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil {
			return fmt.Errorf("%q is not an interval (5s or 5)", s)
		}
		d = time.Duration(sec * float64(time.Second))
	}
	if d < 100*time.Millisecond {
		return fmt.Errorf("%q: the interval must be at least 100ms", s)
	}
	*v = watchValue(d)
	return nil
}

func (v *watchValue) Type() string { return "interval" }

// noArgs is cobra.NoArgs as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// failsafeNotes: one line per leader that members hold a failsafe call
// of (their member keys' failsafe field): the leader stays primary
// without etcd, and these members do not race meanwhile.
func failsafeNotes(c *dcs.Cluster, now time.Time) []string {
	held := map[string][]string{}
	since := map[string]time.Time{}
	for _, name := range c.MemberNames() {
		f := c.Members[name].Failsafe
		if f == nil {
			continue
		}
		held[f.Leader] = append(held[f.Leader], name)
		if t, err := time.Parse(time.RFC3339, f.Since); err == nil && (since[f.Leader].IsZero() || t.Before(since[f.Leader])) {
			since[f.Leader] = t
		}
	}
	var notes []string
	for _, leader := range slices.Sorted(maps.Keys(held)) {
		line := fmt.Sprintf(" Failsafe mode: active, leader %s confirmed without etcd by %s", leader, strings.Join(held[leader], ", "))
		if t := since[leader]; !t.IsZero() {
			line += fmt.Sprintf(" (since %s, %s ago)", t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second))
		}
		notes = append(notes, line)
	}
	return notes
}
