package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/fetch"
)

// fakeIMDS serves user-data from memory: userData, or an error.
type fakeIMDS struct {
	userData []byte
	status   int   // an HTTP error status instead, such as 404
	err      error // a transport error instead
}

var _ IMDSAPI = (*fakeIMDS)(nil)

func (f *fakeIMDS) GetUserData(ctx context.Context, in *imds.GetUserDataInput, optFns ...func(*imds.Options)) (*imds.GetUserDataOutput, error) {
	switch {
	case f.err != nil:
		return nil, &smithy.OperationError{ServiceID: "ec2imds", OperationName: "GetUserData", Err: f.err}
	case f.status != 0:
		return nil, &smithy.OperationError{ServiceID: "ec2imds", OperationName: "GetUserData", Err: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: f.status}},
			Err:      fmt.Errorf("request to EC2 IMDS failed"),
		}}
	}
	return &imds.GetUserDataOutput{Content: io.NopCloser(bytes.NewReader(f.userData))}, nil
}

// fakeS3 is an in-memory S3 holding objects by bucket and key; errs
// replaces the answer for a "bucket/key".
type fakeS3 struct {
	objects map[string]map[string][]byte
	errs    map[string]error
}

var _ S3API = (*fakeS3)(nil)

func (f *fakeS3) GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	bucket, key := aws.ToString(in.Bucket), aws.ToString(in.Key)
	wrap := func(err error) error {
		return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: err}
	}
	if err := f.errs[bucket+"/"+key]; err != nil {
		return nil, wrap(err)
	}
	b, ok := f.objects[bucket]
	if !ok {
		return nil, wrap(&types.NoSuchBucket{Message: aws.String("The specified bucket does not exist")})
	}
	data, ok := b[key]
	if !ok {
		return nil, wrap(&types.NoSuchKey{Message: aws.String("The specified key does not exist.")})
	}
	return &s3.GetObjectOutput{Body: io.NopCloser(bytes.NewReader(data))}, nil
}

// logBuffer returns a logger that writes every level to the buffer.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

const fleetDoc = `role: web
roles:
  db: {public_ip: 203.0.113.1}
  web: {public_ip: 203.0.113.2}
`

