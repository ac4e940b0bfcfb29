package environ

// HypervisorIDs lists every hypervisor id a Report can carry (other than
// "none"), and the VMMs told apart beneath them; policies select by these.
func HypervisorIDs() []string {
	return []string{HVKVM, HVQEMU, HVAmazon, HVMicrosoft, HVVMware, HVOracle, HVXen, HVParallels, HVBhyve, HVQNX,
		HVACRN, HVApple, HVPowerVM, HVZVM, HVBochs, HVUML, HVGoogle, HVSRE, HVOther,
		VMMFirecracker, VMMCloudHypervisor}
}

// CloudIDs lists every cloud id a Report can carry (other than "none").
func CloudIDs() []string {
	return []string{CloudAzure, CloudAWS, CloudGCP, CloudOracle, CloudAlibaba, CloudDigitalOcean, CloudHetzner,
		CloudOpenStack, CloudIBM, CloudExoscale, CloudScaleway, CloudAkamai, CloudBigstep, CloudCloudCIX,
		CloudCloudSigma, CloudCloudStack, CloudJoyent, CloudLXD, CloudNWCS, CloudRbxCloud, CloudUpCloud,
		CloudVultr, CloudBrightbox, CloudE24cloud, CloudOutscale, CloudTilaa, CloudZStack}
}
