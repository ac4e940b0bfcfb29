//go:build !nodeploy

package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/drmfilter/drmfilter/internal/deploy/kubernetes"
	"github.com/drmfilter/drmfilter/internal/exitcode"
	"github.com/drmfilter/drmfilter/internal/kubeschema"
	"github.com/drmfilter/drmfilter/internal/policy"
)

// Values of --dry-run.
const (
	kubeDryRunNone   = "none"
	kubeDryRunClient = "client"
	kubeDryRunServer = "server"
)

type deployKubernetesFlags struct {
	client         kubernetes.ClientOptions
	namespace      string
	policies       []string
	image          string
	maxUnavailable string
	runtimeSocket  string
	dryRun         string
	output         string
	force          bool
	watchPods      bool
}

func newDeployKubernetesCommand(s Streams) *cobra.Command {
	f := deployKubernetesFlags{}
	cmd := &cobra.Command{
		Use:   "kubernetes --policy PATH [flags]",
		Short: "Run the agent on every Linux node of a cluster, with policies from a ConfigMap",
		Long: `Deploy drmfilter to a Kubernetes cluster, or update it: a namespace, the
agent's ServiceAccount with a Role that only reads the policy ConfigMap and
writes the node status Leases, a ClusterRole and ClusterRoleBinding that let
the agent read pods, the ConfigMap that carries the policies, and a DaemonSet
that runs the agent on every Linux node (tainted and control-plane nodes
included).

Pod reading (--watch-pods, on by default): each agent watches the pods of its
own node for their current labels, so a policy that selects pods by labels
follows label changes; the container runtime knows only the labels a pod was
created with. RBAC cannot limit this to one node, so the ClusterRole grants
get, list and watch on pods cluster-wide: read-only, pods only (no secrets, no
exec). It is named ` + kubeschema.AgentPodReader + ` in the namespace ` + kubeschema.DefaultNamespace + ` and
` + kubeschema.AgentPodReader + `-<namespace> in any other, so deployments in several
namespaces do not share it. --watch-pods=false leaves both objects out, and
deletes the ones an earlier deploy of this namespace made (those carrying the
label app.kubernetes.io/managed-by=drmfilter); the agents then use the labels
pods were created with.

The policies are validated here first, as 'drmfilter policy check' does; an
invalid policy is reported with its file:line:column, nothing is sent to the
cluster and the exit code is 3. Each policy file becomes one key of the
ConfigMap, so two files may not share a file name.

Objects are sent with server-side apply (field manager "drmfilter") and one
line per object says whether it was created, configured or unchanged. Running
deploy again with the same flags changes nothing. Running it with other
policies updates only the ConfigMap: the agents load the new policies within
seconds, without restarting. If someone changed a field that deploy sets
(kubectl edit, another tool), deploy stops and names the fields and who owns
them; --force-conflicts takes them back.

--dry-run (or --dry-run=client) prints the objects as YAML or JSON (-o) for
kubectl, Kustomize or GitOps, and needs no cluster. --dry-run=server sends
them with dryRun=All, so the API server and its admission checks validate
them, and prints what the server returned; nothing is stored. The default
image is ` + kubernetes.ImageRepository + `:<this version>.
--runtime-socket is needed only for a container runtime whose socket is not
where containerd, CRI-O, k3s, microk8s or k0s keep it.

Exit codes: 0 done, 1 the cluster refused or could not be reached (the message
names the object and the reason), 2 wrong flags, 3 invalid policy.`,
		Example: `  drmfilter deploy kubernetes --policy policies/
  drmfilter deploy kubernetes --context prod --policy pii.yaml --policy secrets.yaml --max-unavailable 10%
  drmfilter deploy kubernetes --policy policies/ --dry-run > drmfilter.yaml     # for kubectl or GitOps
  drmfilter deploy kubernetes --policy policies/ --dry-run=server -o json
  drmfilter deploy kubernetes --policy policies/ -n team-x --watch-pods=false   # no cluster-wide grant`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return deployKubernetes(cmd, s, &f)
		},
	}
	fl := cmd.Flags()
	addKubeClusterFlags(cmd, &f.client, &f.namespace)
	fl.StringArrayVarP(&f.policies, "policy", "p", nil, "policy file or directory (repeatable)")
	fl.StringVar(&f.image, "image", "", "agent image (default "+kubernetes.DefaultImage()+")")
	fl.StringVar(&f.maxUnavailable, "max-unavailable", "1", "agents replaced at once during a rolling update: N or N%")
	fl.StringVar(&f.runtimeSocket, "runtime-socket", "", "container runtime socket's path on the nodes (default: found by the agent)")
	fl.StringVar(&f.dryRun, "dry-run", kubeDryRunNone, "client: print the objects, touch no cluster; server: let the server validate them, store nothing")
	fl.Lookup("dry-run").NoOptDefVal = kubeDryRunClient
	fl.StringVarP(&f.output, "output", "o", kubernetes.FormatYAML, "format of --dry-run's output: yaml or json")
	fl.BoolVar(&f.force, "force-conflicts", false, "take over fields that another field manager owns")
	fl.BoolVar(&f.watchPods, "watch-pods", true, "let the agents read pods cluster-wide (a ClusterRole) for current pod labels; false removes that grant")
	return cmd
}

