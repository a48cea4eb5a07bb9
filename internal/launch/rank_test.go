package launch

import (
	"fmt"
	"strings"
	"testing"
)

// hostStarter starts ranks here but reports them on made-up hosts, as an
// agent's ranks are: the supervisor must take the host from the rank.
type hostStarter struct{ localStarter }

type fakeHostProc struct {
	rankProc
	host string
}

func (r fakeHostProc) Host() string { return r.host }

func (h hostStarter) start(spec rankSpec, exited chan<- int) (rankProc, error) {
	p, err := h.localStarter.start(spec, exited)
	if err != nil {
		return nil, err
	}
	return fakeHostProc{p, fmt.Sprintf("host%d", spec.rank%2)}, nil
}

// The supervisor works through the rankProc seam only: a failure report
// names the host its starter says the rank runs on.
func TestRunStarterSeam(t *testing.T) {
	j, _, stderr := testJob(t, "exit3", 3)
	j.starter = func(host string, cpus []int) starter { return hostStarter{localStarter{host, cpus}} }
	res := await(t, run(t.Context(), j))
	if res.ExitCode() != 3 || res.Failed == nil || res.Failed.Rank != 1 {
		t.Fatalf("ExitCode %d, Failed %+v", res.ExitCode(), res.Failed)
	}
	if report := stderr.String(); !strings.Contains(report, ") on host host1 exited with code 3") {
		t.Errorf("the report does not name host1:\n%s", report)
	}
}

// Named hosts under the local start: each is an emulated node of that
// name, with local ranks counted per host in rank order.
func TestRunRankHosts(t *testing.T) {
	j, stdout, _ := testJob(t, "echo", 5)
	j.RankHosts = []string{"a", "b", "a", "b", "c"} // --map-by node over a, b, c
	j.Launcher = "local"
	res := await(t, run(t.Context(), j))
	if res.ExitCode() != 0 {
		t.Fatalf("ExitCode %d", res.ExitCode())
	}
	lines := echoLine.FindAllStringSubmatch(stdout.String(), -1)
	if len(lines) != 5 {
		t.Fatalf("%d echo lines, want 5:\n%s", len(lines), stdout)
	}
	want := map[string]string{"0": "a 0/2", "1": "b 0/2", "2": "a 1/2", "3": "b 1/2", "4": "c 0/1"}
	for _, m := range lines {
		if got := m[5] + " " + m[3] + "/" + m[4]; got != want[m[1]] {
			t.Errorf("rank %s: node and local %q, want %q", m[1], got, want[m[1]])
		}
	}
	j2, _, _ := testJob(t, "echo", 2)
	j2.RankHosts, j2.Launcher = []string{"a"}, "local"
	if _, err := j2.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "names 1 hosts for 2 ranks") {
		t.Fatalf("Run with too few hosts: %v", err)
	}
}
