package environ

import (
	"strconv"
	"strings"
)

// Cloud provider ids.
const (
	CloudNone         = "none"
	CloudAzure        = "azure"
	CloudAWS          = "aws"
	CloudGCP          = "gcp"
	CloudOracle       = "oracle"
	CloudAlibaba      = "alibaba"
	CloudDigitalOcean = "digitalocean"
	CloudHetzner      = "hetzner"
	CloudOpenStack    = "openstack"
	CloudIBM          = "ibm"
	CloudExoscale     = "exoscale"
	CloudScaleway     = "scaleway"
)

// azureAssetTag is the chassis asset tag of every Azure VM (cloud-init's
// ds-identify, is_azure_chassis).
const azureAssetTag = "7783-7084-3265-9085-8269-3286-77"

// CloudDetail refines Report.Cloud.
type CloudDetail struct {
	// BareMetal is true on a bare-metal instance of the cloud (no
	// hypervisor found, e.g. an EC2 *.metal or an OCI BM shape).
	BareMetal bool `json:"bare_metal"`
	// InstanceType is the instance type when the firmware names it
	// (EC2 Nitro puts it in product_name).
	InstanceType string `json:"instance_type,omitempty"`
	// InstanceID is the instance id when the firmware names it (EC2 Nitro
	// board_asset_tag).
	InstanceID string `json:"instance_id,omitempty"`
	// Signals lists the evidence used.
	Signals []string `json:"signals"`
	// Metadata is the answer of the instance metadata service, present
	// only when Options.Metadata asked for it.
	Metadata *MetadataResult `json:"metadata,omitempty"`
}

func q(field, v string) string { return "dmi " + field + "=" + strconv.Quote(v) }

// detectCloud decides the provider from local signals only (DMI and
// /sys/hypervisor/uuid), in the spirit of cloud-init's ds-identify.
func detectCloud(r *sysReader, d DMI, hv string) (string, CloudDetail) {
	c := CloudDetail{Signals: []string{}}
	name := func() string {
		switch {
		case d.ChassisAssetTag == azureAssetTag:
			c.Signals = append(c.Signals, q("chassis_asset_tag", d.ChassisAssetTag))
			return CloudAzure
		case d.SysVendor == "Amazon EC2" || d.BIOSVendor == "Amazon EC2":
			c.Signals = append(c.Signals, q("sys_vendor", d.SysVendor))
			c.InstanceType = d.ProductName
			if strings.HasPrefix(d.BoardAssetTag, "i-") {
				c.InstanceID = d.BoardAssetTag
			}
			return CloudAWS
		case strings.Contains(strings.ToLower(d.BIOSVersion), "amazon"):
			c.Signals = append(c.Signals, q("bios_version", d.BIOSVersion))
			return CloudAWS
		case strings.HasPrefix(d.ProductName, "Google Compute Engine"):
			c.Signals = append(c.Signals, q("product_name", d.ProductName))
			return CloudGCP
		case strings.HasPrefix(d.productSerial, "GoogleCloud-"):
			c.Signals = append(c.Signals, "dmi product_serial=GoogleCloud-*")
			return CloudGCP
		case d.ChassisAssetTag == "OracleCloud.com":
			c.Signals = append(c.Signals, q("chassis_asset_tag", d.ChassisAssetTag))
			return CloudOracle
		case strings.HasPrefix(d.ProductName, "Alibaba Cloud ECS") || strings.HasPrefix(d.SysVendor, "Alibaba Cloud"):
			c.Signals = append(c.Signals, q("product_name", d.ProductName))
			return CloudAlibaba
		case d.SysVendor == "DigitalOcean":
			c.Signals = append(c.Signals, q("sys_vendor", d.SysVendor))
			return CloudDigitalOcean
		case d.SysVendor == "Hetzner":
			c.Signals = append(c.Signals, q("sys_vendor", d.SysVendor))
			return CloudHetzner
		case strings.HasPrefix(d.ProductName, "Exoscale") || d.SysVendor == "Exoscale":
			c.Signals = append(c.Signals, q("product_name", d.ProductName))
			return CloudExoscale
		case d.SysVendor == "Scaleway":
			c.Signals = append(c.Signals, q("sys_vendor", d.SysVendor))
			return CloudScaleway
		case strings.EqualFold(d.ChassisAssetTag, "ibmcloud"):
			c.Signals = append(c.Signals, q("chassis_asset_tag", d.ChassisAssetTag))
			return CloudIBM
		case strings.HasPrefix(d.ProductName, "OpenStack Nova") || strings.HasPrefix(d.ProductName, "OpenStack Compute") ||
			strings.HasPrefix(d.ChassisAssetTag, "OpenStack Nova") || strings.HasPrefix(d.ChassisAssetTag, "OpenStack Compute"):
			c.Signals = append(c.Signals, q("product_name", d.ProductName))
			return CloudOpenStack
		}
		// EC2 on Xen: /sys/hypervisor/uuid, or product uuid and serial
		// both starting with ec2.
		if u := r.line("/sys/hypervisor/uuid"); strings.HasPrefix(strings.ToLower(u), "ec2") {
			c.Signals = append(c.Signals, "/sys/hypervisor/uuid starts with ec2")
			return CloudAWS
		}
		if strings.HasPrefix(strings.ToLower(d.productUUID), "ec2") && strings.EqualFold(d.productUUID, d.productSerial) {
			c.Signals = append(c.Signals, "dmi product_uuid and product_serial start with ec2")
			return CloudAWS
		}
		return CloudNone
	}()
	if name != CloudNone && hv == HVNone {
		c.BareMetal = true
	}
	return name, c
}
