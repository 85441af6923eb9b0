package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/dcs"
)

// memberPick selects one member: by name, or by role (patronictl's
// --member and --role).
type memberPick struct {
	role, member string
}

func (p *memberPick) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&p.role, "role", "r", "any", "leader (primary, master), replica or any (the leader when there is one)")
	cmd.Flags().StringVarP(&p.member, "member", "m", "", "the member's name (instead of --role)")
}

// pick returns the chosen member's name and PostgreSQL host and port.
func (p *memberPick) pick(cmd *cobra.Command, c *dcs.Cluster) (name, host string, port int, err error) {
	if p.member != "" && cmd.Flags().Changed("role") {
		return "", "", 0, usagef("--role and --member are mutually exclusive")
	}
	name, err = p.choose(c)
	if err != nil {
		return "", "", 0, err
	}
	host, port, err = pgAddress(c.Members[name].ConnURL)
	if err != nil {
		return "", "", 0, fmt.Errorf("member %s: %w", name, err)
	}
	return name, host, port, nil
}

func (p *memberPick) choose(c *dcs.Cluster) (string, error) {
	if p.member != "" {
		if _, ok := c.Members[p.member]; !ok {
			return "", fmt.Errorf("member %s is not in the cluster (members: %s)", p.member, orNone(strings.Join(c.MemberNames(), ", ")))
		}
		return p.member, nil
	}
	leader := c.LeaderName()
	if _, ok := c.Members[leader]; !ok {
		leader = ""
	}
	switch strings.ToLower(p.role) {
	case "leader", "primary", "master":
		if leader == "" {
			return "", fmt.Errorf("the cluster has no leader")
		}
		return leader, nil
	case "replica", "standby":
		for _, n := range c.MemberNames() {
			if m := c.Members[n]; n != leader && m.Role == "replica" && m.State == "running" {
				return n, nil
			}
		}
		return "", fmt.Errorf("the cluster has no running replica")
	case "any", "":
		if leader != "" {
			return leader, nil
		}
		for _, n := range c.MemberNames() {
			if c.Members[n].State == "running" {
				return n, nil
			}
		}
		return "", fmt.Errorf("the cluster has no running member")
	}
	return "", usagef("--role %q: want leader, replica or any", p.role)
}

// pgAddress reads host and port from a member's conn_url.
func pgAddress(connURL string) (string, int, error) {
	u, err := url.Parse(connURL)
	if err != nil || u.Host == "" {
		return "", 0, fmt.Errorf("conn_url %q has no host", connURL)
	}
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, portText = u.Host, "5432"
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("conn_url %q has no usable port", connURL)
	}
	return host, port, nil
}

func newDSNCmd(s *settings) *cobra.Command {
	p := &memberPick{}
	cmd := &cobra.Command{
		Use:   "dsn",
		Short: "Print the connection string of a member chosen by --role or --member",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := s.cluster(cmd.Context())
			if err != nil {
				return err
			}
			_, host, port, err := p.pick(cmd, c)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "host=%s port=%d\n", host, port)
			return nil
		},
	}
	p.addFlags(cmd)
	return cmd
}

// queryOpts are query's flags.
type queryOpts struct {
	pick     memberPick
	command  string
	file     string
	username string
	dbname   string
}

