package testcluster

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// testLog forwards lines to t.Logf until the cluster's cleanup has run:
// t.Logf after a test completes panics, and agent output goroutines may
// outlive the test by a few milliseconds.
type testLog struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
	taps   map[int]func(line string) // see LogCapture; called under mu
	nextID int
}

func (l *testLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	line := fmt.Sprintf(format, args...)
	l.t.Logf("%s", line)
	for _, tap := range l.taps {
		tap(line)
	}
}

// tap registers fn to receive every line logged from now on (it must not
// block) and returns the function that unregisters it.
func (l *testLog) tap(fn func(line string)) (remove func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.taps == nil {
		l.taps = map[int]func(string){}
	}
	id := l.nextID
	l.nextID++
	l.taps[id] = fn
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.taps, id)
	}
}

// close stops forwarding; later lines are dropped.
func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// lineWriter is an io.Writer that sends each complete line, prefixed, to a
// testLog. exec.Cmd copies the child's output into it from one goroutine
// per stream; the mutex makes Flush from another goroutine safe.
type lineWriter struct {
	log    *testLog
	prefix string
	mu     sync.Mutex
	buf    bytes.Buffer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := string(w.buf.Next(i + 1))
		w.log.logf("%s %s", w.prefix, strings.TrimRight(line, "\r\n"))
	}
	return len(p), nil
}

// Flush sends a trailing partial line, if any.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.log.logf("%s %s", w.prefix, w.buf.String())
		w.buf.Reset()
	}
}

// postgresLogTails returns the last lines of the newest PostgreSQL log
// files found under dir (the node directory: pg_ctl -l files, and the
// data directory's log/ when logging_collector is on).
func postgresLogTails(dir string, maxFiles, maxLines int) string {
	type logFile struct {
		path string
		mod  int64
	}
	var files []logFile
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // best effort: skip unreadable entries
		}
		if d.IsDir() {
			if d.Name() == "pg_wal" || d.Name() == "base" || d.Name() == "global" {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".log") || strings.HasSuffix(d.Name(), ".csv") {
			if fi, err := d.Info(); err == nil {
				files = append(files, logFile{path, fi.ModTime().UnixNano()})
			}
		}
		return nil
	})
	sort.Slice(files, func(i, j int) bool { return files[i].mod > files[j].mod })
	if len(files) > maxFiles {
		files = files[:maxFiles]
	}
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "--- %s (last %d lines)\n%s", f.path, maxLines, tail(f.path, maxLines))
	}
	if b.Len() == 0 {
		return fmt.Sprintf("(no PostgreSQL log file under %s)\n", dir)
	}
	return b.String()
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(open: %v)\n", err)
	}
	defer func() { _ = f.Close() }() // read only: a failed close loses nothing
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
