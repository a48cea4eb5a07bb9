package runtime

import "fmt"

// TransportTo names the transport that carries c's messages to rank r:
// "inproc", "tcp" or "shmring" (the package of the endpoint's type).
func TransportTo(c *Comm, r int) string {
	t := fmt.Sprintf("%T", c.w.eps[c.group[r]])
	for _, name := range []string{"inproc", "shmring", "tcp"} {
		if len(t) > len(name) && t[1:len(name)+1] == name {
			return name
		}
	}
	return t
}
