package awsenv

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/eipclaim/eipclaim/internal/imds"
	"github.com/eipclaim/eipclaim/internal/retry"
)

// credentialsProvider is the SDK's credential chain, with a type for
// "there are no credentials at all".
type credentialsProvider struct {
	inner aws.CredentialsProvider
	imds  *imds.Client
}

func (p *credentialsProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.inner.Retrieve(ctx)
	if err == nil || ctx.Err() != nil {
		return creds, err
	}
	var classed retry.Classed
	if errors.As(err, &classed) && !errors.Is(err, imds.ErrDisabled) {
		return creds, err // IMDS refused a token: its own message says more
	}
	if class, _ := retry.Classify("sts:credentials", err); class == retry.Retry && p.imds.Answered() {
		// The instance's IMDS is there but busy or failing for now (at
		// boot): its instance profile's credentials may come.
		return creds, err
	}
	return creds, &noCredentialsError{err: err}
}

// noCredentialsError is the credential chain finding nothing: no variables,
// no profile, no instance profile (IMDS answers 404, or is not there).
//
// It does not unwrap: its cause's HTTP status (IMDS's 404 for "no instance
// profile") is not the answer of the service called, which callers
// classify by status (S3).
type noCredentialsError struct{ err error }

func (e *noCredentialsError) Error() string {
	return "no AWS credentials found: run on an instance with an instance profile (an IAM role: aws ec2 associate-iam-instance-profile), " +
		"or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (" + e.err.Error() + ")"
}

func (e *noCredentialsError) RetryClass() (retry.Class, string) { return retry.Denied, "NoCredentials" }
