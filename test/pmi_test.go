package test

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Programs started by another launcher's PMI server: MPICH's mpiexec
// (Hydra) here, with its PMI-1 (what MPICH itself speaks) and its PMI-2.
// (srun --mpi=pmi2 needs a Slurm: issue 9's test bed.)

func mpiexec(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("mpiexec.mpich")
	if err != nil {
		t.Skip("SKIP: mpiexec.mpich is not installed (apt install mpich); the PMI wire-up is tested in internal/pmi without it")
	}
	return p
}

func TestPMIHydra(t *testing.T) {
	mpi := mpiexec(t)
	app := binary(t, "collcheck")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"pmi1-np3", []string{"-n", "3"}},
		{"pmi2-np4", []string{"-n", "4", "-genv", "SLURM_MPI_TYPE", "pmi2"}},
		{"pmi1-tcp-np2", []string{"-n", "2", "-genv", "GORUN_TRANSPORTS", "self,tcp"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(mpi, append(tc.args, app)...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(wait):
				cmd.Process.Kill()
				<-done
				t.Fatalf("mpiexec did not finish within %v:\n%s", wait, out)
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			n := tc.args[1]
			for r := range atoiMust(n) {
				if want := "rank " + string(rune('0'+r)) + " of " + n + " ok"; !strings.Contains(string(out), want) {
					t.Errorf("missing %q in\n%s", want, out)
				}
			}
		})
	}
}

func atoiMust(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
