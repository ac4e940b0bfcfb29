package aws

import (
	"context"
	"fmt"
	"io"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/drmfilter/drmfilter/internal/progress"
)

// refreshEnded reports whether an instance refresh in status s is over.
func refreshEnded(s astypes.InstanceRefreshStatus) bool {
	switch s {
	case astypes.InstanceRefreshStatusSuccessful, astypes.InstanceRefreshStatusFailed,
		astypes.InstanceRefreshStatusCancelled, astypes.InstanceRefreshStatusRollbackSuccessful,
		astypes.InstanceRefreshStatusRollbackFailed:
		return true
	}
	return false
}

// newRefreshProgress reports an instance refresh's PercentageComplete.
func newRefreshProgress(w io.Writer) *progress.Reporter {
	return progress.New(w, 100, "percent")
}

// followRefresh polls DescribeInstanceRefreshes (Auto Scaling has no waiter
// for refreshes) with a doubling delay from PollMinDelay to PollMaxDelay
// until the refresh ends or ctx does.
func followRefresh(ctx context.Context, client *autoscaling.Client, o ASGOptions, id string, prog *progress.Reporter) (ASGResult, error) {
	defer prog.Done()
	var res ASGResult
	delay := o.PollMinDelay
	lastMsg := ""
	for {
		out, err := client.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{
			AutoScalingGroupName: awssdk.String(o.Group),
			InstanceRefreshIds:   []string{id},
		})
		switch {
		case ctx.Err() != nil:
			return res, stillRunning(o, id, res)
		case err != nil:
			return res, fmt.Errorf("describe instance refresh %s: %s; the refresh goes on in AWS: %s", id, awsMessage(err), followHint(o.Group, id))
		case len(out.InstanceRefreshes) == 0:
			return res, fmt.Errorf("instance refresh %s of %s not found", id, o.Group)
		}
		r := out.InstanceRefreshes[0]
		res.Status = string(r.Status)
		res.StatusReason = awssdk.ToString(r.StatusReason)
		res.PercentageComplete = awssdk.ToInt32(r.PercentageComplete)
		res.InstancesToUpdate = awssdk.ToInt32(r.InstancesToUpdate)
		msg := fmt.Sprintf("%s, %d instances to update", r.Status, res.InstancesToUpdate)
		if msg == lastMsg {
			msg = ""
		} else {
			lastMsg = msg
		}
		prog.Set(int(res.PercentageComplete), msg)

		if refreshEnded(r.Status) {
			return res, refreshOutcome(o.Group, id, r)
		}
		select {
		case <-ctx.Done():
			return res, stillRunning(o, id, res)
		case <-time.After(delay):
		}
		delay = min(2*delay, o.PollMaxDelay)
	}
}

// refreshOutcome is nil for Successful and an error naming the end state
// and AWS's reasons otherwise.
func refreshOutcome(group, id string, r astypes.InstanceRefresh) error {
	reason := awssdk.ToString(r.StatusReason)
	if r.RollbackDetails != nil && r.RollbackDetails.RollbackReason != nil {
		reason += " (rollback: " + *r.RollbackDetails.RollbackReason + ")"
	}
	switch r.Status {
	case astypes.InstanceRefreshStatusSuccessful:
		return nil
	case astypes.InstanceRefreshStatusRollbackSuccessful:
		return fmt.Errorf("instance refresh %s of %s failed and was rolled back: the group is on its previous launch template version again: %s", id, group, reason)
	case astypes.InstanceRefreshStatusRollbackFailed:
		return fmt.Errorf("instance refresh %s of %s failed and so did its rollback; the group has instances of both versions: %s", id, group, reason)
	}
	return fmt.Errorf("instance refresh %s of %s ended %s: %s", id, group, r.Status, reason)
}

func stillRunning(o ASGOptions, id string, res ASGResult) error {
	status := res.Status
	if status == "" {
		status = "not yet reported"
	}
	return fmt.Errorf("stopped waiting after --timeout %s: instance refresh %s of %s is %s (%d%% complete) and goes on in AWS.\n  follow it:    %s\n  cancel it:    aws autoscaling cancel-instance-refresh --auto-scaling-group-name %s\n  roll it back: aws autoscaling rollback-instance-refresh --auto-scaling-group-name %s",
		o.Timeout, id, o.Group, status, res.PercentageComplete, followHint(o.Group, id), o.Group, o.Group)
}

func followHint(group, id string) string {
	return fmt.Sprintf("aws autoscaling describe-instance-refreshes --auto-scaling-group-name %s --instance-refresh-ids %s", group, id)
}
