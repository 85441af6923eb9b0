package examples_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// seriesRef is a regent_* or patroni_* name in prose.
var seriesRef = regexp.MustCompile(`\b(?:regent|patroni)_[a-z0-9_]+`)

// TestMetricsDocListsEverySeries: docs/metrics.md has a row for every
// regent_* and patroni_* series the agent exports, and names no series
// the agent does not export.
func TestMetricsDocListsEverySeries(t *testing.T) {
	data, err := os.ReadFile("../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	all := exportedSeries(t)
	known := map[string]bool{}
	for _, s := range all {
		for _, n := range s.sampleNames() {
			known[n] = true
		}
	}
	for _, name := range sortedNames(all, "regent", "patroni") {
		if !strings.Contains(doc, "| `"+name+"` |") {
			t.Errorf("docs/metrics.md has no table row for %s", name)
		}
	}
	for _, ref := range seriesRef.FindAllString(doc, -1) {
		if !known[ref] {
			t.Errorf("docs/metrics.md names %s, which the agent does not export", ref)
		}
	}
}

// buildTimeout bounds `go build ./cmd/regentctl` (cold: it links etcd).
const buildTimeout = 5 * time.Minute

// TestCLIDocCoversEveryCommand: docs/cli.md has a "### `regentctl <cmd>`"
// section for every command and subcommand `regentctl --help` lists, each
// naming every flag of its command, a row for every global flag, and no
// section for a command that does not exist.
func TestCLIDocCoversEveryCommand(t *testing.T) {
	data, err := os.ReadFile("../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := markdownSections(string(data))
	bin := filepath.Join(t.TempDir(), "regentctl")
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/regentctl")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/regentctl: %v\n%s", err, out)
	}
	root := helpOf(t, bin)
	global := sections["## Global flags"]
	for _, f := range root.flags {
		if !strings.Contains(global, "`--"+f+"`") {
			t.Errorf("docs/cli.md: the global flag --%s is not in \"Global flags\"", f)
		}
	}
	documented := map[string]bool{}
	for h := range sections {
		if name, ok := strings.CutPrefix(h, "### `regentctl "); ok {
			documented[strings.TrimSuffix(name, "`")] = true
		}
	}
	var walk func(path []string, h help)
	walk = func(path []string, h help) {
		for _, sub := range h.commands {
			p := append(slices.Clone(path), sub)
			name := strings.Join(p, " ")
			sh := helpOf(t, bin, p...)
			section, ok := sections["### `regentctl "+name+"`"]
			if !ok {
				t.Errorf("docs/cli.md has no section \"### `regentctl %s`\"", name)
			}
			for _, f := range sh.flags {
				if ok && !strings.Contains(section, "`--"+f+"`") {
					t.Errorf("docs/cli.md: regentctl %s --%s is not in its section", name, f)
				}
			}
			delete(documented, name)
			if sub != "completion" { // cobra's per-shell generators
				walk(p, sh)
			}
		}
	}
	walk(nil, root)
	for name := range documented {
		t.Errorf("docs/cli.md documents \"regentctl %s\", which regentctl does not have", name)
	}
}

// help is what `--help` lists: subcommands and local flags.
type help struct{ commands, flags []string }

var (
	helpCommand = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s+\S`)
	helpFlag    = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)
)

// helpOf runs `regentctl <path…> --help` and parses cobra's sections.
func helpOf(t *testing.T, bin string, path ...string) help {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), verifyTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(path, "--help")...).CombinedOutput()
	if err != nil {
		t.Fatalf("regentctl %s --help: %v\n%s", strings.Join(path, " "), err, out)
	}
	var h help
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasSuffix(line, ":") && !strings.HasPrefix(line, " ") {
			section = line
			continue
		}
		switch section {
		case "Available Commands:":
			if m := helpCommand.FindStringSubmatch(line); m != nil && m[1] != "help" {
				h.commands = append(h.commands, m[1])
			}
		case "Flags:":
			if m := helpFlag.FindStringSubmatch(line); m != nil && m[1] != "help" {
				h.flags = append(h.flags, m[1])
			}
		}
	}
	return h
}

// markdownSections maps each "## " and "### " heading to its text, up to
// the next heading of any level.
func markdownSections(doc string) map[string]string {
	out := map[string]string{}
	heading := ""
	var body strings.Builder
	flush := func() {
		if heading != "" {
			out[heading] = body.String()
		}
		body.Reset()
	}
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ") {
			flush()
			heading = line
			continue
		}
		body.WriteString(line + "\n")
	}
	flush()
	return out
}
