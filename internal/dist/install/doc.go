// Package install tests scripts/install.sh, the script every cloud rollout
// runs on a machine to install drmfilter: it runs the script against a real
// .deb built by internal/dist/pkg, installed by the real dpkg into a scratch
// root (DRMFILTER_INSTALL_ROOT), with systemctl, journalctl and the agent
// itself replaced by fakes that keep their state in files.
//
// The package has no code of its own; the tests are the point.
package install
