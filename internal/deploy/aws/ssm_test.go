package aws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/drmfilter/drmfilter/internal/deploy/aws/awsfake"
)

const testSHA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func testInstall() InstallSpec {
	return InstallSpec{
		ScriptURL:  "https://raw.githubusercontent.com/drmfilter/drmfilter/v1.2.3/scripts/install.sh",
		PackageURL: "https://bucket.s3.amazonaws.com/drmfilter_1.2.3_amd64.deb?X-Amz-Signature=secretsig&X-Amz-Security-Token=secrettoken",
		SHA256:     testSHA,
		PolicyURLs: []string{"https://example.com/finance.yaml"},
		Mode:       "enforce",
	}
}

func testSSMOptions() SSMOptions {
	return SSMOptions{
		Install: testInstall(), Version: "v1.2.3",
		MaxConcurrency: "10%", MaxErrors: "1", Timeout: 15 * time.Minute,
		WaitMinDelay: time.Millisecond, WaitMaxDelay: 2 * time.Millisecond,
	}
}

// managed answers DescribeInstanceInformation with the given instances as
// online Linux managed nodes.
func managed(ids ...string) awsfake.Handler {
	return func(c awsfake.Call, _ int) awsfake.Response {
		var list []map[string]any
		for _, id := range ids {
			list = append(list, map[string]any{"InstanceId": id, "PingStatus": "Online", "PlatformType": "Linux", "PlatformName": "Amazon Linux", "PlatformVersion": "2023"})
		}
		return awsfake.JSON(map[string]any{"InstanceInformationList": list})
	}
}

func sent(commandID string) awsfake.Handler {
	return func(awsfake.Call, int) awsfake.Response {
		return awsfake.JSON(map[string]any{"Command": map[string]any{"CommandId": commandID, "Status": "Pending"}})
	}
}

// invocations answers GetCommandInvocation per instance with the final
// state given, after the invocation first does not exist and then is
// InProgress, as SSM does right after SendCommand.
func invocations(final map[string]map[string]any) awsfake.Handler {
	seen := map[string]int{}
	return func(c awsfake.Call, _ int) awsfake.Response {
		id := c.JSON["InstanceId"].(string)
		seen[id]++
		switch seen[id] {
		case 1:
			return awsfake.Error(c, 400, "InvocationDoesNotExist", "")
		case 2:
			return awsfake.JSON(map[string]any{"InstanceId": id, "Status": "InProgress", "StatusDetails": "InProgress", "ResponseCode": -1})
		}
		out := map[string]any{"InstanceId": id, "CommandId": c.JSON["CommandId"]}
		for k, v := range final[id] {
			out[k] = v
		}
		return awsfake.JSON(out)
	}
}

func TestSSMSendsTheInstallAndReportsEachInstance(t *testing.T) {
	f := awsfake.New(t)
	f.Handle("DescribeInstanceInformation", managed("i-a", "i-b", "i-c"))
	f.Handle("SendCommand", sent("cmd-1"))
	f.Handle("GetCommandInvocation", invocations(map[string]map[string]any{
		"i-a": {"Status": "Success", "StatusDetails": "Success", "ResponseCode": 0, "StandardOutputContent": "fetching\ndrmfilter 1.2.3 installed, service active\n"},
		"i-b": {"Status": "Failed", "StatusDetails": "Failed", "ResponseCode": 3, "StandardErrorContent": "install.sh: sha256 mismatch for https://bucket/p.deb?X-Amz-Signature=secretsig\n"},
		"i-c": {"Status": "TimedOut", "StatusDetails": "ExecutionTimedOut", "ResponseCode": -1},
	}))
	o := testSSMOptions()
	o.Instances = []string{"i-c", "i-a", "i-b"}
	var progress bytes.Buffer
	o.Progress = &progress
	rep, err := RunSSM(context.Background(), f.Config(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Succeeded() {
		t.Error("report says all succeeded")
	}

	sends := f.CallsTo("SendCommand")
	if len(sends) != 1 {
		t.Fatalf("SendCommand called %d times", len(sends))
	}
	in := sends[0].JSON
	for k, want := range map[string]any{
		"DocumentName": "AWS-RunShellScript", "MaxConcurrency": "10%", "MaxErrors": "1",
		"TimeoutSeconds": float64(900), "Comment": "drmfilter install v1.2.3",
		"InstanceIds": []any{"i-a", "i-b", "i-c"},
	} {
		if !reflect.DeepEqual(in[k], want) {
			t.Errorf("SendCommand %s = %#v, want %#v", k, in[k], want)
		}
	}
	params := in["Parameters"].(map[string]any)
	if !reflect.DeepEqual(params["executionTimeout"], []any{"900"}) {
		t.Errorf("executionTimeout = %v", params["executionTimeout"])
	}
	var commands []string
	for _, c := range params["commands"].([]any) {
		commands = append(commands, c.(string))
	}
	wantCommands := []string{
		"set -eu",
		`drmfilter_script="$(mktemp)"`,
		`trap 'rm -f "$drmfilter_script"' EXIT`,
		`curl -fsSL --retry 5 --retry-delay 2 -o "$drmfilter_script" 'https://raw.githubusercontent.com/drmfilter/drmfilter/v1.2.3/scripts/install.sh'`,
		`bash "$drmfilter_script" --package-url 'https://bucket.s3.amazonaws.com/drmfilter_1.2.3_amd64.deb?X-Amz-Signature=secretsig&X-Amz-Security-Token=secrettoken' --sha256 '` + testSHA + `' --policy-url 'https://example.com/finance.yaml' --mode enforce`,
	}
	if !slices.Equal(commands, wantCommands) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(commands, "\n"), strings.Join(wantCommands, "\n"))
	}

	var table bytes.Buffer
	if err := WriteSSMTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	out := table.String()
	for _, want := range []string{
		"i-a       Success            0     drmfilter 1.2.3 installed, service active",
		"i-b       Failed             3     install.sh: sha256 mismatch for https://bucket/p.deb?<redacted>",
		"i-c       ExecutionTimedOut  -1",
		"1 of 3 instances succeeded",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secretsig") {
		t.Errorf("table shows the signature:\n%s", out)
	}
	if !strings.Contains(progress.String(), "sent command cmd-1 to 3 instances") || !strings.Contains(progress.String(), "/3 instances] i-b Failed (exit 3)") {
		t.Errorf("progress:\n%s", progress.String())
	}
}