func TestLoadPrecedence(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "local.yaml"), "roles:\n  db: {public_ip: 203.0.113.11}\n  mail: {public_ip: 203.0.113.12}\n")
	writeFile(t, filepath.Join(dir, "env.yaml"), "roles:\n  db: {public_ip: 203.0.113.21}\n")
	writeFile(t, filepath.Join(dir, "nested.yaml"), "source: s3://fleet/eipclaim.yaml\nroles:\n  db: {public_ip: 203.0.113.31}\n")
	local, env, nested := filepath.Join(dir, "local.yaml"), filepath.Join(dir, "env.yaml"), filepath.Join(dir, "nested.yaml")

	const pointer = "role: db\nsource: s3://fleet/eipclaim.yaml\n"
	const userDataRoles = "role: db\nroles:\n  db: {public_ip: 203.0.113.99}\n  extra: {public_ip: 203.0.113.98}\n"
	tests := []struct {
		name        string
		userData    string // "-" for none (IMDS answers 404)
		req         Request
		wantRole    string
		wantIPs     map[string]string // role -> public_ip
		wantSources []string
		wantSource  string
		wantErr     string
		wantCode    int
	}{
		{name: "user-data points at s3", userData: pointer, req: Request{UserData: true},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.1", "web": "203.0.113.2"},
			wantSources: []string{"user-data", "s3://fleet/eipclaim.yaml"}, wantSource: "s3://fleet/eipclaim.yaml"},
		{name: "env role beats user-data", userData: pointer, req: Request{UserData: true, EnvRole: "web"},
			wantRole: "web", wantIPs: map[string]string{"db": "203.0.113.1", "web": "203.0.113.2"},
			wantSources: []string{"user-data", "s3://fleet/eipclaim.yaml"}, wantSource: "s3://fleet/eipclaim.yaml"},
		{name: "flag role beats env", userData: pointer, req: Request{UserData: true, EnvRole: "web", Role: "mail"},
			wantRole: "mail", wantIPs: map[string]string{"db": "203.0.113.1", "web": "203.0.113.2"},
			wantSources: []string{"user-data", "s3://fleet/eipclaim.yaml"}, wantSource: "s3://fleet/eipclaim.yaml"},
		{name: "pointed role is the last resort", userData: "source: s3://fleet/eipclaim.yaml\n", req: Request{UserData: true},
			wantRole: "web", wantIPs: map[string]string{"db": "203.0.113.1", "web": "203.0.113.2"},
			wantSources: []string{"user-data", "s3://fleet/eipclaim.yaml"}, wantSource: "s3://fleet/eipclaim.yaml"},
		{name: "env config replaces user-data's source", userData: pointer, req: Request{UserData: true, EnvConfig: env},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.21"},
			wantSources: []string{env, "user-data"}, wantSource: env},
		{name: "flag config beats env config", userData: pointer, req: Request{UserData: true, EnvConfig: env, Config: local},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.11", "mail": "203.0.113.12"},
			wantSources: []string{local, "user-data"}, wantSource: local},
		// An explicit document beats user-data where both say something;
		// user-data fills in the role and the roles only it defines.
		{name: "--config beats user-data's roles", userData: userDataRoles, req: Request{UserData: true, Config: local},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.11", "mail": "203.0.113.12", "extra": "203.0.113.98"},
			wantSources: []string{local, "user-data"}, wantSource: local},
		{name: "EIPCLAIM_CONFIG beats user-data's roles", userData: userDataRoles, req: Request{UserData: true, EnvConfig: env},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.21", "extra": "203.0.113.98"},
			wantSources: []string{env, "user-data"}, wantSource: env},
		{name: "--config's role beats user-data's", userData: userDataRoles, req: Request{UserData: true, Config: "s3://fleet/eipclaim.yaml"},
			wantRole: "web", wantIPs: map[string]string{"db": "203.0.113.1", "web": "203.0.113.2", "extra": "203.0.113.98"},
			wantSources: []string{"s3://fleet/eipclaim.yaml", "user-data"}, wantSource: "s3://fleet/eipclaim.yaml"},
		{name: "--config and --role: user-data not read", userData: userDataRoles, req: Request{UserData: true, Config: local, Role: "db"},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.11", "mail": "203.0.113.12"},
			wantSources: []string{local}, wantSource: local},
		{name: "table only with --config: user-data not read", userData: userDataRoles, req: Request{UserData: true, Config: local, TableOnly: true},
			wantIPs: map[string]string{"db": "203.0.113.11", "mail": "203.0.113.12"}, wantSources: []string{local}, wantSource: local},
		{name: "table only without --config: user-data", userData: pointer, req: Request{UserData: true, TableOnly: true},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.1", "web": "203.0.113.2"},
			wantSources: []string{"user-data", "s3://fleet/eipclaim.yaml"}, wantSource: "s3://fleet/eipclaim.yaml"},
		{name: "EIPCLAIM_CONFIG and EIPCLAIM_ROLE: user-data not read", userData: userDataRoles, req: Request{UserData: true, EnvConfig: env, EnvRole: "db"},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.21"},
			wantSources: []string{env}, wantSource: env},
		{name: "user-data roles override pointed roles",
			userData: "role: db\nsource: s3://fleet/eipclaim.yaml\nroles:\n  db: {public_ip: 203.0.113.99}\n", req: Request{UserData: true},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.99", "web": "203.0.113.2"},
			wantSources: []string{"user-data", "s3://fleet/eipclaim.yaml"}, wantSource: "s3://fleet/eipclaim.yaml"},
		{name: "user-data alone", userData: "role: db\nroles:\n  db: {public_ip: 203.0.113.5}\n", req: Request{UserData: true},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.5"}, wantSources: []string{"user-data"}},
		{name: "cloud-config user-data", userData: "#cloud-config\npackages: [x]\neipclaim:\n  role: db\n  source: s3://fleet/eipclaim.yaml\n", req: Request{UserData: true},
			wantRole: "db", wantIPs: map[string]string{"db": "203.0.113.1", "web": "203.0.113.2"},
			wantSources: []string{"user-data", "s3://fleet/eipclaim.yaml"}, wantSource: "s3://fleet/eipclaim.yaml"},
		{name: "no user-data with --config", userData: "-", req: Request{UserData: true, Config: local, Role: "mail"},
			wantRole: "mail", wantIPs: map[string]string{"db": "203.0.113.11", "mail": "203.0.113.12"},
			wantSources: []string{local}, wantSource: local},
		{name: "shell-script user-data with EIPCLAIM_CONFIG", userData: "#!/bin/sh\necho hi\n", req: Request{UserData: true, EnvConfig: "s3://fleet/eipclaim.yaml"},
			wantRole: "web", wantIPs: map[string]string{"db": "203.0.113.1", "web": "203.0.113.2"},
			wantSources: []string{"s3://fleet/eipclaim.yaml"}, wantSource: "s3://fleet/eipclaim.yaml"},
		{name: "user-data not read", userData: pointer, req: Request{Config: local},
			wantIPs: map[string]string{"db": "203.0.113.11", "mail": "203.0.113.12"}, wantSources: []string{local}, wantSource: local},

		{name: "no user-data, no --config", userData: "-", req: Request{UserData: true},
			wantErr: "no user-data and no --config", wantCode: exitcode.Usage},
		{name: "shell-script user-data alone", userData: "#!/bin/sh\necho hi\n", req: Request{UserData: true},
			wantErr: "user-data is a shell script: no eipclaim configuration", wantCode: exitcode.Usage},
		{name: "nothing at all", req: Request{},
			wantErr: "no configuration: pass --config", wantCode: exitcode.Usage},
		{name: "pointed document with a source", userData: "-", req: Request{UserData: true, Config: nested},
			wantErr: nested + " (line 1): source: is not allowed in the document that user-data or --config points at (one level only)", wantCode: exitcode.Usage},
		{name: "bad user-data even with --config", userData: "role: db\nroles: {db: {public_ip: nope}}\n", req: Request{UserData: true, Config: local},
			wantErr: `roles.db.public_ip "nope" (line 2)`, wantCode: exitcode.Usage},
		// Each document is valid alone; merged, two roles share an EIP or
		// a name.
		{name: "merged roles share an EIP", userData: "role: db\nsource: s3://fleet/eipclaim.yaml\nroles:\n  cache: {public_ip: 203.0.113.2}\n", req: Request{UserData: true},
			wantErr: `roles.web.public_ip "203.0.113.2" (line 4): roles.cache.public_ip (line 4) names this EIP too`, wantCode: exitcode.Usage},
		{name: "merged roles share a name", userData: "role: db\nroles:\n  cache: {public_ip: 203.0.113.77, dns: {route53: {zone_id: Z1, name: Web.}}}\n", req: Request{UserData: true, Config: "s3://fleet/eipclaim.yaml"},
			wantErr: `roles.web (line 4): role name "web": role cache publishes this name too`, wantCode: exitcode.Usage},
		{name: "http --config", req: Request{Config: "http://example.com/x?sig=1"},
			wantErr: `--config "http://example.com/x": want s3://bucket/key`, wantCode: exitcode.Usage},
		{name: "bad EIPCLAIM_CONFIG", req: Request{EnvConfig: "s3://bucket-only"},
			wantErr: `EIPCLAIM_CONFIG "s3://bucket-only": want s3://bucket/key`, wantCode: exitcode.Usage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := logBuffer()
			l := &Loader{
				S3:  &fakeS3{objects: map[string]map[string][]byte{"fleet": {"eipclaim.yaml": []byte(fleetDoc)}}},
				Log: log,
			}
			switch tc.userData {
			case "":
			case "-":
				l.IMDS = &fakeIMDS{status: http.StatusNotFound}
			default:
				l.IMDS = &fakeIMDS{userData: []byte(tc.userData)}
			}
			got, err := l.Load(context.Background(), tc.req)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Load succeeded (%+v), want an error containing %q", got, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
				}
				if c := exitcode.Of(err); c != tc.wantCode {
					t.Errorf("exit code = %d, want %d", c, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.Config.Role != tc.wantRole {
				t.Errorf("role = %q, want %q", got.Config.Role, tc.wantRole)
			}
			if got.Config.Source != tc.wantSource {
				t.Errorf("source = %q, want %q", got.Config.Source, tc.wantSource)
			}
			ips := map[string]string{}
			for n, r := range got.Config.Roles {
				ips[n] = r.PublicIP
			}
			if fmt.Sprint(ips) != fmt.Sprint(tc.wantIPs) {
				t.Errorf("roles = %v, want %v", ips, tc.wantIPs)
			}
			if !slices.Equal(got.Sources, tc.wantSources) {
				t.Errorf("sources = %q, want %q", got.Sources, tc.wantSources)
			}
			if n := strings.Count(logs.String(), "level=INFO"); n != 1 {
				t.Errorf("got %d Info lines, want 1:\n%s", n, logs)
			}
			if want := fmt.Sprintf("msg=\"configuration loaded\" role=%s", tc.wantRole); !strings.Contains(logs.String(), want) {
				t.Errorf("logs:\n%s\nwant a line with %q", logs, want)
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestLoadNeverShowsUserData runs Load on user-data holding a secret beside
// (or around) a faulty eipclaim configuration, and checks that neither the
// error nor any log line, at any level, shows it.
func TestLoadNeverShowsUserData(t *testing.T) {
	script := part{"text/x-shellscript", "base64", "#!/bin/bash\nexport DB_PASSWORD=" + secret + "\n"}
	tests := []struct {
		name     string
		userData []byte
		req      Request
		wantErr  bool
	}{
		{"validation error beside a script", multipartOf(t, script,
			part{"text/cloud-config", "", "#cloud-config\neipclaim:\n  role: db\n  roles:\n    db: {public_ip: 203.0.113.1, takeover: sometimes}\n"}), Request{UserData: true}, true},
		{"YAML error beside a script", multipartOf(t, script,
			part{"text/cloud-config", "base64", "#cloud-config\neipclaim:\n  role: db\n  roles: {db: [\n"}), Request{UserData: true}, true},
		{"YAML error in the part with the secret", multipartOf(t,
			part{"text/cloud-config", "", "#cloud-config\nwrite_files:\n  - content: \"DB_PASSWORD=" + secret + "\n    path: /x\neipclaim: {role: db}\n"}), Request{UserData: true}, true},
		{"YAML error in a plain document", []byte("password: '" + secret + "\nrole: db\n"), Request{UserData: true}, true},
		{"an alias to the secret", []byte("#cloud-config\npw: &pw " + secret + "\neipclaim:\n  role: *pw\n"), Request{UserData: true}, true},
		{"a secret as a value of eipclaim's document", []byte("#cloud-config\neipclaim:\n  role: db\n  roles: {db: {public_ip: 203.0.113.1, dns: {rfc2136: {server: " + secret + "}}}}\n"), Request{UserData: true}, true},
		{"script only", multipartOf(t, script), Request{UserData: true}, true},
		{"script only, with --config", multipartOf(t, script), Request{UserData: true, Config: "s3://fleet/eipclaim.yaml"}, false},
		{"valid", multipartOf(t, script, part{"text/cloud-config", "", "#cloud-config\neipclaim: {role: db, source: s3://fleet/eipclaim.yaml}\n"}), Request{UserData: true}, false},
		{"gzip multipart", gzipBytes(t, multipartOf(t, script, part{"text/plain", "", "role: db\nsource: s3://fleet/nokey.yaml\n"})), Request{UserData: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := logBuffer()
			l := &Loader{
				IMDS: &fakeIMDS{userData: tc.userData},
				S3:   &fakeS3{objects: map[string]map[string][]byte{"fleet": {"eipclaim.yaml": []byte(fleetDoc)}}},
				Log:  log,
			}
			got, err := l.Load(context.Background(), tc.req)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Load = %+v, %v; want an error: %v", got, err, tc.wantErr)
			}
			t.Logf("error: %v\nlogs:\n%s", err, logs)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the secret: %v", err)
			}
			if strings.Contains(logs.String(), "hunter2") {
				t.Errorf("the logs show the secret:\n%s", logs)
			}
		})
	}
}

func TestLoadS3Errors(t *testing.T) {
	tests := []struct {
		name     string
		err      error // nil: the fake's own answer
		source   string
		wantCode int
		want     string
	}{
		{"NoSuchKey", nil, "s3://fleet/nope.yaml", exitcode.Usage, "bucket fleet has no key nope.yaml: check the key name"},
		{"NoSuchBucket", nil, "s3://nope/eipclaim.yaml", exitcode.Usage, "no bucket nope: check the bucket name"},
		{"generic NoSuchKey", &smithy.GenericAPIError{Code: "NoSuchKey"}, "s3://fleet/eipclaim.yaml", exitcode.Usage, "check the key name"},
		{"AccessDenied", &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}, "s3://fleet/eipclaim.yaml", exitcode.Denied,
			"grant s3:GetObject on arn:aws:s3:::fleet/eipclaim.yaml"},
		{"wrong region", &smithy.GenericAPIError{Code: "PermanentRedirect"}, "s3://fleet/eipclaim.yaml", exitcode.Usage, "set AWS_REGION"},
		{"bare 403", &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 403}}, Err: errors.New("forbidden")},
			"s3://fleet/eipclaim.yaml", exitcode.Denied, "grant s3:GetObject"},
		{"InternalError", &smithy.GenericAPIError{Code: "InternalError"}, "s3://fleet/eipclaim.yaml", exitcode.Failed, "read s3://fleet/eipclaim.yaml"},
		{"not YAML", nil, "s3://fleet/bad.yaml", exitcode.Usage, "invalid configuration in s3://fleet/bad.yaml:\n  roles.db.takeover \"sometimes\" (line 2)"},
		{"gzip bomb", nil, "s3://fleet/bomb.yaml.gz", exitcode.Usage, "s3://fleet/bomb.yaml.gz: gzip data decompresses to more than"},
		{"too big", nil, "s3://fleet/big.yaml", exitcode.Usage, "s3://fleet/big.yaml is larger than 1048576 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeS3{objects: map[string]map[string][]byte{"fleet": {
				"eipclaim.yaml": []byte(fleetDoc),
				"bad.yaml":      []byte("roles:\n  db: {public_ip: 203.0.113.1, takeover: sometimes}\n"),
				"bomb.yaml.gz":  gzipBomb(t),
				"big.yaml":      bytes.Repeat([]byte("#\n"), MaxDocument),
			}}}
			if tc.err != nil {
				f.errs = map[string]error{strings.TrimPrefix(tc.source, "s3://"): tc.err}
			}
			l := &Loader{S3: f}
			_, err := l.Load(context.Background(), Request{Config: tc.source})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if got := exitcode.Of(err); got != tc.wantCode {
				t.Errorf("exit code = %d, want %d (%v)", got, tc.wantCode, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("error %v does not wrap %v", err, tc.err)
			}
		})
	}
	t.Run("gzip document", func(t *testing.T) {
		l := &Loader{S3: &fakeS3{objects: map[string]map[string][]byte{"fleet": {"eipclaim.yaml.gz": gzipBytes(t, []byte(fleetDoc))}}}}
		got, err := l.Load(context.Background(), Request{Config: "s3://fleet/eipclaim.yaml.gz"})
		if err != nil {
			t.Fatal(err)
		}
		if got.Config.Roles["web"] == nil {
			t.Errorf("roles = %v, want db and web", got.Config.Roles)
		}
	})
	t.Run("no S3 client", func(t *testing.T) {
		_, err := (&Loader{}).Load(context.Background(), Request{Config: "s3://fleet/eipclaim.yaml"})
		if exitcode.Of(err) != exitcode.Usage {
			t.Errorf("error %v, exit code %d; want %d", err, exitcode.Of(err), exitcode.Usage)
		}
	})
}

