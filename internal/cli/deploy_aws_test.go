//go:build !nodeploy

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/deploy/aws/awsfake"
	"github.com/drmfilter/drmfilter/internal/exitcode"
)

const awsTestSHA = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"

// runAWS runs drmfilter in-process against the fake, with no waits
// between polls.
func runAWS(t *testing.T, f *awsfake.Server, args ...string) (int, string, string) {
	t.Helper()
	ctx := context.WithValue(context.Background(), awsEnvKey{}, awsEnv{
		loadConfig: f.LoadConfig, pollMinDelay: time.Millisecond, pollMaxDelay: 2 * time.Millisecond,
	})
	var out, errOut bytes.Buffer
	code := Main(ctx, args, Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

func installArgs() []string {
	return []string{
		"--package-url", "https://bucket.s3.amazonaws.com/drmfilter.deb?X-Amz-Signature=topsecret",
		"--sha256", awsTestSHA,
		"--script-url", "https://raw.githubusercontent.com/drmfilter/drmfilter/v1.2.3/scripts/install.sh",
	}
}

// ssmFleet fakes SSM for instances that end in the given statuses.
func ssmFleet(t *testing.T, final map[string]string) *awsfake.Server {
	f := awsfake.New(t)
	f.Handle("DescribeInstanceInformation", func(c awsfake.Call, _ int) awsfake.Response {
		var list []map[string]any
		for id := range final {
			list = append(list, map[string]any{"InstanceId": id, "PingStatus": "Online", "PlatformType": "Linux"})
		}
		return awsfake.JSON(map[string]any{"InstanceInformationList": list})
	})
	f.Handle("SendCommand", func(awsfake.Call, int) awsfake.Response {
		return awsfake.JSON(map[string]any{"Command": map[string]any{"CommandId": "cmd-1"}})
	})
	f.Handle("GetCommandInvocation", func(c awsfake.Call, _ int) awsfake.Response {
		id := c.JSON["InstanceId"].(string)
		if final[id] == "Success" {
			return awsfake.JSON(map[string]any{"Status": "Success", "StatusDetails": "Success", "ResponseCode": 0, "StandardOutputContent": "drmfilter active\n"})
		}
		return awsfake.JSON(map[string]any{"Status": final[id], "StatusDetails": final[id], "ResponseCode": 1, "StandardErrorContent": "install.sh: checksum mismatch\n"})
	})
	return f
}

func TestDeployAWSSSMTable(t *testing.T) {
	f := ssmFleet(t, map[string]string{"i-a": "Success", "i-b": "Failed"})
	code, out, errOut := runAWS(t, f, append([]string{"deploy", "aws", "ssm", "--instances", "i-a,i-b", "--max-concurrency", "2", "--max-errors", "0"}, installArgs()...)...)
	if code != exitcode.Failure || !strings.Contains(errOut, "drmfilter: 1 of 2 instances did not succeed") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		"INSTANCE  STATUS   EXIT  OUTPUT\n",
		"i-a       Success  0     drmfilter active\n",
		"i-b       Failed   1     install.sh: checksum mismatch\n",
		"1 of 2 instances succeeded",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	in := f.CallsTo("SendCommand")[0].JSON
	if in["MaxConcurrency"] != "2" || in["MaxErrors"] != "0" || in["TimeoutSeconds"] != float64(900) {
		t.Errorf("SendCommand: %v", in)
	}
	// The SHA-256 is passed on in lower case.
	if cmds := in["Parameters"].(map[string]any)["commands"].([]any); !strings.Contains(cmds[len(cmds)-1].(string), "--sha256 '"+strings.ToLower(awsTestSHA)+"'") {
		t.Errorf("install line: %v", cmds[len(cmds)-1])
	}
	if !strings.Contains(errOut, "[2/2 instances]") {
		t.Errorf("no progress on stderr:\n%s", errOut)
	}
}

func TestDeployAWSSSMJSON(t *testing.T) {
	f := ssmFleet(t, map[string]string{"i-a": "Success"})
	code, out, errOut := runAWS(t, f, append([]string{"deploy", "aws", "ssm", "--instances", "i-a", "-o", "json"}, installArgs()...)...)
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	var rep struct {
		Results []struct {
			InstanceID, Status, StdoutTail string
			Succeeded                      bool
			ExitCode                       *int
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(rep.Results) != 1 || rep.Results[0].InstanceID != "i-a" || !rep.Results[0].Succeeded || *rep.Results[0].ExitCode != 0 || rep.Results[0].StdoutTail != "drmfilter active" {
		t.Errorf("results: %+v", rep.Results)
	}
}

func TestDeployAWSDryRunJSONKeepsSecrets(t *testing.T) {
	f := ssmFleet(t, map[string]string{"i-a": "Success"})
	code, out, errOut := runAWS(t, f, append([]string{"deploy", "aws", "ssm", "--instances", "i-a", "--dry-run", "-o", "json"}, installArgs()...)...)
	if code != exitcode.OK || !strings.Contains(out, `"documentName": "AWS-RunShellScript"`) || !strings.Contains(out, "drmfilter.deb?<redacted>") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	g := asgGroup(t, `<Status>Successful</Status>`)
	code, out, errOut = runAWS(t, g, append([]string{"deploy", "aws", "asg", "--group", "web", "--dry-run", "-o", "json"}, installArgs()...)...)
	if code != exitcode.OK || !strings.Contains(out, `"userDataFormat": "shell script"`) {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out, "topsecret") {
		t.Error("the presigned URL's signature was printed")
	}
}

func TestDeployAWSSSMDryRun(t *testing.T) {
	f := ssmFleet(t, map[string]string{"i-a": "Success"})
	code, out, errOut := runAWS(t, f, append([]string{"deploy", "aws", "ssm", "--instances", "i-a,i-b", "--dry-run"}, installArgs()...)...)
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if got := strings.Join(f.Actions(), " "); got != "DescribeInstanceInformation" {
		t.Errorf("dry run called %s", got)
	}
	for _, want := range []string{"Dry run: nothing was changed", "i-b  skip: not managed by SSM", "batch 1: i-a\n", "drmfilter.deb?<redacted>'"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "topsecret") {
		t.Error("the presigned URL's signature was printed")
	}
}

func TestDeployAWSUsageErrors(t *testing.T) {
	f := awsfake.New(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append([]string{"ssm", "--instances", "i-a", "--tag", "a=b"}, installArgs()...), "[instances tag] were all set"},
		{append([]string{"ssm"}, installArgs()...), "at least one of the flags in the group [instances tag] is required"},
		{append([]string{"ssm", "--instances", "i-a", "--max-concurrency", "0"}, installArgs()...), `--max-concurrency "0" is not a number of at least 1`},
		{append([]string{"ssm", "--tag", "novalue"}, installArgs()...), `--tag "novalue" is not KEY=VALUE`},
		{[]string{"ssm", "--instances", "i-a", "--package-url", "https://h/p.deb", "--sha256", awsTestSHA}, "this build (devel) is not a release, so install.sh has no tagged URL: pass --script-url"},
		{append([]string{"asg", "--group", "web", "--min-healthy", "120"}, installArgs()...), "--min-healthy 120 is not a percentage from 0 to 100"},
		{append([]string{"asg", "--group", "web", "-o", "yaml"}, installArgs()...), `unknown output format "yaml"`},
	} {
		code, _, errOut := runAWS(t, f, append([]string{"deploy", "aws"}, tc.args...)...)
		if code != exitcode.Usage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr:\n%s", tc.args, code, errOut)
		}
	}
	if calls := f.Actions(); len(calls) != 0 {
		t.Errorf("usage errors called AWS: %v", calls)
	}
}

// asgGroup fakes a group on launch template lt-1 version 2 with a shell
// script as user data; the refresh goes through states.
func asgGroup(t *testing.T, states ...string) *awsfake.Server {
	f := awsfake.New(t)
	f.Handle("DescribeAutoScalingGroups", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.XML(c, `<AutoScalingGroups><member><AutoScalingGroupName>web</AutoScalingGroupName><LaunchTemplate><LaunchTemplateId>lt-1</LaunchTemplateId><Version>2</Version></LaunchTemplate></member></AutoScalingGroups>`)
	})
	polls := 0
	f.Handle("DescribeInstanceRefreshes", func(c awsfake.Call, _ int) awsfake.Response {
		if c.Form.Get("InstanceRefreshIds.member.1") == "" {
			return awsfake.XML(c, `<InstanceRefreshes/>`)
		}
		s := states[min(polls, len(states)-1)]
		polls++
		return awsfake.XML(c, `<InstanceRefreshes><member><InstanceRefreshId>ir-9</InstanceRefreshId>`+s+`</member></InstanceRefreshes>`)
	})
	f.Handle("DescribeLaunchTemplateVersions", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.XML(c, `<launchTemplateVersionSet><item><launchTemplateId>lt-1</launchTemplateId><launchTemplateName>web</launchTemplateName><versionNumber>2</versionNumber><launchTemplateData><userData>IyEvYmluL2Jhc2gKZWNobyBoaQo=</userData></launchTemplateData></item></launchTemplateVersionSet>`)
	})
	f.Handle("CreateLaunchTemplateVersion", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.XML(c, `<launchTemplateVersion><launchTemplateId>lt-1</launchTemplateId><versionNumber>3</versionNumber></launchTemplateVersion>`)
	})
	f.Handle("StartInstanceRefresh", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.XML(c, `<InstanceRefreshId>ir-9</InstanceRefreshId>`)
	})
	return f
}

