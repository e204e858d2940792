package testenv_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/miekg/dns"

	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestSharedMotoEC2AndReset(t *testing.T) {
	ctx := t.Context()
	m := testenv.SharedMoto(t)
	if !strings.HasPrefix(m.Endpoint, "http://127.0.0.1:") {
		t.Fatalf("Endpoint = %q, want http://127.0.0.1:PORT", m.Endpoint)
	}
	client := ec2.NewFromConfig(m.AWSConfig(t))

	regions, err := client.DescribeRegions(ctx, &ec2.DescribeRegionsInput{})
	if err != nil {
		t.Fatalf("DescribeRegions: %v", err)
	}
	if !hasRegion(regions.Regions, "us-east-1") {
		t.Errorf("DescribeRegions: us-east-1 missing from %d regions", len(regions.Regions))
	}

	w := testenv.NewTestWorld(t, m.Config())
	id := w.NewInstance().ID
	if got := instanceIDs(t, client); len(got) != 1 || got[0] != id {
		t.Fatalf("instances after RunInstances = %v, want [%s]", got, id)
	}
	if alloc := w.NewEIP(nil).AllocationID; !strings.HasPrefix(alloc, "eipalloc-") {
		t.Errorf("AllocationId = %q, want eipalloc-...", alloc)
	}

	again := testenv.SharedMoto(t)
	if again.Endpoint != m.Endpoint {
		t.Errorf("second SharedMoto endpoint = %s, want the same server %s", again.Endpoint, m.Endpoint)
	}
	if got := instanceIDs(t, client); len(got) != 0 {
		t.Errorf("instances after reset = %v, want none", got)
	}
	addrs, err := client.DescribeAddresses(ctx, &ec2.DescribeAddressesInput{})
	if err != nil {
		t.Fatalf("DescribeAddresses: %v", err)
	}
	if len(addrs.Addresses) != 0 {
		t.Errorf("addresses after reset = %d, want 0", len(addrs.Addresses))
	}
}

// TestMotoEnv checks that Env alone points the SDK's default configuration
// chain at moto (through the IAM gate, as the instance's caller), for S3 and
// Route 53, as it will for the eipclaim binary.
func TestMotoEnv(t *testing.T) {
	ctx := t.Context()
	m := testenv.SharedMoto(t)
	m.SetPolicyValues(testenv.PolicyValues{ConfigObject: "fleet-config/eipclaim.yaml"})
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatalf("LoadDefaultConfig with Moto.Env: %v", err)
	}
	if cfg.Region != testenv.MotoRegion {
		t.Errorf("Region = %q, want %q", cfg.Region, testenv.MotoRegion)
	}

	// The test seeds as the admin.
	admin := s3.NewFromConfig(m.Config(), func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("fleet-config")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	want := "role: master-db\n"
	if _, err := admin.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("fleet-config"), Key: aws.String("eipclaim.yaml"), Body: strings.NewReader(want),
	}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("fleet-config"), Key: aws.String("eipclaim.yaml")})
	if err != nil {
		t.Fatalf("GetObject: %v", err)
	}
	got, err := io.ReadAll(obj.Body)
	obj.Body.Close()
	if err != nil || string(got) != want {
		t.Errorf("GetObject body = %q, %v; want %q", got, err, want)
	}

	zoneID, err := testenv.NewWorld(m.Config()).NewZone(ctx, "example.internal.", false)
	if err != nil {
		t.Fatal(err)
	}
	zones, err := route53.NewFromConfig(cfg).ListHostedZonesByName(ctx, &route53.ListHostedZonesByNameInput{DNSName: aws.String("example.internal.")})
	if err != nil {
		t.Fatalf("ListHostedZonesByName: %v", err)
	}
	if len(zones.HostedZones) != 1 || strings.TrimPrefix(aws.ToString(zones.HostedZones[0].Id), "/hostedzone/") != zoneID {
		t.Errorf("ListHostedZonesByName = %d zones, want only %s", len(zones.HostedZones), zoneID)
	}
}

func TestStartMotoIsOwnServer(t *testing.T) {
	shared := testenv.SharedMoto(t)
	own := testenv.StartMoto(t)
	if own.Endpoint == shared.Endpoint {
		t.Fatalf("StartMoto returned the shared server %s", own.Endpoint)
	}
	testenv.NewTestWorld(t, own.Config()).NewInstance()
	if got := instanceIDs(t, ec2.NewFromConfig(shared.AWSConfig(t))); len(got) != 0 {
		t.Errorf("shared server sees instances %v started on its own server", got)
	}
}

