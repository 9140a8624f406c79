package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// DefaultAddr is the address `lifeline run` serves the Handler on.
const DefaultAddr = "127.0.0.1:8484"

// ErrTokenRequired is returned by Listen when asked to serve an address
// other than loopback without a bearer token.
var ErrTokenRequired = errors.New("serving beyond loopback needs a bearer token")

// IsLoopback reports whether host (a name or an IP, without port) only
// reaches this machine: "localhost", 127.0.0.0/8 or ::1. The empty host
// (every interface) is not loopback.
func IsLoopback(host string) bool {
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Listen opens a TCP listener on addr (HOST:PORT; port 0 picks a free
// one). An address other than loopback (including ":PORT", every
// interface) is refused with ErrTokenRequired unless bearerToken is set.
func Listen(addr, bearerToken string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("telemetry: listen address %q: want HOST:PORT (%w)", addr, err)
	}
	if !IsLoopback(host) && bearerToken == "" {
		return nil, fmt.Errorf("telemetry: listen on %q: %w (set one, or use 127.0.0.1)", addr, ErrTokenRequired)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	return ln, nil
}

// Server serves a Handler on a listener until Shutdown.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Serve starts serving h on ln in a goroutine of its own. Shutdown stops
// it (and ends h's event streams).
func Serve(ln net.Listener, h *Handler) *Server {
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
		ln:   ln,
		done: make(chan error, 1),
	}
	s.srv.RegisterOnShutdown(h.Close)
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s
}

// Addr is the address served, with the port chosen when it was 0.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL is "http://" followed by Addr.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Shutdown stops accepting requests, ends the event streams, waits for
// requests in flight (or for ctx, then closes what is left) and returns the
// error that stopped serving, if any besides the shutdown itself.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if serr := <-s.done; serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("telemetry: shutdown: %w", err)
	}
	return nil
}
