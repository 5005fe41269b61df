//go:build unix

package client

import (
	"io"
	"net"
	"syscall"
)

// peerClosed peeks at an idle connection without blocking: io.EOF when the
// server closed it, the socket error when it was reset, a protocol error
// when the server sent something nobody asked for, nil when all is quiet.
func peerClosed(conn net.Conn) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var perr error
	var b [1]byte
	// Control, not Read: Read would first check the read deadline, which a
	// caller-reader may have left behind, expired.
	err = rc.Control(func(fd uintptr) {
		n, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case e == syscall.EAGAIN || e == syscall.EWOULDBLOCK:
		case e == syscall.EINTR:
		case e != nil:
			perr = e
		case n == 0:
			perr = io.EOF
		default:
			perr = protoErr("data from the server on an idle connection")
		}
	})
	if err != nil {
		return err
	}
	return perr
}