func TestSSMByTagSkipsInstancesSSMDoesNotManage(t *testing.T) {
	f := awsfake.New(t)
	f.Handle("DescribeInstances", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.XML(c, `<reservationSet><item><reservationId>r-1</reservationId><instancesSet>
<item><instanceId>i-b</instanceId><instanceState><code>16</code><name>running</name></instanceState></item>
<item><instanceId>i-a</instanceId><instanceState><code>16</code><name>running</name></instanceState></item>
</instancesSet></item><item><reservationId>r-2</reservationId><instancesSet>
<item><instanceId>i-win</instanceId><instanceState><code>16</code><name>running</name></instanceState></item>
<item><instanceId>i-off</instanceId><instanceState><code>16</code><name>running</name></instanceState></item>
</instancesSet></item></reservationSet>`)
	})
	f.Handle("DescribeInstanceInformation", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.JSON(map[string]any{"InstanceInformationList": []map[string]any{
			{"InstanceId": "i-a", "PingStatus": "Online", "PlatformType": "Linux"},
			{"InstanceId": "i-win", "PingStatus": "Online", "PlatformType": "Windows"},
			{"InstanceId": "i-off", "PingStatus": "ConnectionLost", "PlatformType": "Linux"},
		}})
	})
	f.Handle("SendCommand", sent("cmd-2"))
	f.Handle("GetCommandInvocation", invocations(map[string]map[string]any{"i-a": {"Status": "Success", "ResponseCode": 0}}))
	o := testSSMOptions()
	o.Tag = "role=web"
	rep, err := RunSSM(context.Background(), f.Config(), o)
	if err != nil {
		t.Fatal(err)
	}

	di := f.CallsTo("DescribeInstances")[0].Form
	if di.Get("Filter.1.Name") != "tag:role" || di.Get("Filter.1.Value.1") != "web" || di.Get("Filter.2.Name") != "instance-state-name" || di.Get("Filter.2.Value.1") != "running" {
		t.Errorf("DescribeInstances filters: %v", di)
	}
	dii := f.CallsTo("DescribeInstanceInformation")[0].JSON
	if got := fmt.Sprint(dii["Filters"]); got != "[map[Key:InstanceIds Values:[i-a i-b i-off i-win]]]" {
		t.Errorf("DescribeInstanceInformation filters: %s", got)
	}
	if got := f.CallsTo("SendCommand")[0].JSON["InstanceIds"]; !reflect.DeepEqual(got, []any{"i-a"}) {
		t.Errorf("sent to %v, want only i-a", got)
	}
	got := map[string]string{}
	for _, r := range rep.Results {
		got[r.InstanceID] = r.Status + ": " + r.Message
	}
	want := map[string]string{
		"i-a":   "Success: ",
		"i-b":   "Skipped: not managed by SSM: no such instance, or its SSM agent never registered (check the instance profile allows SSM, e.g. AmazonSSMManagedInstanceCore)",
		"i-off": "Skipped: SSM agent is ConnectionLost",
		"i-win": "Skipped: platform is Windows, not Linux",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("results:\n%v\nwant:\n%v", got, want)
	}
	if rep.Succeeded() {
		t.Error("skipped instances count as success")
	}
}