// addKubeClusterFlags adds the flags that choose the cluster and namespace.
func addKubeClusterFlags(cmd *cobra.Command, c *kubernetes.ClientOptions, namespace *string) {
	fl := cmd.Flags()
	fl.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	fl.StringVar(&c.Context, "context", "", "kubeconfig context (default: the current context)")
	fl.StringVarP(namespace, "namespace", "n", kubeschema.DefaultNamespace, "namespace of drmfilter's objects")
}

func deployKubernetes(cmd *cobra.Command, s Streams, f *deployKubernetesFlags) error {
	switch f.dryRun {
	case kubeDryRunNone, kubeDryRunClient, kubeDryRunServer:
	default:
		return withCode(exitcode.Usage, fmt.Errorf("--dry-run=%q: want client or server", f.dryRun))
	}
	if err := kubernetes.CheckFormat(f.output); err != nil {
		return withCode(exitcode.Usage, err)
	}
	if cmd.Flags().Changed("output") && f.dryRun == kubeDryRunNone {
		return withCode(exitcode.Usage, errors.New("-o/--output formats the objects --dry-run prints; add --dry-run"))
	}
	if len(f.policies) == 0 {
		return withCode(exitcode.Usage, errors.New("no policy given: add --policy FILE or --policy DIR (`drmfilter policy check` validates them)"))
	}
	maxUnavailable, err := kubernetes.ParseMaxUnavailable(f.maxUnavailable)
	if err != nil {
		return withCode(exitcode.Usage, fmt.Errorf("--max-unavailable: %w", err))
	}

	pols, err := kubernetes.ReadPolicies(f.policies, policy.LoadOptions{})
	if err != nil {
		return kubeDeployPolicyError(s, err)
	}
	m, err := kubernetes.Build(kubernetes.Options{
		Namespace:      f.namespace,
		Image:          f.image,
		MaxUnavailable: maxUnavailable,
		RuntimeSocket:  f.runtimeSocket,
		NoPodReader:    !f.watchPods,
	}, pols)
	if err != nil {
		return withCode(exitcode.Usage, err)
	}
	if f.dryRun == kubeDryRunClient {
		if err := kubernetes.Encode(s.Out, f.output, m.Objects()); err != nil {
			return withCode(exitcode.Failure, err)
		}
		return nil
	}

	cs, err := kubernetes.NewClient(f.client)
	if err != nil {
		return withCode(exitcode.Failure, err)
	}
	opts := kubernetes.ApplyOptions{Force: f.force, ServerDryRun: f.dryRun == kubeDryRunServer}
	suffix := ""
	report := s.Out
	if opts.ServerDryRun {
		// The objects go to standard output; the summary beside them.
		suffix, report = " (server dry run)", s.Err
	}
	opts.Report = func(r kubernetes.Result) {
		if r.Action == kubernetes.Skipped {
			fmt.Fprintf(report, "%s not checked (server dry run): namespace %s does not exist yet, and the server cannot check objects in it\n", r.Ref, f.namespace)
			return
		}
		if r.Note != "" {
			fmt.Fprintf(report, "%s %s%s: %s\n", r.Ref, r.Action, suffix, r.Note)
			return
		}
		fmt.Fprintf(report, "%s %s%s\n", r.Ref, r.Action, suffix)
	}
	results, err := kubernetes.Apply(cmd.Context(), cs, m, opts)
	if err != nil {
		var ce *kubernetes.ConflictError
		if errors.As(err, &ce) {
			return withCode(exitcode.Failure, fmt.Errorf("%w\nnothing after %s was applied; run again with --force-conflicts to take these fields over, or undo the other manager's change", err, ce.Ref))
		}
		if errors.Is(err, kubernetes.ErrPodReader) && apierrors.IsForbidden(err) {
			return withCode(exitcode.Failure, fmt.Errorf("%w\nthese credentials may not grant the agents cluster-wide read access to pods; ask a cluster administrator, or deploy with --watch-pods=false (the agents then use the labels pods were created with)", err))
		}
		return withCode(exitcode.Failure, err)
	}
	if opts.ServerDryRun {
		objs := make([]any, 0, len(results))
		for _, r := range results {
			if r.Object != nil {
				objs = append(objs, r.Object)
			}
		}
		if err := kubernetes.Encode(s.Out, f.output, objs); err != nil {
			return withCode(exitcode.Failure, err)
		}
		return nil
	}
	fmt.Fprintf(s.Out, "policy %s in configmap %s/%s\n", kubeschema.ShortHash(pols.Set.Hash), f.namespace, kubeschema.PolicyConfigMap)
	return nil
}

