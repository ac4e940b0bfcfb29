package aws

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/deploy/aws/awsfake"
)

const oldScript = "#!/bin/bash\nyum install -y nginx\nsystemctl enable --now nginx\n"

func testASGOptions() ASGOptions {
	return ASGOptions{
		Group: "web", Install: testInstall(), Version: "v1.2.3",
		MinHealthy: 90, InstanceWarmup: 300, Timeout: time.Hour,
		PollMinDelay: time.Millisecond, PollMaxDelay: 2 * time.Millisecond,
	}
}

// group answers DescribeAutoScalingGroups with one group whose launch
// template part is launchTemplateXML.
func group(launchTemplateXML string) awsfake.Handler {
	return func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.XML(c, `<AutoScalingGroups><member><AutoScalingGroupName>web</AutoScalingGroupName>`+launchTemplateXML+
			`<MinSize>2</MinSize><MaxSize>4</MaxSize><DesiredCapacity>2</DesiredCapacity></member></AutoScalingGroups>`)
	}
}

const ltVersion3 = `<LaunchTemplate><LaunchTemplateId>lt-0abc</LaunchTemplateId><LaunchTemplateName>web-lt</LaunchTemplateName><Version>3</Version></LaunchTemplate>`

// refreshes answers DescribeInstanceRefreshes: with no refresh before
// StartInstanceRefresh, then with the given states one call after another
// (the last one repeating).
func refreshes(states ...string) awsfake.Handler {
	polls := 0
	return func(c awsfake.Call, _ int) awsfake.Response {
		if c.Form.Get("InstanceRefreshIds.member.1") == "" {
			return awsfake.XML(c, `<InstanceRefreshes><member><InstanceRefreshId>ir-old</InstanceRefreshId><AutoScalingGroupName>web</AutoScalingGroupName><Status>Successful</Status></member></InstanceRefreshes>`)
		}
		s := states[min(polls, len(states)-1)]
		polls++
		return awsfake.XML(c, `<InstanceRefreshes><member><InstanceRefreshId>ir-1</InstanceRefreshId><AutoScalingGroupName>web</AutoScalingGroupName>`+s+`</member></InstanceRefreshes>`)
	}
}

func versionWithUserData(userData string) awsfake.Handler {
	return func(c awsfake.Call, _ int) awsfake.Response {
		ud := ""
		if userData != "" {
			ud = "<userData>" + base64.StdEncoding.EncodeToString([]byte(userData)) + "</userData>"
		}
		return awsfake.XML(c, `<launchTemplateVersionSet><item><launchTemplateId>lt-0abc</launchTemplateId><launchTemplateName>web-lt</launchTemplateName><versionNumber>3</versionNumber><launchTemplateData><imageId>ami-1</imageId>`+ud+`</launchTemplateData></item></launchTemplateVersionSet>`)
	}
}

func asgFake(t *testing.T, launchTemplateXML string, states ...string) *awsfake.Server {
	f := awsfake.New(t)
	f.Handle("DescribeAutoScalingGroups", group(launchTemplateXML))
	f.Handle("DescribeInstanceRefreshes", refreshes(states...))
	f.Handle("DescribeLaunchTemplateVersions", versionWithUserData(oldScript))
	f.Handle("CreateLaunchTemplateVersion", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.XML(c, `<launchTemplateVersion><launchTemplateId>lt-0abc</launchTemplateId><launchTemplateName>web-lt</launchTemplateName><versionNumber>4</versionNumber></launchTemplateVersion>`)
	})
	f.Handle("StartInstanceRefresh", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.XML(c, `<InstanceRefreshId>ir-1</InstanceRefreshId>`)
	})
	return f
}

