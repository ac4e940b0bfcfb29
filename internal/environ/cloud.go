package environ

import (
	"encoding/hex"
	"path"
	"strconv"
	"strings"
)

// Cloud provider ids. Where cloud-init has a name for the provider (its
// datasource or, for the EC2-compatible clouds, DataSourceEc2's CloudNames)
// the id is that name in lower case; the older ids (aws, gcp, alibaba, ibm)
// keep their spelling.
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
	CloudAkamai       = "akamai" // Linode
	CloudBigstep      = "bigstep"
	CloudCloudCIX     = "cloudcix"
	CloudCloudSigma   = "cloudsigma"
	CloudCloudStack   = "cloudstack"
	CloudJoyent       = "joyent" // SmartOS / Triton
	CloudLXD          = "lxd"
	CloudNWCS         = "nwcs"
	CloudRbxCloud     = "rbxcloud"
	CloudUpCloud      = "upcloud"
	CloudVultr        = "vultr"
	// EC2-compatible clouds: ds-identify files them under its Ec2
	// datasource because they serve EC2's metadata API, but they are not
	// AWS.
	CloudBrightbox = "brightbox"
	CloudE24cloud  = "e24cloud"
	CloudOutscale  = "outscale"
	CloudTilaa     = "tilaa"
	CloudZStack    = "zstack"
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

// cloudInput is what the provider checks look at.
type cloudInput struct {
	// qr reads the files beyond DMI without recording problems: each is
	// optional, and a failure only means "not this cloud".
	qr *sysReader
	d  DMI
	hv string
	// inside is set by a check that recognised a guest which is not a
	// machine of its own (an LXD container, a SmartOS zone), so that no
	// missing hypervisor makes it a bare-metal instance.
	inside bool
}

// cloudCheck recognises one provider: it returns the evidence, or "" when
// the provider is not recognised.
type cloudCheck struct {
	cloud string
	check func(in *cloudInput) string
}

