package azure

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
)

// ExtensionSettings are the extension's properties as they will be sent,
// with protected settings redacted.
type ExtensionSettings struct {
	Name                    string         `json:"name"`
	Publisher               string         `json:"publisher"`
	Type                    string         `json:"type"`
	TypeHandlerVersion      string         `json:"typeHandlerVersion"`
	AutoUpgradeMinorVersion bool           `json:"autoUpgradeMinorVersion"`
	ForceUpdateTag          string         `json:"forceUpdateTag"`
	Settings                map[string]any `json:"settings"`
	ProtectedSettings       map[string]any `json:"protectedSettings"`
}

func (i Install) settings(tag string) ExtensionSettings {
	return ExtensionSettings{
		Name:                    i.ExtensionName,
		Publisher:               ExtensionPublisher,
		Type:                    ExtensionType,
		TypeHandlerVersion:      ExtensionVersion,
		AutoUpgradeMinorVersion: true,
		ForceUpdateTag:          tag,
		Settings:                i.publicSettings(),
		ProtectedSettings:       i.redactedSettings(),
	}
}

func (i Install) vmExtension(location, tag string) armcompute.VirtualMachineExtension {
	return armcompute.VirtualMachineExtension{
		Location: to.Ptr(location),
		Properties: &armcompute.VirtualMachineExtensionProperties{
			Publisher:               to.Ptr(ExtensionPublisher),
			Type:                    to.Ptr(ExtensionType),
			TypeHandlerVersion:      to.Ptr(ExtensionVersion),
			AutoUpgradeMinorVersion: to.Ptr(true),
			ForceUpdateTag:          to.Ptr(tag),
			Settings:                i.publicSettings(),
			ProtectedSettings:       i.protectedSettings(),
		},
	}
}

func (i Install) scaleSetExtension(tag string) armcompute.VirtualMachineScaleSetExtension {
	return armcompute.VirtualMachineScaleSetExtension{
		Name: to.Ptr(i.ExtensionName),
		Properties: &armcompute.VirtualMachineScaleSetExtensionProperties{
			Publisher:               to.Ptr(ExtensionPublisher),
			Type:                    to.Ptr(ExtensionType),
			TypeHandlerVersion:      to.Ptr(ExtensionVersion),
			AutoUpgradeMinorVersion: to.Ptr(true),
			ForceUpdateTag:          to.Ptr(tag),
			Settings:                i.publicSettings(),
			ProtectedSettings:       i.protectedSettings(),
		},
	}
}

// Plan is what a rollout would do, printed by --dry-run.
type Plan struct {
	// Kind is "vm" or "vmss".
	Kind string `json:"kind"`
	// Target is the VM's or scale set's resource ID.
	Target   string `json:"target"`
	Location string `json:"location"`
	OSType   string `json:"osType"`
	// UpgradeMode is the scale set's upgrade policy.
	UpgradeMode string            `json:"upgradeMode,omitempty"`
	Extension   ExtensionSettings `json:"extension"`
	// Reads are the calls made to build the plan (none change anything).
	Reads []string `json:"reads"`
	// Calls are what a real run would call, in order.
	Calls []string `json:"calls"`
	// BatchSize and Batches are the scale set instance IDs per batch.
	BatchSize int        `json:"batchSize,omitempty"`
	Batches   [][]string `json:"batches,omitempty"`
	// Skipped are instances a resumed run leaves alone: they succeeded
	// earlier with the same package.
	Skipped   []string `json:"skipped,omitempty"`
	StateFile string   `json:"stateFile,omitempty"`
}

// WriteText prints the plan for people.
func (p *Plan) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Dry run: nothing was changed.")
	fmt.Fprintf(tw, "Read to make this plan (reads only):\t%s\n", strings.Join(p.Reads, "; "))
	kind := "VM"
	if p.Kind == "vmss" {
		kind = "scale set"
	}
	fmt.Fprintf(tw, "Target %s:\t%s\n", kind, p.Target)
	fmt.Fprintf(tw, "  OS, location:\t%s, %s\n", p.OSType, p.Location)
	if p.UpgradeMode != "" {
		fmt.Fprintf(tw, "  upgrade policy:\t%s\n", p.UpgradeMode)
	}
	e := p.Extension
	fmt.Fprintf(tw, "Extension %s:\t%s/%s %s, autoUpgradeMinorVersion %t\n", e.Name, e.Publisher, e.Type, e.TypeHandlerVersion, e.AutoUpgradeMinorVersion)
	fmt.Fprintf(tw, "  forceUpdateTag:\t%s\n", e.ForceUpdateTag)
	fmt.Fprintf(tw, "  settings (public):\t%s\n", formatSettings(e.Settings))
	fmt.Fprintf(tw, "  protectedSettings.fileUris:\t%s\n", strings.Join(e.ProtectedSettings["fileUris"].([]string), " "))
	fmt.Fprintf(tw, "  protectedSettings.commandToExecute:\t%s\n", e.ProtectedSettings["commandToExecute"])
	fmt.Fprintln(tw, "Would call:")
	for i, c := range p.Calls {
		fmt.Fprintf(tw, "  %d. %s\n", i+1, c)
	}
	if p.Kind == "vmss" {
		n := 0
		for _, b := range p.Batches {
			n += len(b)
		}
		fmt.Fprintf(tw, "Batches of %d (%d instances to upgrade):\n", p.BatchSize, n)
		for i, b := range p.Batches {
			fmt.Fprintf(tw, "  batch %d:\tinstances %s\n", i+1, strings.Join(b, ", "))
		}
		if len(p.Skipped) > 0 {
			fmt.Fprintf(tw, "  skipped (succeeded earlier, same package):\tinstances %s\n", strings.Join(p.Skipped, ", "))
		}
		if p.StateFile != "" {
			fmt.Fprintf(tw, "State file:\t%s\n", p.StateFile)
		}
	}
	return tw.Flush()
}

func formatSettings(m map[string]any) string {
	if len(m) == 0 {
		return "{} (nothing public: URLs and the command are protected)"
	}
	return fmt.Sprint(m)
}