func TestASGNewVersionThenRefreshToSuccess(t *testing.T) {
	f := asgFake(t, ltVersion3,
		`<Status>Pending</Status><PercentageComplete>0</PercentageComplete><InstancesToUpdate>2</InstancesToUpdate>`,
		`<Status>InProgress</Status><PercentageComplete>50</PercentageComplete><InstancesToUpdate>1</InstancesToUpdate>`,
		`<Status>Successful</Status><PercentageComplete>100</PercentageComplete><InstancesToUpdate>0</InstancesToUpdate>`)
	o := testASGOptions()
	var prog bytes.Buffer
	o.Progress = &prog
	res, err := RunASG(context.Background(), f.Config(), o)
	if err != nil {
		t.Fatal(err)
	}

	wantActions := "DescribeAutoScalingGroups DescribeInstanceRefreshes DescribeLaunchTemplateVersions CreateLaunchTemplateVersion StartInstanceRefresh DescribeInstanceRefreshes DescribeInstanceRefreshes DescribeInstanceRefreshes"
	if got := strings.Join(f.Actions(), " "); got != wantActions {
		t.Errorf("calls:\n%s\nwant:\n%s", got, wantActions)
	}
	dv := f.CallsTo("DescribeLaunchTemplateVersions")[0].Form
	if dv.Get("LaunchTemplateId") != "lt-0abc" || dv.Get("LaunchTemplateVersion.1") != "3" {
		t.Errorf("DescribeLaunchTemplateVersions: %v", dv)
	}
	cv := f.CallsTo("CreateLaunchTemplateVersion")[0].Form
	if cv.Get("LaunchTemplateId") != "lt-0abc" || cv.Get("SourceVersion") != "3" || cv.Get("VersionDescription") != "drmfilter install v1.2.3" {
		t.Errorf("CreateLaunchTemplateVersion: %v", cv)
	}
	ud, err := base64.StdEncoding.DecodeString(cv.Get("LaunchTemplateData.UserData"))
	if err != nil {
		t.Fatal(err)
	}
	wantUD := oldScript + beginMarker + "\n(\n  set -eu\n" +
		"  drmfilter_script=\"$(mktemp)\"\n" +
		"  trap 'rm -f \"$drmfilter_script\"' EXIT\n" +
		"  curl -fsSL --retry 5 --retry-delay 2 -o \"$drmfilter_script\" 'https://raw.githubusercontent.com/drmfilter/drmfilter/v1.2.3/scripts/install.sh'\n" +
		"  bash \"$drmfilter_script\" --package-url '" + testInstall().PackageURL + "' --sha256 '" + testSHA + "' --policy-url 'https://example.com/finance.yaml' --mode enforce\n" +
		")\n" + endMarker + "\n"
	if string(ud) != wantUD {
		t.Errorf("new user data:\n%s\nwant:\n%s", ud, wantUD)
	}
	sr := f.CallsTo("StartInstanceRefresh")[0].Form
	for k, want := range map[string]string{
		"AutoScalingGroupName": "web",
		"Strategy":             "Rolling",
		"DesiredConfiguration.LaunchTemplate.LaunchTemplateId": "lt-0abc",
		"DesiredConfiguration.LaunchTemplate.Version":          "4",
		"Preferences.MinHealthyPercentage":                     "90",
		"Preferences.InstanceWarmup":                           "300",
		"Preferences.AutoRollback":                             "true",
		"Preferences.SkipMatching":                             "true",
	} {
		if got := sr.Get(k); got != want {
			t.Errorf("StartInstanceRefresh %s = %q, want %q", k, got, want)
		}
	}
	poll := f.CallsTo("DescribeInstanceRefreshes")[1].Form
	if poll.Get("AutoScalingGroupName") != "web" || poll.Get("InstanceRefreshIds.member.1") != "ir-1" {
		t.Errorf("poll: %v", poll)
	}
	if res.Status != "Successful" || res.PercentageComplete != 100 || res.Plan.NewVersion != 4 || res.Plan.RefreshID != "ir-1" {
		t.Errorf("result: %+v", res)
	}
	wantProg := "[0/100 percent] created launch template lt-0abc version 4 from version 3\n" +
		"[0/100 percent] started instance refresh ir-1 of web\n" +
		"[0/100 percent] Pending, 2 instances to update\n" +
		"[50/100 percent] InProgress, 1 instances to update\n" +
		"[100/100 percent] Successful, 0 instances to update\n"
	if prog.String() != wantProg {
		t.Errorf("progress:\n%s\nwant:\n%s", prog.String(), wantProg)
	}
}

func TestASGFailureWithRollback(t *testing.T) {
	f := asgFake(t, ltVersion3,
		`<Status>InProgress</Status><PercentageComplete>50</PercentageComplete><InstancesToUpdate>1</InstancesToUpdate>`,
		`<Status>RollbackInProgress</Status><PercentageComplete>0</PercentageComplete>`,
		`<Status>RollbackSuccessful</Status><StatusReason>Instance i-0new failed health checks</StatusReason><RollbackDetails><RollbackReason>Instance refresh failed</RollbackReason></RollbackDetails>`)
	res, err := RunASG(context.Background(), f.Config(), testASGOptions())
	want := "instance refresh ir-1 of web failed and was rolled back: the group is on its previous launch template version again: Instance i-0new failed health checks (rollback: Instance refresh failed)"
	if err == nil || err.Error() != want {
		t.Fatalf("error: %v\nwant: %s", err, want)
	}
	if res.Status != "RollbackSuccessful" {
		t.Errorf("status %q", res.Status)
	}
}