// cloudChecks follows the order of ds-identify's default datasource list
// (DI_DSLIST_DEFAULT), which decides between two datasources that both
// match, restricted to the checks that name a provider from local files.
// Datasources left out name a way to deliver configuration, not a provider:
// MAAS, ConfigDrive, NoCloud (even its "ds=nocloud" DMI serial), AltCloud
// (RHEV or vSphere, on premises), OpenNebula, OVF, VMware (guestinfo) and
// WSL (the container is "wsl"). Two deliberate differences:
//   - ds-identify ignores DMI inside a container; the host's DMI still says
//     which cloud the node is on, so a container on EC2 reports aws, and
//     LXD (the container manager itself) is told only when no provider's
//     firmware string matched.
//   - ds-identify takes an EC2-shaped product_uuid alone as AWS, because a
//     wrong guess costs it only a metadata timeout; a random UUID has that
//     shape once in about 2,000 machines, so here it needs a second sign
//     and is tried last, after every explicit vendor string.
var cloudChecks = []cloudCheck{
	{CloudAzure, func(in *cloudInput) string {
		if in.d.ChassisAssetTag == azureAssetTag {
			return q("chassis_asset_tag", in.d.ChassisAssetTag)
		}
		return ""
	}},
	{CloudBigstep, func(in *cloudInput) string {
		// Written by Bigstep's provisioning for cloud-init.
		return in.marker("/var/lib/cloud/data/seed/bigstep/url")
	}},
	{CloudCloudSigma, func(in *cloudInput) string { return in.dmiIs("product_name", in.d.ProductName, "CloudSigma") }},
	{CloudCloudStack, func(in *cloudInput) string { return in.dmiPrefix("product_name", in.d.ProductName, "CloudStack") }},
	{CloudDigitalOcean, func(in *cloudInput) string { return in.dmiIs("sys_vendor", in.d.SysVendor, "DigitalOcean") }},
	{CloudVultr, func(in *cloudInput) string {
		return first(in.dmiIs("sys_vendor", in.d.SysVendor, "Vultr"), in.cmdline("vultr"), in.marker("/etc/vultr"))
	}},
	{CloudAlibaba, func(in *cloudInput) string {
		// ds-identify wants the product name; some instances (arm64
		// shapes among them) name Alibaba only as the system vendor,
		// which no other cloud uses.
		return first(in.dmiPrefix("product_name", in.d.ProductName, "Alibaba Cloud ECS"),
			in.dmiPrefix("sys_vendor", in.d.SysVendor, "Alibaba Cloud"))
	}},
	{CloudAWS, func(in *cloudInput) string {
		// Nitro (x86 and Graviton) names itself in DMI; Xen-era
		// instances carry "amazon" in the firmware version.
		return first(in.dmiIs("sys_vendor", in.d.SysVendor, "Amazon EC2"), in.dmiIs("bios_vendor", in.d.BIOSVendor, "Amazon EC2"),
			in.dmiContains("bios_version", in.d.BIOSVersion, "amazon"))
	}},
	{CloudBrightbox, func(in *cloudInput) string {
		if strings.HasSuffix(in.d.productSerial, ".brightbox.com") {
			return "dmi product_serial=*.brightbox.com"
		}
		return ""
	}},
	{CloudZStack, func(in *cloudInput) string {
		if strings.HasSuffix(in.d.ChassisAssetTag, ".zstack.io") {
			return q("chassis_asset_tag", in.d.ChassisAssetTag)
		}
		return ""
	}},
	{CloudE24cloud, func(in *cloudInput) string { return in.dmiIs("sys_vendor", in.d.SysVendor, "e24cloud") }},
	{CloudTilaa, func(in *cloudInput) string { return in.dmiIs("sys_vendor", in.d.SysVendor, "Tilaa") }},
	{CloudOutscale, func(in *cloudInput) string {
		if in.d.SysVendor == "3DS Outscale" && in.d.ProductName == "3DS Outscale VM" {
			return q("product_name", in.d.ProductName)
		}
		return ""
	}},
	{CloudGCP, func(in *cloudInput) string {
		if s := in.dmiPrefix("product_name", in.d.ProductName, "Google Compute Engine"); s != "" {
			return s
		}
		if strings.HasPrefix(in.d.productSerial, "GoogleCloud-") {
			// Google does not promise the product name.
			return "dmi product_serial=GoogleCloud-*"
		}
		return ""
	}},
	{CloudOpenStack, func(in *cloudInput) string {
		for _, p := range []string{"OpenStack Nova", "OpenStack Compute"} {
			if s := in.dmiPrefix("product_name", in.d.ProductName, p); s != "" {
				return s
			}
		}
		// A container on Nova whose manager passed the host's product
		// name down.
		if env, err := in.qr.read("/proc/1/environ", largeFile); err == nil {
			if v, _ := environValue(env, "product_name"); v == "OpenStack Nova" {
				return "/proc/1/environ product_name=OpenStack Nova"
			}
		}
		// Public OpenStack clouds that rename the product but tag the
		// chassis; the signal names the operator.
		for _, t := range []struct{ tag, who string }{
			{"OpenTelekomCloud", "Open Telekom Cloud"},
			{"SAP CCloud VM", "SAP Converged Cloud"},
			{"HUAWEICLOUD", "Huawei Cloud"},
			{"Samsung Cloud Platform", "Samsung Cloud Platform"},
			{"OpenStack Nova", ""},
			{"OpenStack Compute", ""},
		} {
			if in.d.ChassisAssetTag == t.tag {
				if t.who != "" {
					return q("chassis_asset_tag", t.tag) + " (" + t.who + ")"
				}
				return q("chassis_asset_tag", t.tag)
			}
		}
		return ""
	}},
	{CloudJoyent, func(in *cloudInput) string {
		if s := in.dmiPrefix("product_name", in.d.ProductName, "SmartDC"); s != "" {
			return s
		}
		// An LX-branded zone: the kernel version is fixed, and the
		// metadata socket tells it from LX zones nested elsewhere.
		if in.qr.line("/proc/sys/kernel/version") == "BrandZ virtual linux" && in.qr.exists("/native/.zonecontrol/metadata.sock") {
			in.inside = true
			return "kernel version BrandZ virtual linux and /native/.zonecontrol/metadata.sock"
		}
		return ""
	}},
	{CloudScaleway, func(in *cloudInput) string {
		return first(in.dmiIs("sys_vendor", in.d.SysVendor, "Scaleway"), in.cmdline("scaleway"), in.marker("/var/run/scaleway"))
	}},
	{CloudHetzner, func(in *cloudInput) string { return in.dmiIs("sys_vendor", in.d.SysVendor, "Hetzner") }},
	{CloudIBM, func(in *cloudInput) string {
		// VPC virtual servers tag the chassis.
		if strings.EqualFold(in.d.ChassisAssetTag, "ibmcloud") {
			return q("chassis_asset_tag", in.d.ChassisAssetTag)
		}
		// Classic infrastructure runs Xen and gives no DMI string, only
		// its provisioning file or its metadata disk's label.
		if in.hv != HVXen {
			return ""
		}
		return first(in.marker("/root/provisioningConfiguration.cfg"), in.label("METADATA", "metadata"),
			and(in.marker("/dev/disk/by-uuid/9796-932E"), in.label("CONFIG-2", "config-2")))
	}},
	{CloudOracle, func(in *cloudInput) string {
		if in.d.ChassisAssetTag == "OracleCloud.com" {
			return q("chassis_asset_tag", in.d.ChassisAssetTag)
		}
		return ""
	}},
	{CloudExoscale, func(in *cloudInput) string {
		return first(in.dmiPrefix("product_name", in.d.ProductName, "Exoscale"), in.dmiIs("sys_vendor", in.d.SysVendor, "Exoscale"))
	}},
	{CloudRbxCloud, func(in *cloudInput) string { return in.label("CLOUDMD", "cloudmd") }},
	{CloudUpCloud, func(in *cloudInput) string { return in.dmiIs("sys_vendor", in.d.SysVendor, "UpCloud") }},
	{CloudLXD, func(in *cloudInput) string {
		// The guest API socket of a container (ds-identify wants a
		// socket; snapshot.sh keeps only that the path exists, so any
		// file there counts).
		if s := in.marker("/dev/lxd/sock"); s != "" {
			in.inside = true
			return s
		}
		// A VM, before lxd-agent has made the socket: the virtio serial
		// port LXD adds (current and former name).
		if in.hv != HVKVM && in.hv != HVQEMU {
			return ""
		}
		for _, e := range in.qr.dir("/sys/class/virtio-ports") {
			p := path.Join("/sys/class/virtio-ports", e.Name(), "name")
			if n := in.qr.line(p); n == "com.canonical.lxd" || n == "org.linuxcontainers.lxd" {
				return p + "=" + n
			}
		}
		return ""
	}},
	{CloudNWCS, func(in *cloudInput) string { return in.dmiIs("sys_vendor", in.d.SysVendor, "NWCS") }},
	{CloudAkamai, func(in *cloudInput) string {
		return first(in.dmiIs("sys_vendor", in.d.SysVendor, "Linode"), in.dmiIs("sys_vendor", in.d.SysVendor, "Akamai"))
	}},
	{CloudCloudCIX, func(in *cloudInput) string { return in.dmiIs("product_name", in.d.ProductName, "CloudCIX") }},
	{CloudAWS, func(in *cloudInput) string {
		// EC2 on Xen: the Xen-only /sys/hypervisor/uuid, or an
		// EC2-shaped system UUID backed by a second sign.
		if u := in.qr.line("/sys/hypervisor/uuid"); strings.HasPrefix(strings.ToLower(u), "ec2") {
			return "/sys/hypervisor/uuid starts with ec2"
		}
		if !ec2UUID(in.d.productUUID) {
			return ""
		}
		switch {
		case in.hv == HVXen:
			return "dmi product_uuid starts with ec2 on Xen"
		case ec2UUID(in.d.productSerial):
			return "dmi product_uuid and product_serial start with ec2"
		}
		return ""
	}},
}

