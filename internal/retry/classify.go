package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"

	"github.com/eipclaim/eipclaim/internal/exitcode"
)

// Class is what to do with an error.
type Class int

// The classes of errors.
const (
	Fatal   Class = iota // fail now: the error will not go away by itself
	Retry                // transient: try again after a delay
	Denied               // not permitted: fail now, exit 3
	Invalid              // a request the configuration made wrong: fail now, exit 2
)

func (c Class) String() string {
	return [...]string{"fatal", "retry", "denied", "invalid"}[c]
}

// The services whose errors have a table. An operation's name starts with
// its service: "ec2:AssociateAddress", "route53:ChangeResourceRecordSets",
// "s3:GetObject", "imds:instance-id", "http:GET".
const (
	EC2     = "ec2"
	Route53 = "route53"
	S3      = "s3"
	IMDS    = "imds"
	HTTP    = "http"
)

// rule is how one error code is classified, and what to do about it.
type rule struct {
	class Class
	hint  string // "" for the class's default hint
}

// common holds the codes every AWS service answers alike.
var common = map[string]rule{
	// Throttling and service trouble (the SDK's retryer handles these first).
	"RequestLimitExceeded":     {class: Retry},
	"Throttling":               {class: Retry},
	"ThrottlingException":      {class: Retry},
	"TooManyRequestsException": {class: Retry},
	"InternalError":            {class: Retry},
	"InternalFailure":          {class: Retry},
	"ServiceUnavailable":       {class: Retry},
	"Unavailable":              {class: Retry},
	"RequestTimeout":           {class: Retry},
	"RequestTimeoutException":  {class: Retry},
	// Permissions: the default hint names the operation's IAM action.
	"UnauthorizedOperation": {class: Denied},
	"AccessDenied":          {class: Denied},
	"AccessDeniedException": {class: Denied},
	"OptInRequired":         {class: Denied, hint: "the account is not subscribed to this service in this region"},
	"Blocked":               {class: Denied, hint: "the account is blocked: contact AWS support"},
	// Credentials: granting an action would not help.
	"AuthFailure":                 {class: Denied, hint: credentialsHint},
	"SignatureDoesNotMatch":       {class: Denied, hint: credentialsHint},
	"InvalidClientTokenId":        {class: Denied, hint: credentialsHint},
	"UnrecognizedClientException": {class: Denied, hint: credentialsHint},
	"ExpiredToken":                {class: Denied, hint: "the AWS credentials have expired: " + credentialsWhere},
	"ExpiredTokenException":       {class: Denied, hint: "the AWS credentials have expired: " + credentialsWhere},
}

const (
	credentialsWhere = "check the instance profile, AWS_PROFILE or the AWS_* variables"
	credentialsHint  = "the AWS credentials were not accepted: " + credentialsWhere
)

// tables hold each service's own codes; they win over common.
var tables = map[string]map[string]rule{
	EC2: {
		// Eventual consistency: a resource just created is not visible yet.
		"InvalidInstanceID.NotFound":         {class: Retry},
		"InvalidNetworkInterfaceID.NotFound": {class: Retry},
		"InvalidAllocationID.NotFound":       {class: Retry},
		"IncorrectInstanceState":             {class: Retry},
		// Requests that are wrong and will stay wrong.
		"Gateway.NotAttached":                 {class: Fatal, hint: "attach an internet gateway to the instance's VPC: an EIP needs one"},
		"InvalidParameterValue":               {class: Invalid, hint: "check the configuration values named in the message"},
		"InvalidParameterCombination":         {class: Invalid},
		"InvalidParameter":                    {class: Invalid},
		"MissingParameter":                    {class: Invalid},
		"InvalidAllocationID.Malformed":       {class: Invalid, hint: "check allocation_id"},
		"InvalidAddress.NotFound":             {class: Invalid, hint: "check public_ip: no EIP with this address exists in this account and region"},
		"InvalidAddress.Malformed":            {class: Invalid, hint: "check public_ip"},
		"InvalidNetworkInterfaceID.Malformed": {class: Invalid, hint: "check interface"},
		"InvalidInstanceID.Malformed":         {class: Invalid},
		"InvalidIPAddress.InUse":              {class: Fatal},
		"Resource.AlreadyAssociated":          {class: Fatal},
	},
	Route53: {
		"PriorRequestNotComplete": {class: Retry},
		"NoSuchHostedZone":        {class: Invalid, hint: "zone not found: check zone_id"},
		"InvalidInput":            {class: Invalid},
		"InvalidChangeBatch":      {class: Fatal},
	},
	S3: {
		"SlowDown":     {class: Retry},
		"NoSuchBucket": {class: Invalid, hint: "check the s3:// address: no such bucket"},
		"NoSuchKey":    {class: Invalid, hint: "check the s3:// address: no such object"},
	},
}

