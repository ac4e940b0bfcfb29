package aws

import (
	"context"
	"errors"
	"fmt"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// ConfigLoader returns the SDK configuration for a region and a shared
// config profile (either may be empty). LoadConfig is the production one;
// tests pass one that points at a loopback server.
type ConfigLoader func(ctx context.Context, region, profile string) (awssdk.Config, error)

// LoadConfig loads the SDK's default configuration: credentials from the
// environment, the shared config and credentials files (profile if given),
// SSO, web identity or the instance role; the region from region if given,
// else AWS_REGION or the profile.
func LoadConfig(ctx context.Context, region, profile string) (awssdk.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return awssdk.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return awssdk.Config{}, errors.New("no AWS region: pass --region, set AWS_REGION, or set region in the profile")
	}
	return cfg, nil
}
