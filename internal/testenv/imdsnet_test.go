package testenv_test

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

// TestIMDSNetworkFollowsEIP moves an Elastic IP between two instances of
// moto and reads each one's network metadata through its IMDS layer: the
// paths follow the address at once, and say 404 where it is not.
func TestIMDSNetworkFollowsEIP(t *testing.T) {
	ctx := t.Context()
	w := testenv.NewTestWorld(t, testenv.SharedMoto(t).Config())
	insts := w.NewInstances(2)
	a, b := insts[0], insts[1]
	eip := w.NewEIP(nil)
	mdA, mdB := w.IMDSFor(a, "role: db\n"), w.IMDSFor(b, "")
	ca := imds.New(imds.Options{Endpoint: mdA.Endpoint, EnableFallback: aws.FalseTernary})
	cb := imds.New(imds.Options{Endpoint: mdB.Endpoint, EnableFallback: aws.FalseTernary})

	// What EC2 says of a's interface.
	out, err := w.EC2.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{a.ENI}})
	if err != nil || len(out.NetworkInterfaces) != 1 {
		t.Fatalf("DescribeNetworkInterfaces %s: %v, %d interfaces", a.ENI, err, len(out.NetworkInterfaces))
	}
	eni := out.NetworkInterfaces[0]
	mac := aws.ToString(eni.MacAddress)
	if mac == "" {
		t.Fatalf("moto reports no MAC address for %s", a.ENI)
	}

	// The paths AEMM still answers.
	if got := metadata(t, ca, "instance-id"); got != a.ID {
		t.Errorf("instance-id = %q, want %q", got, a.ID)
	}
	// The interface as EC2 has it.
	m := "network/interfaces/macs/" + mac + "/"
	for path, want := range map[string]string{
		"mac":                      mac,
		"local-ipv4":               a.PrivateIP,
		"network/":                 "interfaces/",
		"network/interfaces/":      "macs/",
		"network/interfaces/macs/": mac + "/",
		m + "device-number":        "0",
		m + "interface-id":         a.ENI,
		m + "mac":                  mac,
		m + "local-ipv4s":          a.PrivateIP,
		m + "subnet-id":            a.SubnetID,
		m + "vpc-id":               aws.ToString(eni.VpcId),
	} {
		if got, code := imdsGet(t, ca, path); got != want || code != http.StatusOK {
			t.Errorf("%s = %q (%d), want %q", path, got, code, want)
		}
	}

	// on says what a client's IMDS says of the Elastic IP: the private
	// IP it is associated with ("" for 404) and whether public-ipv4 and
	// public-ipv4s list it.
	type view struct {
		assoc          string
		public, listed bool
	}
	on := func(c *imds.Client) view {
		t.Helper()
		macs, code := imdsGet(t, c, "network/interfaces/macs/")
		if code != http.StatusOK {
			t.Fatalf("network/interfaces/macs/: %d", code)
		}
		mp := "network/interfaces/macs/" + strings.TrimSuffix(macs, "/") + "/"
		var v view
		if got, code := imdsGet(t, c, mp+"ipv4-associations/"+eip.PublicIP); code == http.StatusOK {
			v.assoc = got
		} else if code != http.StatusNotFound {
			t.Fatalf("ipv4-associations/%s: %d, want 200 or 404", eip.PublicIP, code)
		}
		pub, code := imdsGet(t, c, "public-ipv4")
		v.public = code == http.StatusOK && pub == eip.PublicIP
		list, code := imdsGet(t, c, mp+"public-ipv4s")
		v.listed = code == http.StatusOK && slices.Contains(strings.Split(list, "\n"), eip.PublicIP)
		assocs, code := imdsGet(t, c, mp+"ipv4-associations/")
		if inAssocs := code == http.StatusOK && slices.Contains(strings.Split(assocs, "\n"), eip.PublicIP); inAssocs != v.listed {
			t.Errorf("ipv4-associations/ = %q (%d) and public-ipv4s = %q disagree on %s", assocs, code, list, eip.PublicIP)
		}
		return v
	}
	check := func(stage string, wantA, wantB view) {
		t.Helper()
		if got := on(ca); got != wantA {
			t.Errorf("%s: %s's IMDS says %+v, want %+v", stage, a.ID, got, wantA)
		}
		if got := on(cb); got != wantB {
			t.Errorf("%s: %s's IMDS says %+v, want %+v", stage, b.ID, got, wantB)
		}
	}
	check("free", view{}, view{})

	w.Associate(eip.AllocationID, a.ID)
	check("on a", view{assoc: a.PrivateIP, public: true, listed: true}, view{})

	// As a claim moves it: by interface, with reassociation.
	_, err = w.EC2.AssociateAddress(ctx, &ec2.AssociateAddressInput{AllocationId: aws.String(eip.AllocationID), NetworkInterfaceId: aws.String(b.ENI), AllowReassociation: aws.Bool(true)})
	if err != nil {
		t.Fatalf("AssociateAddress %s to %s: %v", eip.AllocationID, b.ENI, err)
	}
	check("moved to b", view{}, view{assoc: b.PrivateIP, public: true, listed: true})

	_, err = w.EC2.DisassociateAddress(ctx, &ec2.DisassociateAddressInput{AssociationId: w.Address(eip.AllocationID).AssociationId})
	if err != nil {
		t.Fatalf("DisassociateAddress %s: %v", eip.AllocationID, err)
	}
	check("disassociated", view{}, view{})
	// With no public IP at all on a (moto dropped its auto-assigned one
	// when the Elastic IP came), the public paths are 404s.
	if got, code := imdsGet(t, ca, "public-ipv4"); code != http.StatusNotFound {
		t.Errorf("public-ipv4 of %s without a public IP = %q (%d), want 404", a.ID, got, code)
	}
	if got, code := imdsGet(t, ca, m+"public-ipv4s"); code != http.StatusNotFound {
		t.Errorf("public-ipv4s of %s without a public IP = %q (%d), want 404", a.ID, got, code)
	}
	if got, code := imdsGet(t, ca, m+"no-such-key"); code != http.StatusNotFound {
		t.Errorf("%sno-such-key = %q (%d), want 404", m, got, code)
	}
}

