//go:build !linux

package turnserver

import "net"

// listenUDPGroup opens one UDP socket on addr: spreading a port over
// several sockets (SO_REUSEPORT) is Linux-only here.
func listenUDPGroup(addr string, _ int) ([]*net.UDPConn, error) {
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, err
	}
	return []*net.UDPConn{pc.(*net.UDPConn)}, nil
}

// setSocketBuffers sizes a UDP socket's buffers as far as the system
// allows.
func setSocketBuffers(c *net.UDPConn, size int) {
	if size <= 0 {
		return
	}
	c.SetReadBuffer(size)
	c.SetWriteBuffer(size)
}

// socketBuffers is not reported here.
func socketBuffers(*net.UDPConn) (rcv, snd int) { return 0, 0 }

// newListenConn reads and writes datagram by datagram: batching
// (recvmmsg, sendmmsg, UDP GSO) is Linux-only here.
func newListenConn(c *net.UDPConn, tr *tracker, _ sendConfig) net.PacketConn {
	return newPlainListenConn(c, tr)
}

// sendStats: no batching sender here.
func sendStats([]net.PacketConn) (datagrams, batches, gso, errs int64) { return 0, 0, 0, 0 }

// sendCork: sends are not batched here, so never held.
type sendCork struct{}
