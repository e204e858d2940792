package testenv

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// AEMMVersion is the amazon-ec2-metadata-mock release the harness is built
// for; scripts/tools.sh installs it.
const AEMMVersion = "v1.13.0"

var aemmTool = tool{
	name:    "ec2-metadata-mock",
	env:     "AEMM_BIN",
	install: "bash scripts/tools.sh  (or: GOBIN=$PWD/.tools/bin go install github.com/aws/amazon-ec2-metadata-mock/cmd/ec2-metadata-mock@" + AEMMVersion + ")",
}

// IMDSOptions is what the emulated instance metadata says.
type IMDSOptions struct {
	// InstanceID is served at meta-data/instance-id and in the instance
	// identity document. Empty means AEMM's default, i-1234567890abcdef0.
	InstanceID string
	// Region is served at meta-data/placement/region and in the identity
	// document. Empty means us-east-1.
	Region string
	// AvailabilityZone is served at meta-data/placement/availability-zone
	// and in the identity document. Empty means Region + "a".
	AvailabilityZone string
	// UserData is served as is (any bytes, gzip included) at user-data.
	// Nil or empty means the instance has no user-data: user-data answers
	// 404 Not Found, as the real IMDS does.
	UserData []byte
	// AllowIMDSv1 also answers requests without a session token. By default
	// only IMDSv2 is served: a request without a token gets 401.
	AllowIMDSv1 bool
	// NoInstanceProfile serves no IAM role: iam/info and
	// iam/security-credentials/ answer 404, as on an instance started
	// without an instance profile. By default AEMM serves its own role's
	// (fake) credentials there.
	NoInstanceProfile bool
	// Moto, when set, is the server whose EC2 state answers the network
	// paths of instance InstanceID (mac, local-ipv4, public-ipv4,
	// network/interfaces/macs/...), read at each request (imdsnet.go).
	// Nil: AEMM's fixed answers. [Instance.IMDSOptions] sets it for an
	// instance of a [World] on a [Moto] of this process.
	Moto *Moto
	// NetworkLag makes the network paths answer what moto said at least
	// this long ago, as a real IMDS may lag behind EC2 (0: at once).
	NetworkLag time.Duration
}

// IMDS is a running amazon-ec2-metadata-mock behind the harness's IMDS
// layer (imdsnet.go), which answers the network paths from moto when
// [IMDSOptions.Moto] is set and can take the service offline ([IMDS.SetDown]).
type IMDS struct {
	// Endpoint is the layer's base URL, http://127.0.0.1:PORT, as
	// AWS_EC2_METADATA_SERVICE_ENDPOINT and imds.Options.Endpoint take it.
	Endpoint string
	layer    *imdsLayer
}

// SetDown takes the instance's IMDS offline (true) or back (false): while
// down, every request's connection is closed without an answer, tokens
// included, as when the instance cannot reach its metadata service.
func (i *IMDS) SetDown(down bool) { i.layer.down.Store(down) }

// Env returns the environment that points the AWS SDK's IMDS client at this
// emulator.
func (i *IMDS) Env() []string {
	return []string{
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + i.Endpoint,
		"AWS_EC2_METADATA_DISABLED=false",
	}
}

// StartIMDS starts an IMDS emulator serving o for t, stopped when t ends.
func StartIMDS(t testing.TB, o IMDSOptions) *IMDS {
	t.Helper()
	began := time.Now()
	dir := t.TempDir()
	conf, err := writeAEMMConfig(dir, o)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	p, port, err := imdsLaunch(conf, o, dir).run()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cleanupProcess(t, p)
	l, err := startIMDSLayer(fmt.Sprintf("http://127.0.0.1:%d", port), o)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(l.close)
	t.Logf("testenv: ec2-metadata-mock ready on 127.0.0.1:%d in %s, behind the IMDS layer on %s%s", port, since(began), l.url(), imdsFrom(o))
	return &IMDS{Endpoint: l.url(), layer: l}
}

