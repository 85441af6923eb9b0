package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/regent-ha/regent/internal/atomicfile"
)

// writeFileAtomic writes data to path through atomicfile, so PostgreSQL
// never reads a half-written file. The file gets mode and, when
// configured, the PostgreSQL owner. It reports whether the content differs
// from what was there.
func (i *Instance) writeFileAtomic(path string, data []byte, mode os.FileMode) (changed bool, err error) {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		return false, i.chown(path)
	}
	if err := atomicfile.Write(path, data, mode, i.chown); err != nil {
		return false, err
	}
	return true, nil
}

// removeFile removes path and reports whether it existed.
func removeFile(path string) (bool, error) {
	return present(os.Remove(path), "remove "+path)
}

// present reads the error of a call on a path that may be absent: true
// when the call succeeded, false when the path does not exist; any other
// error is wrapped with what.
func present(err error, what string) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("%s: %w", what, err)
	}
}

// chown gives path to the PostgreSQL OS user when one is configured.
func (i *Instance) chown(path string) error {
	if i.uid < 0 {
		return nil
	}
	if err := os.Lchown(path, i.uid, i.gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// ensureDir creates dir (and missing parents) with mode, and makes dir
// itself exactly mode and owned by the PostgreSQL user.
func (i *Instance) ensureDir(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return i.chown(dir)
}

// ensureDataDir makes data_dir exist, mode 0700, owned by the PostgreSQL user.
func (i *Instance) ensureDataDir() error {
	return i.ensureDir(i.cfg.DataDir, 0o700)
}