// testHTTP returns the client fetch.NewHTTPClient makes, trusting srv and with
// millisecond backoff.
func testHTTP(srv *httptest.Server, log *slog.Logger) *retryablehttp.Client {
	c := fetch.NewHTTPClient(log)
	c.HTTPClient = srv.Client()
	c.RetryWaitMin, c.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	return c
}

const presignQuery = "?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=SECRETSIGNATURE"

func TestLoadHTTPSRetries(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Query().Get("X-Amz-Signature") != "SECRETSIGNATURE" {
			http.Error(w, "no signature", http.StatusForbidden)
			return
		}
		io.WriteString(w, fleetDoc)
	}))
	defer srv.Close()
	log, logs := logBuffer()
	l := &Loader{HTTP: testHTTP(srv, log), Log: log}
	got, err := l.Load(context.Background(), Request{Config: srv.URL + "/eipclaim.yaml" + presignQuery, Role: "db"})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("server got %d requests, want 3", n)
	}
	if got.Config.Roles["db"] == nil || got.Config.Role != "db" {
		t.Errorf("config = %+v, want role db and its table", got.Config)
	}
	if want := []string{srv.URL + "/eipclaim.yaml"}; !slices.Equal(got.Sources, want) {
		t.Errorf("sources = %q, want %q", got.Sources, want)
	}
	if !strings.Contains(logs.String(), "retrying request") {
		t.Errorf("logs:\n%s\nwant the retries at Debug", logs)
	}
	if strings.Contains(logs.String(), "SECRETSIGNATURE") || strings.Contains(logs.String(), "AKIAEXAMPLE") {
		t.Errorf("the logs show the query string:\n%s", logs)
	}
}

