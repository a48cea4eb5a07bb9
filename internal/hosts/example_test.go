package hosts_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/gorun-hpc/gorun/internal/hosts"
)

func Example() {
	hs, err := hosts.ParseHostfile(strings.NewReader(`
# two nodes
node01 slots=2
node02:2   # Hydra's form
`), "hosts.txt")
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := hosts.Place(hs, 3, hosts.Options{MapBy: hosts.MapByNode})
	if err != nil {
		fmt.Println(err)
		return
	}
	hosts.DisplayMap(os.Stdout, m)
	for r := range m.NP() {
		h := m.Host[r]
		fmt.Printf("rank %d: %s, local rank %d of %d\n", r, hs[h].Name, m.LocalRank[r], m.Count[h])
	}
	// Output:
	// JOB MAP: 3 ranks on 2 hosts (map-by node)
	// HOST    SLOTS  RANKS  RANK LIST
	// node01  2      2      0,2
	// node02  2      1      1
	// rank 0: node01, local rank 0 of 2
	// rank 1: node02, local rank 0 of 1
	// rank 2: node01, local rank 1 of 2
}

func ExampleSlurmHosts() {
	env := map[string]string{
		"SLURM_JOB_NODELIST":   "gpu[01-02],cpu7",
		"SLURM_TASKS_PER_NODE": "4(x2),1",
	}
	hs, ok, err := hosts.SlurmHosts(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	fmt.Println(hs, ok, err)
	// Output: [{gpu01 4 0} {gpu02 4 0} {cpu7 1 0}] true <nil>
}

func ExamplePlace_notEnoughSlots() {
	hs, _ := hosts.ParseHostSpec("h1:4,h2:4")
	_, err := hosts.Place(hs, 9, hosts.Options{})
	fmt.Println(err)
	// Output: hosts: not enough slots available to satisfy the 9 ranks requested: 2 hosts have 8 slots; request fewer ranks, add slots, or pass --oversubscribe
}