func TestIMDS(t *testing.T) {
	ctx := t.Context()
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte("#cloud-config\neipclaim:\n  role: master-db\n"))
	w.Close()
	userData := append(gz.Bytes(), 0x00, 0xff, '\n') // any bytes must survive
	const instanceID = "i-0123456789abcdef0"

	e := testenv.StartIMDS(t, testenv.IMDSOptions{
		InstanceID: instanceID, Region: "eu-west-1", AvailabilityZone: "eu-west-1b", UserData: userData,
	})
	client := imds.New(imds.Options{Endpoint: e.Endpoint, EnableFallback: aws.FalseTernary})

	if got := metadata(t, client, "instance-id"); got != instanceID {
		t.Errorf("instance-id = %q, want %q", got, instanceID)
	}
	if got := metadata(t, client, "placement/availability-zone"); got != "eu-west-1b" {
		t.Errorf("placement/availability-zone = %q, want eu-west-1b", got)
	}
	region, err := client.GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil {
		t.Fatalf("GetRegion: %v", err)
	}
	if region.Region != "eu-west-1" {
		t.Errorf("GetRegion = %q, want eu-west-1", region.Region)
	}
	doc, err := client.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		t.Fatalf("GetInstanceIdentityDocument: %v", err)
	}
	if doc.InstanceID != instanceID || doc.Region != "eu-west-1" || doc.AvailabilityZone != "eu-west-1b" {
		t.Errorf("identity document = %s %s %s, want %s eu-west-1 eu-west-1b",
			doc.InstanceID, doc.Region, doc.AvailabilityZone, instanceID)
	}
	ud, err := client.GetUserData(ctx, &imds.GetUserDataInput{})
	if err != nil {
		t.Fatalf("GetUserData: %v", err)
	}
	got, err := io.ReadAll(ud.Content)
	ud.Content.Close()
	if err != nil {
		t.Fatalf("read user-data: %v", err)
	}
	if !bytes.Equal(got, userData) {
		t.Errorf("user-data = %q, want %q", got, userData)
	}

	// IMDSv1 (no token) is refused unless asked for.
	if code := plainGET(t, e.Endpoint+"/latest/meta-data/instance-id"); code != http.StatusUnauthorized {
		t.Errorf("GET without a token: status %d, want 401", code)
	}
}

func TestIMDSWithoutUserData(t *testing.T) {
	e := testenv.StartIMDS(t, testenv.IMDSOptions{InstanceID: "i-0fedcba9876543210"})
	client := imds.New(imds.Options{Endpoint: e.Endpoint, EnableFallback: aws.FalseTernary})
	if got := metadata(t, client, "instance-id"); got != "i-0fedcba9876543210" {
		t.Errorf("instance-id = %q, want i-0fedcba9876543210", got)
	}
	region, err := client.GetRegion(t.Context(), &imds.GetRegionInput{})
	if err != nil || region.Region != "us-east-1" {
		t.Errorf("GetRegion = %v, %v; want the default us-east-1", region, err)
	}
	_, err = client.GetUserData(t.Context(), &imds.GetUserDataInput{})
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusNotFound {
		t.Fatalf("GetUserData without user-data: err = %v, want an HTTP 404 response error", err)
	}
}

func TestIMDSAllowV1(t *testing.T) {
	e := testenv.StartIMDS(t, testenv.IMDSOptions{InstanceID: "i-0aaaabbbbccccdddd", AllowIMDSv1: true})
	if code := plainGET(t, e.Endpoint+"/latest/meta-data/instance-id"); code != http.StatusOK {
		t.Errorf("GET without a token: status %d, want 200 with AllowIMDSv1", code)
	}
	envs := strings.Join(e.Env(), " ")
	if !strings.Contains(envs, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+e.Endpoint) {
		t.Errorf("Env() = %s, want AWS_EC2_METADATA_SERVICE_ENDPOINT=%s", envs, e.Endpoint)
	}
}

