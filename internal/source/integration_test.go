package source_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/eipclaim/eipclaim/internal/exitcode"
	"github.com/eipclaim/eipclaim/internal/source"
	"github.com/eipclaim/eipclaim/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const fleetTable = `roles:
  db: {public_ip: 203.0.113.1, takeover: never}
  web: {pool: {tags: {eip-pool: web}}}
`

// gzipMultipart builds gzip-compressed multipart user-data as cloud-init's
// make-mime does: a shell script holding a secret beside the cloud-config.
func gzipMultipart(t *testing.T, cloudConfig string) []byte {
	t.Helper()
	var mp bytes.Buffer
	mp.WriteString("Content-Type: multipart/mixed; boundary=\"===============5678==\"\nMIME-Version: 1.0\n\n")
	for _, p := range []struct{ typ, body string }{
		{"text/x-shellscript", "#!/bin/bash\nexport DB_PASSWORD=hunter2-SECRET-4f9a\n"},
		{"text/cloud-config", cloudConfig},
	} {
		mp.WriteString("--===============5678==\nContent-Type: " + p.typ + "; charset=\"utf-8\"\nMIME-Version: 1.0\n" +
			"Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"part\"\n\n" +
			base64.StdEncoding.EncodeToString([]byte(p.body)) + "\n")
	}
	mp.WriteString("--===============5678==--\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(mp.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes()
}

// TestLoadEmulators loads user-data from amazon-ec2-metadata-mock and the
// document it points at from moto's S3, with the SDK's real clients.
func TestLoadEmulators(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	moto := testenv.SharedMoto(t)
	seed := s3.NewFromConfig(moto.AWSConfig(t), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := seed.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("fleet")}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := seed.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("fleet"), Key: aws.String("eipclaim.yaml"), Body: strings.NewReader(fleetTable)}); err != nil {
		t.Fatalf("put object: %v", err)
	}
	// The client under test is built as cmd/ builds it, with an
	// instance's credentials: the IAM gate judges its requests with
	// docs/iam-policy.json, whose configuration object is the case's.
	client := s3.NewFromConfig(moto.ConfigAs(testenv.CallerInstance), func(o *s3.Options) { o.UsePathStyle = true })

	tests := []struct {
		name        string
		userData    []byte
		req         source.Request
		wantRole    string
		wantSources []string
		wantCode    int    // for an error
		wantErr     string // in the error
		object      string // the policy's configuration object; default fleet/eipclaim.yaml
	}{
		{name: "user-data points at S3", userData: []byte("role: db\nsource: s3://fleet/eipclaim.yaml\n"), req: source.Request{UserData: true},
			wantRole: "db", wantSources: []string{"user-data", "s3://fleet/eipclaim.yaml"}},
		{name: "gzip multipart with a shell script",
			userData: gzipMultipart(t, "#cloud-config\npackages: [postgresql]\neipclaim:\n  role: db\n  source: s3://fleet/eipclaim.yaml\n"),
			req:      source.Request{UserData: true},
			wantRole: "db", wantSources: []string{"user-data part 2 (text/cloud-config)", "s3://fleet/eipclaim.yaml"}},
		{name: "no user-data, --config and --role", req: source.Request{UserData: true, Config: "s3://fleet/eipclaim.yaml", Role: "web"},
			wantRole: "web", wantSources: []string{"s3://fleet/eipclaim.yaml"}},
		// Without s3:ListBucket (the shipped policy grants none), S3
		// answers a missing key 403 AccessDenied.
		{name: "missing key", userData: []byte("role: db\nsource: s3://fleet/missing.yaml\n"), req: source.Request{UserData: true}, object: "fleet/missing.yaml",
			wantCode: exitcode.Denied, wantErr: "without s3:ListBucket S3 also answers AccessDenied for a missing key"},
		{name: "NoSuchBucket", userData: []byte("role: db\nsource: s3://no-such-fleet/eipclaim.yaml\n"), req: source.Request{UserData: true},
			wantCode: exitcode.Usage, wantErr: "read s3://no-such-fleet/eipclaim.yaml: no bucket no-such-fleet"},
		{name: "no user-data, no --config", req: source.Request{UserData: true},
			wantCode: exitcode.Usage, wantErr: "no user-data and no --config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			moto.SetPolicyValues(testenv.PolicyValues{ConfigObject: tc.object})
			md := testenv.StartIMDS(t, testenv.IMDSOptions{InstanceID: "i-0123456789abcdef0", Region: "us-east-1", UserData: tc.userData})
			var logs bytes.Buffer
			l := &source.Loader{
				IMDS: imds.New(imds.Options{Endpoint: md.Endpoint}),
				S3:   client,
				Log:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}
			got, err := l.Load(ctx, tc.req)
			if strings.Contains(logs.String(), "hunter2") || err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the secret shows in the error %v or the logs:\n%s", err, logs.String())
			}
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
			if !slices.Equal(got.Sources, tc.wantSources) {
				t.Errorf("sources = %q, want %q", got.Sources, tc.wantSources)
			}
			db, err := got.Config.Lookup("db")
			if err != nil || db.PublicIP != "203.0.113.1" || db.Takeover != "never" {
				t.Errorf("roles.db = %+v, %v; want the table from S3", db, err)
			}
			if web := got.Config.Roles["web"]; web == nil || web.Pool == nil || web.Pool.Tags["eip-pool"] != "web" {
				t.Errorf("roles.web = %+v, want the pool from S3", web)
			}
		})
	}
}

// TestLoadEmulatorsErrorTypes checks how moto's answers reach Load through
// the SDK, since Load classifies them by type and code. The client is the
// admin's: a caller with s3:ListBucket, to whom S3 answers NoSuchKey.
func TestLoadEmulatorsErrorTypes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	moto := testenv.SharedMoto(t)
	client := s3.NewFromConfig(moto.AWSConfig(t), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("fleet")}); err != nil {
		t.Fatal(err)
	}
	_, err := (&source.Loader{S3: client}).Load(ctx, source.Request{Config: "s3://fleet/missing.yaml"})
	var noKey *types.NoSuchKey
	if !errors.As(err, &noKey) {
		t.Errorf("error %v (%T) does not wrap *types.NoSuchKey", err, err)
	}
	_, err = (&source.Loader{S3: client}).Load(ctx, source.Request{Config: "s3://no-such-fleet/x.yaml"})
	// GetObject does not model NoSuchBucket: it arrives as a generic API
	// error, which s3Error classifies by its code.
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NoSuchBucket" {
		t.Errorf("error %v (%T) does not wrap an API error with code NoSuchBucket", err, err)
	}
}