func TestSSMRetriesAThrottledCall(t *testing.T) {
	f := awsfake.New(t)
	f.Handle("DescribeInstanceInformation", managed("i-a"))
	f.Handle("SendCommand", func(c awsfake.Call, n int) awsfake.Response {
		if n <= 2 {
			return awsfake.Error(c, 400, "ThrottlingException", "Rate exceeded")
		}
		return sent("cmd-3")(c, n)
	})
	f.Handle("GetCommandInvocation", invocations(map[string]map[string]any{"i-a": {"Status": "Success", "ResponseCode": 0}}))
	o := testSSMOptions()
	o.Instances = []string{"i-a"}
	rep, err := RunSSM(context.Background(), f.Config(), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.CallsTo("SendCommand")); n != 3 {
		t.Errorf("SendCommand called %d times, want 3 (two throttled)", n)
	}
	if !rep.Succeeded() {
		t.Errorf("results: %+v", rep.Results)
	}
}

func TestSSMReportsAWSErrors(t *testing.T) {
	for _, tc := range []struct {
		name, code, message, want string
	}{
		{"access denied", "AccessDeniedException", "User: arn:aws:iam::1:user/dev is not authorized to perform: ssm:SendCommand", "NotSent: send command: AccessDeniedException: User: arn:aws:iam::1:user/dev is not authorized to perform: ssm:SendCommand"},
		{"invalid instance", "InvalidInstanceId", "Instances [[i-a]] not in a valid state for account 1", "NotSent: send command: InvalidInstanceId: Instances [[i-a]] not in a valid state for account 1"},
		{"throttled beyond retries", "ThrottlingException", "Rate exceeded", "NotSent: send command: ThrottlingException: Rate exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := awsfake.New(t)
			f.Handle("DescribeInstanceInformation", managed("i-a"))
			f.Handle("SendCommand", func(c awsfake.Call, _ int) awsfake.Response { return awsfake.Error(c, 400, tc.code, tc.message) })
			o := testSSMOptions()
			o.Instances = []string{"i-a"}
			rep, err := RunSSM(context.Background(), f.Config(), o)
			if err != nil {
				t.Fatal(err)
			}
			if got := rep.Results[0].Status + ": " + rep.Results[0].Message; got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestSSMWaitErrorIsReportedPerInstance(t *testing.T) {
	f := awsfake.New(t)
	f.Handle("DescribeInstanceInformation", managed("i-a", "i-b"))
	f.Handle("SendCommand", sent("cmd-4"))
	f.Handle("GetCommandInvocation", func(c awsfake.Call, n int) awsfake.Response {
		if c.JSON["InstanceId"] == "i-b" {
			return awsfake.Error(c, 400, "AccessDeniedException", "not authorized to perform: ssm:GetCommandInvocation")
		}
		return awsfake.JSON(map[string]any{"Status": "Success", "ResponseCode": 0})
	})
	o := testSSMOptions()
	o.Instances = []string{"i-a", "i-b"}
	rep, err := RunSSM(context.Background(), f.Config(), o)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[1]; r.Status != StatusError || r.Message != "AccessDeniedException: not authorized to perform: ssm:GetCommandInvocation" {
		t.Errorf("i-b: %+v", r)
	}
	if !rep.Results[0].Succeeded {
		t.Errorf("i-a: %+v", rep.Results[0])
	}
}

func TestSSMOverallTimeout(t *testing.T) {
	f := awsfake.New(t)
	f.Handle("DescribeInstanceInformation", managed("i-a"))
	f.Handle("SendCommand", sent("cmd-5"))
	f.Handle("GetCommandInvocation", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.JSON(map[string]any{"Status": "InProgress", "ResponseCode": -1})
	})
	o := testSSMOptions()
	o.Instances = []string{"i-a"}
	// The caller's deadline ends the wait like --timeout does, without
	// making the test wait SSM's 30 s minimum.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	rep, err := RunSSM(ctx, f.Config(), o)
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	if r.Status != StatusUnfinished || !strings.Contains(r.Message, "aws ssm get-command-invocation --command-id cmd-5 --instance-id i-a") {
		t.Errorf("result: %+v", r)
	}
}

func TestSSMStopsBatchesPastMaxErrors(t *testing.T) {
	var ids []string
	for i := range 120 {
		ids = append(ids, fmt.Sprintf("i-%03d", i))
	}
	f := awsfake.New(t)
	f.Handle("DescribeInstanceInformation", func(c awsfake.Call, n int) awsfake.Response {
		var vals []string
		for _, v := range c.JSON["Filters"].([]any)[0].(map[string]any)["Values"].([]any) {
			vals = append(vals, v.(string))
		}
		return managed(vals...)(c, n)
	})
	f.Handle("SendCommand", func(c awsfake.Call, n int) awsfake.Response { return sent(fmt.Sprintf("cmd-%d", n))(c, n) })
	f.Handle("GetCommandInvocation", func(c awsfake.Call, _ int) awsfake.Response {
		if c.JSON["InstanceId"] == "i-007" || c.JSON["InstanceId"] == "i-060" {
			return awsfake.JSON(map[string]any{"Status": "Failed", "ResponseCode": 1})
		}
		return awsfake.JSON(map[string]any{"Status": "Success", "ResponseCode": 0})
	})
	o := testSSMOptions()
	o.Instances = ids
	o.MaxErrors = "1"
	rep, err := RunSSM(context.Background(), f.Config(), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.CallsTo("DescribeInstanceInformation")); n != 3 {
		t.Errorf("DescribeInstanceInformation called %d times for 120 instances, want 3", n)
	}
	sends := f.CallsTo("SendCommand")
	if len(sends) != 2 || len(sends[0].JSON["InstanceIds"].([]any)) != 50 || len(sends[1].JSON["InstanceIds"].([]any)) != 50 {
		t.Fatalf("want two batches of 50 and the third not sent; got %d SendCommand calls", len(sends))
	}
	last := rep.Results[len(rep.Results)-1]
	if last.InstanceID != "i-119" || last.Status != StatusNotSent || last.Message != "not sent: 2 instances failed, more than --max-errors 1 allows" {
		t.Errorf("last result: %+v", last)
	}
}

func TestSSMDryRunCallsNothingThatChangesState(t *testing.T) {
	f := awsfake.New(t)
	f.Handle("DescribeInstanceInformation", managed("i-a"))
	o := testSSMOptions()
	o.Instances = []string{"i-a", "i-gone"}
	o.DryRun = true
	rep, err := RunSSM(context.Background(), f.Config(), o)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range f.Actions() {
		if !strings.HasPrefix(a, "Describe") && !strings.HasPrefix(a, "List") && !strings.HasPrefix(a, "Get") {
			t.Errorf("dry run called %s", a)
		}
	}
	var b bytes.Buffer
	if err := WriteSSMPlan(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"i-a  Amazon Linux 2023",
		"i-gone  skip: not managed by SSM",
		"batch 1: i-a\n",
		"DocumentName    AWS-RunShellScript",
		"MaxConcurrency  10%",
		"--package-url 'https://bucket.s3.amazonaws.com/drmfilter_1.2.3_amd64.deb?<redacted>' --sha256",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") {
		t.Errorf("plan shows a secret:\n%s", out)
	}
}

func TestSSMWithNoReachableInstanceSendsNothing(t *testing.T) {
	f := awsfake.New(t)
	f.Handle("DescribeInstanceInformation", func(c awsfake.Call, _ int) awsfake.Response {
		return awsfake.JSON(map[string]any{"InstanceInformationList": []map[string]any{}})
	})
	o := testSSMOptions()
	o.Instances = []string{"i-a"}
	rep, err := RunSSM(context.Background(), f.Config(), o)
	if err == nil || err.Error() != "no instance can receive the command (see the reasons above)" {
		t.Fatalf("error: %v", err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Status != StatusSkipped {
		t.Errorf("results: %+v", rep.Results)
	}
	if got := strings.Join(f.Actions(), " "); got != "DescribeInstanceInformation" {
		t.Errorf("calls: %s", got)
	}
}

func TestSSMRejectsBadRateControls(t *testing.T) {
	for _, tc := range []struct{ concurrency, errors, want string }{
		{"0", "1", `--max-concurrency "0" is not a number of at least 1`},
		{"101%", "1", `--max-concurrency "101%" is not`},
		{"10", "01", `--max-errors "01" is not a number`},
		{"10", "x", `--max-errors "x" is not a number`},
	} {
		o := testSSMOptions()
		o.Instances = []string{"i-a"}
		o.MaxConcurrency, o.MaxErrors = tc.concurrency, tc.errors
		_, err := RunSSM(context.Background(), awsfake.New(t).Config(), o)
		var oe *OptionError
		if !errors.As(err, &oe) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s/%s: %v", tc.concurrency, tc.errors, err)
		}
	}
}
