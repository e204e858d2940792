package testenv

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The gate answers EC2's secondary private IPs as AWS does where moto
// 5.2.1 differs (AWS-FACTS.md, EC2):
//
//   - AssignPrivateIpAddresses without AllowReassignment=true of an address
//     another interface of the VPC holds is refused, InvalidIPAddress.InUse
//     (EC2 API Reference, "Error codes": "The specified IP address is
//     already in use"; moto ignores AllowReassignment and both interfaces
//     then hold it); an address outside the interface's subnet is refused,
//     InvalidParameterValue (moto takes it);
//   - UnassignPrivateIpAddresses of an address the interface does not hold
//     as a secondary is refused, InvalidParameterValue (moto answers
//     success);
//   - the check and the call of both are one atomic step (serialized, as
//     the writes of an S3 object are), so that of two racing assigns one
//     is refused;
//   - an address AWS reserves in every subnet (the first four and the
//     last: VPC User Guide, "Subnet CIDR blocks") is refused,
//     InvalidParameterValue (eipclaim check assigns and unassigns the
//     subnet's first address to learn whether the policy allows the
//     calls, which have no DryRun);
//   - DescribeNetworkInterfaces filtered by addresses.private-ip-address
//     (or private-ip-address) matches every private IPv4 address of an
//     interface, its secondaries too (moto matches the primary only).
//
// The product does not depend on the codes: a refused move is re-read.
//
// And EC2's routes (an overlay address, AWS-FACTS.md):
//
//   - CreateRoute of a destination the table already has a route of is
//     refused, RouteAlreadyExists (EC2 API Reference, "Error codes": "A
//     route for the specified CIDR block already exists in this route
//     table"; moto 5.2.1 replaces the route);
//   - CreateRoute, ReplaceRoute and DeleteRoute with DryRun answer
//     DryRunOperation and change nothing (moto carries them out);
//   - the check and the call of a route's change are one atomic step.
//
// moto answers ReplaceRoute of a route the table does not have as AWS
// does (InvalidParameterValue, "There is no route defined for … Use
// CreateRoute instead"), and DeleteRoute of one with InvalidRoute.NotFound.

// ec2Strict handles the EC2 requests above and reports whether it did;
// otherwise the caller forwards the request as it is.
func (g *gate) ec2Strict(w http.ResponseWriter, r *http.Request, body []byte) bool {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return false
	}
	for k, v := range r.URL.Query() {
		form[k] = v
	}
	switch form.Get("Action") {
	case "AssignPrivateIpAddresses", "UnassignPrivateIpAddresses":
	case "CreateRoute", "ReplaceRoute", "DeleteRoute":
		return g.routeStrict(w, r, form)
	case "DescribeNetworkInterfaces":
		return g.describeENIsBySecondary(w, r, body, form)
	default:
		return false
	}
	g.privateIPs.Lock()
	defer g.privateIPs.Unlock()
	code, msg, err := g.checkPrivateIPMove(r.Context(), form)
	switch {
	case err != nil:
		ec2Error(w, http.StatusInternalServerError, "InternalError", "iam gate: "+err.Error())
	case code != "":
		g.mu.Lock()
		g.strictRefusals++
		g.mu.Unlock()
		ec2Error(w, http.StatusBadRequest, code, msg)
	default:
		g.proxy.ServeHTTP(w, r)
	}
	return true
}

// listParam returns the values of a query list parameter: name.1, name.2, ...
func listParam(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[name+"."+strconv.Itoa(i)]
		if !ok {
			return out
		}
		out = append(out, v[0])
	}
}

