package table

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// writeOnlyS3 is a bucket whose object exists and whose caller may write
// it but not read it: GetObject answers 403 AccessDenied, and a create
// with If-None-Match: * answers 412, as S3 does.
type writeOnlyS3 struct{ puts []string }

func (f *writeOnlyS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return nil, s3Error(http.StatusForbidden, "AccessDenied")
}

func (f *writeOnlyS3) PutObject(_ context.Context, in *s3.PutObjectInput, _ ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	if in.IfNoneMatch != nil {
		f.puts = append(f.puts, "If-None-Match "+*in.IfNoneMatch)
		return nil, s3Error(http.StatusPreconditionFailed, "PreconditionFailed")
	}
	f.puts = append(f.puts, "unconditional")
	return &s3.PutObjectOutput{}, nil
}

func s3Error(status int, code string) error {
	return &smithyhttp.ResponseError{
		Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
		Err:      &smithy.GenericAPIError{Code: code, Message: code},
	}
}

// TestWriteOnlyCallerIsDenied: S3's 403 to a read is taken for a missing
// table (a caller without s3:ListBucket; TestFirstWriteWithoutListBucket
// proves that against the gate), so the writer creates it with
// If-None-Match: *; a 412 then means the table exists and reading it is
// not permitted: exit 3 naming what to allow, after one conditional put and
// no other write.
func TestWriteOnlyCallerIsDenied(t *testing.T) {
	f := &writeOnlyS3{}
	st := &Store{API: f, Bucket: "fleet", Key: "roles.json"}
	wrote, err := st.Update(t.Context(), func(d *Document) (bool, error) {
		return d.Set(Entry{Name: "db", PrivateIP: "10.0.0.5", Epoch: 1})
	})
	if wrote || exitcode.Of(err) != exitcode.Denied {
		t.Fatalf("wrote=%v err=%v (exit %d), want exit 3", wrote, err, exitcode.Of(err))
	}
	for _, want := range []string{"s3://fleet/roles.json", "the object exists", "allow s3:GetObject on arn:aws:s3:::fleet/roles.json"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if len(f.puts) != 1 || f.puts[0] != "If-None-Match *" {
		t.Errorf("puts %v, want one create with If-None-Match: *", f.puts)
	}
	// Nothing to write on a table that may be missing: the 403 stands.
	wrote, err = st.Update(t.Context(), func(d *Document) (bool, error) { return d.Remove("db"), nil })
	if wrote || exitcode.Of(err) != exitcode.Denied || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("remove: wrote=%v err=%v, want the AccessDenied (exit 3)", wrote, err)
	}
}