func TestBIND(t *testing.T) {
	b := testenv.StartBIND(t, "Example.Internal")
	if b.Zone != "example.internal." {
		t.Errorf("Zone = %q, want example.internal.", b.Zone)
	}
	if _, _, err := net.SplitHostPort(b.Addr); err != nil || !strings.HasPrefix(b.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want 127.0.0.1:PORT", b.Addr)
	}

	key, err := os.ReadFile(b.KeyFile)
	if err != nil {
		t.Fatalf("read KeyFile: %v", err)
	}
	if strings.TrimSpace(string(key)) != b.Secret {
		t.Error("KeyFile does not hold Secret")
	}
	if fi, err := os.Stat(b.KeyFile); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("KeyFile mode = %v, want 0600", fi.Mode().Perm())
	}
	for _, s := range []string{b.String(), fmt.Sprintf("%v %+v %#v", b, *b, b)} {
		if strings.Contains(s, b.Secret) {
			t.Error("printing a BIND shows its secret")
		}
	}

	name := "master-db.example.internal."
	rr, err := dns.NewRR(name + " 60 IN A 10.0.1.5")
	if err != nil {
		t.Fatal(err)
	}
	update := func(secret string) int {
		t.Helper()
		m := new(dns.Msg)
		m.SetUpdate(b.Zone)
		m.Insert([]dns.RR{rr})
		c := dns.Client{Net: "tcp", Timeout: 5 * time.Second}
		if secret != "" {
			m.SetTsig(b.KeyName, dns.HmacSHA256, 300, time.Now().Unix())
			c.TsigSecret = map[string]string{b.KeyName: secret}
		}
		r, _, err := c.Exchange(m, b.Addr)
		if err != nil && !errors.Is(err, dns.ErrSig) && !errors.Is(err, dns.ErrAuth) {
			t.Fatalf("UPDATE: %v", err)
		}
		if r == nil {
			t.Fatalf("UPDATE: no answer (%v)", err)
		}
		return r.Rcode
	}

	if rc := update(""); rc != dns.RcodeRefused {
		t.Errorf("unsigned UPDATE: rcode %s, want REFUSED", dns.RcodeToString[rc])
	}
	if rc := update("d3JvbmcgZWlwY2xhaW0gdGVzdCBzZWNyZXQgMzIgYnl0ZXMh"); rc != dns.RcodeNotAuth {
		t.Errorf("UPDATE signed with another secret: rcode %s, want NOTAUTH", dns.RcodeToString[rc])
	}
	if got := queryA(t, b.Addr, name); len(got) != 0 {
		t.Fatalf("A %s before the signed update = %v, want none", name, got)
	}
	if rc := update(b.Secret); rc != dns.RcodeSuccess {
		t.Fatalf("signed UPDATE: rcode %s, want NOERROR", dns.RcodeToString[rc])
	}
	if got := queryA(t, b.Addr, name); len(got) != 1 || got[0] != "10.0.1.5" {
		t.Errorf("A %s = %v, want [10.0.1.5]", name, got)
	}
}

func TestEipclaimBuildsOnce(t *testing.T) {
	bin := testenv.Eipclaim(t)
	fi, err := os.Stat(bin)
	if err != nil {
		t.Fatalf("Eipclaim() = %s: %v", bin, err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("%s is not executable (%v)", bin, fi.Mode())
	}
	if again := testenv.Eipclaim(t); again != bin {
		t.Errorf("second Eipclaim() = %s, want the cached %s", again, bin)
	}
}

func hasRegion(rs []ec2types.Region, name string) bool {
	for _, r := range rs {
		if aws.ToString(r.RegionName) == name {
			return true
		}
	}
	return false
}

func instanceIDs(t *testing.T, c *ec2.Client) []string {
	t.Helper()
	out, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
	if err != nil {
		t.Fatalf("DescribeInstances: %v", err)
	}
	var ids []string
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	return ids
}

func metadata(t *testing.T, c *imds.Client, path string) string {
	t.Helper()
	out, err := c.GetMetadata(t.Context(), &imds.GetMetadataInput{Path: path})
	if err != nil {
		t.Fatalf("GetMetadata %s: %v", path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(out.Content)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

func plainGET(t *testing.T, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func queryA(t *testing.T, addr, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("query A %s: %v", name, err)
	}
	var ips []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			ips = append(ips, a.A.String())
		}
	}
	return ips
}
