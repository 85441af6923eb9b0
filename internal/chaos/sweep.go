package chaos

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/regent-ha/regent/internal/netns"
)

// dirPrefix starts the name of our temporary directories, followed by the
// creating process's pid in base 36 and a dash (see tempDir).
const dirPrefix = "regent-chaos-"

// tempDir creates a temporary directory named after this process, so that
// a later sweep can tell whether its run is gone.
func tempDir(kind string) (string, error) {
	return os.MkdirTemp("", dirPrefix+strconv.FormatInt(int64(os.Getpid()), 36)+"-"+kind+"-")
}

// sweepDirs removes the temporary directories of runs that are gone. A
// logs directory is kept: a failed run (or -chaos.keep) printed its path
// for someone to read; everything beside it goes.
func sweepDirs(logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), dirPrefix)
		tag, _, ok := strings.Cut(rest, "-")
		if !ok || !netns.Leftover("rgc"+tag+"-dir") {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "logs")); err != nil {
			if err := os.RemoveAll(d); err == nil {
				logf("chaos: sweep: removed %s of a finished run", d)
			}
			continue
		}
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.Name() != "logs" {
				_ = os.RemoveAll(filepath.Join(d, e.Name()))
			}
		}
	}
}
