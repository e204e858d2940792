package main

import (
	"context"

	"github.com/eipclaim/eipclaim/internal/config"
)

// dnsNames lists the names a role publishes.
func dnsNames(r *config.Role) []string {
	var names []string
	if r.DNS != nil && r.DNS.Route53 != nil {
		names = append(names, r.DNS.Route53.Name)
	}
	if r.DNS != nil && r.DNS.RFC2136 != nil {
		names = append(names, r.DNS.RFC2136.Name)
	}
	return names
}

// checkDNS checks that the role's DNS targets can be reached: for now the
// configuration only (the publishers come with their own checks).
func (s *session) checkDNS(ctx context.Context, role string, r *config.Role) []checkLine {
	return nil
}
