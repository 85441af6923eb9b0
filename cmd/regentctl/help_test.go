package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/regent-ha/regent/config"
)

// helpFlagRef is a flag named in help prose: --long (maybe --long=value)
// or -x, standing after a space, a parenthesis or a slash (-s/-p).
var helpFlagRef = regexp.MustCompile(`(?:^|[\s(/])(--[a-z][a-z0-9-]*|-[a-zA-Z])\b`)

// TestHelpNamesRealFlags: every flag a command's help text names is a flag
// of that command (its own or inherited), so the text cannot advertise a
// flag that was renamed or removed.
func TestHelpNamesRealFlags(t *testing.T) {
	checked := 0
	walkCommands(newRoot(io.Discard, io.Discard), func(c *cobra.Command) {
		for _, m := range helpFlagRef.FindAllStringSubmatch(c.Short+"\n"+c.Long+"\n"+c.Example, -1) {
			checked++
			if !hasFlag(c, m[1]) {
				t.Errorf("%q's help names %s, which it does not have", c.CommandPath(), m[1])
			}
		}
	})
	if checked < 20 {
		t.Fatalf("only %d flag references found in the help texts: the pattern no longer matches", checked)
	}
}

// TestExamplesParse: every example command line parses with regentctl's
// real command tree, flag sets and argument rules: the flag lines of the
// help texts ("  -s ttl=30  description"), the package comment's lines,
// and every `regentctl …` line of README.md and docs/*.md (code blocks and
// inline code). Every edit-config example sets a key the dynamic config
// reads with a value the agent accepts, so no example teaches a key Regent
// ignores or refuses.
func TestExamplesParse(t *testing.T) {
	examples := helpExamples(newRoot(io.Discard, io.Discard))
	examples = append(examples, sourceExamples(t, "main.go", regexp.MustCompile(`(?m)^//\t(regentctl .*)$`))...)
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs found: %v", err)
	}
	readmes, err := filepath.Glob("../../examples/*/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range append(append(docs, readmes...), "../../README.md") {
		examples = append(examples, sourceExamples(t, doc, docInvocation)...)
	}
	edits := 0
	for _, ex := range examples {
		cmd, err := parseInvocation(ex.args)
		if err != nil {
			t.Errorf("%s: %q does not parse: %v", ex.where, strings.Join(ex.args, " "), err)
			continue
		}
		if cmd.Name() != "edit-config" {
			continue
		}
		for _, key := range editedKeys(t, cmd) {
			edits++
			if !dynamicReads(key) {
				t.Errorf("%s: %q sets %s, which Regent's dynamic config does not read", ex.where, strings.Join(ex.args, " "), strings.Join(key, "."))
			}
		}
	}
	if len(examples) < 30 || edits < 8 {
		t.Fatalf("found only %d examples and %d edit-config settings: the patterns no longer match", len(examples), edits)
	}
}

// example is one command line and where it was found.
type example struct {
	where string
	args  []string // without the leading "regentctl"
}

// walkCommands calls fn for c and every command below it, cobra's help
// and completion commands excepted.
func walkCommands(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		if sub.Name() != "help" && sub.Name() != "completion" {
			walkCommands(sub, fn)
		}
	}
}

// hasFlag reports whether "--name" or "-x" is a flag of c or of a parent.
func hasFlag(c *cobra.Command, ref string) bool {
	if name, ok := strings.CutPrefix(ref, "--"); ok {
		return c.Flag(name) != nil
	}
	short := ref[1:]
	return c.Flags().ShorthandLookup(short) != nil || c.InheritedFlags().ShorthandLookup(short) != nil
}

// helpExamples are the help texts' flag lines: indented, starting with a
// flag, the example ending where two spaces start its description.
func helpExamples(root *cobra.Command) []example {
	var out []example
	walkCommands(root, func(c *cobra.Command) {
		for _, line := range strings.Split(c.Long+"\n"+c.Example, "\n") {
			if !strings.HasPrefix(line, "  -") {
				continue
			}
			ex, _, _ := strings.Cut(strings.TrimSpace(line), "  ")
			path := strings.Fields(c.CommandPath())[1:]
			out = append(out, example{c.CommandPath() + " --help", append(path, shellWords(ex)...)})
		}
	})
	return out
}