func TestDeployAWSASG(t *testing.T) {
	f := asgGroup(t,
		`<Status>Pending</Status>`,
		`<Status>InProgress</Status><PercentageComplete>50</PercentageComplete><InstancesToUpdate>1</InstancesToUpdate>`,
		`<Status>Successful</Status><PercentageComplete>100</PercentageComplete>`)
	code, out, errOut := runAWS(t, f, append([]string{"deploy", "aws", "asg", "--group", "web", "--min-healthy", "50", "--instance-warmup", "60", "--launch-template-version-description", "agent rollout"}, installArgs()...)...)
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, want := range []string{
		"1. calls ec2:CreateLaunchTemplateVersion: SourceVersion 2, description \"agent rollout\"",
		"old user data: shell script, 20 bytes;",
		"MinHealthyPercentage 50, InstanceWarmup 60, AutoRollback true, SkipMatching true",
		"instance refresh ir-9 of web: Successful, 100% complete (launch template lt-1 version 3)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range []string{"[50/100 percent] InProgress, 1 instances to update", "[100/100 percent] Successful"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("progress lacks %q:\n%s", want, errOut)
		}
	}
	sr := f.CallsTo("StartInstanceRefresh")[0].Form
	if sr.Get("Preferences.MinHealthyPercentage") != "50" || sr.Get("Preferences.InstanceWarmup") != "60" || sr.Get("DesiredConfiguration.LaunchTemplate.Version") != "3" {
		t.Errorf("StartInstanceRefresh: %v", sr)
	}
	if n := len(f.CallsTo("UpdateAutoScalingGroup")); n != 0 {
		t.Errorf("the group was updated directly %d times; the desired configuration does that", n)
	}
}