// service returns the service an operation's name starts with.
func service(op string) string {
	s, _, _ := strings.Cut(op, ":")
	return s
}

// lookup returns the rule for code in op's service.
func lookup(op, code string) (rule, bool) {
	if r, ok := tables[service(op)][code]; ok {
		return r, true
	}
	r, ok := common[code]
	return r, ok
}

// Code returns the API error code err carries, "" when it carries none.
func Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	var t *transient
	if errors.As(err, &t) {
		return "NotVisibleYet"
	}
	return ""
}

// Classed is an error that knows its class: errors that eipclaim itself
// makes from what it found out about a failure (the instance metadata
// service refused a token, no credentials at all). Classify asks it first.
// Its message says what to do; Do adds no hint to it.
type Classed interface {
	error
	// RetryClass returns the class and the code to log and report.
	RetryClass() (Class, string)
}

// statusCoder is an error that carries an HTTP answer's status: the SDK's
// response errors (smithyhttp.ResponseError, awshttp.ResponseError).
type statusCoder interface{ HTTPStatusCode() int }

// Classify returns the class and the code of err, an error of the
// operation op ("service:Action"), whose service picks the table of codes.
// The code is "" for errors that carry none (network errors, timeouts).
//
// A transport timeout is Retry, whatever its form: a net.Error whose
// Timeout() is true (a dial or TLS timeout, the transport's
// ResponseHeaderTimeout, an http.Client Timeout, which *url.Error reports),
// or context.DeadlineExceeded from a per-request or per-operation deadline.
// Classify cannot tell the latter from the caller's own deadline having
// passed: Do asks the caller's context first and stops when it is done.
// context.Canceled is Fatal: someone chose to stop.
func Classify(op string, err error) (Class, string) {
	if err == nil {
		return Fatal, ""
	}
	var classed Classed
	if errors.As(err, &classed) {
		return classed.RetryClass()
	}
	var t *transient
	if errors.As(err, &t) {
		return Retry, "NotVisibleYet"
	}
	// eipclaim already judged it bad configuration or not permitted (a
	// local file that is missing, a secret that does not parse): final,
	// whatever it wraps (a syscall.Errno is a net.Error).
	var coded *exitcode.Error
	if errors.As(err, &coded) {
		switch coded.Code {
		case exitcode.Usage:
			return Invalid, ""
		case exitcode.Denied:
			return Denied, ""
		}
	}
	var sc statusCoder
	hasStatus := errors.As(err, &sc) && sc.HTTPStatusCode() != 0
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code := apiErr.ErrorCode()
		if r, ok := lookup(op, code); ok {
			return r.class, code
		}
		if hasStatus && sc.HTTPStatusCode() >= 500 {
			return Retry, code
		}
		return Fatal, code
	}
	if hasStatus {
		if sc.HTTPStatusCode() >= 500 || sc.HTTPStatusCode() == http.StatusTooManyRequests {
			return Retry, ""
		}
		return Fatal, ""
	}
	if errors.Is(err, context.Canceled) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// An http.Client Timeout cancels its request; the error says
			// both.
			return Retry, ""
		}
		return Fatal, ""
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Retry, ""
	}
	var ue *url.Error
	if errors.As(err, &ue) && !ue.Timeout() && ue.Err != nil {
		// *url.Error is a net.Error whatever it wraps: what it wraps
		// decides (a refused connection is retried, a certificate that
		// does not verify or a refused redirect is not).
		return Classify(op, ue.Err)
	}
	var ne net.Error
	var maxAttempts *retry.MaxAttemptsError
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &maxAttempts) {
		return Retry, ""
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return Retry, ""
	}
	return Fatal, ""
}

// Hint says what to do about an error of class c with code in op (see
// Classify): "grant route53:ChangeResourceRecordSets to the instance role
// (see docs/iam-policy.json)", "the AWS credentials have expired: ...";
// "" when there is nothing to say.
func Hint(op string, c Class, code string) string {
	if r, ok := lookup(op, code); ok && r.hint != "" {
		return r.hint
	}
	if c == Denied {
		return "grant " + op + " to the instance role (see docs/iam-policy.json)"
	}
	return ""
}
