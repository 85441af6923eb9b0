package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 for user space on every architecture.
const clockTick = 10 * time.Millisecond

// procSample is one reading of a process's resident memory and CPU time.
type procSample struct {
	mem memSample
	CPU time.Duration // utime + stime of /proc/<pid>/stat
}

// memSample is a process's resident memory (/proc/<pid>/status), bytes:
// RSS = Anon (heap, stacks) + File (mapped binary and libraries) + shmem.
type memSample struct {
	RSS, Anon, File int64
}

// readProc reads pid's memory and CPU time ("self" reads this process).
func readProc(pid string) (procSample, error) {
	mem, err := readMem(pid)
	if err != nil {
		return procSample{}, err
	}
	cpu, err := readCPU(pid)
	if err != nil {
		return procSample{}, err
	}
	return procSample{mem: mem, CPU: cpu}, nil
}

func readMem(pid string) (memSample, error) {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return memSample{}, fmt.Errorf("read memory: %w", err)
	}
	var m memSample
	fields := map[string]*int64{"VmRSS:": &m.RSS, "RssAnon:": &m.Anon, "RssFile:": &m.File}
	seen := 0
	for line := range bytes.Lines(data) {
		f := bytes.Fields(line) // "VmRSS:", "12345", "kB"
		if len(f) != 3 || fields[string(f[0])] == nil {
			continue
		}
		if string(f[2]) != "kB" {
			return memSample{}, fmt.Errorf("read memory of %s: unexpected line %q", pid, line)
		}
		kb, err := strconv.ParseInt(string(f[1]), 10, 64)
		if err != nil {
			return memSample{}, fmt.Errorf("read memory of %s: %w", pid, err)
		}
		*fields[string(f[0])] = kb << 10
		seen++
	}
	if seen != len(fields) {
		return memSample{}, fmt.Errorf("read memory of %s: VmRSS, RssAnon or RssFile missing (a zombie?)", pid)
	}
	return m, nil
}

func readCPU(pid string) (time.Duration, error) {
	data, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read cpu: %w", err)
	}
	// pid (comm) state ppid … ; comm may hold spaces and parentheses, so
	// count fields after the last ')': utime and stime are the 12th and
	// 13th (fields 14 and 15 of proc(5)).
	end := bytes.LastIndexByte(data, ')')
	if end < 0 {
		return 0, fmt.Errorf("read cpu of %s: malformed stat %q", pid, data)
	}
	fields := bytes.Fields(data[end+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("read cpu of %s: short stat %q", pid, data)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read cpu of %s: %w", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}
