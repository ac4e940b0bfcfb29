// Package aws rolls drmfilter out to Amazon EC2 with the official SDK
// (aws-sdk-go-v2): Systems Manager Run Command for running instances, and a
// new launch template version plus an instance refresh for Auto Scaling
// groups. Both paths run scripts/install.sh on the machine with the same
// arguments (InstallSpec).
//
// Files:
//   - install.go: InstallSpec, the shell lines that fetch and run install.sh.
//   - redact.go: hides URL query strings (presigned URLs carry credentials).
//   - config.go: LoadConfig, the SDK's default credential and region chain.
//   - ssm.go, ssm_targets.go, ssm_report.go: `deploy aws ssm`.
//   - userdata.go: adds the install step to existing launch template user data.
//   - asg.go, asg_refresh.go, asg_report.go: `deploy aws asg`.
//   - awsfake/: a loopback fake of the three services, for tests.
//
// Nothing here changes state in a dry run: only Describe* and List* calls
// are made.
package aws
