package runtime_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Bad input on one rank at a time (collcheck.BadCases): no hang, no nil with
// wrong data; on a one-node communicator with shared memory the same
// ErrInvalid everywhere and a communicator that still works; on the message
// path the same for the calls that pass errors on, a world abort naming the
// cause for the others.

// badConfigs are the paths every case runs on, with goroutine ranks.
var badConfigs = []struct {
	name   string
	n      int
	cfg    runtime.Config
	shared bool
}{
	{"node/np3", 3, runtime.Config{}, true},
	{"node/np4", 4, runtime.Config{}, true},
	{"messages/np3", 3, runtime.Config{Transports: []string{"self"}}, false},
	{"messages/np4", 4, runtime.Config{Transports: []string{"self"}}, false},
	{"nodes2/np3", 3, runtime.Config{LocalNodes: 2}, false},
	{"nodes2/np4", 4, runtime.Config{LocalNodes: 2}, false},
	{"real/np4", 4, runtime.Config{LocalNodes: 2, Transports: []string{"self", "shm", "tcp"}}, false},
}

func TestBadInput(t *testing.T) {
	for _, bc := range badConfigs {
		for _, cs := range collcheck.BadCases {
			t.Run(bc.name+"/"+cs.Name, func(t *testing.T) {
				outs := make([]collcheck.Outcome, bc.n)
				cfg := ranktest.Config{Runtime: bc.cfg}
				cfg.Run(t, bc.n, func(t testing.TB, c *runtime.Comm) {
					outs[c.Rank()] = collcheck.RunBad(c, cs, 0)
				})
				if err := collcheck.Judge(cs, bc.n, bc.shared, outs); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestBadInputLate(t *testing.T) {
	// The bad rank comes late, so the others' calls stall and check with
	// it: the checks must not turn what the call itself reports as the
	// same ErrInvalid everywhere into an abort.
	if testing.Short() {
		t.Skip("waits for stalls")
	}
	for _, bc := range badConfigs {
		if bc.n != 4 {
			continue
		}
		for _, cs := range collcheck.BadCases {
			// Off shared memory only the calls that pass errors on can
			// end in ErrInvalid (the others abort anyway); on it, the
			// ranks' differing calls are the ones whose checks could
			// interfere.
			if !cs.Informing && (!bc.shared || !strings.Contains(cs.Says, "different")) {
				continue
			}
			t.Run(bc.name+"/"+cs.Name, func(t *testing.T) {
				t.Parallel()
				outs := make([]collcheck.Outcome, bc.n)
				cfg := ranktest.Config{Runtime: bc.cfg}
				cfg.Run(t, bc.n, func(t testing.TB, c *runtime.Comm) {
					outs[c.Rank()] = collcheck.RunBad(c, cs, 2*stallWait)
				})
				if err := collcheck.Judge(cs, bc.n, bc.shared, outs); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// The same cases on processes: shared memory on one node, TCP only, and two
// emulated nodes. A job runs cases until one aborts the world; the next job
// goes on from the case after it.

const envBadCases = "GORUN_TEST_BADCASES"

func init() {
	if os.Getenv(envBadCases) != "" {
		// When the world aborts, gorun stops the other ranks with SIGTERM
		// (perhaps before they finish Init); these report first and then
		// exit by themselves.
		signal.Ignore(syscall.SIGTERM)
	}
	ranktest.Register("badinput", func(c *runtime.Comm) error {
		for _, name := range strings.Split(os.Getenv(envBadCases), ",") {
			i := badCaseIndex(name)
			if i < 0 {
				return fmt.Errorf("no bad case %q", name)
			}
			o := collcheck.RunBad(c, collcheck.BadCases[i], 0)
			b, _ := json.Marshal(encodeOutcome(name, o))
			fmt.Printf("OUTCOME %s\n", b)
			if errors.Is(o.Err, runtime.ErrAborted) || errors.Is(o.After, runtime.ErrAborted) {
				break
			}
			// No rank starts the next case before every rank has its
			// outcome of this one. (If the next case's abort overtakes
			// this Barrier, that case reports it.)
			_ = c.Barrier()
		}
		return nil
	})
}

func badCaseIndex(name string) int {
	for i, cs := range collcheck.BadCases {
		if cs.Name == name {
			return i
		}
	}
	return -1
}

// wireOutcome is an Outcome as a rank prints it.
type wireOutcome struct {
	Case         string
	Rank         int
	Err, After   string // "" for nil; the cause, without the rank's name
	ErrInvalid   bool
	ErrAborted   bool
	AfterAborted bool
	Wrong        string
}

func encodeOutcome(name string, o collcheck.Outcome) wireOutcome {
	w := wireOutcome{Case: name, Rank: o.Rank, Wrong: o.Wrong}
	if o.Err != nil {
		w.Err = collcheck.Cause(o.Err)
		w.ErrInvalid = errors.Is(o.Err, runtime.ErrInvalid)
		w.ErrAborted = errors.Is(o.Err, runtime.ErrAborted)
	}
	if o.After != nil {
		w.After = collcheck.Cause(o.After)
		w.AfterAborted = errors.Is(o.After, runtime.ErrAborted)
	}
	return w
}

// flagErr is an error decoded from a wireOutcome.
type flagErr struct {
	msg              string
	invalid, aborted bool
}

func (e *flagErr) Error() string { return e.msg }
func (e *flagErr) Is(t error) bool {
	return (t == runtime.ErrInvalid && e.invalid) || (t == runtime.ErrAborted && e.aborted)
}

func (w wireOutcome) outcome() collcheck.Outcome {
	o := collcheck.Outcome{Rank: w.Rank, Wrong: w.Wrong}
	if w.Err != "" {
		o.Err = &flagErr{w.Err, w.ErrInvalid, w.ErrAborted}
	}
	if w.After != "" {
		o.After = &flagErr{w.After, false, w.AfterAborted}
	}
	return o
}

func TestBadInputProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("launches a job per aborting case")
	}
	for _, pc := range []struct {
		name   string
		n      int
		cfg    ranktest.SpawnConfig
		shared bool
	}{
		{"node/np3", 3, ranktest.SpawnConfig{}, true},
		{"node/np4", 4, ranktest.SpawnConfig{}, true},
		{"tcp/np3", 3, ranktest.SpawnConfig{Transports: "self,tcp"}, false},
		{"tcp/np4", 4, ranktest.SpawnConfig{Transports: "self,tcp"}, false},
		{"nodes2/np3", 3, ranktest.SpawnConfig{Nodes: 2}, false},
		{"nodes2/np4", 4, ranktest.SpawnConfig{Nodes: 2}, false},
	} {
		t.Run(pc.name, func(t *testing.T) {
			var todo []string
			for _, cs := range collcheck.BadCases {
				// GORUN_TEST_BADONLY=name picks one case, to debug it.
				if only := os.Getenv("GORUN_TEST_BADONLY"); only == "" || only == cs.Name {
					todo = append(todo, cs.Name)
				}
			}
			for len(todo) > 0 {
				cfg := pc.cfg
				cfg.Env = append(cfg.Env, envBadCases+"="+strings.Join(todo, ","))
				out, _ := cfg.SpawnResult(t, pc.n, "badinput")
				got := map[string][]collcheck.Outcome{}
				for _, line := range strings.Split(out, "\n") {
					_, js, ok := strings.Cut(line, "OUTCOME ")
					if !ok {
						continue
					}
					var w wireOutcome
					if err := json.Unmarshal([]byte(js), &w); err != nil {
						t.Fatalf("bad outcome line %q: %v", line, err)
					}
					got[w.Case] = append(got[w.Case], w.outcome())
				}
				done := 0
				for _, name := range todo {
					outs := got[name]
					if len(outs) == 0 {
						break
					}
					done++
					cs := collcheck.BadCases[badCaseIndex(name)]
					if len(outs) != pc.n {
						t.Errorf("%s: %d ranks reported, want %d:\n%s", name, len(outs), pc.n, out)
						continue
					}
					if err := collcheck.Judge(cs, pc.n, pc.shared, outs); err != nil {
						t.Errorf("%s:\n%v", name, err)
					}
				}
				if done == 0 {
					t.Fatalf("no case finished in a job of %v:\n%s", todo, out)
				}
				todo = todo[done:]
			}
		})
	}
}