// checkPrivateIPMove returns the error code and message AWS would answer
// the Assign or Unassign of form with, "" when it would carry it out.
func (g *gate) checkPrivateIPMove(ctx context.Context, form url.Values) (code, msg string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	eniID := form.Get("NetworkInterfaceId")
	addrs := listParam(form, "PrivateIpAddress")
	if eniID == "" || len(addrs) == 0 {
		return "", "", nil // moto's own answer (SecondaryPrivateIpAddressCount, a missing parameter)
	}
	c := g.adminEC2()
	out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniID}})
	if err != nil || len(out.NetworkInterfaces) == 0 {
		return "", "", nil // moto answers that the interface does not exist
	}
	eni := out.NetworkInterfaces[0]
	sn, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{aws.ToString(eni.SubnetId)}})
	if err != nil || len(sn.Subnets) == 0 {
		return "", "", fmt.Errorf("describe the subnet %s of %s: %v", aws.ToString(eni.SubnetId), eniID, err)
	}
	cidr, err := netip.ParsePrefix(aws.ToString(sn.Subnets[0].CidrBlock))
	if err != nil {
		return "", "", fmt.Errorf("subnet %s: %w", aws.ToString(eni.SubnetId), err)
	}
	for _, a := range addrs {
		if ip, err := netip.ParseAddr(a); err == nil && reserved(cidr, ip) {
			return "InvalidParameterValue", fmt.Sprintf("Address %s is reserved by AWS in subnet %s (%s)", a, aws.ToString(eni.SubnetId), cidr), nil
		}
	}
	if form.Get("Action") == "UnassignPrivateIpAddresses" {
		for _, a := range addrs {
			if !slices.ContainsFunc(eni.PrivateIpAddresses, func(p ec2types.NetworkInterfacePrivateIpAddress) bool {
				return aws.ToString(p.PrivateIpAddress) == a && !aws.ToBool(p.Primary)
			}) {
				return "InvalidParameterValue", "Some of the specified addresses are not assigned to interface " + eniID, nil
			}
		}
		return "", "", nil
	}
	for _, a := range addrs {
		ip, err := netip.ParseAddr(a)
		if err != nil || !cidr.Contains(ip) {
			return "InvalidParameterValue", fmt.Sprintf("Address %s does not fall within the subnet's address range", a), nil
		}
	}
	if form.Get("AllowReassignment") == "true" {
		return "", "", nil
	}
	all, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []ec2types.Filter{{Name: aws.String("vpc-id"), Values: []string{aws.ToString(eni.VpcId)}}}})
	if err != nil {
		return "", "", fmt.Errorf("describe the interfaces of %s: %w", aws.ToString(eni.VpcId), err)
	}
	for _, other := range all.NetworkInterfaces {
		if aws.ToString(other.NetworkInterfaceId) == eniID {
			continue
		}
		for _, a := range addrs {
			if holds(other, a) {
				return "InvalidIPAddress.InUse", fmt.Sprintf("Address %s is in use.", a), nil
			}
		}
	}
	return "", "", nil
}

// holds reports whether the interface has a among its private IPv4
// addresses.
func holds(n ec2types.NetworkInterface, a string) bool {
	if aws.ToString(n.PrivateIpAddress) == a {
		return true
	}
	return slices.ContainsFunc(n.PrivateIpAddresses, func(p ec2types.NetworkInterfacePrivateIpAddress) bool { return aws.ToString(p.PrivateIpAddress) == a })
}

// describeENIsBySecondary answers a DescribeNetworkInterfaces filtered by
// private address as AWS does: moto is asked without that filter, and its
// answer keeps the interfaces that hold one of the filter's addresses
// among all their private IPv4 addresses.
func (g *gate) describeENIsBySecondary(w http.ResponseWriter, r *http.Request, body []byte, form url.Values) bool {
	var want []string
	kept := url.Values{}
	n := 0
	for i := 1; ; i++ {
		p := "Filter." + strconv.Itoa(i)
		name, ok := form[p+".Name"]
		if !ok {
			break
		}
		values := listParam(form, p+".Value")
		if name[0] == "addresses.private-ip-address" || name[0] == "private-ip-address" {
			want = append(want, values...)
			continue
		}
		n++
		q := "Filter." + strconv.Itoa(n)
		kept.Set(q+".Name", name[0])
		for j, v := range values {
			kept.Set(q+".Value."+strconv.Itoa(j+1), v)
		}
	}
	if want == nil {
		return false
	}
	for k, v := range form {
		if !strings.HasPrefix(k, "Filter.") {
			kept[k] = v
		}
	}
	r2 := r.Clone(r.Context())
	nb := []byte(kept.Encode())
	r2.Body = io.NopCloser(bytes.NewReader(nb))
	r2.ContentLength = int64(len(nb))
	r2.Header.Set("Content-Length", strconv.Itoa(len(nb)))
	r2.URL.RawQuery = ""
	rec := &captured{header: http.Header{}}
	g.proxy.ServeHTTP(rec, r2)
	if rec.status != http.StatusOK {
		rec.writeTo(w)
		return true
	}
	filtered, err := keepENIs(rec.body.Bytes(), want)
	if err != nil {
		ec2Error(w, http.StatusInternalServerError, "InternalError", "iam gate: "+err.Error())
		return true
	}
	rec.body.Reset()
	rec.body.Write(filtered)
	rec.header.Del("Content-Length")
	rec.writeTo(w)
	return true
}

