// Package azure rolls drmfilter out to Azure Linux VMs and Virtual Machine
// Scale Sets through the Linux Custom Script extension
// (Microsoft.Azure.Extensions/CustomScript 2.1), which downloads
// scripts/install.sh onto each machine and runs it with the package URL and
// its SHA-256.
//
// It owns every call to Azure Resource Manager made by `drmfilter deploy
// azure`, through azure-sdk-for-go (armcompute clients, credentials from
// azidentity.DefaultAzureCredential):
//
//   - install.go: the extension's settings built from an [Install]; the
//     command line and script URL go in protected settings because package
//     URLs may carry SAS tokens, and every printed form is redacted.
//   - env.go: [Env], how the package reaches Azure (credential, client
//     options, poll frequency, clock); tests pass the armcompute fake servers.
//   - errors.go: Azure errors turned into one line a user can act on.
//   - status.go: the extension's instance view read as a [Result].
//   - vm.go: one VM (check it exists and runs Linux, create or update the
//     extension, wait, report status and output).
//   - vmss.go, state.go: a scale set with a Manual upgrade policy (update the
//     extension profile, upgrade instances in batches, check each instance,
//     stop past a failure threshold, resume from a state file).
//   - plan.go: what --dry-run prints.
//   - azurefake/: the fake Azure the tests (here and in internal/cli) run
//     against, built on armcompute's official fake servers.
//
// Only reads are made for a dry run. See
// https://learn.microsoft.com/azure/virtual-machines/extensions/custom-script-linux
// for the extension's settings and status format.
package azure