func first(sigs ...string) string {
	for _, s := range sigs {
		if s != "" {
			return s
		}
	}
	return ""
}

func and(a, b string) string {
	if a == "" || b == "" {
		return ""
	}
	return a + " and " + b
}

func (in *cloudInput) dmiIs(field, v, want string) string {
	if v == want {
		return q(field, v)
	}
	return ""
}

func (in *cloudInput) dmiPrefix(field, v, prefix string) string {
	if strings.HasPrefix(v, prefix) {
		return q(field, v)
	}
	return ""
}

func (in *cloudInput) dmiContains(field, v, lowerSub string) string {
	if strings.Contains(strings.ToLower(v), lowerSub) {
		return q(field, v)
	}
	return ""
}

// marker reports that p exists. A symbolic link counts even when its
// target does not: udev's /dev/disk links point into a /dev that a
// captured tree does not have.
func (in *cloudInput) marker(p string) string {
	if in.qr.exists(p) || in.qr.readlink(p) != "" {
		return p + " exists"
	}
	return ""
}

// label looks for a file system label the way udev publishes it.
func (in *cloudInput) label(names ...string) string {
	for _, n := range names {
		if s := in.marker("/dev/disk/by-label/" + n); s != "" {
			return "file system label " + n
		}
	}
	return ""
}

// cmdline looks for a bare word on the kernel command line.
func (in *cloudInput) cmdline(word string) string {
	b, err := in.qr.read("/proc/cmdline", smallFile)
	if err != nil {
		return ""
	}
	for _, w := range strings.Fields(string(b)) {
		if w == word {
			return "/proc/cmdline has " + word
		}
	}
	return ""
}

// ec2UUID reports whether a system UUID (or serial) has EC2's shape: its
// first group starts with "ec2", or, when the firmware stored the first
// three groups little-endian, its first bytes read that way do.
func ec2UUID(u string) bool {
	u = strings.ToLower(u)
	if strings.HasPrefix(u, "ec2") {
		return true
	}
	g, _, ok := strings.Cut(u, "-")
	if !ok || len(g) != 8 {
		return false
	}
	b, err := hex.DecodeString(g)
	if err != nil {
		return false
	}
	return strings.HasPrefix(hex.EncodeToString([]byte{b[3], b[2], b[1], b[0]}), "ec2")
}

// detectCloud decides the provider from local signals only (DMI, a few
// files cloud-init's ds-identify also reads), checked in ds-identify's
// order (see cloudChecks).
func detectCloud(r *sysReader, d DMI, hv string) (string, CloudDetail) {
	c := CloudDetail{Signals: []string{}}
	in := &cloudInput{qr: &sysReader{fsys: r.fsys}, d: d, hv: hv}
	name := CloudNone
	for _, ch := range cloudChecks {
		if s := ch.check(in); s != "" {
			name = ch.cloud
			c.Signals = append(c.Signals, s)
			break
		}
	}
	if name == CloudAWS && (d.SysVendor == "Amazon EC2" || d.BIOSVendor == "Amazon EC2") {
		c.InstanceType = d.ProductName
		if strings.HasPrefix(d.BoardAssetTag, "i-") {
			c.InstanceID = d.BoardAssetTag
		}
	}
	if name != CloudNone && hv == HVNone && !in.inside {
		c.BareMetal = true
	}
	return name, c
}
