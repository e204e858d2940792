package faultproxy

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Limit is a token bucket as AWS meters API requests: it holds Burst
// tokens when full, each request takes one, and Rate tokens come back per
// second. A request that finds the bucket empty is throttled and takes
// nothing.
type Limit struct {
	Burst int
	Rate  float64 // tokens per second
}

// Limits are the token buckets of a rate-limiting proxy ([Options.Limits]).
type Limits struct {
	// Bucket names the bucket a request of service (see [Service]) and
	// action (see [Action]) draws from; "" for none (not limited).
	Bucket func(service, action string) string
	// Buckets are the buckets by name; they start full. A request whose
	// bucket is not here is not limited.
	Buckets map[string]Limit
	// Now is the buckets' clock; time.Now when nil. Tests inject theirs.
	Now func() time.Time
}

// The buckets of [AWSLimits].
const (
	BucketEC2Mutating    = "ec2 mutating"
	BucketEC2NonMutating = "ec2 non-mutating"
	BucketEC2CreateTags  = "ec2 CreateTags"
	BucketRoute53        = "route53"
)

// AWSLimits are AWS's API rate limits for the services eipclaim calls, per
// account and region: EC2's request token buckets (the EC2 API reference,
// "Request throttling": mutating actions 50 burst and 5 per second,
// non-mutating (Describe*, Get*, List*, Search*) 100 and 20, CreateTags a
// bucket of its own, 100 and 10) and one bucket for every Route 53 request
// of the account (50 burst, 10 per second). IMDS, S3 and moto's own API are
// not limited.
func AWSLimits() *Limits {
	return &Limits{
		Bucket: AWSBucket,
		Buckets: map[string]Limit{
			BucketEC2Mutating:    {Burst: 50, Rate: 5},
			BucketEC2NonMutating: {Burst: 100, Rate: 20},
			BucketEC2CreateTags:  {Burst: 100, Rate: 10},
			BucketRoute53:        {Burst: 50, Rate: 10},
		},
	}
}

// AWSBucket is the bucket of [AWSLimits] that a request of service and
// action draws from, "" for none.
func AWSBucket(service, action string) string {
	switch service {
	case "ec2":
		switch {
		case action == "CreateTags":
			return BucketEC2CreateTags
		case nonMutating(action):
			return BucketEC2NonMutating
		}
		return BucketEC2Mutating
	case "route53":
		return BucketRoute53
	}
	return ""
}

func nonMutating(action string) bool {
	for _, p := range []string{"Describe", "Get", "List", "Search"} {
		if strings.HasPrefix(action, p) {
			return true
		}
	}
	return false
}

// bucket is one token bucket.
type bucket struct {
	limit  Limit
	tokens float64
	last   time.Time // when tokens was last brought up to date
}

// take refills the bucket for the time since its last use, then takes a
// token if there is one.
func (b *bucket) take(now time.Time) bool {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(b.limit.Burst), b.tokens+el.Seconds()*b.limit.Rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limiter enforces Limits.
type limiter struct {
	mu      sync.Mutex
	bucket  func(service, action string) string
	now     func() time.Time
	buckets map[string]*bucket
}

func newLimiter(l Limits) (*limiter, error) {
	if l.Bucket == nil {
		return nil, fmt.Errorf("faultproxy: Limits.Bucket is nil: say which bucket each request draws from")
	}
	lim := &limiter{bucket: l.Bucket, now: l.Now, buckets: map[string]*bucket{}}
	if lim.now == nil {
		lim.now = time.Now
	}
	start := lim.now()
	for name, b := range l.Buckets {
		if b.Burst < 1 || b.Rate < 0 {
			return nil, fmt.Errorf("faultproxy: Limits.Buckets[%q] = %+v: want a Burst of at least 1 and a Rate of at least 0", name, b)
		}
		lim.buckets[name] = &bucket{limit: b, tokens: float64(b.Burst), last: start}
	}
	return lim, nil
}

// allow takes a token for the request from its bucket, if it has one.
func (l *limiter) allow(service, action string) bool {
	name := l.bucket(service, action)
	if name == "" {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[name]
	if b == nil {
		return true
	}
	return b.take(l.now())
}
