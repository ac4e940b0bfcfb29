package awsfake

import (
	"context"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Config returns an aws.Config whose clients talk to the server: region
// us-east-1, anonymous credentials (nothing is signed), and the SDK's
// standard retryer with its usual attempts and retryable errors but a 1 ms
// backoff and no retry quota, so that retried throttling costs no time.
func (s *Server) Config() awssdk.Config {
	return awssdk.Config{
		Region:       "us-east-1",
		Credentials:  awssdk.AnonymousCredentials{},
		BaseEndpoint: awssdk.String(s.URL),
		HTTPClient:   s.Client(),
		Retryer: func() awssdk.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// LoadConfig has the shape of a config loader and returns Config, ignoring
// region and profile.
func (s *Server) LoadConfig(context.Context, string, string) (awssdk.Config, error) {
	return s.Config(), nil
}