// docInvocation is a regentctl command line in Markdown: a code block line
// (maybe bin/regentctl, maybe with a "# comment") or an inline code span.
var docInvocation = regexp.MustCompile("(?m)^(?:bin/)?(regentctl(?: .*)?)$|`(regentctl [^`]*)`")

// sourceExamples returns the command lines pattern finds in file (its
// first non-empty group) line by line, placeholders filled in.
func sourceExamples(t *testing.T, file string, pattern *regexp.Regexp) []example {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	for n, text := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(text, "#") {
			continue // a Markdown heading names a command, without its arguments
		}
		for _, m := range pattern.FindAllStringSubmatch(text, -1) {
			line := ""
			for _, g := range m[1:] {
				line = max(line, g)
			}
			if args, ok := fillPlaceholders(shellWords(line)); ok {
				out = append(out, example{fmt.Sprintf("%s:%d", filepath.Base(file), n+1), args[1:]})
			}
		}
	}
	return out
}

// fillPlaceholders turns documentation syntax into arguments: <member>
// into a member name, a|b into a, [optional…] into nothing; a comment or a
// redirection ends the line. ok is false for a line whose command itself
// is a placeholder (`regentctl <command> --help`).
func fillPlaceholders(words []string) (args []string, ok bool) {
	for i, w := range words {
		switch {
		case w == "#" || w == ">":
			return args, true
		case strings.HasPrefix(w, "<"):
			if i == 1 {
				return nil, false
			}
			w = "pg2"
		case strings.HasPrefix(w, "["):
			continue
		case strings.Contains(w, "|"):
			w, _, _ = strings.Cut(w, "|")
		}
		args = append(args, w)
	}
	return args, true
}

// shellWords splits a command line as a shell would, for the quoting the
// examples use: "double" and 'single' quotes, no escapes.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// parseInvocation resolves args to a command of a fresh tree and parses
// its flags and arguments as Execute would, without running it.
func parseInvocation(args []string) (*cobra.Command, error) {
	root := newRoot(io.Discard, io.Discard)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	cmd, rest, err := root.Find(args)
	if err != nil {
		return nil, err
	}
	if err := cmd.ParseFlags(rest); err != nil {
		return nil, err
	}
	return cmd, cmd.ValidateArgs(cmd.Flags().Args())
}

// editedKeys are the config paths a parsed edit-config sets (-s, -p);
// each setting must pass the agent's strict check (config.CheckKeys).
func editedKeys(t *testing.T, cmd *cobra.Command) [][]string {
	t.Helper()
	sets, err := cmd.Flags().GetStringArray("set")
	if err != nil {
		t.Fatal(err)
	}
	pgs, err := cmd.Flags().GetStringArray("pg")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pgs {
		sets = append(sets, "postgresql.parameters."+p)
	}
	var keys [][]string
	for _, s := range sets {
		st, err := parseSetting(s)
		if err != nil {
			t.Errorf("edit-config setting %q: %v", s, err)
			continue
		}
		// The agent would refuse an edit members cannot apply: no example
		// may teach one.
		if err := config.CheckKeys(st.apply(map[string]any{})); err != nil {
			t.Errorf("edit-config setting %q is refused: %v", s, err)
		}
		keys = append(keys, st.path)
	}
	return keys
}

// dynamicReads reports whether the agent reads the config key at path: set
// to a value no key accepts, it makes config.ParseDynamic fail (a key
// Regent ignores passes untouched). GUCs under postgresql.parameters are
// free-form: the agent reads the map.
func dynamicReads(path []string) bool {
	if len(path) > 2 && path[0] == "postgresql" && path[1] == "parameters" {
		path = path[:2]
	}
	doc := setting{path: path, value: []any{"not a value"}}.apply(map[string]any{})
	raw, err := json.Marshal(doc)
	if err != nil {
		return false
	}
	_, err = config.ParseDynamic(raw)
	return err != nil
}
