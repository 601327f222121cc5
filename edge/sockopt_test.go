package edge_test

import "syscall"

type syscallRawConn = syscall.RawConn

func setRcvBuf(rc syscall.RawConn, n int) error {
	var serr error
	err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n) })
	if err != nil {
		return err
	}
	return serr
}
