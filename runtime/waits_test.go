package runtime_test

import (
	"slices"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Rank 0 receives one message from every other rank with Waitany (then
// Waitsome, then Testany/Testall polling): each request is reported once,
// with its data, and the slice empties.
func TestWaitany(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		t.Run(sc.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: sc.cfg}
			cfg.Run(t, 4, func(t testing.TB, c *runtime.Comm) {
				for round, how := range []string{"waitany", "waitsome", "testany", "testall"} {
					if c.Rank() != 0 {
						if err := runtime.Send(c, []int64{int64(c.Rank()*10 + round)}, 0, round); err != nil {
							t.Fatal(err)
						}
						continue
					}
					bufs := make([][]int64, c.Size())
					reqs := make([]*runtime.Request, c.Size()) // reqs[0] stays nil
					for r := 1; r < c.Size(); r++ {
						bufs[r] = make([]int64, 1)
						var err error
						if reqs[r], err = runtime.Irecv(c, bufs[r], r, round); err != nil {
							t.Fatal(err)
						}
					}
					var seen []int
					note := func(i int, st runtime.Status) {
						if st.Source != i || bufs[i][0] != int64(i*10+round) {
							t.Errorf("%s: request %d: status %+v, data %v", how, i, st, bufs[i])
						}
						seen = append(seen, i)
					}
					switch how {
					case "waitany":
						for {
							i, st, err := runtime.Waitany(reqs)
							if err != nil {
								t.Fatal(err)
							}
							if i < 0 {
								break
							}
							note(i, st)
						}
					case "waitsome":
						for {
							idx, sts, err := runtime.Waitsome(reqs)
							if err != nil {
								t.Fatal(err)
							}
							if idx == nil {
								break
							}
							for k, i := range idx {
								note(i, sts[k])
							}
						}
					case "testany":
						for {
							i, done, st, err := runtime.Testany(reqs)
							if err != nil {
								t.Fatal(err)
							}
							if done && i < 0 {
								break
							}
							if done {
								note(i, st)
							}
						}
					case "testall":
						for {
							done, sts, err := runtime.Testall(reqs)
							if err != nil {
								t.Fatal(err)
							}
							if done {
								for i := 1; i < c.Size(); i++ {
									note(i, sts[i])
								}
								break
							}
						}
					}
					slices.Sort(seen)
					if !slices.Equal(seen, []int{1, 2, 3}) || slices.ContainsFunc(reqs, func(r *runtime.Request) bool { return r != nil }) {
						t.Errorf("%s: reported %v, left %v", how, seen, reqs)
					}
				}
			})
		})
	}
}