// imdsFrom says, for a log line, where the network paths come from.
func imdsFrom(o IMDSOptions) string {
	if o.Moto == nil {
		return ""
	}
	return fmt.Sprintf(" (network paths of %s from moto %s)", o.InstanceID, o.Moto.direct)
}

// imdsLaunch starts AEMM with the configuration file conf (written for o),
// in dir. It is ready when it answers as o.InstanceID: an emulator that
// answers as another instance is another process's, on the port this one
// was given too (a collision).
func imdsLaunch(conf string, o IMDSOptions, dir string) launch {
	return launch{
		name:    "ec2-metadata-mock",
		tool:    aemmTool,
		timeout: 10 * time.Second,
		prepare: func(port int) ([]string, []string, string, error) {
			args := []string{"--config-file", conf, "--hostname", "127.0.0.1", "--port", fmt.Sprint(port)}
			if !o.AllowIMDSv1 {
				args = append(args, "--imdsv2")
			}
			// AEMM reads AEMM_* variables and $HOME/aemm-config.json as
			// well: hide both.
			env := append(baseEnv("AEMM_", "HOME="), "HOME="+dir)
			return args, env, dir, nil
		},
		ready: func(port int) error {
			id, err := instanceID(fmt.Sprintf("http://127.0.0.1:%d", port))
			if err != nil {
				return err
			}
			if o.InstanceID != "" && id != o.InstanceID {
				return fmt.Errorf("%w: 127.0.0.1:%d answers as instance %q, not %q", errCollision, port, id, o.InstanceID)
			}
			return nil
		},
	}
}

// instanceID asks the IMDS at endpoint which instance it serves (IMDSv2).
func instanceID(endpoint string) (string, error) {
	client := &http.Client{Timeout: probeTimeout}
	req, err := http.NewRequest(http.MethodPut, endpoint+"/latest/api/token", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "60")
	token, err := readOK(client, req)
	if err != nil {
		return "", err
	}
	req, err = http.NewRequest(http.MethodGet, endpoint+"/latest/meta-data/instance-id", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Aws-Ec2-Metadata-Token", token)
	return readOK(client, req)
}

// readOK sends req and returns the body of a 2xx answer, trimmed.
func readOK(client *http.Client, req *http.Request) (string, error) {
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%s %s: %s", req.Method, req.URL, resp.Status)
	}
	return strings.TrimSpace(string(b)), nil
}

// aemmConfig is AEMM's configuration file for o: overrides of the keys of
// its defaults (pkg/config/defaults/aemm-metadata-default-values.json).
func aemmConfig(o IMDSOptions) map[string]any {
	region := o.Region
	if region == "" {
		region = "us-east-1"
	}
	az := o.AvailabilityZone
	if az == "" {
		az = region + "a"
	}
	values := map[string]any{
		"placement-region":            region,
		"placement-availability-zone": az,
	}
	identity := map[string]any{"region": region, "availabilityZone": az}
	if o.InstanceID != "" {
		values["instance-id"] = o.InstanceID
		identity["instanceId"] = o.InstanceID
	}
	// AEMM serves userdata.values.userdata base64-decoded at
	// userdata.paths.userdata. An empty path keeps it from registering the
	// route, and the request then falls through to a 404.
	userdata := map[string]any{"paths": map[string]any{"userdata": ""}}
	if len(o.UserData) > 0 {
		userdata = map[string]any{
			"paths":  map[string]any{"userdata": "/latest/user-data"},
			"values": map[string]any{"userdata": base64.StdEncoding.EncodeToString(o.UserData)},
		}
	}
	metadata := map[string]any{"values": values}
	if o.NoInstanceProfile {
		// An empty path keeps AEMM from registering the route.
		metadata["paths"] = map[string]any{"iam-info": "", "iam-security-credentials-role": "", "iam-security-credentials": ""}
	}
	return map[string]any{
		"metadata": metadata,
		"dynamic": map[string]any{"values": map[string]any{
			"instance-identity-document": identity,
		}},
		"userdata": userdata,
	}
}
