package redistest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Port range for servers: p and p+busOffset must both stay below the Linux
// ephemeral range (32768) so that outgoing connections never hold them.
const (
	portMin   = 10000
	portMax   = 22000 // exclusive
	busOffset = 10000
	portTries = 200
)

// errNoPort is returned when no free port pair was found.
var errNoPort = errors.New("redistest: no free port pair found")

// freePort picks a random port p on host with p and p+10000 both bindable.
// exclude holds ports already chosen by the caller in this batch (a chosen
// port stays bindable until its server starts).
func freePort(host string, exclude map[int]bool) (int, error) {
	for range portTries {
		p := portMin + rand.IntN(portMax-portMin)
		if exclude[p] || exclude[p+busOffset] || exclude[p-busOffset] {
			continue
		}
		if canBind(host, p) && canBind(host, p+busOffset) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w on %s after %d tries", errNoPort, host, portTries)
}

func canBind(host string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