// kubeDeployPolicyError reports policies that cannot be deployed the way
// `drmfilter policy check` reports them, with exit code 3.
func kubeDeployPolicyError(s Streams, err error) error {
	perrs := policy.Errors(err)
	if perrs == nil {
		return withCode(exitcode.PolicyInvalid, err)
	}
	for _, e := range perrs {
		fmt.Fprintln(s.Err, e)
	}
	fmt.Fprintf(s.Err, "%d problem(s) found; nothing was sent to the cluster\n", len(perrs))
	return withCode(exitcode.PolicyInvalid, nil)
}

type undeployKubernetesFlags struct {
	client        kubernetes.ClientOptions
	namespace     string
	keepNamespace bool
}

func newUndeployKubernetesCommand(s Streams) *cobra.Command {
	f := undeployKubernetesFlags{}
	cmd := &cobra.Command{
		Use:   "kubernetes [flags]",
		Short: "Remove drmfilter from a Kubernetes cluster",
		Long: `Remove what 'drmfilter deploy kubernetes' created: the DaemonSet (its pods
stop, and the kernel allows whatever they had not answered), the RoleBinding
and Role, the pod reader ClusterRoleBinding and ClusterRole of this namespace
(only if they carry the label app.kubernetes.io/managed-by=drmfilter), the
policy ConfigMap and ServiceAccount, the agents' node status Leases, and then
the namespace, unless --keep-namespace is given or the namespace was not made
by deploy alone. Prints one line per object removed; objects already gone
are skipped, so it can be run again.`,
		Example: `  drmfilter undeploy kubernetes
  drmfilter undeploy kubernetes --context staging --namespace security --keep-namespace`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cs, err := kubernetes.NewClient(f.client)
			if err != nil {
				return withCode(exitcode.Failure, err)
			}
			removed, err := kubernetes.Undeploy(cmd.Context(), cs, kubernetes.UndeployOptions{
				Namespace:     f.namespace,
				KeepNamespace: f.keepNamespace,
				Report:        func(line string) { fmt.Fprintln(s.Out, line) },
			})
			if err != nil {
				return withCode(exitcode.Failure, err)
			}
			if len(removed) == 0 {
				fmt.Fprintf(s.Out, "nothing to remove in namespace %s\n", f.namespace)
			}
			return nil
		},
	}
	addKubeClusterFlags(cmd, &f.client, &f.namespace)
	cmd.Flags().BoolVar(&f.keepNamespace, "keep-namespace", false, "leave the namespace in place")
	return cmd
}