func TestDeployAWSASGRolledBack(t *testing.T) {
	f := asgGroup(t, `<Status>RollbackSuccessful</Status><StatusReason>instances failed to launch</StatusReason>`)
	code, out, errOut := runAWS(t, f, append([]string{"deploy", "aws", "asg", "--group", "web"}, installArgs()...)...)
	if code != exitcode.Failure || !strings.Contains(errOut, "drmfilter: instance refresh ir-9 of web failed and was rolled back: the group is on its previous launch template version again: instances failed to launch") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, "instance refresh ir-9 of web: RollbackSuccessful") {
		t.Errorf("output:\n%s", out)
	}
}

func TestDeployAWSASGDryRun(t *testing.T) {
	f := asgGroup(t, `<Status>Successful</Status>`)
	code, out, errOut := runAWS(t, f, append([]string{"deploy", "aws", "asg", "--group", "web", "--dry-run", "--no-rollback"}, installArgs()...)...)
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	for _, a := range f.Actions() {
		if !strings.HasPrefix(a, "Describe") {
			t.Errorf("dry run called %s", a)
		}
	}
	for _, want := range []string{"Dry run: nothing was changed", "1. would call ec2:CreateLaunchTemplateVersion", "AutoRollback false", "warning: a URL has a query string"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, "topsecret") {
		t.Error("the presigned URL's signature was printed")
	}
}

// TestDeployAWSWithTheSDKDefaultChain runs the production configuration
// loader: region and credentials from the environment, the endpoint from
// AWS_ENDPOINT_URL, requests signed with SigV4.
func TestDeployAWSWithTheSDKDefaultChain(t *testing.T) {
	f := ssmFleet(t, map[string]string{"i-a": "Success"})
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL":            f.URL,
		"AWS_ACCESS_KEY_ID":           "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY":       "test-secret",
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  "eu-west-3",
		"AWS_DEFAULT_REGION":          "",
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		t.Setenv(k, v)
	}
	code, out, errOut := run(t, append([]string{"deploy", "aws", "ssm", "--instances", "i-a"}, installArgs()...)...)
	if code != exitcode.OK {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	auth := f.CallsTo("SendCommand")[0].Header.Get("Authorization")
	if !strings.Contains(auth, "Credential=AKIDTEST/") || !strings.Contains(auth, "/eu-west-3/ssm/aws4_request") {
		t.Errorf("Authorization: %s", auth)
	}

	// --region wins over AWS_REGION.
	code, _, errOut = run(t, append([]string{"deploy", "aws", "ssm", "--instances", "i-a", "--region", "ap-south-1"}, installArgs()...)...)
	if code != exitcode.OK {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if auth := f.CallsTo("SendCommand")[1].Header.Get("Authorization"); !strings.Contains(auth, "/ap-south-1/ssm/") {
		t.Errorf("Authorization: %s", auth)
	}

	t.Setenv("AWS_REGION", "")
	code, _, errOut = run(t, append([]string{"deploy", "aws", "ssm", "--instances", "i-a"}, installArgs()...)...)
	if code != exitcode.Failure || !strings.Contains(errOut, "no AWS region: pass --region, set AWS_REGION") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}
