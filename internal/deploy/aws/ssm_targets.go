package aws

import (
	"context"
	"fmt"
	"slices"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// maxInstanceIDs is the most instance IDs one SendCommand (and one
// DescribeInstanceInformation filter) accepts.
const maxInstanceIDs = 50

// Target is an instance the rollout considered, and why it is or is not
// sent the command.
type Target struct {
	InstanceID string `json:"instanceId"`
	// Skip, if not empty, says why the command is not sent to the
	// instance (not managed by SSM, not Linux, agent offline).
	Skip string `json:"skip,omitempty"`
	// Platform is SSM's platform name ("Amazon Linux", "Ubuntu").
	Platform string `json:"platform,omitempty"`
}

// parseTag splits K=V.
func parseTag(tag string) (key, value string, err error) {
	key, value, ok := strings.Cut(tag, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("--tag %q is not KEY=VALUE", tag)
	}
	return key, value, nil
}

// instancesByTag lists the running EC2 instances that carry tag key=value.
func instancesByTag(ctx context.Context, client *ec2.Client, key, value string) ([]string, error) {
	p := ec2.NewDescribeInstancesPaginator(client, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{
			{Name: awssdk.String("tag:" + key), Values: []string{value}},
			{Name: awssdk.String("instance-state-name"), Values: []string{"running"}},
		},
	})
	var ids []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances with tag %s=%s: %w", key, value, err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				ids = append(ids, awssdk.ToString(in.InstanceId))
			}
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// classify asks SSM which of ids are managed nodes and marks the others,
// the non-Linux ones and those whose agent is not online as skipped:
// SendCommand would reject the first (InvalidInstanceId), the script cannot
// run on the second, and the third would only sit until the delivery
// timeout.
func classify(ctx context.Context, client *ssm.Client, ids []string) ([]Target, error) {
	info := map[string]ssmtypes.InstanceInformation{}
	for batch := range slices.Chunk(ids, maxInstanceIDs) {
		p := ssm.NewDescribeInstanceInformationPaginator(client, &ssm.DescribeInstanceInformationInput{
			Filters: []ssmtypes.InstanceInformationStringFilter{{Key: awssdk.String("InstanceIds"), Values: batch}},
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describe SSM managed instances: %w", err)
			}
			for _, ii := range page.InstanceInformationList {
				info[awssdk.ToString(ii.InstanceId)] = ii
			}
		}
	}
	targets := make([]Target, 0, len(ids))
	for _, id := range ids {
		t := Target{InstanceID: id}
		ii, ok := info[id]
		switch {
		case !ok:
			t.Skip = "not managed by SSM: no such instance, or its SSM agent never registered (check the instance profile allows SSM, e.g. AmazonSSMManagedInstanceCore)"
		case ii.PlatformType != ssmtypes.PlatformTypeLinux:
			t.Skip = fmt.Sprintf("platform is %s, not Linux", ii.PlatformType)
		case ii.PingStatus != ssmtypes.PingStatusOnline:
			t.Skip = fmt.Sprintf("SSM agent is %s", ii.PingStatus)
		}
		if ok {
			t.Platform = strings.TrimSpace(awssdk.ToString(ii.PlatformName) + " " + awssdk.ToString(ii.PlatformVersion))
		}
		targets = append(targets, t)
	}
	return targets, nil
}
