package runtime_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
)

func clearLauncherEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GORUN_") || strings.HasPrefix(k, "PMI_") || strings.HasPrefix(k, "OMPI_") || strings.HasPrefix(k, "SLURM_") || strings.HasPrefix(k, "PMIX_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

func TestInitSingleton(t *testing.T) {
	clearLauncherEnv(t)
	world, err := runtime.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if world.Rank() != 0 || world.Size() != 1 || world.Name() != "world" {
		t.Fatalf("singleton: rank %d size %d", world.Rank(), world.Size())
	}
	// A singleton is a real world: self messages and collectives work.
	rq, err := runtime.Irecv(world, make([]int, 3), 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := runtime.Send(world, []int{1, 2, 3}, 0, 5); err != nil {
		t.Fatal(err)
	}
	if st, err := rq.Wait(); err != nil || st.Count != 3 {
		t.Fatal(st, err)
	}
	out := []float64{0}
	if err := runtime.Allreduce(world, []float64{2.5}, out, runtime.Sum); err != nil || out[0] != 2.5 {
		t.Fatal(out, err)
	}
	if err := world.Close(); err != nil {
		t.Fatal(err)
	}
	if err := world.Barrier(); !errors.Is(err, runtime.ErrClosed) {
		t.Fatalf("Barrier after Close: %v", err)
	}
	if err := world.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestInitForeignLauncher(t *testing.T) {
	for _, kv := range [][2]string{
		{"OMPI_COMM_WORLD_SIZE", "4"},
		{"PMI_RANK", "1"},
	} {
		t.Run(kv[0], func(t *testing.T) {
			clearLauncherEnv(t)
			t.Setenv(kv[0], kv[1])
			if kv[0] == "OMPI_COMM_WORLD_SIZE" {
				t.Setenv("OMPI_COMM_WORLD_RANK", "0")
			}
			world, err := runtime.Init(context.Background())
			if err == nil {
				world.Close()
				t.Fatal("Init under a foreign launcher started a singleton")
			}
			if !strings.Contains(err.Error(), strings.Split(kv[0], "_")[0]+"_") {
				t.Fatalf("error does not name the variable: %v", err)
			}
		})
	}
}

func TestInitBadEnvironment(t *testing.T) {
	clearLauncherEnv(t)
	t.Setenv("GORUN_RANK", "3")
	t.Setenv("GORUN_SIZE", "2")
	if _, err := runtime.Init(context.Background()); err == nil || !strings.Contains(err.Error(), "GORUN_") {
		t.Fatalf("Init with a broken GORUN_ environment: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	clearLauncherEnv(t)
	for _, cfg := range []runtime.Config{
		{EagerLimit: -1},
		{Timeout: -1},
		{Transports: []string{"carrier-pigeon"}},
	} {
		if _, err := cfg.Init(context.Background()); !errors.Is(err, runtime.ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", cfg, err)
		}
	}
}

// A PMI server that does not answer is an error naming PMI, never a
// singleton.
func TestInitBrokenPMI(t *testing.T) {
	clearLauncherEnv(t)
	t.Setenv("PMI_FD", "987")
	t.Setenv("PMI_RANK", "0")
	t.Setenv("PMI_SIZE", "2")
	world, err := runtime.Init(context.Background())
	if err == nil {
		world.Close()
		t.Fatal("Init with a dead PMI_FD started")
	}
	if !strings.Contains(err.Error(), "PMI") {
		t.Fatalf("the error does not say PMI: %v", err)
	}
}
