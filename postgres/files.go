package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so PostgreSQL never reads a half-written file.
// The file gets mode and, when configured, the PostgreSQL owner. It reports
// whether the content differs from what was there.
func (i *Instance) writeFileAtomic(path string, data []byte, mode os.FileMode) (changed bool, err error) {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, data) {
		return false, i.chown(path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".regent-*")
	if err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("sync %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return false, fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := i.chown(tmp.Name()); err != nil {
		return false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("write %s: %w", path, err)
	}
	return true, nil
}

// removeFile removes path and reports whether it existed.
func removeFile(path string) (bool, error) {
	err := os.Remove(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("remove %s: %w", path, err)
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
