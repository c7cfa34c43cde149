//go:build !linux

package vpcd

import "net"

// TCP_QUICKACK is Linux-only; elsewhere the reader's driver decides.
func setQuickAck(net.Conn) {}
