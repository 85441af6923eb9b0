package netns

import (
	"os"
	"strconv"
	"testing"
)

func TestLeftoverNames(t *testing.T) {
	for name, want := range map[string]bool{
		"rgc-pg1":        false, // no pid
		"eth0":           false,
		"rgczzzzzz-pg1":  true,  // pid 2176782335: no such process
		"rgc1-pg1":       false, // pid 1 is alive
		"rgcnot_pid-pg1": false,
		namePrefix + strconv.FormatInt(int64(os.Getpid()), 36) + "-pg1": false, // ours: live
	} {
		if got := Leftover(name); got != want {
			t.Errorf("Leftover(%q) = %v, want %v", name, got, want)
		}
	}
}