// TestIMDSNetworkNeedsToken: IMDSv2 holds for the paths the layer answers
// as AEMM enforces it for its own.
func TestIMDSNetworkNeedsToken(t *testing.T) {
	w := testenv.NewTestWorld(t, testenv.SharedMoto(t).Config())
	md := w.IMDSFor(w.NewInstance(), "")
	for _, path := range []string{"mac", "network/interfaces/macs/", "instance-id"} {
		url := md.Endpoint + "/latest/meta-data/" + path
		if code := plainGET(t, url); code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d, want 401", path, code)
		}
		if code := tokenGET(t, url, "not-a-token"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d, want 401", path, code)
		}
	}
}

// TestIMDSSetDown takes an instance's IMDS offline and back.
func TestIMDSSetDown(t *testing.T) {
	w := testenv.NewTestWorld(t, testenv.SharedMoto(t).Config())
	inst := w.NewInstance()
	md := w.IMDSFor(inst, "")
	// No retries: the answer while down is no answer, at once.
	c := imds.New(imds.Options{Endpoint: md.Endpoint, EnableFallback: aws.FalseTernary, Retryer: aws.NopRetryer{}})
	if got := metadata(t, c, "local-ipv4"); got != inst.PrivateIP {
		t.Fatalf("local-ipv4 = %q, want %q", got, inst.PrivateIP)
	}
	md.SetDown(true)
	for _, path := range []string{"local-ipv4", "instance-id"} {
		_, err := c.GetMetadata(t.Context(), &imds.GetMetadataInput{Path: path})
		var re *smithyhttp.ResponseError
		if err == nil || errors.As(err, &re) {
			t.Errorf("GetMetadata %s while down: err = %v, want no answer at all", path, err)
		}
	}
	md.SetDown(false)
	if got := metadata(t, c, "local-ipv4"); got != inst.PrivateIP {
		t.Errorf("local-ipv4 back up = %q, want %q", got, inst.PrivateIP)
	}
}

// TestIMDSNetworkLag: with NetworkLag, the network paths say what moto
// said at least that long ago.
func TestIMDSNetworkLag(t *testing.T) {
	moto := testenv.SharedMoto(t)
	w := testenv.NewTestWorld(t, moto.Config())
	inst := w.NewInstance()
	eip := w.NewEIP(nil)
	o := inst.IMDSOptions("")
	if o.Moto != moto {
		t.Fatalf("Instance.IMDSOptions().Moto = %p, want the world's moto %p", o.Moto, moto)
	}
	const lag = 400 * time.Millisecond
	o.NetworkLag = lag
	md := testenv.StartIMDS(t, o)
	c := imds.New(imds.Options{Endpoint: md.Endpoint, EnableFallback: aws.FalseTernary})
	if got, _ := imdsGet(t, c, "public-ipv4"); got == eip.PublicIP {
		t.Fatalf("public-ipv4 = %s before any association", got)
	}
	w.Associate(eip.AllocationID, inst.ID)
	moved := time.Now()
	if got, _ := imdsGet(t, c, "public-ipv4"); got == eip.PublicIP {
		t.Errorf("public-ipv4 = %s at once, want the state of %s ago", got, lag)
	}
	for {
		got, _ := imdsGet(t, c, "public-ipv4")
		if got == eip.PublicIP {
			if d := time.Since(moved); d < lag {
				t.Errorf("public-ipv4 followed the association after %s, want at least %s", d, lag)
			}
			return
		}
		if time.Since(moved) > 5*lag {
			t.Fatalf("public-ipv4 = %q %s after the association, want %s", got, time.Since(moved), eip.PublicIP)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// imdsGet reads path, returning the body and the status (0: no answer).
func imdsGet(t *testing.T, c *imds.Client, path string) (string, int) {
	t.Helper()
	out, err := c.GetMetadata(t.Context(), &imds.GetMetadataInput{Path: path})
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return "", re.HTTPStatusCode()
	}
	if err != nil {
		t.Fatalf("GetMetadata %s: %v", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b), http.StatusOK
}

// tokenGET sends a GET with token as the IMDSv2 session token.
func tokenGET(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Aws-Ec2-Metadata-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