func TestLoadHTTPSErrors(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         []byte
		closed       bool
		wantCode     int
		want         string
		wantRequests int32
	}{
		{"not found", http.StatusNotFound, nil, false, exitcode.Usage, "404 Not Found: check the URL", 1},
		{"forbidden", http.StatusForbidden, nil, false, exitcode.Denied, "403 Forbidden: the server refused", 1},
		{"unauthorized", http.StatusUnauthorized, nil, false, exitcode.Denied, "401 Unauthorized", 1},
		{"bad request", http.StatusBadRequest, nil, false, exitcode.Usage, "400 Bad Request", 1},
		{"always 500", http.StatusInternalServerError, nil, false, exitcode.Failed, "500 Internal Server Error (retried up to 4 times)", 5},
		{"invalid document", http.StatusOK, []byte("roles: {db: {public_ip: x}}\n"), false, exitcode.Usage, `roles.db.public_ip "x" (line 1)`, 1},
		{"too big", http.StatusOK, bytes.Repeat([]byte("# padding\n"), MaxDocument/5), false, exitcode.Usage, "is larger than 1048576 bytes", 1},
		{"connection refused", 0, nil, true, exitcode.Failed, "check the URL and the network", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if tc.status != http.StatusOK {
					http.Error(w, "no", tc.status)
					return
				}
				w.Write(tc.body)
			}))
			defer srv.Close()
			log, logs := logBuffer()
			l := &Loader{HTTP: testHTTP(srv, log), Log: log}
			if tc.closed {
				srv.Close()
			}
			src := srv.URL + "/eipclaim.yaml" + presignQuery
			_, err := l.Load(context.Background(), Request{Config: src})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if got := exitcode.Of(err); got != tc.wantCode {
				t.Errorf("exit code = %d, want %d (%v)", got, tc.wantCode, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), srv.URL+"/eipclaim.yaml") {
				t.Errorf("error %q does not name the URL", err)
			}
			if got := requests.Load(); got != tc.wantRequests {
				t.Errorf("server got %d requests, want %d", got, tc.wantRequests)
			}
			for _, s := range []string{err.Error(), logs.String()} {
				if strings.Contains(s, "SECRETSIGNATURE") || strings.Contains(s, "AKIAEXAMPLE") {
					t.Errorf("the query string shows in:\n%s", s)
				}
			}
		})
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad.yaml"), "roles:\n  db:\n    takeover: never\n")
	writeFile(t, filepath.Join(dir, "secret.yaml"), fleetDoc)
	if err := os.Chmod(filepath.Join(dir, "secret.yaml"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "doc.yaml.gz"), gzipBytes(t, []byte(fleetDoc)), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := runtime.GOOS != "windows" && mkfifo(filepath.Join(dir, "fifo")) == nil
	tests := []struct {
		name     string
		file     string
		wantCode int
		want     string
	}{
		{"missing", "nope.yaml", exitcode.Usage, "no such file: check the path"},
		{"directory", ".", exitcode.Usage, ": a directory, not a regular file: point --config at a file"},
		// A named pipe with no writer: refused at once, not waited on past
		// --timeout and SIGTERM (issue 17).
		{"named pipe", "fifo", exitcode.Usage, "a named pipe, not a regular file: point --config at a file"},
		{"invalid", "bad.yaml", exitcode.Usage, "roles.db (line 2): want one of allocation_id, public_ip or pool"},
		{"permission denied", "secret.yaml", exitcode.Denied, "permission denied"},
		{"gzip", "doc.yaml.gz", exitcode.OK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "permission denied" && (runtime.GOOS == "windows" || os.Geteuid() == 0) {
				t.Skip("file modes do not stop root or Windows")
			}
			if tc.name == "named pipe" && !fifo {
				t.Skip("no named pipes here")
			}
			path := filepath.Join(dir, tc.file)
			done := make(chan error, 1)
			go func() {
				_, err := (&Loader{}).Load(context.Background(), Request{Config: path})
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Errorf("Load(%s) still waiting after 5s", tc.file)
				if f, oerr := os.OpenFile(path, os.O_RDWR, 0); oerr == nil { // release the open
					f.Close()
				}
				err = <-done
			}
			if got := exitcode.Of(err); got != tc.wantCode {
				t.Errorf("exit code = %d, want %d (%v)", got, tc.wantCode, err)
			}
			if err != nil && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path)) {
				t.Errorf("error %q, want it to contain %q and the path", err, tc.want)
			}
		})
	}
}

