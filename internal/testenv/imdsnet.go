package testenv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// The IMDS layer: a reverse proxy on a loopback port in front of one
// instance's amazon-ec2-metadata-mock (AEMM). It passes every request to
// AEMM (tokens, instance-id, placement, user-data, iam...) except the
// network paths, which AEMM can only answer from its fixed configuration
// (its default says public-ipv4 192.0.2.54 for every instance). Those it
// answers from moto's EC2 state for the instance, read at each request, so
// that the instance's metadata follows its Elastic IP as AssociateAddress
// and DisassociateAddress move it.
//
// The paths and their answers follow AWS's "Instance metadata categories"
// (EC2 User Guide, instancedata-data-categories) and the SDKs that read
// them (the Java SDK's EC2MetadataUtils.NetworkInterface):
//
//	mac                  the primary interface's (device 0) MAC address
//	local-ipv4           its primary private IPv4 address
//	public-ipv4          the public IPv4 address of that primary private
//	                     address: the Elastic IP when one is associated
//	                     with it, else the auto-assigned public IP; 404
//	                     when none
//	network/                                       "interfaces/"
//	network/interfaces/                            "macs/"
//	network/interfaces/macs/                       one "MAC/" a line, by device number
//	network/interfaces/macs/MAC/                   the keys below that exist, one a line
//	network/interfaces/macs/MAC/device-number      the attachment's device index
//	network/interfaces/macs/MAC/interface-id       eni-...
//	network/interfaces/macs/MAC/mac                MAC
//	network/interfaces/macs/MAC/local-ipv4s        the private IPv4 addresses, the primary first, one a line
//	network/interfaces/macs/MAC/public-ipv4s       the public IPv4 addresses (Elastic or not), one a line; 404 when none
//	network/interfaces/macs/MAC/ipv4-associations/ the same public addresses, one a line; 404 when none
//	network/interfaces/macs/MAC/ipv4-associations/PUBLIC-IP
//	                                               the private IPv4 address it is associated with
//	network/interfaces/macs/MAC/subnet-id          subnet-...
//	network/interfaces/macs/MAC/vpc-id             vpc-...
//
// Any other path under network/ answers 404 (the real service has more
// keys: security-groups, owner-id, CIDR blocks...; no one here reads them).
// A list has no final newline, as the real service's.
//
// IMDSv2 holds for these paths as AEMM enforces it for the others: before
// answering one, the layer asks AEMM for meta-data/instance-id with the
// request's token header, and relays AEMM's refusal (401 without or with a
// wrong token, unless AllowIMDSv1) as is. One rule of tokens, AEMM's.
//
// moto's state is read as the admin (seeding) caller, from moto itself:
// not through the IAM gate or any counting or fault-injecting proxy, since
// IMDS requests are no API calls of the account. Two reads per request:
// DescribeNetworkInterfaces (attachment.instance-id) and DescribeAddresses.
// DescribeAddresses is the truth about Elastic IPs: moto 5.2.1 leaves an
// Elastic IP on the interface it moved from (the interface's
// Association.PublicIp is not cleared by a reassociation, nor by a
// disassociation), so an interface's own association counts only for a
// public IP that is no Elastic IP (the auto-assigned one). moto 5.2.1 does
// report MacAddress per interface (02:00:00:xx:xx:xx); a missing one is an
// error, not a made-up MAC.

// imdsLayer is the layer in front of one AEMM.
type imdsLayer struct {
	ln         net.Listener
	srv        *http.Server
	aemm       string // AEMM's base URL
	proxy      *httputil.ReverseProxy
	client     *http.Client // the token checks
	ec2        *ec2.Client  // moto, direct; nil: AEMM answers everything
	instanceID string
	lag        time.Duration
	down       atomic.Bool

	mu      sync.Mutex
	history []imdsSnapshot // the reads of the last lag, oldest first
}

// imdsSnapshot is what moto said about the instance's interfaces at a time.
type imdsSnapshot struct {
	at  time.Time
	ifs []imdsInterface
}

// imdsInterface is one of the instance's interfaces as IMDS describes it.
type imdsInterface struct {
	MAC, ID, SubnetID, VPCID string
	DeviceNumber             int32
	PrivateIPs               []string // the primary first
	Associations             []imdsAssociation
}

// imdsAssociation is a public IPv4 address on one of an interface's
// private addresses.
type imdsAssociation struct{ PublicIP, PrivateIP string }

// startIMDSLayer starts the layer in front of the AEMM at aemm, serving
// the network paths of o.InstanceID from o.Moto's state (AEMM's own
// answers when o.Moto is nil).
func startIMDSLayer(aemm string, o IMDSOptions) (*imdsLayer, error) {
	target, err := url.Parse(aemm)
	if err != nil {
		return nil, err
	}
	if o.Moto != nil && o.InstanceID == "" {
		return nil, errors.New("IMDSOptions: Moto is set without InstanceID: say which of moto's instances this IMDS serves")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("imds layer: %w", err)
	}
	l := &imdsLayer{ln: ln, aemm: aemm, client: &http.Client{Timeout: 5 * time.Second}, instanceID: o.InstanceID, lag: o.NetworkLag}
	l.proxy = httputil.NewSingleHostReverseProxy(target)
	// A client that gives up mid-request is no news (see startGate).
	l.proxy.ErrorLog = log.New(io.Discard, "", 0)
	if o.Moto != nil {
		cfg := o.Moto.Config()
		cfg.BaseEndpoint = aws.String(o.Moto.direct)
		l.ec2 = ec2.NewFromConfig(cfg)
	}
	l.srv = &http.Server{Handler: l, ErrorLog: log.New(io.Discard, "", 0)}
	go l.srv.Serve(ln)
	return l, nil
}