// keepENIs removes from a DescribeNetworkInterfaces answer the interfaces
// that hold none of want.
func keepENIs(doc []byte, want []string) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var out bytes.Buffer
	last := int64(0)
	depth := 0
	inSet := false
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("DescribeNetworkInterfaces answer: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Local == "networkInterfaceSet" {
				inSet = true
				continue
			}
			if inSet && depth == 3 && t.Name.Local == "item" {
				var item struct {
					Primary string   `xml:"privateIpAddress"`
					All     []string `xml:"privateIpAddressesSet>item>privateIpAddress"`
				}
				if err := dec.DecodeElement(&item, &t); err != nil {
					return nil, fmt.Errorf("DescribeNetworkInterfaces answer: %w", err)
				}
				depth--
				match := slices.Contains(want, item.Primary) || slices.ContainsFunc(item.All, func(a string) bool { return slices.Contains(want, a) })
				if !match {
					out.Write(doc[last:start])
					last = dec.InputOffset()
				}
			}
		case xml.EndElement:
			if depth == 2 && inSet {
				inSet = false
			}
			depth--
		}
	}
	out.Write(doc[last:])
	return out.Bytes(), nil
}

// ec2Error answers an EC2 error as EC2 does.
func ec2Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>iamgate</RequestID></Response>`, code, xmlText(msg))
}

// ActionCounts returns how many EC2 requests of the callers (not the
// admin's) the gate allowed since the last call, by action
// ("ec2:AssignPrivateIpAddresses"), and how many secondary private IP
// moves it refused as AWS would (InvalidIPAddress.InUse,
// InvalidParameterValue), and starts counting again.
func (m *Moto) ActionCounts() (allowed map[string]int, refused int) {
	g := m.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	allowed, refused = g.actions, g.strictRefusals
	g.actions, g.strictRefusals = nil, 0
	if allowed == nil {
		allowed = map[string]int{}
	}
	return allowed, refused
}

// reserved reports whether ip is one of the five addresses AWS reserves
// in subnet p: the first four and the last.
func reserved(p netip.Prefix, ip netip.Addr) bool {
	if !p.Contains(ip) || !ip.Is4() {
		return false
	}
	first := p.Masked().Addr()
	a := first
	for range 4 {
		if ip == a {
			return true
		}
		a = a.Next()
	}
	b := first.As4()
	n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n |= 1<<(32-p.Bits()) - 1
	return ip == netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// routeStrict answers a route's change as AWS does where moto differs
// (see above): a DryRun, and CreateRoute of a destination the table has.
func (g *gate) routeStrict(w http.ResponseWriter, r *http.Request, form url.Values) bool {
	if form.Get("DryRun") == "true" {
		ec2Error(w, http.StatusPreconditionFailed, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
		return true
	}
	g.routes.Lock()
	defer g.routes.Unlock()
	if form.Get("Action") == "CreateRoute" {
		exists, err := g.hasRoute(r.Context(), form.Get("RouteTableId"), form.Get("DestinationCidrBlock"))
		switch {
		case err != nil:
			ec2Error(w, http.StatusInternalServerError, "InternalError", "iam gate: "+err.Error())
			return true
		case exists:
			g.mu.Lock()
			g.strictRefusals++
			g.mu.Unlock()
			ec2Error(w, http.StatusBadRequest, "RouteAlreadyExists", fmt.Sprintf("The route identified by %s already exists.", form.Get("DestinationCidrBlock")))
			return true
		}
	}
	g.proxy.ServeHTTP(w, r)
	return true
}

// hasRoute reports whether the route table has a route of dest.
func (g *gate) hasRoute(ctx context.Context, rtb, dest string) (bool, error) {
	if rtb == "" || dest == "" {
		return false, nil // moto's own answer
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := g.adminEC2().DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{RouteTableIds: []string{rtb}})
	if err != nil || len(out.RouteTables) == 0 {
		return false, nil // moto answers that the table does not exist
	}
	for _, rt := range out.RouteTables[0].Routes {
		if aws.ToString(rt.DestinationCidrBlock) == dest {
			return true, nil
		}
	}
	return false, nil
}