func TestLoadIMDSErrors(t *testing.T) {
	tests := []struct {
		name     string
		imds     *fakeIMDS
		wantCode int
		want     string
	}{
		{"unreachable", &fakeIMDS{err: &smithyhttp.RequestSendError{Err: &url.Error{Op: "Put", URL: "http://169.254.169.254/latest/api/token", Err: errors.New("connect: connection refused")}}},
			exitcode.Failed, "instance metadata service unreachable at http://169.254.169.254: "},
		{"500", &fakeIMDS{status: 500}, exitcode.Failed, "the instance metadata service answered 500 Internal Server Error"},
		{"too big", &fakeIMDS{userData: make([]byte, MaxDocument+1)}, exitcode.Usage, "user-data is larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := (&Loader{IMDS: tc.imds}).Load(context.Background(), Request{UserData: true})
			if got := exitcode.Of(err); got != tc.wantCode {
				t.Errorf("exit code = %d, want %d (%v)", got, tc.wantCode, err)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
			if tc.imds.err != nil && !errors.Is(err, tc.imds.err) {
				t.Errorf("error %v does not wrap %v", err, tc.imds.err)
			}
		})
	}
}

// TestLoadIMDSClient checks the classification against the errors that the
// SDK's own IMDS client returns.
func TestLoadIMDSClient(t *testing.T) {
	var status atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "21600")
			io.WriteString(w, "token")
		case r.URL.Path == "/latest/user-data" && status.Load() == 0:
			io.WriteString(w, "role: db\nroles: {db: {public_ip: 203.0.113.1}}\n")
		case r.URL.Path == "/latest/user-data":
			w.WriteHeader(int(status.Load()))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	client := imds.New(imds.Options{Endpoint: srv.URL, Retryer: aws.NopRetryer{}})

	got, err := (&Loader{IMDS: client}).Load(context.Background(), Request{UserData: true})
	if err != nil || got.Config.Role != "db" {
		t.Fatalf("Load = %+v, %v; want role db", got, err)
	}

	status.Store(http.StatusNotFound)
	_, err = (&Loader{IMDS: client}).Load(context.Background(), Request{UserData: true})
	if err == nil || !strings.Contains(err.Error(), "no user-data and no --config") || exitcode.Of(err) != exitcode.Usage {
		t.Errorf("with no user-data: %v (exit %d), want no user-data and no --config, exit 2", err, exitcode.Of(err))
	}

	srv.Close()
	_, err = (&Loader{IMDS: client}).Load(context.Background(), Request{UserData: true})
	want := "instance metadata service unreachable at " + srv.URL + ": "
	if err == nil || !strings.Contains(err.Error(), want) || exitcode.Of(err) != exitcode.Failed {
		t.Errorf("with IMDS down: %v (exit %d), want %q, exit 1", err, exitcode.Of(err), want)
	}
}
