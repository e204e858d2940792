package faultproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// StaleOptions configure the stale-read mode (see [Stale]).
type StaleOptions struct {
	// MaxLag bounds how long a mutation stays invisible: each one draws
	// its lag uniformly in [0, MaxLag]. 2s when zero.
	MaxLag time.Duration
	// Seed seeds the lags' draws.
	Seed uint64
	// Reads are the EC2 actions answered stale; DescribeAddresses,
	// DescribeInstances, DescribeInstanceStatus and
	// DescribeNetworkInterfaces when empty.
	Reads []string
	// Recent is how long after a client last sent a read it counts as
	// one clients may send again soon: a mutation snapshots the answers
	// to these. 30s when zero.
	Recent time.Duration
}

// DefaultStaleReads are the actions [StaleOptions].Reads defaults to.
var DefaultStaleReads = []string{"DescribeAddresses", "DescribeInstances", "DescribeInstanceStatus", "DescribeNetworkInterfaces"}

// Stale is the stale-read mode: EC2's eventual consistency ("Eventual
// consistency in the Amazon EC2 API", EC2 API Reference), which moto does
// not have. After a mutating EC2 request (any EC2 action that is not a
// Describe… or Get…: AssociateAddress, DisassociateAddress, CreateTags,
// StopInstances, …), the reads of Reads answer, for a lag drawn in
// [0, MaxLag], the state as it was just before the mutation.
//
// How: the mode remembers every read it forwarded, by its normalized
// request (service, path and sorted form body), with the client's
// request. Just before it forwards a mutation, it re-sends every read
// seen within Recent to the upstream, one mutation at a time (a lock),
// and keeps those answers: the state before the mutation. Until the lag
// ends, a read of the same request gets that answer, without being
// forwarded ([Record.Stale]). A read whose window is still open when the
// next mutation comes keeps its older answer until its own window ends,
// so every stale answer was the truth at most MaxLag before it is served
// and every mutation shows within MaxLag. A read never sent before the
// mutation has no older answer: it is forwarded.
//
// One Stale may be shared by several proxies (Options.Stale), as EC2's
// consistency is the account's, not a client's: a mutation through any
// of them makes the others' reads stale too. Safe for concurrent use.
type Stale struct {
	opts StaleOptions

	mutating sync.Mutex // one mutation (snapshot, forward) at a time

	mu     sync.Mutex
	rnd    *rand.Rand
	reads  map[string]*staleRead
	served int
	lags   []time.Duration // every lag drawn, in order (tests)
}

// staleRead is what the mode knows of one read request.
type staleRead struct {
	last   time.Time                              // when a client last sent it
	replay func(context.Context) (*answer, error) // re-sends the client's request
	old    *answer                                // the answer before the last mutation
	until  time.Time                              // old is served until then
}

// answer is an upstream's 200 answer, kept to be served again.
type answer struct {
	header http.Header
	body   []byte
}

// NewStale returns a stale-read mode to pass as Options.Stale.
func NewStale(opts StaleOptions) (*Stale, error) {
	if opts.MaxLag < 0 || opts.Recent < 0 {
		return nil, fmt.Errorf("faultproxy: StaleOptions: MaxLag %s, Recent %s: want durations >= 0", opts.MaxLag, opts.Recent)
	}
	if opts.MaxLag == 0 {
		opts.MaxLag = 2 * time.Second
	}
	if opts.Recent == 0 {
		opts.Recent = 30 * time.Second
	}
	if len(opts.Reads) == 0 {
		opts.Reads = DefaultStaleReads
	}
	return &Stale{
		opts:  opts,
		rnd:   rand.New(rand.NewPCG(opts.Seed, 0x5bd1e9955bd1e995)),
		reads: map[string]*staleRead{},
	}, nil
}

// Served is the number of stale answers served, by every proxy sharing s.
func (s *Stale) Served() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Lags returns the lags drawn so far, one per mutation, in order.
func (s *Stale) Lags() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lags)
}