func TestASGFailedWithoutRollback(t *testing.T) {
	f := asgFake(t, ltVersion3, `<Status>Failed</Status><StatusReason>Waiting for instances to warm up timed out</StatusReason>`)
	o := testASGOptions()
	o.NoRollback = true
	_, err := RunASG(context.Background(), f.Config(), o)
	if err == nil || err.Error() != "instance refresh ir-1 of web ended Failed: Waiting for instances to warm up timed out" {
		t.Fatalf("error: %v", err)
	}
	if got := f.CallsTo("StartInstanceRefresh")[0].Form.Get("Preferences.AutoRollback"); got != "false" {
		t.Errorf("AutoRollback = %q", got)
	}
}

func TestASGMixedInstancesPolicy(t *testing.T) {
	f := asgFake(t, `<MixedInstancesPolicy><LaunchTemplate><LaunchTemplateSpecification><LaunchTemplateName>web-lt</LaunchTemplateName><Version>3</Version></LaunchTemplateSpecification>
<Overrides><member><InstanceType>m7g.large</InstanceType></member><member><InstanceType>m6g.large</InstanceType></member></Overrides></LaunchTemplate>
<InstancesDistribution><OnDemandBaseCapacity>1</OnDemandBaseCapacity><SpotAllocationStrategy>price-capacity-optimized</SpotAllocationStrategy></InstancesDistribution></MixedInstancesPolicy>`,
		`<Status>Successful</Status><PercentageComplete>100</PercentageComplete>`)
	if _, err := RunASG(context.Background(), f.Config(), testASGOptions()); err != nil {
		t.Fatal(err)
	}
	if got := f.CallsTo("DescribeLaunchTemplateVersions")[0].Form.Get("LaunchTemplateName"); got != "web-lt" {
		t.Errorf("described template %q", got)
	}
	sr := f.CallsTo("StartInstanceRefresh")[0].Form
	p := "DesiredConfiguration.MixedInstancesPolicy."
	for k, want := range map[string]string{
		p + "LaunchTemplate.LaunchTemplateSpecification.LaunchTemplateId": "lt-0abc",
		p + "LaunchTemplate.LaunchTemplateSpecification.Version":          "4",
		p + "LaunchTemplate.Overrides.member.2.InstanceType":              "m6g.large",
		p + "InstancesDistribution.SpotAllocationStrategy":                "price-capacity-optimized",
		"DesiredConfiguration.LaunchTemplate.Version":                     "",
	} {
		if got := sr.Get(k); got != want {
			t.Errorf("StartInstanceRefresh %s = %q, want %q", k, got, want)
		}
	}
}

func TestASGRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, lt, want string
		noRollback     bool
		setup          func(f *awsfake.Server)
		wantErr        error
	}{
		{name: "launch configuration", lt: `<LaunchConfigurationName>web-lc</LaunchConfigurationName>`,
			want: "group web uses launch configuration web-lc; drmfilter deploys through launch templates only"},
		{name: "$Latest with rollback", lt: `<LaunchTemplate><LaunchTemplateId>lt-0abc</LaunchTemplateId><Version>$Latest</Version></LaunchTemplate>`,
			want: "group web uses its launch template's $Latest version, and AWS cannot roll an instance refresh back to it"},
		{name: "refresh running", lt: ltVersion3, wantErr: ErrRefreshInProgress,
			want: "an instance refresh is already in progress on group web: ir-0 is InProgress; wait for it, or cancel it with: aws autoscaling cancel-instance-refresh --auto-scaling-group-name web",
			setup: func(f *awsfake.Server) {
				f.Handle("DescribeInstanceRefreshes", func(c awsfake.Call, _ int) awsfake.Response {
					return awsfake.XML(c, `<InstanceRefreshes><member><InstanceRefreshId>ir-0</InstanceRefreshId><Status>InProgress</Status></member></InstanceRefreshes>`)
				})
			}},
		{name: "group not found", lt: ltVersion3, want: "auto scaling group web not found in this region",
			setup: func(f *awsfake.Server) {
				f.Handle("DescribeAutoScalingGroups", func(c awsfake.Call, _ int) awsfake.Response {
					return awsfake.XML(c, `<AutoScalingGroups/>`)
				})
			}},
		{name: "access denied", lt: ltVersion3,
			want: "describe launch template lt-0abc version 3: UnauthorizedOperation: You are not authorized to perform this operation.",
			setup: func(f *awsfake.Server) {
				f.Handle("DescribeLaunchTemplateVersions", func(c awsfake.Call, _ int) awsfake.Response {
					return awsfake.Error(c, 403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
				})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := asgFake(t, tc.lt, `<Status>Successful</Status>`)
			if tc.setup != nil {
				tc.setup(f)
			}
			o := testASGOptions()
			o.NoRollback = tc.noRollback
			_, err := RunASG(context.Background(), f.Config(), o)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("error: %v\nwant prefix: %s", err, tc.want)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error is not %v", tc.wantErr)
			}
			if n := len(f.CallsTo("CreateLaunchTemplateVersion")); n != 0 {
				t.Errorf("created %d launch template versions", n)
			}
		})
	}
}

