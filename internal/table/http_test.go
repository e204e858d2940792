package table_test

import (
	"net/http/httptest"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// testHTTP is a retrying client that trusts srv's certificate, with short
// waits.
func testHTTP(srv *httptest.Server) *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient = srv.Client()
	c.Logger = nil
	c.RetryMax = 1
	c.RetryWaitMin, c.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return c
}