func newQueryCmd(s *settings) *cobra.Command {
	o := &queryOpts{}
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Run one SQL statement on a member chosen by --role or --member and print the result as psql does",
		Long: `Run one SQL statement (--command, or a file with --file) on the member chosen by
--role (default any: the leader when there is one) or --member, and print
the result as psql's aligned table, or the command tag. The password comes
from $PGPASSWORD or ~/.pgpass (as psql); --username defaults to $PGUSER or
postgres, --dbname to $PGDATABASE or postgres. Connecting and the
statement are bounded by --timeout.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd, s) },
	}
	o.pick.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&o.command, "command", "", "the SQL statement")
	f.StringVarP(&o.file, "file", "f", "", "read the SQL statement from this file")
	f.StringVarP(&o.username, "username", "U", envOr("PGUSER", "postgres"), "database user ($PGUSER)")
	f.StringVarP(&o.dbname, "dbname", "d", envOr("PGDATABASE", "postgres"), "database ($PGDATABASE)")
	return cmd
}

func (o *queryOpts) run(cmd *cobra.Command, s *settings) error {
	sql, err := o.statement()
	if err != nil {
		return err
	}
	c, err := s.cluster(cmd.Context())
	if err != nil {
		return err
	}
	name, host, port, err := o.pick.pick(cmd, c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), s.timeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s application_name=regentctl",
		quoteDSN(host), port, quoteDSN(o.username), quoteDSN(o.dbname)))
	if err != nil {
		return usagef("connection settings: %v", err)
	}
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol // text results, as psql prints them
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to %s (%s:%d): %w", name, host, port, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	rows, err := conn.Query(ctx, sql)
	if err != nil {
		return fmt.Errorf("query on %s: %w", name, err)
	}
	fields := rows.FieldDescriptions()
	var table [][]string
	for rows.Next() {
		row := make([]string, len(fields))
		for i, v := range rows.RawValues() {
			row[i] = string(v)
		}
		table = append(table, row)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("query on %s: %w", name, err)
	}
	if len(fields) == 0 {
		fmt.Fprintln(cmd.OutOrStdout(), rows.CommandTag().String())
		return nil
	}
	printAligned(cmd.OutOrStdout(), fields, table)
	return nil
}

func (o *queryOpts) statement() (string, error) {
	switch {
	case o.command != "" && o.file != "":
		return "", usagef("--command and --file are mutually exclusive")
	case o.file != "":
		data, err := os.ReadFile(o.file)
		if err != nil {
			return "", usagef("--file: %v", err)
		}
		o.command = string(data)
	}
	if strings.TrimSpace(o.command) == "" {
		return "", usagef("no SQL: give --command or --file")
	}
	return o.command, nil
}

// quoteDSN quotes a keyword/value connection string value.
func quoteDSN(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// numericOIDs are the types psql right-aligns.
var numericOIDs = map[uint32]bool{20: true, 21: true, 23: true, 26: true, 700: true, 701: true, 790: true, 1700: true}

// printAligned prints rows as psql's default aligned format: centered
// headers, numbers right-aligned, a row count footer.
func printAligned(w io.Writer, fields []pgconn.FieldDescription, rows [][]string) {
	width := make([]int, len(fields))
	for i, f := range fields {
		width[i] = utf8.RuneCountInString(f.Name)
		for _, r := range rows {
			width[i] = max(width[i], utf8.RuneCountInString(r[i]))
		}
	}
	last := len(fields) - 1
	cells := make([]string, len(fields))
	for i, f := range fields {
		pad := width[i] - utf8.RuneCountInString(f.Name)
		cells[i] = strings.Repeat(" ", pad/2) + f.Name + strings.Repeat(" ", pad-pad/2)
	}
	fmt.Fprintln(w, alignedLine(cells, last))
	dashes := make([]string, len(fields))
	for i := range fields {
		dashes[i] = strings.Repeat("-", width[i]+2)
	}
	fmt.Fprintln(w, strings.Join(dashes, "+"))
	for _, r := range rows {
		for i, f := range fields {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(r[i]))
			if numericOIDs[f.DataTypeOID] {
				cells[i] = pad + r[i]
			} else {
				cells[i] = r[i] + pad
			}
		}
		fmt.Fprintln(w, alignedLine(cells, last))
	}
	if len(rows) == 1 {
		fmt.Fprintln(w, "(1 row)")
	} else {
		fmt.Fprintf(w, "(%d rows)\n", len(rows))
	}
}

// alignedLine joins cells psql's way; the last column has no trailing
// padding.
func alignedLine(cells []string, last int) string {
	out := make([]string, len(cells))
	copy(out, cells)
	out[last] = strings.TrimRight(out[last], " ")
	return " " + strings.Join(out, " | ")
}