func TestASGRefreshStartedElsewhereMeanwhile(t *testing.T) {
	f := asgFake(t, ltVersion3, `<Status>Successful</Status>`)
	f.Handle("StartInstanceRefresh", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.Error(c, 400, "InstanceRefreshInProgress", "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.")
	})
	_, err := RunASG(context.Background(), f.Config(), testASGOptions())
	want := "an instance refresh is already in progress on group web (InstanceRefreshInProgress: An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.); launch template version 4 was created but no instance uses it"
	if err == nil || err.Error() != want || !errors.Is(err, ErrRefreshInProgress) {
		t.Fatalf("error: %v\nwant: %s", err, want)
	}
}

func TestASGThrottledPollIsRetried(t *testing.T) {
	f := asgFake(t, ltVersion3)
	polls := 0
	f.Handle("DescribeInstanceRefreshes", func(c awsfake.Call, n int) awsfake.Response {
		if c.Form.Get("InstanceRefreshIds.member.1") == "" {
			return awsfake.XML(c, `<InstanceRefreshes/>`)
		}
		if polls++; polls == 1 {
			return awsfake.Error(c, 400, "Throttling", "Rate exceeded")
		}
		return awsfake.XML(c, `<InstanceRefreshes><member><InstanceRefreshId>ir-1</InstanceRefreshId><Status>Successful</Status><PercentageComplete>100</PercentageComplete></member></InstanceRefreshes>`)
	})
	if _, err := RunASG(context.Background(), f.Config(), testASGOptions()); err != nil {
		t.Fatal(err)
	}
	if polls != 2 {
		t.Errorf("%d polls, want 2 (one throttled)", polls)
	}
}

func TestASGTimeoutLeavesTheRefreshAndSaysHowToCancel(t *testing.T) {
	f := asgFake(t, ltVersion3, `<Status>InProgress</Status><PercentageComplete>40</PercentageComplete><InstancesToUpdate>3</InstancesToUpdate>`)
	o := testASGOptions()
	o.Timeout = 300 * time.Millisecond
	o.PollMaxDelay = 5 * time.Millisecond
	_, err := RunASG(context.Background(), f.Config(), o)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"stopped waiting after --timeout 300ms: instance refresh ir-1 of web is InProgress (40% complete) and goes on in AWS.",
		"cancel it:    aws autoscaling cancel-instance-refresh --auto-scaling-group-name web",
		"follow it:    aws autoscaling describe-instance-refreshes --auto-scaling-group-name web --instance-refresh-ids ir-1",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for _, a := range f.Actions() {
		if a == "CancelInstanceRefresh" || a == "RollbackInstanceRefresh" {
			t.Errorf("called %s", a)
		}
	}
}

func TestASGDryRunPlansWithoutChanges(t *testing.T) {
	f := asgFake(t, ltVersion3, `<Status>Successful</Status>`)
	o := testASGOptions()
	o.DryRun = true
	res, err := RunASG(context.Background(), f.Config(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range f.Actions() {
		if !strings.HasPrefix(a, "Describe") {
			t.Errorf("dry run called %s", a)
		}
	}
	var b bytes.Buffer
	if err := WriteASGPlan(&b, res.Plan, true); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Dry run: nothing was changed",
		"launch template     lt-0abc (web-lt), group uses version 3 = 3",
		fmt.Sprintf("old user data: shell script, %d bytes; new: %d bytes; adds:", len(oldScript), res.Plan.NewUserDataBytes),
		"--package-url 'https://bucket.s3.amazonaws.com/drmfilter_1.2.3_amd64.deb?<redacted>'",
		"MinHealthyPercentage 90, InstanceWarmup 300, AutoRollback true, SkipMatching true",
		"warning: a URL has a query string (a presigned URL?)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("plan shows a secret:\n%s", out)
	}
}