func (l *imdsLayer) url() string { return "http://" + l.ln.Addr().String() }

func (l *imdsLayer) close() { l.srv.Close() }

// ServeHTTP answers one request: nothing while down, the network paths
// from moto, the rest from AEMM.
func (l *imdsLayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l.down.Load() {
		// Unreachable: the connection closes without an answer.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		http.Error(w, "testenv: IMDS is down", http.StatusServiceUnavailable)
		return
	}
	rel, isMeta := strings.CutPrefix(r.URL.Path, "/latest/meta-data/")
	if l.ec2 == nil || !isMeta || !imdsNetworkPath(rel) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		l.proxy.ServeHTTP(w, r)
		return
	}
	if !l.tokenOK(w, r) {
		return
	}
	ifs, err := l.interfaces(r.Context())
	if err != nil {
		http.Error(w, "testenv: IMDS layer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	body, ok := imdsAnswer(ifs, rel)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	io.WriteString(w, body)
}

// imdsNetworkPath says whether the layer answers the meta-data path rel.
func imdsNetworkPath(rel string) bool {
	switch rel {
	case "mac", "local-ipv4", "public-ipv4", "network", "network/":
		return true
	}
	return strings.HasPrefix(rel, "network/")
}

// tokenOK asks AEMM whether r's token is good (see the comment at the
// top); when it is not, it relays AEMM's answer and returns false.
func (l *imdsLayer) tokenOK(w http.ResponseWriter, r *http.Request) bool {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, l.aemm+"/latest/meta-data/instance-id", nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return false
	}
	if v := r.Header.Values("X-Aws-Ec2-Metadata-Token"); len(v) > 0 {
		req.Header["X-Aws-Ec2-Metadata-Token"] = v
	}
	resp, err := l.client.Do(req)
	if err != nil {
		http.Error(w, "testenv: IMDS layer: token check: "+err.Error(), http.StatusBadGateway)
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return true
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
	return false
}

// interfaces reads the instance's interfaces from moto, and returns them
// as of lag ago: the newest read at least lag old, or the oldest read when
// none is that old yet.
func (l *imdsLayer) interfaces(ctx context.Context) ([]imdsInterface, error) {
	ifs, err := l.read(ctx)
	if err != nil {
		return nil, err
	}
	if l.lag <= 0 {
		return ifs, nil
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.history = append(l.history, imdsSnapshot{at: now, ifs: ifs})
	// Keep the newest read at least lag old and everything after it.
	i := 0
	for i+1 < len(l.history) && !l.history[i+1].at.After(now.Add(-l.lag)) {
		i++
	}
	l.history = l.history[i:]
	return l.history[0].ifs, nil
}

// read reads the instance's interfaces from moto now.
func (l *imdsLayer) read(ctx context.Context) ([]imdsInterface, error) {
	enis, err := l.ec2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.instance-id"), Values: []string{l.instanceID}}},
	})
	if err != nil {
		return nil, fmt.Errorf("DescribeNetworkInterfaces of %s: %w", l.instanceID, err)
	}
	addrs, err := l.ec2.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		return nil, fmt.Errorf("DescribeAddresses: %w", err)
	}
	return imdsInterfaces(enis.NetworkInterfaces, addrs.Addresses)
}

