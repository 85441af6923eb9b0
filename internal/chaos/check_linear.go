package chaos

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// linearTimeout bounds porcupine on one register row; past it the row is
// reported inconclusive (not a failure).
const linearTimeout = 30 * time.Second

// regInput is a register operation's input.
type regInput struct {
	write bool
	value int64
}

// registerModel is a single register starting at 0 (a row that does not
// exist reads as 0).
var registerModel = porcupine.Model{
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(int64) == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return fmt.Sprintf("write(%d)", in.value)
		}
		return fmt.Sprintf("read() → %d", output.(int64))
	},
	DescribeState: func(state any) string { return fmt.Sprint(state.(int64)) },
}

// registerOps turns the register operations of one row into porcupine's:
// acknowledged writes and primary reads with their intervals; a write of
// unknown outcome may take effect at any time after its invocation (its
// return is at infinity); failed writes and replica or failed reads are
// left out, and so are plain reads unless withPlain.
func registerOps(ops []Op, key int64, withPlain bool) []porcupine.Operation {
	var out []porcupine.Operation
	for _, o := range ops {
		if o.Kind == OpInsert || o.Key != key {
			continue
		}
		p := porcupine.Operation{ClientId: o.Client, Call: int64(o.Invoke), Return: int64(o.Complete), Output: o.Value}
		switch {
		case o.Kind == OpWrite && o.Outcome == OK:
			p.Input = regInput{write: true, value: o.Value}
		case o.Kind == OpWrite && o.Outcome == Unknown:
			p.Input, p.Return = regInput{write: true, value: o.Value}, math.MaxInt64
		case o.Kind == OpRead && o.Outcome == OK && (withPlain || !o.Plain):
			p.Input = regInput{}
		default:
			continue
		}
		out = append(out, p)
	}
	return out
}

// CheckLinearizable checks every register row with porcupine: the writes
// and the durable reads, whose commits waited for the synchronous standby.
// A row that times out is reported, not failed. When dir is set, a failing
// row's visualization is written there (an HTML file).
func CheckLinearizable(ops []Op, dir string) Verdict {
	return checkRegister(ops, dir, false)
}

// CheckPlainReads runs the same check with the plain reads added. It is
// informational in every mode: a client that cancels a commit's wait for
// the synchronous standby (a timeout, statement_timeout) makes PostgreSQL
// expose the commit at once, replicated or not, so a plain read on a
// primary cut from its standby can return a write that the failover then
// loses. No agent can prevent that (docs/testing.md); the count says how
// often it happened.
func CheckPlainReads(ops []Op, dir string) Verdict {
	v := checkRegister(ops, dir, true)
	v.Name += " (informational)"
	v.OK, v.Details = true, ""
	return v
}

func checkRegister(ops []Op, dir string, withPlain bool) Verdict {
	var keys []int64
	for _, o := range ops {
		if o.Kind != OpInsert && !slices.Contains(keys, o.Key) {
			keys = append(keys, o.Key)
		}
	}
	slices.Sort(keys)
	v := Verdict{Name: "linearizable-register", OK: true}
	file := "porcupine-row-%d.html"
	if withPlain {
		v.Name, file = "linearizable-register-with-plain-reads", "porcupine-plain-row-%d.html"
	}
	var bad, unknown []int64
	var details strings.Builder
	checked := 0
	for _, k := range keys {
		pops := registerOps(ops, k, withPlain)
		if len(pops) == 0 {
			continue
		}
		checked++
		res, info := porcupine.CheckOperationsVerbose(registerModel, pops, linearTimeout)
		switch res {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			unknown = append(unknown, k)
			continue
		}
		bad = append(bad, k)
		fmt.Fprintf(&details, "register row %d is not linearizable:\n", k)
		details.WriteString(sliceOf(ops, 0, math.MaxInt64, func(o Op) bool {
			return o.Kind != OpInsert && o.Key == k && o.Outcome != Fail && (withPlain || !o.Plain)
		}, 60))
		if dir != "" {
			path := filepath.Join(dir, fmt.Sprintf(file, k))
			if err := visualize(path, info); err != nil {
				fmt.Fprintf(&details, "  (no HTML view: %v)\n", err)
			} else {
				fmt.Fprintf(&details, "  visualization: %s\n", path)
			}
		}
	}
	v.Summary = fmt.Sprintf("%d register rows checked, %d not linearizable, %d inconclusive (timeout %s)", checked, len(bad), len(unknown), linearTimeout)
	if len(bad) > 0 {
		v.OK = false
		v.Summary += fmt.Sprintf("; failing rows %v (row n is round n's register)", bad)
		v.Details = details.String()
	}
	return v
}

// visualize writes porcupine's HTML view of one row's history to path.
func visualize(path string, info porcupine.LinearizationInfo) error {
	f, err := os.Create(path)
	if err != nil {
		return err // names the path
	}
	err = porcupine.Visualize(registerModel, info, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