// isRead reports whether the EC2 action is answered stale.
func (s *Stale) isRead(action string) bool { return slices.Contains(s.opts.Reads, action) }

// isMutation reports whether the EC2 action changes state.
func isMutation(action string) bool {
	return action != "" && !strings.HasPrefix(action, "Describe") && !strings.HasPrefix(action, "Get")
}

// readKey normalizes a read request: the same call gives the same key
// whatever the order of its form fields.
func readKey(r *http.Request, body []byte) string {
	q := r.URL.Query().Encode()
	if v, err := url.ParseQuery(string(body)); err == nil {
		return r.URL.Path + "?" + q + "\n" + v.Encode()
	}
	return r.URL.Path + "?" + q + "\n" + string(body)
}

// old returns the stale answer to the read key at now, if its window is
// open; either way it notes that a client sent the read, and how to send
// it again.
func (s *Stale) old(key string, now time.Time, replay func(context.Context) (*answer, error)) (*answer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rd := s.reads[key]
	if rd == nil {
		rd = &staleRead{}
		s.reads[key] = rd
	}
	rd.last, rd.replay = now, replay
	if rd.old != nil && now.Before(rd.until) {
		s.served++
		return rd.old, true
	}
	rd.old = nil
	return nil, false
}

// beforeMutation takes the mutation lock, draws the mutation's lag and
// snapshots the recent reads whose window is closed. The caller forwards
// the mutation, then calls the function returned.
func (s *Stale) beforeMutation(ctx context.Context) (done func()) {
	s.mutating.Lock()
	now := time.Now()
	s.mu.Lock()
	lag := time.Duration(s.rnd.Int64N(int64(s.opts.MaxLag) + 1))
	s.lags = append(s.lags, lag)
	type todo struct {
		rd     *staleRead
		replay func(context.Context) (*answer, error)
	}
	var snap []todo
	for key, rd := range s.reads {
		switch {
		case now.Sub(rd.last) > s.opts.Recent:
			delete(s.reads, key)
		case lag > 0 && (rd.old == nil || !now.Before(rd.until)):
			snap = append(snap, todo{rd, rd.replay})
		}
	}
	s.mu.Unlock()
	// The upstream is asked outside s.mu, so that reads go on meanwhile;
	// the mutation lock keeps the state from changing under the snapshot.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, t := range snap {
		a, err := t.replay(sctx)
		if err != nil {
			continue // no older answer for this read: it is forwarded
		}
		s.mu.Lock()
		t.rd.old, t.rd.until = a, now.Add(lag)
		s.mu.Unlock()
	}
	return s.mutating.Unlock
}

// replayer returns a function that sends the client's read r again to the
// upstream, as it was signed, and returns its 200 answer.
func (p *Proxy) replayer(r *http.Request, body []byte) func(context.Context) (*answer, error) {
	method, host, path, rawQuery := r.Method, r.Host, r.URL.Path, r.URL.RawQuery
	header := r.Header.Clone()
	for _, h := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
		header.Del(h)
	}
	return func(ctx context.Context) (*answer, error) {
		u := *p.target
		u.Path, u.RawPath, u.RawQuery = singleJoin(p.target.Path, path), "", rawQuery
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header, req.Host = header.Clone(), host
		resp, err := p.tr.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return readAnswer(resp)
	}
}

// readAnswer reads a 200 answer whole; any other status is an error.
func readAnswer(resp *http.Response) (*answer, error) {
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("faultproxy: snapshot answered %s", resp.Status)
	}
	h := resp.Header.Clone()
	for _, k := range []string{"Content-Length", "Date", "Connection", "Keep-Alive", "Transfer-Encoding"} {
		h.Del(k)
	}
	return &answer{header: h, body: b}, nil
}

// write serves the answer again.
func (a *answer) write(w http.ResponseWriter) {
	for k, v := range a.header {
		w.Header()[k] = slices.Clone(v)
	}
	w.WriteHeader(http.StatusOK)
	w.Write(a.body)
}
