//go:build linux

package chaos

import (
	"fmt"
	"strconv"
	"syscall"
)

// describeSocket asks the kernel about this process's socket descriptor
// fd: its family, type, and both addresses. It covers what /proc/net's
// tables leave out (a TCP socket reset by its peer and never closed is in
// none of them).
func describeSocket(fd string) string {
	n, err := strconv.Atoi(fd)
	if err != nil {
		return ""
	}
	family, err := syscall.GetsockoptInt(n, syscall.SOL_SOCKET, syscall.SO_DOMAIN)
	if err != nil {
		return ""
	}
	typ, _ := syscall.GetsockoptInt(n, syscall.SOL_SOCKET, syscall.SO_TYPE)
	fam := map[int]string{syscall.AF_INET: "inet", syscall.AF_INET6: "inet6", syscall.AF_UNIX: "unix", syscall.AF_NETLINK: "netlink"}[family]
	if fam == "" {
		fam = "family " + strconv.Itoa(family)
	}
	kind := map[int]string{syscall.SOCK_STREAM: "stream", syscall.SOCK_DGRAM: "dgram", syscall.SOCK_RAW: "raw", syscall.SOCK_SEQPACKET: "seqpacket"}[typ]
	out := fam + " " + kind
	if sa, err := syscall.Getsockname(n); err == nil {
		out += " local " + sockaddr(sa)
	}
	if sa, err := syscall.Getpeername(n); err == nil {
		out += " peer " + sockaddr(sa)
	} else {
		out += " no peer (" + err.Error() + ")"
	}
	if soErr, err := syscall.GetsockoptInt(n, syscall.SOL_SOCKET, syscall.SO_ERROR); err == nil && soErr != 0 {
		out += " error " + syscall.Errno(soErr).Error()
	}
	return out
}

func sockaddr(sa syscall.Sockaddr) string {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return fmt.Sprintf("%d.%d.%d.%d:%d", a.Addr[0], a.Addr[1], a.Addr[2], a.Addr[3], a.Port)
	case *syscall.SockaddrInet6:
		return fmt.Sprintf("[%x]:%d", a.Addr, a.Port)
	case *syscall.SockaddrUnix:
		return "unix:" + a.Name
	}
	return fmt.Sprintf("%T", sa)
}
