package testenv

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// Service plays an instance's health-checked service: a loopback TCP
// listener that accepts and closes, what a health_check probe finds
// answering (tests map moto's 10.x private IPs to it, never dialling them).
// It can be stopped and started again on the same address: a dying or
// flapping database.
type Service struct {
	mu   sync.Mutex
	addr string
	ln   net.Listener
}

// NewService starts a service on a free loopback port.
func NewService() (*Service, error) {
	s := &Service{}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// StartService is NewService for t, stopped when t ends.
func StartService(t testing.TB) *Service {
	t.Helper()
	s, err := NewService()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Addr is the service's address, host:port.
func (s *Service) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Start listens again (on the same address once it has one); it does
// nothing while the service runs.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return nil
	}
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln, s.addr = ln, ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}

// Stop closes the listener: probes are refused until Start.
func (s *Service) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

// LockedBuffer is a bytes.Buffer that a process's output and a test may
// use at once.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
