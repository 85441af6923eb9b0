package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Chown gives a freshly written file its owner; nil leaves the writer's.
type Chown func(path string) error

// Write replaces path with data, mode and (through chown, when not nil)
// the owner.
func Write(path string, data []byte, mode os.FileMode, chown Chown) error {
	dir := filepath.Dir(path)
	tmp, err := Temp(dir, "."+filepath.Base(path)+".regent-*", data, mode, chown)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp) // the rename error is the one to report
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Temp writes data to a new file in dir (os.CreateTemp's dir and pattern),
// synced and closed, with mode and the owner chown gives, and returns its
// path. On an error nothing is left behind.
func Temp(dir, pattern string, data []byte, mode os.FileMode, chown Chown) (name string, err error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", fmt.Errorf("create temporary file: %w", err)
	}
	// tmp, not the result name: a failing return sets name to "".
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp) // the first error is the one to report
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write temporary file %s: %w", tmp, err)
	}
	// Chmod, not CreateTemp's 0600 through the umask: a file read by
	// another user (PgBouncer's include) needs its mode exactly.
	if err := os.Chmod(tmp, mode); err != nil {
		return "", fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if chown != nil {
		if err := chown(tmp); err != nil {
			return "", err
		}
	}
	return tmp, nil
}

// syncDir makes a rename in dir durable. Some file systems refuse to sync
// a directory (EINVAL); PostgreSQL ignores that too.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
