package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is the bottom of the range Pick draws from: above the well-known
// and commonly configured service ports (PostgreSQL's 5432, etcd's 2379,
// the usual 8008 of Patroni's REST API).
const lowest = 15000

// defaultEphemeralLow is Linux's default start of the ephemeral range, used
// when /proc cannot be read.
const defaultEphemeralLow = 32768

// attempts bounds the random draws before Pick gives up.
const attempts = 200

var (
	mu     sync.Mutex
	handed = map[int]bool{}
)

// Pick returns a TCP port on 127.0.0.1 that could be bound a moment ago,
// lies below the kernel's ephemeral range, and was not returned before by
// this process.
func Pick() (int, error) {
	high := ephemeralLow(readRange())
	if high <= lowest+100 {
		// A host whose ephemeral range starts very low: fall back to the
		// kernel's choice, which is still free a moment ago.
		return kernelPort()
	}
	mu.Lock()
	defer mu.Unlock()
	for range attempts {
		port := lowest + rand.IntN(high-lowest)
		if handed[port] || !bindable(port) {
			continue
		}
		handed[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("free port: no bindable port in [%d, %d) after %d tries", lowest, high, attempts)
}

// PickN returns n distinct ports (see Pick).
func PickN(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		p, err := Pick()
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	return ports, nil
}

func bindable(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)) //nolint:noctx // binding a loopback port does not wait
	if err != nil {
		return false
	}
	return l.Close() == nil
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0") //nolint:noctx // binding a loopback port does not wait
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	return port, nil
}

func readRange() string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return ""
	}
	return string(b)
}

// ephemeralLow parses the first number of ip_local_port_range ("32768\t60999").
func ephemeralLow(s string) int {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return defaultEphemeralLow
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return defaultEphemeralLow
	}
	return n
}
