package fencing

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// JournalPrefix selects the journal device: `watchdog.device:
// "journal:/path/file"`. It is for end-to-end tests, which must never open
// a real watchdog: instead of resetting the host it appends what a device
// would see (timeout, ping, close) to the file, with wall-clock times, so
// a test in another process can tell when a real device would have fired.
const JournalPrefix = "journal:"

// OpenDevice opens the device at path: the Linux watchdog, or a journal
// device when path starts with JournalPrefix.
func OpenDevice(path string) (Device, error) {
	if file, ok := strings.CutPrefix(path, JournalPrefix); ok {
		return OpenJournal(file)
	}
	return OpenLinux(path)
}

type journal struct {
	mu      sync.Mutex
	f       *os.File
	timeout time.Duration
}

// OpenJournal opens (appending) a journal device at file.
func OpenJournal(file string) (Device, error) {
	f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open journal watchdog: %w", err)
	}
	j := &journal{f: f, timeout: 60 * time.Second}
	return j, j.write("open")
}

func (j *journal) write(event string) error {
	_, err := fmt.Fprintf(j.f, "%d %s\n", time.Now().UnixNano(), event)
	return err
}

func (j *journal) SetTimeout(d time.Duration) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.timeout = d.Truncate(time.Second)
	return j.write(fmt.Sprintf("timeout %d", int(j.timeout.Seconds())))
}

func (j *journal) Timeout() (time.Duration, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.timeout, nil
}

func (j *journal) Ping() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.write("ping")
}

func (j *journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	err := j.write("close")
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}
