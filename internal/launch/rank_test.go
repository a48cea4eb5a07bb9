package launch

import (
	"fmt"
	"strings"
	"testing"
)

// hostStarter starts ranks here but reports them on made-up hosts, as an
// agent's ranks are: the supervisor must take the host from the rank.
type hostStarter struct{ localStarter }

type remoteProc struct {
	rankProc
	host string
}

func (r remoteProc) Host() string { return r.host }

func (h hostStarter) start(spec rankSpec, exited chan<- int) (rankProc, error) {
	p, err := h.localStarter.start(spec, exited)
	if err != nil {
		return nil, err
	}
	return remoteProc{p, fmt.Sprintf("host%d", spec.rank%2)}, nil
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