// imdsInterfaces is what IMDS says of the interfaces enis given the
// account's Elastic IPs addrs (see the comment at the top for why
// DescribeAddresses decides).
func imdsInterfaces(enis []types.NetworkInterface, addrs []types.Address) ([]imdsInterface, error) {
	elastic := map[string]bool{}
	for _, a := range addrs {
		elastic[aws.ToString(a.PublicIp)] = true
	}
	var ifs []imdsInterface
	for _, n := range enis {
		id := aws.ToString(n.NetworkInterfaceId)
		if n.Attachment == nil {
			continue
		}
		if aws.ToString(n.MacAddress) == "" {
			return nil, fmt.Errorf("interface %s: EC2 reports no MAC address", id)
		}
		f := imdsInterface{
			MAC: strings.ToLower(aws.ToString(n.MacAddress)), ID: id,
			SubnetID: aws.ToString(n.SubnetId), VPCID: aws.ToString(n.VpcId),
			DeviceNumber: aws.ToInt32(n.Attachment.DeviceIndex),
		}
		primary := aws.ToString(n.PrivateIpAddress)
		if primary != "" {
			f.PrivateIPs = append(f.PrivateIPs, primary)
		}
		for _, p := range n.PrivateIpAddresses {
			if ip := aws.ToString(p.PrivateIpAddress); ip != "" && !slices.Contains(f.PrivateIPs, ip) {
				f.PrivateIPs = append(f.PrivateIPs, ip)
			}
		}
		// Elastic IPs: where DescribeAddresses puts them.
		on := map[string]bool{} // private IPs with a public one
		for _, a := range addrs {
			if aws.ToString(a.NetworkInterfaceId) != id {
				continue
			}
			priv := aws.ToString(a.PrivateIpAddress)
			if priv == "" {
				priv = primary
			}
			f.Associations = append(f.Associations, imdsAssociation{PublicIP: aws.ToString(a.PublicIp), PrivateIP: priv})
			on[priv] = true
		}
		// Public IPs that are no Elastic IP: per private address, or the
		// interface's (the primary private address's).
		for _, p := range n.PrivateIpAddresses {
			priv := aws.ToString(p.PrivateIpAddress)
			if p.Association == nil || on[priv] {
				continue
			}
			if pub := aws.ToString(p.Association.PublicIp); pub != "" && !elastic[pub] {
				f.Associations = append(f.Associations, imdsAssociation{PublicIP: pub, PrivateIP: priv})
				on[priv] = true
			}
		}
		if n.Association != nil && !on[primary] {
			if pub := aws.ToString(n.Association.PublicIp); pub != "" && !elastic[pub] {
				f.Associations = append(f.Associations, imdsAssociation{PublicIP: pub, PrivateIP: primary})
			}
		}
		// In the order of the private addresses.
		slices.SortStableFunc(f.Associations, func(a, b imdsAssociation) int {
			return slices.Index(f.PrivateIPs, a.PrivateIP) - slices.Index(f.PrivateIPs, b.PrivateIP)
		})
		ifs = append(ifs, f)
	}
	slices.SortFunc(ifs, func(a, b imdsInterface) int { return cmp.Compare(a.DeviceNumber, b.DeviceNumber) })
	return ifs, nil
}

// imdsAnswer is the body IMDS answers for the meta-data path rel (a
// network path, see imdsNetworkPath) of an instance with the interfaces
// ifs; false: 404 Not Found.
func imdsAnswer(ifs []imdsInterface, rel string) (string, bool) {
	var primary *imdsInterface
	for i := range ifs {
		if ifs[i].DeviceNumber == 0 {
			primary = &ifs[i]
		}
	}
	switch rel {
	case "mac":
		if primary == nil {
			return "", false
		}
		return primary.MAC, true
	case "local-ipv4":
		if primary == nil || len(primary.PrivateIPs) == 0 {
			return "", false
		}
		return primary.PrivateIPs[0], true
	case "public-ipv4":
		if primary == nil || len(primary.PrivateIPs) == 0 {
			return "", false
		}
		for _, a := range primary.Associations {
			if a.PrivateIP == primary.PrivateIPs[0] {
				return a.PublicIP, true
			}
		}
		return "", false
	case "network", "network/":
		return "interfaces/", true
	case "network/interfaces", "network/interfaces/":
		return "macs/", true
	}
	rest, ok := strings.CutPrefix(rel, "network/interfaces/macs")
	if !ok {
		return "", false
	}
	if rest == "" || rest == "/" {
		if len(ifs) == 0 {
			return "", false
		}
		var lines []string
		for _, f := range ifs {
			lines = append(lines, f.MAC+"/")
		}
		return strings.Join(lines, "\n"), true
	}
	mac, key, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	i := slices.IndexFunc(ifs, func(f imdsInterface) bool { return f.MAC == strings.ToLower(mac) })
	if i < 0 {
		return "", false
	}
	f := ifs[i]
	var public []string
	for _, a := range f.Associations {
		public = append(public, a.PublicIP)
	}
	switch strings.TrimSuffix(key, "/") {
	case "":
		keys := []string{"device-number", "interface-id"}
		if len(public) > 0 {
			keys = append(keys, "ipv4-associations/")
		}
		keys = append(keys, "local-ipv4s", "mac")
		if len(public) > 0 {
			keys = append(keys, "public-ipv4s")
		}
		keys = append(keys, "subnet-id", "vpc-id")
		return strings.Join(keys, "\n"), true
	case "device-number":
		return fmt.Sprint(f.DeviceNumber), true
	case "interface-id":
		return f.ID, true
	case "mac":
		return f.MAC, true
	case "local-ipv4s":
		return strings.Join(f.PrivateIPs, "\n"), len(f.PrivateIPs) > 0
	case "public-ipv4s", "ipv4-associations":
		return strings.Join(public, "\n"), len(public) > 0
	case "subnet-id":
		return f.SubnetID, f.SubnetID != ""
	case "vpc-id":
		return f.VPCID, f.VPCID != ""
	}
	if pub, ok := strings.CutPrefix(key, "ipv4-associations/"); ok {
		var priv []string
		for _, a := range f.Associations {
			if a.PublicIP == pub {
				priv = append(priv, a.PrivateIP)
			}
		}
		return strings.Join(priv, "\n"), len(priv) > 0
	}
	return "", false
}
