// SPDX-License-Identifier: GPL-2.0-only
/*
 * drmfilter's BPF-LSM programs: every decision about a protected file is
 * taken here, in the kernel, without a round trip to the agent.
 *
 * What user space gives the kernel (see internal/bpflsm):
 *   files:    (dev, ino) of a covered file or directory -> its class
 *   places:   (dev, directory inode, kind, hash) -> the class of the files
 *             a directory holds: by name (a path the policies name
 *             literally), by extension or all, directly in it (a policy's
 *             DIR/STAR) or anywhere below it (DIR/STAR-STAR); a directory with
 *             entries has them all (PL_HERE marks it), those its
 *             ancestors' policies give included
 *   sbs:      dev -> SB_* flags: what places has on that filesystem
 *   classes:  class -> the rules that can decide for its files, in
 *             precedence order (enforcing rules first, then audit-mode ones)
 *   rules:    rule -> operations, effect, which subject parts it names
 *   rule_exe, rule_uid, rule_gid: the subject parts, by (rule, value)
 * The kernel takes the first enforcing rule whose operations and subject
 * match (allow when none does) and the first audit-mode one, as the
 * user-space engine does (policy.Matcher.Candidates).
 *
 * A file is covered through files (its inode, wherever it is reached:
 * any name, bind mount, mount namespace or handle), else through its
 * directory's places (its name, its extension, every file), else through
 * the places of the nearest ancestor that has any, so a file created in,
 * linked or renamed into a covered directory is covered from that moment. A covered file
 * renamed or linked out of its tree gets its own entry first, so it stays
 * covered.
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

#define EPERM 1

/* Operations, as rules name them (internal/bpflsm: kop*). */
#define OP_OPEN (1u << 0)
#define OP_EXEC (1u << 1)
#define OP_READ (1u << 2)
#define OP_WRITE (1u << 3)
#define OP_DELETE (1u << 4)
#define OP_RENAME (1u << 5)
#define OP_LINK (1u << 6)
#define OP_TRUNCATE (1u << 7)
#define OP_SETATTR (1u << 8)

/* Rule effects. */
#define EFFECT_ALLOW 1
#define EFFECT_AUDIT 2
#define EFFECT_DENY 3

/* Rule flags: which subject parts a rule names. */
#define RULE_EXE (1u << 0)
#define RULE_UID (1u << 1)
#define RULE_GID (1u << 2)
#define RULE_SCRIPT (1u << 3)

/* Event flags. */
#define EV_DENY (1u << 0)
#define EV_AUDIT (1u << 1)
#define EV_WOULD_DENY (1u << 2)
#define EV_UNPLACED (1u << 3) /* deeper than the walk: decided as covered by no rule, denied */
#define EV_NO_CLASS (1u << 4) /* a class or rule missing from the maps: denied */
#define EV_INDEX_FULL (1u << 5) /* a covered file could not keep its own entry: denied */

#define MAX_CLASS_RULES 32
#define MAX_DEPTH 256
#define MAX_GROUPS 32

/* Counters (per CPU). */
#define CNT_COVERED 0
#define CNT_DENIED 1
#define CNT_WOULD_DENY 2
#define CNT_LOST 3
#define CNT_MAX 4

/* File flags. */
#define FILE_KEPT (1u << 0) /* added by the kernel when a file left its tree */

struct fkey {
	u32 dev;
	u32 pad;
	u64 ino;
};

struct fval {
	u32 cls;
	u32 flags;
};

struct cls {
	u32 n;         /* rules in rule[] */
	u32 n_enforce; /* of which the first n_enforce are from enforcing policies */
	u32 rule[MAX_CLASS_RULES];
};

struct rule {
	u32 ops;
	u32 effect;
	u32 flags;
	u32 pad;
};

/* A subject part of a rule: an executable (its dev and inode), a uid or a
 * gid. */
#define SUBJ_EXE 1
#define SUBJ_UID 2
#define SUBJ_GID 3
#define SUBJ_SCRIPT 4

struct rkey {
	u32 rule;
	u32 kind; /* SUBJ_* */
	u32 dev;  /* SUBJ_EXE: the executable's device; 0 otherwise */
	u32 pad;
	u64 val;  /* SUBJ_EXE: its inode; the uid or gid otherwise */
};

struct config {
	u32 ops;        /* every operation some rule names */
	u32 generation; /* the policy generation these maps hold */
};

/* pinfo flags: what the task ran besides its executable since its exec.
 * A tainted task has no allowance a rule gives by executable: the code
 * it runs is not only the file the rule names. */
#define P_FRESH (1u << 0)        /* exec'd; its environment not looked at yet */
#define P_TAINT_ENV (1u << 1)    /* started with LD_PRELOAD or LD_AUDIT */
#define P_TAINT_MAP (1u << 2)    /* mapped an untrusted file executable */
#define P_TAINT_ANON (1u << 3)   /* made anonymous memory executable */
#define P_TAINT_PTRACE (1u << 4) /* attached to by another process (ptrace, /proc/PID/mem, process_vm_writev) */
#define P_TAINTS (P_TAINT_ENV | P_TAINT_MAP | P_TAINT_ANON | P_TAINT_PTRACE)

struct pinfo {
	u32 exe_dev;
	u32 flags;
	u64 exe_ino;
};

/* Records in the ring buffer start with their kind. */
#define EV_KIND_DECISION 1
#define EV_KIND_EXE 2
#define EV_KIND_TAMPER 3

struct event {
	u32 kind;  /* EV_KIND_DECISION */
	u32 taint; /* the subject's P_TAINT_* flags */
	u64 ino;
	u64 exe_ino;
	u64 cgroup;
	u32 dev;
	u32 exe_dev;
	u32 pid;
	u32 tgid;
	u32 uid;
	u32 gid;
	u32 op;
	u32 rule;       /* the enforcing rule that decided, plus one; 0: none */
	u32 would_rule; /* the audit-mode rule, plus one; 0: none */
	u32 flags;
	u32 generation;
	u32 pad;
	u64 parent_ino; /* the directory the name below is in */
	char comm[16];
	char name[64]; /* the file's name in that directory (cut at 63 bytes) */
};

/* An executable seen at an exec for the first time (as far as the seen
 * map remembers), with the name the exec was given: the agent names the
 * executable of a process that is gone by the time its records are
 * written. */
struct exe_event {
	u32 kind; /* EV_KIND_EXE */
	u32 dev;
	u64 ino;
	char path[256];
};

/* What a tamper record says was refused (internal/bpflsm: Tamper*). */
#define TAMPER_SIGNAL 1      /* arg: the signal */
#define TAMPER_PTRACE 2      /* arg: the ptrace mode */
#define TAMPER_BPF_MAP 3     /* arg: the map's id */
#define TAMPER_BPF_PROG 4    /* arg: the program's id */
#define TAMPER_BPF_LINK 5    /* arg: the link's id */
#define TAMPER_PIN 6         /* a pin removed or renamed; target: the pin's inode */
#define TAMPER_UMOUNT 7      /* the pins' filesystem, or one it is mounted below */
#define TAMPER_EXEC_TRACED 8 /* the agent's executable started under a tracer */
#define TAMPER_FILE 9        /* one of the agent's files changed; arg: SEAL_* asked; target: the file */
#define TAMPER_KERNEL_LOAD 10 /* a module or kexec image loaded (GUARD_LOCK_KERNEL); arg: its kernel_read_file_id */

/* A refused attempt on the agent or its kernel objects. */
struct tamper_event {
	u32 kind; /* EV_KIND_TAMPER */
	u32 what; /* TAMPER_* */
	u32 pid;
	u32 tgid;
	u32 uid;
	u32 gid;
	u32 exe_dev;
	u32 arg;
	u64 exe_ino;
	u64 target_ino;
	u32 target_dev;
	u32 target_pid; /* TAMPER_SIGNAL, TAMPER_PTRACE: the task aimed at */
	char comm[16];
};

/* Referenced so that their types are in the object's BTF, for bpf2go. */
const struct event *unused_event __attribute__((unused));
const struct exe_event *unused_exe_event __attribute__((unused));
const struct tamper_event *unused_tamper_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct fkey);
	__type(value, u8);
} seen SEC(".maps");

/* Sizes are set by user space before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct fkey);
	__type(value, struct fval);
} files SEC(".maps");

/* Kinds of places. */
#define PL_HERE 1      /* the directory has places */
#define PL_NAME 2      /* hash: name_hash of a name in it */
#define PL_CHILD_EXT 3 /* hash: ext_hash of an extension, files directly in it */
#define PL_CHILD_ANY 4 /* every file directly in it */
#define PL_TREE_EXT 5  /* hash: ext_hash, files anywhere below it */
#define PL_TREE_ANY 6  /* every file anywhere below it */

struct pkey {
	u32 dev;
	u32 kind;
	u64 dir;
	u64 hash;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct pkey);
	__type(value, struct fval);
} places SEC(".maps");

struct nkey {
	u32 dev;
	u32 pad;
	u64 dir;  /* the directory's inode */
	u64 hash; /* FNV-1a 64 of the name's bytes */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct nkey);
	__type(value, struct exe_rules);
} exe_names SEC(".maps");

#define SB_PLACES (1u << 0)
#define SB_NAMES (1u << 1) /* some PL_NAME */
#define SB_EXTS (1u << 2)  /* some PL_*_EXT */
#define SB_EXES (1u << 3)  /* some executable path the rules name is on this filesystem */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u32);
} sbs SEC(".maps");

#define NAME_MAX 255

struct namebuf {
	char b[NAME_MAX + 1];
};

/* Scratch space for a name: too big for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct namebuf);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cls);
} classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct rule);
} rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1);
	__type(key, struct rkey);
	__type(value, u8);
} rule_subj SEC(".maps");

/* The executables rules name, by path: (dev, directory inode, hash of
 * the name) -> the rules naming that path. A file renamed or linked to
 * such a path (a package manager installs by rename) becomes the
 * executable those rules mean at once, and the file it replaces no longer
 * is. */
#define MAX_EXE_RULES 16

struct exe_rules {
	u32 n;
	u32 rule[MAX_EXE_RULES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct config);
} settings SEC(".maps");

/* Shared by every generation of the programs (user space hands the same
 * maps to each). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct pinfo);
} procs SEC(".maps");

/* sinfo is the script a task's exec ran: the file execve named when the
 * kernel then started an interpreter for it (its "#!" line, or
 * binfmt_misc), 0 when the exec named the binary itself. pend is the file
 * the exec under way named, until it commits. A map of its own, not in
 * pinfo, so that procs keeps its layout for a takeover. */
struct sinfo {
	u32 dev;
	u32 pend_dev;
	u64 ino;
	u64 pend_ino;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sinfo);
} scripts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

/* The agent and what guards it, shared by every generation (and by the
 * agent that takes over the pinned programs from one that is gone).
 * agent_tgid and agent_start name the running agent: a process ID alone
 * could be reused once it exits. */
#define GUARD_PROTECT (1u << 0) /* refuse other processes' signals, ptrace, bpf access, pin removal */
#define GUARD_SEALED (1u << 1)  /* the sealed map holds the agent's files */
#define GUARD_SUCC (1u << 2)    /* the file renamed or linked to succ_* becomes the trusted executable */
#define GUARD_KEYED (1u << 3)   /* administration needs a signature: the agent's executable alone may not name a successor */
#define GUARD_LOCK_KERNEL (1u << 4) /* refuse loading kernel modules and kexec images, to every process */

#define MAX_GUARD_DEVS 4

struct guard_state {
	u32 agent_tgid;
	u32 flags;
	u64 agent_start; /* its start, in the clock ticks of /proc/PID/stat (1/100 s) */
	u32 exe_dev;     /* the agent's executable: the program trusted to take over */
	u32 pin_dev;     /* the filesystem of the pins, and its directory */
	u64 exe_ino;
	u64 pin_ino;
	u32 umount_dev[MAX_GUARD_DEVS]; /* filesystems that may not be unmounted: the pins' and those it is below */
	u32 succ_dev; /* GUARD_SUCC: the name (directory, hash) an upgrade installs the new executable at */
	u32 pad;
	u64 succ_dir;
	u64 succ_hash;
};

/* The agent's own files (its executable, configuration, policies, keys,
 * audit log, sockets' directory): (dev, ino) -> SEAL_* of what is refused
 * to every other process. */
#define SEAL_CONTENT (1u << 0) /* write, truncate, chmod, chown, xattrs */
#define SEAL_NAME (1u << 1)    /* unlink, rename, hard link of it */
#define SEAL_ENTRIES (1u << 2) /* a directory: entries created, removed or renamed in it */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fkey);
	__type(value, u32);
} sealed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct guard_state);
} guard SEC(".maps");

/* The agent's own maps, programs and links: (OWN_* << 32 | id) -> 1. */
#define OWN_MAP 1ull
#define OWN_PROG 2ull
#define OWN_LINK 3ull

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, u64);
	__type(value, u8);
} owned SEC(".maps");

static __always_inline void count(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&counters, &idx);
	if (c)
		*c += 1;
}

static __always_inline struct config *cfg(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&settings, &zero);
}

static __always_inline struct guard_state *guard_get(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&guard, &zero);
}

#define TICK_NS 10000000ull /* USER_HZ 100: /proc/PID/stat's clock tick */

/* is_agent_task: t is a thread of the running agent. */
static __always_inline bool is_agent_task(struct task_struct *t, struct guard_state *g)
{
	if (!g || !g->agent_tgid || (u32)BPF_CORE_READ(t, tgid) != g->agent_tgid)
		return false;
	return BPF_CORE_READ(t, group_leader, start_boottime) / TICK_NS == g->agent_start;
}

static __always_inline bool is_agent(struct guard_state *g)
{
	return is_agent_task(bpf_get_current_task_btf(), g);
}

/* The subject: the calling task's executable as recorded at its exec
 * (prctl(PR_SET_MM_EXE_FILE) cannot change that), else as its mm says
 * (a task that started before the programs were loaded), and its real
 * uid and gid. */
struct subject {
	u32 exe_dev;
	u32 taint; /* P_TAINT_* */
	u64 exe_ino;
	u32 uid;
	u32 gid;
};

static __always_inline void current_subject(struct subject *s)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pinfo *pi = bpf_task_storage_get(&procs, task, 0, 0);
	s->taint = 0;
	if (pi) {
		s->exe_dev = pi->exe_dev;
		s->exe_ino = pi->exe_ino;
		s->taint = pi->flags & P_TAINTS;
	} else {
		struct task_struct *t = (struct task_struct *)bpf_get_current_task();
		struct file *exe = BPF_CORE_READ(t, mm, exe_file);
		if (exe) {
			s->exe_dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
			s->exe_ino = BPF_CORE_READ(exe, f_inode, i_ino);
		} else {
			s->exe_dev = 0;
			s->exe_ino = 0;
		}
	}
	u64 ug = bpf_get_current_uid_gid();
	s->uid = (u32)ug;
	s->gid = (u32)(ug >> 32);
}

static __always_inline bool has(u32 rule, u32 kind, u32 dev, u64 val)
{
	struct rkey k = {.rule = rule, .kind = kind, .dev = dev, .val = val};
	return bpf_map_lookup_elem(&rule_subj, &k) != 0;
}

/* Whether the rule's group part holds: the real gid or any supplementary
 * group of the current task. Only the first MAX_GROUPS supplementary
 * groups are looked at (see the README's limits). */
__attribute__((noinline)) int group_ok(u32 rule, u32 gid)
{
	if (has(rule, SUBJ_GID, 0, gid))
		return 1;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct group_info *gi = BPF_CORE_READ(t, cred, group_info);
	if (!gi)
		return 0;
	int n = BPF_CORE_READ(gi, ngroups);
	for (int i = 0; i < MAX_GROUPS; i++) {
		if (i >= n)
			break;
		kgid_t g;
		if (bpf_probe_read_kernel(&g, sizeof(g), &gi->gid[i]))
			break;
		if (has(rule, SUBJ_GID, 0, g.val))
			return 1;
	}
	return 0;
}

static __always_inline bool subject_ok(u32 rid, struct rule *r, struct subject *s)
{
	if ((r->flags & RULE_EXE) && (s->taint || !has(rid, SUBJ_EXE, s->exe_dev, s->exe_ino)))
		return false;
	if ((r->flags & RULE_UID) && !has(rid, SUBJ_UID, 0, s->uid))
		return false;
	if ((r->flags & RULE_GID) && !group_ok(rid, s->gid))
		return false;
	if (r->flags & RULE_SCRIPT) {
		/* Looked up only for rules that name scripts. */
		struct sinfo *si = bpf_task_storage_get(&scripts, bpf_get_current_task_btf(), 0, 0);
		if (s->taint || !si || !si->ino || !has(rid, SUBJ_SCRIPT, si->dev, si->ino))
			return false;
	}
	return true;
}

struct outcome {
	u32 rule;       /* the enforcing rule that decided, plus one */
	u32 would_rule; /* the audit-mode rule, plus one */
	u32 flags;
	/* For merging the outcomes of several operations: the strength of
	 * each named rule (deny 3, audit 2, allow 1; would-deny 2, audit 1)
	 * and its precedence rank (its position in the class). */
	u32 sev, pos;
	u32 would_sev, would_pos;
};

/* decide applies class cls's rules to operation op by the subject s. The
 * rules are walked with bpf_loop, so the verifier checks one step rather
 * than every path through MAX_CLASS_RULES of them. */
struct decide_ctx {
	u32 cls;
	u32 op;
	bool enforced;
	struct subject s;
	struct outcome o;
};

static long decide_step(u32 i, void *data)
{
	struct decide_ctx *x = data;
	struct cls *c = bpf_map_lookup_elem(&classes, &x->cls);
	if (!c) {
		x->o.flags = EV_DENY | EV_AUDIT | EV_NO_CLASS;
		return 1;
	}
	if (i >= MAX_CLASS_RULES || i >= c->n)
		return 1;
	bool auditing = i >= c->n_enforce;
	if (!auditing && x->enforced)
		return 0;
	if (auditing && (x->o.flags & EV_DENY))
		return 1; /* denied: audit-mode rules have nothing to add */
	/* A bound the verifier sees: the compiler would otherwise drop the
	 * mask as implied by the check above, which the verifier does not
	 * connect to i. */
	u32 idx = i;
	asm volatile("" : "+r"(idx));
	idx &= MAX_CLASS_RULES - 1;
	u32 rid = c->rule[idx];
	struct rule *r = bpf_map_lookup_elem(&rules, &rid);
	if (!r) {
		x->o.flags = EV_DENY | EV_AUDIT | EV_NO_CLASS;
		return 1;
	}
	if (!(r->ops & x->op) || !subject_ok(rid, r, &x->s))
		return 0;
	if (!auditing) {
		x->enforced = true;
		x->o.rule = rid + 1;
		x->o.pos = i;
		x->o.sev = 1;
		if (r->effect == EFFECT_DENY) {
			x->o.flags |= EV_DENY | EV_AUDIT;
			x->o.sev = 3;
		} else if (r->effect == EFFECT_AUDIT) {
			x->o.flags |= EV_AUDIT;
			x->o.sev = 2;
		}
		return 0;
	}
	/* The first audit-mode rule that matches decides what is recorded,
	 * an allow as much as the others. */
	x->o.would_pos = i;
	if (r->effect == EFFECT_DENY) {
		x->o.would_rule = rid + 1;
		x->o.flags |= EV_WOULD_DENY | EV_AUDIT;
		x->o.would_sev = 2;
	} else if (r->effect == EFFECT_AUDIT) {
		x->o.would_rule = rid + 1;
		x->o.flags |= EV_AUDIT;
		x->o.would_sev = 1;
	}
	return 1;
}

/* merge adds one operation's outcome to an event's: deny if either
 * denies, and the rule named is the strongest one's (deny, then audit,
 * then allow), the one that takes precedence on a tie, as Decide names
 * it. */
static __always_inline void merge(struct outcome *m, struct outcome *o)
{
	if (o->sev > m->sev || (o->sev && o->sev == m->sev && o->pos < m->pos)) {
		m->rule = o->rule;
		m->sev = o->sev;
		m->pos = o->pos;
	}
	if (o->would_sev > m->would_sev || (o->would_sev && o->would_sev == m->would_sev && o->would_pos < m->would_pos)) {
		m->would_rule = o->would_rule;
		m->would_sev = o->would_sev;
		m->would_pos = o->would_pos;
	}
	m->flags |= o->flags & (EV_DENY | EV_AUDIT | EV_NO_CLASS | EV_WOULD_DENY);
}

#define MAX_EXTS 4
#define MAX_EXT_LEN 32 /* policy: maxExtLen */

/* The name of the file being placed and its extensions, read once. */
struct place_ctx {
	u64 cur; /* struct dentry * of the directory looked at, read with probe reads */
	u64 dir; /* the inode of the nearest ancestor with places, once found */
	u32 dev;
	int found; /* 1: found, -1: not covered */
	u32 n;     /* the name's length */
	u64 name;  /* name_hash */
	u64 h;     /* running ext_hash, from the end */
	u32 suffix;
	u32 n_ext;
	u64 ext[MAX_EXTS]; /* ext_hash of the extension after each of the last dots, the last dot first */
};

static long name_step(u32 i, void *data)
{
	struct place_ctx *x = data;
	u32 zero = 0;
	struct namebuf *nb = bpf_map_lookup_elem(&scratch, &zero);
	if (!nb || i >= x->n)
		return 1;
	u32 idx = i;
	asm volatile("" : "+r"(idx));
	idx &= NAME_MAX;
	x->name ^= (u8)nb->b[idx];
	x->name *= 0x100000001b3ULL;
	return 0;
}

/* ext_step walks the name from its end: the extension after a dot (not
 * the first byte) is hashed as FNV-1a 64 of its lower-cased bytes taken
 * backwards (internal/bpflsm: extHash). */
static long ext_step(u32 i, void *data)
{
	struct place_ctx *x = data;
	u32 zero = 0;
	struct namebuf *nb = bpf_map_lookup_elem(&scratch, &zero);
	if (!nb || i + 1 >= x->n)
		return 1; /* byte 0 is never a dot that starts an extension */
	u32 idx = x->n - 1 - i;
	asm volatile("" : "+r"(idx));
	idx &= NAME_MAX;
	u8 c = nb->b[idx];
	if (c == '.' && x->suffix >= 1 && x->suffix <= MAX_EXT_LEN && x->n_ext < MAX_EXTS) {
		u32 e = x->n_ext;
		asm volatile("" : "+r"(e));
		e &= MAX_EXTS - 1;
		x->ext[e] = x->h;
		x->n_ext++;
	}
	if (c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	x->h ^= c;
	x->h *= 0x100000001b3ULL;
	x->suffix++;
	return 0;
}

static __always_inline struct fval *lookup_place(struct place_ctx *x, u64 dir, u32 kind, u64 hash)
{
	struct pkey k = {.dev = x->dev, .kind = kind, .dir = dir, .hash = hash};
	return bpf_map_lookup_elem(&places, &k);
}

/* by_ext looks up a kind of extension place for the name's extensions,
 * the longest first. */
static __always_inline struct fval *by_ext(struct place_ctx *x, u64 dir, u32 kind)
{
	for (int j = MAX_EXTS - 1; j >= 0; j--) {
		if ((u32)j >= x->n_ext)
			continue;
		struct fval *v = lookup_place(x, dir, kind, x->ext[j]);
		if (v)
			return v;
	}
	return 0;
}

static long place_step(u32 i, void *data)
{
	struct place_ctx *x = data;
	struct dentry *cur = (struct dentry *)x->cur;
	u64 dir = BPF_CORE_READ(cur, d_inode, i_ino);
	if (lookup_place(x, dir, PL_HERE, 0)) {
		/* A directory with places has them all: found here or nowhere. */
		x->found = 1;
		x->dir = dir;
		return 1;
	}
	struct dentry *parent = BPF_CORE_READ(cur, d_parent);
	if (!parent || parent == cur) {
		x->found = -1;
		return 1;
	}
	x->cur = (u64)parent;
	return 0;
}

/* hash_name reads the name of d and hashes what the filesystem's places
 * need of it (SB_NAMES: the whole name, SB_EXTS: its extensions). */
static __always_inline void hash_name(struct dentry *d, struct place_ctx *x, u32 what)
{
	u32 zero = 0;
	struct namebuf *nb = bpf_map_lookup_elem(&scratch, &zero);
	if (!nb || !what)
		return;
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n = bpf_probe_read_kernel_str(nb->b, sizeof(nb->b), name);
	if (n <= 1)
		return;
	x->n = (u32)(n - 1);
	if (what & SB_NAMES)
		bpf_loop(NAME_MAX + 1, name_step, x, 0);
	if (what & SB_EXTS)
		bpf_loop(NAME_MAX + 1, ext_step, x, 0);
}

/* name_hash is FNV-1a 64 of the dentry's name (internal/bpflsm:
 * nameHash); 0 when it cannot be read. */
static __always_inline u64 name_hash(struct dentry *d)
{
	struct place_ctx x = {.name = 0xcbf29ce484222325ULL};
	hash_name(d, &x, SB_NAMES);
	return x.n ? x.name : 0;
}

/* place finds the class of the file at dentry d (inode ino on dev): its
 * own entry, else its directory's places, else the nearest ancestor's
 * with any. 0: not covered. The name is read and hashed only once a
 * directory with places is found: a file outside every place costs the
 * walk alone. */
static __always_inline int place(struct dentry *d, u32 dev, u64 ino, u32 *cls, u32 *flags)
{
	struct fkey k = {.dev = dev, .ino = ino};
	struct fval *v = bpf_map_lookup_elem(&files, &k);
	if (v) {
		*cls = v->cls;
		return 1;
	}
	u32 *sb = bpf_map_lookup_elem(&sbs, &dev);
	if (!sb || !(*sb & SB_PLACES))
		return 0;
	u32 sbf = *sb;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (!parent || parent == d)
		return 0; /* a filesystem's root */
	struct place_ctx x = {.dev = dev, .name = 0xcbf29ce484222325ULL, .h = 0xcbf29ce484222325ULL};
	u64 dir = BPF_CORE_READ(parent, d_inode, i_ino);
	if (lookup_place(&x, dir, PL_HERE, 0)) {
		hash_name(d, &x, sbf & (SB_NAMES | SB_EXTS));
		v = 0;
		if (sbf & SB_NAMES)
			v = lookup_place(&x, dir, PL_NAME, x.name);
		if (!v)
			v = by_ext(&x, dir, PL_CHILD_EXT);
		if (!v)
			v = lookup_place(&x, dir, PL_CHILD_ANY, 0);
		if (!v)
			return 0;
		*cls = v->cls;
		return 1;
	}
	struct dentry *up = BPF_CORE_READ(parent, d_parent);
	if (!up || up == parent)
		return 0;
	x.cur = (u64)up;
	bpf_loop(MAX_DEPTH, place_step, &x, 0);
	if (x.found == 1) {
		hash_name(d, &x, sbf & SB_EXTS);
		v = by_ext(&x, x.dir, PL_TREE_EXT);
		if (!v)
			v = lookup_place(&x, x.dir, PL_TREE_ANY, 0);
		if (!v)
			return 0;
		*cls = v->cls;
		return 1;
	}
	if (x.found == -1)
		return 0;
	*flags |= EV_UNPLACED;
	return 1;
}

static __always_inline void emit(struct dentry *d, u32 op, u32 dev, u64 ino, struct subject *s, struct outcome *o, u32 gen)
{
	if (o->flags & EV_DENY)
		count(CNT_DENIED);
	if (o->flags & EV_WOULD_DENY)
		count(CNT_WOULD_DENY);
	if (!(o->flags & EV_AUDIT))
		return;
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CNT_LOST);
		return;
	}
	u64 pt = bpf_get_current_pid_tgid();
	e->kind = EV_KIND_DECISION;
	e->ino = ino;
	e->exe_ino = s->exe_ino;
	e->cgroup = bpf_get_current_cgroup_id();
	e->dev = dev;
	e->exe_dev = s->exe_dev;
	e->pid = (u32)pt;
	e->tgid = (u32)(pt >> 32);
	e->uid = s->uid;
	e->gid = s->gid;
	e->op = op;
	e->rule = o->rule;
	e->would_rule = o->would_rule;
	e->flags = o->flags;
	e->generation = gen;
	e->pad = 0;
	e->taint = s->taint;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->parent_ino = BPF_CORE_READ(d, d_parent, d_inode, i_ino);
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	if (bpf_probe_read_kernel_str(e->name, sizeof(e->name), name) < 0)
		e->name[0] = 0;
	bpf_ringbuf_submit(e, 0);
}

/* tamper reports a refused attempt on the agent or its objects. */
static __always_inline void tamper(u32 what, u32 arg, u32 tdev, u64 tino, u32 tpid)
{
	struct tamper_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CNT_LOST);
		return;
	}
	struct subject s;
	current_subject(&s);
	u64 pt = bpf_get_current_pid_tgid();
	e->kind = EV_KIND_TAMPER;
	e->what = what;
	e->pid = (u32)pt;
	e->tgid = (u32)(pt >> 32);
	e->uid = s.uid;
	e->gid = s.gid;
	e->exe_dev = s.exe_dev;
	e->exe_ino = s.exe_ino;
	e->arg = arg;
	e->target_dev = tdev;
	e->target_ino = tino;
	e->target_pid = tpid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

/* trusted: the running agent, or a process running the agent's
 * executable that no one traces (an agent starting to take over the
 * pinned programs; its executable is the code trusted to do that). */
static __always_inline bool trusted(struct guard_state *g)
{
	if (is_agent(g))
		return true;
	struct task_struct *t = bpf_get_current_task_btf();
	if (BPF_CORE_READ(t, ptrace))
		return false;
	struct subject s;
	current_subject(&s);
	return g->exe_ino && !s.taint && s.exe_ino == g->exe_ino && s.exe_dev == g->exe_dev;
}

static __always_inline struct guard_state *guarding(void)
{
	struct guard_state *g = guard_get();
	if (!g || !(g->flags & GUARD_PROTECT))
		return 0;
	return g;
}

/* pin_guard refuses removing or renaming the pins (the entries of the pin
 * directory, or the directory itself) to all but trusted processes. */
static __always_inline int pin_guard(struct inode *dir, struct dentry *d)
{
	struct guard_state *g = guarding();
	if (!g || !g->pin_ino)
		return 0;
	if (BPF_CORE_READ(dir, i_sb, s_dev) != g->pin_dev)
		return 0;
	u64 ino = BPF_CORE_READ(d, d_inode, i_ino);
	if (BPF_CORE_READ(dir, i_ino) != g->pin_ino && ino != g->pin_ino)
		return 0;
	if (trusted(g))
		return 0;
	tamper(TAMPER_PIN, 0, g->pin_dev, ino, 0);
	return -EPERM;
}

/* seal refuses what a sealed file's SEAL_* flags in need forbid, to
 * all but the running agent. */
static __always_inline int seal(struct inode *in, u32 need)
{
	if (!in)
		return 0;
	struct guard_state *g = guarding();
	if (!g || !(g->flags & GUARD_SEALED))
		return 0;
	struct fkey k = {.dev = BPF_CORE_READ(in, i_sb, s_dev), .ino = BPF_CORE_READ(in, i_ino)};
	u32 *f = bpf_map_lookup_elem(&sealed, &k);
	if (!f || !(*f & need) || is_agent(g))
		return 0;
	tamper(TAMPER_FILE, need, k.dev, k.ino, 0);
	return -EPERM;
}

/* name_guard: the name d in directory dir is removed, renamed or
 * replaced: the pins, a sealed file's name, a sealed directory's entries. */
static __always_inline int name_guard(struct inode *dir, struct dentry *d)
{
	int ret = pin_guard(dir, d);
	if (!ret)
		ret = seal(dir, SEAL_ENTRIES);
	if (!ret)
		ret = seal(BPF_CORE_READ(d, d_inode), SEAL_NAME);
	return ret;
}

/* successor: an upgrade named the path its new executable is installed
 * at; the file renamed or linked there (newf, to name d in dir) becomes
 * the executable trusted to take the pinned programs over. */
static __always_inline void successor(struct inode *dir, struct dentry *d, struct inode *newf)
{
	struct guard_state *g = guard_get();
	if (!g || !(g->flags & GUARD_SUCC) || !newf)
		return;
	if (BPF_CORE_READ(dir, i_sb, s_dev) != g->succ_dev || BPF_CORE_READ(dir, i_ino) != g->succ_dir)
		return;
	if (name_hash(d) != g->succ_hash)
		return;
	g->exe_dev = BPF_CORE_READ(newf, i_sb, s_dev);
	g->exe_ino = BPF_CORE_READ(newf, i_ino);
	g->flags &= ~GUARD_SUCC;
}

/* check decides operation op on the file at dentry d: 0 or -EPERM. */
static __always_inline int check_dentry(struct dentry *d, u32 op)
{
	struct config *c = cfg();
	if (!c || !(c->ops & op))
		return 0;
	if (!d)
		return 0;
	struct inode *inode = BPF_CORE_READ(d, d_inode);
	if (!inode)
		return 0;
	u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);
	u64 ino = BPF_CORE_READ(inode, i_ino);
	u32 cls = 0;
	struct outcome o = {};
	if (!place(d, dev, ino, &cls, &o.flags))
		return 0;
	if (is_agent(guard_get()))
		return 0;
	count(CNT_COVERED);
	struct decide_ctx x = {.cls = cls};
	current_subject(&x.s);
	if (o.flags & EV_UNPLACED) {
		o.flags |= EV_DENY | EV_AUDIT;
	} else {
		/* An event of several operations (a writing open is open and
		 * write; a setattr may be truncate and setattr) is decided as
		 * each on its own, and denied if any is denied: the hooks give
		 * at most three at once. */
		u32 rest = op;
		for (int k = 0; k < 3 && rest; k++) {
			u32 bit = rest & -rest;
			rest &= ~bit;
			x.op = bit;
			x.enforced = false;
			x.o = (struct outcome){};
			bpf_loop(MAX_CLASS_RULES, decide_step, &x, 0);
			merge(&o, &x.o);
		}
		if (o.flags & EV_DENY)
			o.flags &= ~EV_WOULD_DENY;
	}
	emit(d, op, dev, ino, &x.s, &o, c->generation);
	return (o.flags & EV_DENY) ? -EPERM : 0;
}

/* keep gives a covered file that is about to be reached by another name
 * (a rename or a new hard link, perhaps outside its tree) an entry of its
 * own, so it stays covered wherever it goes. */
static __always_inline int keep(struct dentry *d, struct dentry *dest)
{
	struct inode *inode = BPF_CORE_READ(d, d_inode);
	if (!inode)
		return 0;
	u32 dev = BPF_CORE_READ(inode, i_sb, s_dev);
	u64 ino = BPF_CORE_READ(inode, i_ino);
	struct fkey k = {.dev = dev, .ino = ino};
	struct fval *own = bpf_map_lookup_elem(&files, &k);
	if (dest) {
		/* A rename of the file's only name to a place the policies
		 * cover: it is decided there as the policies say, like a file
		 * created there. An entry the kernel kept for it (it had left
		 * its place before) would keep its old rules: it goes. An
		 * entry of the agent's (its name needs one: another glob, an
		 * exclusion) stays, since the kernel cannot tell what the new
		 * name needs; the agent's next walk corrects it. */
		u32 dcls = 0, dflags = 0;
		if (BPF_CORE_READ(inode, i_nlink) <= 1 && place(dest, dev, 0, &dcls, &dflags) && !(dflags & EV_UNPLACED)) {
			if (own && (own->flags & FILE_KEPT))
				bpf_map_delete_elem(&files, &k);
			return 0;
		}
	}
	if (own)
		return 0;
	u32 cls = 0, flags = 0;
	if (!place(d, dev, ino, &cls, &flags) || (flags & EV_UNPLACED))
		return 0;
	struct fval v = {.cls = cls, .flags = FILE_KEPT};
	if (bpf_map_update_elem(&files, &k, &v, BPF_NOEXIST) && !bpf_map_lookup_elem(&files, &k)) {
		struct subject s;
		struct outcome o = {.flags = EV_DENY | EV_AUDIT | EV_INDEX_FULL};
		struct config *c = cfg();
		current_subject(&s);
		emit(d, OP_RENAME, dev, ino, &s, &o, c ? c->generation : 0);
		return -EPERM;
	}
	return 0;
}

/* opened_for_exec: the file was opened by an exec (its binary, or its
 * interpreter), which sets __FMODE_EXEC in f_flags (and FMODE_EXEC in
 * f_mode on the kernels that keep it there). */
static __always_inline bool opened_for_exec(struct file *file)
{
	return (BPF_CORE_READ(file, f_mode) & 0x20 /* FMODE_EXEC */) || (BPF_CORE_READ(file, f_flags) & 040 /* __FMODE_EXEC */);
}

SEC("lsm/file_open")
int BPF_PROG(file_open, struct file *file)
{
	fmode_t mode = BPF_CORE_READ(file, f_mode);
	u32 op = OP_OPEN;
	if (opened_for_exec(file))
		op = OP_EXEC; /* the open of an exec is the exec (as on fanotify, where the exec's grant answers its open) */
	else if (mode & 0x2 /* FMODE_WRITE */) {
		op |= OP_WRITE;
		int ret = seal(BPF_CORE_READ(file, f_inode), SEAL_CONTENT);
		if (ret)
			return ret;
	}
	struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
	return check_dentry(d, op);
}

SEC("lsm/file_permission")
int BPF_PROG(file_permission, struct file *file, int mask)
{
	if (!(mask & 0x4 /* MAY_READ */))
		return 0;
	if (opened_for_exec(file))
		return 0; /* the kernel reading what it executes: the exec decided */
	struct dentry *d = BPF_CORE_READ(file, f_path.dentry);
	return check_dentry(d, OP_READ);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(bprm_check_security, struct linux_binprm *bprm)
{
	struct guard_state *g = guard_get();
	if (g && (g->flags & GUARD_PROTECT) && g->exe_ino) {
		struct inode *in = BPF_CORE_READ(bprm, file, f_inode);
		struct task_struct *t = bpf_get_current_task_btf();
		if (BPF_CORE_READ(in, i_ino) == g->exe_ino && BPF_CORE_READ(in, i_sb, s_dev) == g->exe_dev &&
		    BPF_CORE_READ(t, ptrace)) {
			/* A tracer would own the process that may take over. */
			tamper(TAMPER_EXEC_TRACED, 0, g->exe_dev, g->exe_ino, 0);
			return -EPERM;
		}
	}
	/* The file execve named is looked at first (the interpreter a "#!"
	 * line names comes next, with interp changed): it is the script if
	 * the exec goes on to an interpreter. */
	if (BPF_CORE_READ(bprm, interp) == BPF_CORE_READ(bprm, filename)) {
		struct sinfo *si = bpf_task_storage_get(&scripts, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (si) {
			struct inode *in = BPF_CORE_READ(bprm, file, f_inode);
			si->pend_dev = BPF_CORE_READ(in, i_sb, s_dev);
			si->pend_ino = BPF_CORE_READ(in, i_ino);
		}
	}
	struct dentry *d = BPF_CORE_READ(bprm, file, f_path.dentry);
	return check_dentry(d, OP_EXEC);
}

/* The executable a task runs is recorded when its exec commits. */
SEC("lsm/bprm_committed_creds")
int BPF_PROG(bprm_committed_creds, struct linux_binprm *bprm)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pinfo *pi = bpf_task_storage_get(&procs, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!pi)
		return 0;
	struct file *f = BPF_CORE_READ(bprm, file);
	pi->exe_dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
	pi->exe_ino = BPF_CORE_READ(f, f_inode, i_ino);
	/* A new image: what the old one ran is gone, but a tracer stays. */
	pi->flags = P_FRESH;
	if (BPF_CORE_READ(task, ptrace))
		pi->flags |= P_TAINT_PTRACE;
	/* interp is filename unless an interpreter was started for it. */
	const char *interp = BPF_CORE_READ(bprm, interp);
	bool script = interp != BPF_CORE_READ(bprm, filename);
	struct sinfo *si = bpf_task_storage_get(&scripts, task, 0, 0);
	if (si) {
		si->dev = script ? si->pend_dev : 0;
		si->ino = script ? si->pend_ino : 0;
		si->pend_dev = 0;
		si->pend_ino = 0;
	}
	struct fkey k = {.dev = pi->exe_dev, .ino = pi->exe_ino};
	if (bpf_map_lookup_elem(&seen, &k))
		return 0;
	u8 one = 1;
	bpf_map_update_elem(&seen, &k, &one, BPF_ANY);
	struct exe_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(CNT_LOST);
		return 0;
	}
	e->kind = EV_KIND_EXE;
	e->dev = k.dev;
	e->ino = k.ino;
	/* The executable's name: for a script, the interpreter's. */
	if (bpf_probe_read_kernel_str(e->path, sizeof(e->path), interp) < 0)
		e->path[0] = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* A new task or thread runs what its parent runs. */
SEC("lsm/task_alloc")
int BPF_PROG(task_alloc, struct task_struct *task, unsigned long clone_flags)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct pinfo *parent = bpf_task_storage_get(&procs, cur, 0, 0);
	if (!parent)
		return 0;
	struct pinfo *pi = bpf_task_storage_get(&procs, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (pi)
		*pi = *parent;
	struct sinfo *ps = bpf_task_storage_get(&scripts, cur, 0, 0);
	if (ps && ps->ino) {
		struct sinfo *si = bpf_task_storage_get(&scripts, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (si) {
			si->dev = ps->dev;
			si->ino = ps->ino;
		}
	}
	return 0;
}


SEC("lsm/inode_rmdir")
int BPF_PROG(inode_rmdir, struct inode *dir, struct dentry *dentry)
{
	int ret = name_guard(dir, dentry);
	if (ret)
		return ret;
	return check_dentry(dentry, OP_DELETE);
}

struct follow_ctx {
	struct nkey key;
	u32 dev;
	u64 old_ino; /* the file the name held, 0 if none */
	u64 new_ino; /* the file that takes the name, 0 if none */
};

static long follow_step(u32 i, void *data)
{
	struct follow_ctx *x = data;
	struct exe_rules *er = bpf_map_lookup_elem(&exe_names, &x->key);
	if (!er || i >= er->n || i >= MAX_EXE_RULES)
		return 1;
	u32 idx = i;
	asm volatile("" : "+r"(idx));
	idx &= MAX_EXE_RULES - 1;
	struct rkey k = {.rule = er->rule[idx], .kind = SUBJ_EXE, .dev = x->dev};
	if (x->old_ino) {
		k.val = x->old_ino;
		bpf_map_delete_elem(&rule_subj, &k);
	}
	if (x->new_ino) {
		u8 one = 1;
		k.val = x->new_ino;
		bpf_map_update_elem(&rule_subj, &k, &one, BPF_ANY);
	}
	return 0;
}

/* follow updates the executables rules name when the name dentry (in
 * directory dir) is given to the file newf (NULL: the name goes away). */
static __always_inline void follow(struct inode *dir, struct dentry *name, struct inode *newf)
{
	u32 dev = BPF_CORE_READ(dir, i_sb, s_dev);
	u32 *sb = bpf_map_lookup_elem(&sbs, &dev);
	if (!sb || !(*sb & SB_EXES))
		return;
	struct follow_ctx x = {.dev = dev};
	x.key.dev = dev;
	x.key.dir = BPF_CORE_READ(dir, i_ino);
	x.key.hash = name_hash(name);
	if (!bpf_map_lookup_elem(&exe_names, &x.key))
		return;
	struct inode *old = BPF_CORE_READ(name, d_inode);
	x.old_ino = old ? BPF_CORE_READ(old, i_ino) : 0;
	x.new_ino = newf ? BPF_CORE_READ(newf, i_ino) : 0;
	bpf_loop(MAX_EXE_RULES, follow_step, &x, 0);
}

SEC("lsm/inode_rename")
int BPF_PROG(inode_rename, struct inode *old_dir, struct dentry *old_dentry, struct inode *new_dir,
	     struct dentry *new_dentry)
{
	int ret = name_guard(old_dir, old_dentry);
	if (ret)
		return ret;
	ret = name_guard(new_dir, new_dentry);
	if (ret)
		return ret;
	ret = check_dentry(old_dentry, OP_RENAME);
	if (ret)
		return ret;
	ret = check_dentry(new_dentry, OP_RENAME);
	if (ret)
		return ret;
	ret = keep(old_dentry, new_dentry);
	if (ret)
		return ret;
	/* The rename is allowed: the executables named by its two paths
	 * follow it (if the rename then fails, the name's rules allow a file
	 * that did not get the name, until the agent's next look). */
	follow(old_dir, old_dentry, 0);
	follow(new_dir, new_dentry, BPF_CORE_READ(old_dentry, d_inode));
	successor(new_dir, new_dentry, BPF_CORE_READ(old_dentry, d_inode));
	return 0;
}

SEC("lsm/inode_unlink")
int BPF_PROG(inode_unlink, struct inode *dir, struct dentry *dentry)
{
	int ret = name_guard(dir, dentry);
	if (ret)
		return ret;
	ret = check_dentry(dentry, OP_DELETE);
	if (!ret)
		follow(dir, dentry, 0); /* the path no longer holds the executable */
	return ret;
}

SEC("lsm/inode_link")
int BPF_PROG(inode_link, struct dentry *old_dentry, struct inode *dir, struct dentry *new_dentry)
{
	int ret = seal(BPF_CORE_READ(old_dentry, d_inode), SEAL_NAME);
	if (!ret)
		ret = seal(dir, SEAL_ENTRIES);
	if (ret)
		return ret;
	ret = check_dentry(old_dentry, OP_LINK);
	if (ret)
		return ret;
	ret = keep(old_dentry, 0);
	if (ret)
		return ret;
	follow(dir, new_dentry, BPF_CORE_READ(old_dentry, d_inode));
	successor(dir, new_dentry, BPF_CORE_READ(old_dentry, d_inode));
	return 0;
}

/* Entries made in a sealed directory (a policy dropped in, a symbolic
 * link to one elsewhere). */
SEC("lsm/inode_create")
int BPF_PROG(inode_create, struct inode *dir, struct dentry *dentry, umode_t mode)
{
	return seal(dir, SEAL_ENTRIES);
}

SEC("lsm/inode_mkdir")
int BPF_PROG(inode_mkdir, struct inode *dir, struct dentry *dentry, umode_t mode)
{
	return seal(dir, SEAL_ENTRIES);
}

SEC("lsm/inode_mknod")
int BPF_PROG(inode_mknod, struct inode *dir, struct dentry *dentry, umode_t mode, dev_t dev)
{
	return seal(dir, SEAL_ENTRIES);
}

SEC("lsm/inode_symlink")
int BPF_PROG(inode_symlink, struct inode *dir, struct dentry *dentry, const char *old_name)
{
	return seal(dir, SEAL_ENTRIES);
}

#define ATTR_MODE (1 << 0)
#define ATTR_UID (1 << 1)
#define ATTR_GID (1 << 2)
#define ATTR_SIZE (1 << 3)
#define ATTR_ATIME (1 << 4)
#define ATTR_MTIME (1 << 5)
#define ATTR_ATIME_SET (1 << 7)
#define ATTR_MTIME_SET (1 << 8)
#define ATTR_FORCE (1 << 9)
#define ATTR_TIMES_SET (1 << 16)
#define ATTR_TOUCH (1 << 17)

SEC("lsm/inode_setattr")
int BPF_PROG(inode_setattr, struct mnt_idmap *idmap, struct dentry *dentry, struct iattr *attr)
{
	u32 valid = BPF_CORE_READ(attr, ia_valid);
	u32 op = 0;
	if (valid & ATTR_FORCE)
		return 0; /* the kernel's own change (clearing set-id bits on a write) */
	if (valid & ATTR_SIZE)
		op |= OP_TRUNCATE;
	if (valid & (ATTR_MODE | ATTR_UID | ATTR_GID))
		op |= OP_SETATTR;
	if (!(valid & ATTR_SIZE) &&
	    (valid & (ATTR_ATIME | ATTR_MTIME | ATTR_ATIME_SET | ATTR_MTIME_SET | ATTR_TIMES_SET | ATTR_TOUCH)))
		op |= OP_SETATTR;
	if (!op)
		return 0;
	int ret = seal(BPF_CORE_READ(dentry, d_inode), SEAL_CONTENT);
	if (ret)
		return ret;
	return check_dentry(dentry, op);
}

SEC("lsm/inode_setxattr")
int BPF_PROG(inode_setxattr, struct mnt_idmap *idmap, struct dentry *dentry, const char *name, const void *value,
	     size_t size, int flags)
{
	int ret = seal(BPF_CORE_READ(dentry, d_inode), SEAL_CONTENT);
	if (ret)
		return ret;
	return check_dentry(dentry, OP_SETATTR);
}

SEC("lsm/inode_removexattr")
int BPF_PROG(inode_removexattr, struct mnt_idmap *idmap, struct dentry *dentry, const char *name)
{
	int ret = seal(BPF_CORE_READ(dentry, d_inode), SEAL_CONTENT);
	if (ret)
		return ret;
	return check_dentry(dentry, OP_SETATTR);
}

SEC("lsm/inode_set_acl")
int BPF_PROG(inode_set_acl, struct mnt_idmap *idmap, struct dentry *dentry, const char *acl_name,
	     struct posix_acl *kacl)
{
	int ret = seal(BPF_CORE_READ(dentry, d_inode), SEAL_CONTENT);
	if (ret)
		return ret;
	return check_dentry(dentry, OP_SETATTR);
}

SEC("lsm/inode_remove_acl")
int BPF_PROG(inode_remove_acl, struct mnt_idmap *idmap, struct dentry *dentry, const char *acl_name)
{
	int ret = seal(BPF_CORE_READ(dentry, d_inode), SEAL_CONTENT);
	if (ret)
		return ret;
	return check_dentry(dentry, OP_SETATTR);
}

/* Self-protection (GUARD_PROTECT): the agent's process, its kernel
 * objects and the filesystem that holds its pins, refused to everyone
 * else, root included. The kernel's own signals (the OOM killer, a
 * terminal's ^C) do not pass through task_kill. */

/* add_taint records taint in pi, t's entry; an entry made just now (a
 * task that started before the programs) gets its executable from its
 * mm first. */
static __always_inline void add_taint(struct task_struct *t, struct pinfo *pi, u32 taint)
{
	if (!pi->exe_ino) {
		struct file *exe = BPF_CORE_READ(t, mm, exe_file);
		if (exe) {
			pi->exe_dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
			pi->exe_ino = BPF_CORE_READ(exe, f_inode, i_ino);
		}
	}
	pi->flags |= taint;
}

/* taint_task marks t (and what it forks from now on) as running code
 * its executable does not account for. */
static __always_inline void taint_task(struct task_struct *t, u32 taint)
{
	struct pinfo *pi = bpf_task_storage_get(&procs, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!pi)
		return;
	add_taint(t, pi, taint);
}

SEC("lsm/task_kill")
int BPF_PROG(task_kill, struct task_struct *p, struct kernel_siginfo *info, int sig, const struct cred *cred)
{
	struct guard_state *g = guarding();
	if (!g || sig == 0 || !is_agent_task(p, g) || is_agent(g))
		return 0;
	tamper(TAMPER_SIGNAL, (u32)sig, 0, 0, (u32)BPF_CORE_READ(p, tgid));
	return -EPERM;
}

#define PTRACE_MODE_ATTACH 0x02

/* Attaching (ptrace, /proc/PID/mem, process_vm_writev, pidfd_getfd)
 * to the agent, or to any process running its executable (one that may
 * take over). Reading (PTRACE_MODE_READ: /proc/PID/maps, ps) is left. */
SEC("lsm/ptrace_access_check")
int BPF_PROG(ptrace_access_check, struct task_struct *child, unsigned int mode)
{
	if (!(mode & PTRACE_MODE_ATTACH))
		return 0;
	struct guard_state *g = guard_get();
	if (g && is_agent(g))
		return 0;
	if (!g || !(g->flags & GUARD_PROTECT)) {
		taint_task(child, P_TAINT_PTRACE);
		return 0;
	}
	bool guarded = is_agent_task(child, g);
	if (!guarded && g->exe_ino) {
		struct pinfo *pi = bpf_task_storage_get(&procs, child, 0, 0);
		guarded = pi && pi->exe_ino == g->exe_ino && pi->exe_dev == g->exe_dev;
	}
	if (!guarded) {
		taint_task(child, P_TAINT_PTRACE);
		return 0;
	}
	tamper(TAMPER_PTRACE, mode, 0, 0, (u32)BPF_CORE_READ(child, tgid));
	return -EPERM;
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(ptrace_traceme, struct task_struct *parent)
{
	taint_task(bpf_get_current_task_btf(), P_TAINT_PTRACE);
	return 0;
}

/* Process integrity: an allowance by executable holds while the process
 * runs only trusted code (see the README's threat model). Trusted code:
 * the task's executable, and files owned by root, writable by no one
 * else, below a directory in trusted_dirs (the agent fills it: the
 * system's library directories). */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct fkey);
	__type(value, u8);
} trusted_dirs SEC(".maps");

#define PROT_EXEC 0x4
#define VM_EXEC 0x4
#define MAX_TRUST_DEPTH 32

struct trust_ctx {
	u64 cur; /* struct dentry * */
	u32 dev;
	int found;
};

static long trust_step(u32 i, void *data)
{
	struct trust_ctx *x = data;
	struct dentry *cur = (struct dentry *)x->cur;
	struct fkey k = {.dev = x->dev, .ino = BPF_CORE_READ(cur, d_inode, i_ino)};
	if (bpf_map_lookup_elem(&trusted_dirs, &k)) {
		x->found = 1;
		return 1;
	}
	struct dentry *parent = BPF_CORE_READ(cur, d_parent);
	if (!parent || parent == cur)
		return 1;
	x->cur = (u64)parent;
	return 0;
}

static __always_inline bool trusted_code(struct file *file, struct pinfo *pi)
{
	struct inode *in = BPF_CORE_READ(file, f_inode);
	u32 dev = BPF_CORE_READ(in, i_sb, s_dev);
	u64 ino = BPF_CORE_READ(in, i_ino);
	if (pi && pi->exe_dev == dev && pi->exe_ino == ino)
		return true;
	if (BPF_CORE_READ(in, i_uid.val) != 0 || (BPF_CORE_READ(in, i_mode) & 022))
		return false;
	struct trust_ctx x = {.cur = (u64)BPF_CORE_READ(file, f_path.dentry, d_parent), .dev = dev};
	bpf_loop(MAX_TRUST_DEPTH, trust_step, &x, 0);
	return x.found;
}

/* env_ctx scans the environment strings [p, end) for LD_PRELOAD= and
 * LD_AUDIT= at the start of a string, a chunk of a string per step. */
#define ENV_CHUNK 256

struct envbuf {
	char b[ENV_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct envbuf);
} envscratch SEC(".maps");

struct env_ctx {
	u64 p;
	u64 end;
	bool in_string; /* p is inside a string, not at its start */
	bool found;
};

static __always_inline bool prefix(const char *b, const char *want, int n)
{
	for (int i = 0; i < n; i++)
		if (b[i] != want[i])
			return false;
	return true;
}

static long env_step(u32 i, void *data)
{
	struct env_ctx *x = data;
	if (x->p >= x->end)
		return 1;
	u32 zero = 0;
	struct envbuf *eb = bpf_map_lookup_elem(&envscratch, &zero);
	if (!eb)
		return 1;
	long n = bpf_probe_read_user_str(eb->b, sizeof(eb->b), (const void *)x->p);
	if (n <= 0)
		return 1; /* unreadable: the scan ends */
	if (!x->in_string && (prefix(eb->b, "LD_PRELOAD=", 11) || prefix(eb->b, "LD_AUDIT=", 9))) {
		/* Set, and not empty. */
		if ((prefix(eb->b, "LD_PRELOAD=", 11) && n > 12) || (prefix(eb->b, "LD_AUDIT=", 9) && n > 10)) {
			x->found = true;
			return 1;
		}
	}
	if (n == ENV_CHUNK) {
		/* Cut: the string goes on. */
		x->p += ENV_CHUNK - 1;
		x->in_string = true;
	} else {
		x->p += n;
		x->in_string = false;
	}
	return 0;
}

/* taint_env: the first executable mapping after an exec (the loader
 * mapping the program's libraries, before any of their code runs) looks
 * at the environment the loader read. */
static __always_inline void taint_env(struct task_struct *t, struct pinfo *pi)
{
	struct env_ctx x = {.p = BPF_CORE_READ(t, mm, env_start), .end = BPF_CORE_READ(t, mm, env_end)};
	if (!x.p || x.end <= x.p)
		return; /* the kernel mapping the program and its loader: the environment is not in place yet */
	pi->flags &= ~P_FRESH;
	bpf_loop(1 << 16, env_step, &x, 0);
	if (x.found)
		pi->flags |= P_TAINT_ENV;
}

static __always_inline void exec_mapping(struct file *file)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pinfo *pi = bpf_task_storage_get(&procs, t, 0, 0);
	if (pi && (pi->flags & P_FRESH))
		taint_env(t, pi);
	u32 taint = 0;
	if (!file)
		taint = P_TAINT_ANON;
	else if (!trusted_code(file, pi))
		taint = P_TAINT_MAP;
	if (!taint)
		return;
	if (!pi)
		pi = bpf_task_storage_get(&procs, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (pi)
		add_taint(t, pi, taint);
}

SEC("lsm/mmap_file")
int BPF_PROG(mmap_file, struct file *file, unsigned long reqprot, unsigned long prot, unsigned long flags)
{
	if (prot & PROT_EXEC)
		exec_mapping(file);
	return 0;
}

SEC("lsm/file_mprotect")
int BPF_PROG(file_mprotect, struct vm_area_struct *vma, unsigned long reqprot, unsigned long prot)
{
	if ((prot & PROT_EXEC) && !(BPF_CORE_READ(vma, vm_flags) & VM_EXEC))
		exec_mapping(BPF_CORE_READ(vma, vm_file));
	return 0;
}

static __always_inline int own_guard(u64 kind, u32 id, u32 what)
{
	struct guard_state *g = guarding();
	if (!g)
		return 0;
	u64 k = kind << 32 | id;
	if (!bpf_map_lookup_elem(&owned, &k) || trusted(g))
		return 0;
	tamper(what, id, 0, 0, 0);
	return -EPERM;
}

/* A descriptor for one of the agent's maps (by ID, by pin, or any other
 * way the kernel makes one). */
SEC("lsm/bpf_map")
int BPF_PROG(bpf_map, struct bpf_map *map, fmode_t fmode)
{
	return own_guard(OWN_MAP, BPF_CORE_READ(map, id), TAMPER_BPF_MAP);
}

SEC("lsm/bpf_prog")
int BPF_PROG(bpf_prog, struct bpf_prog *prog)
{
	return own_guard(OWN_PROG, BPF_CORE_READ(prog, aux, id), TAMPER_BPF_PROG);
}

#define BPF_LINK_GET_FD_BY_ID 30

/* Links have no hook of their own: a descriptor by ID is refused here.
 * One from a pin (BPF_OBJ_GET) cannot detach or replace an LSM program
 * (tracing links support neither), and the pin cannot be removed. */
SEC("lsm/bpf")
int BPF_PROG(bpf, int cmd, union bpf_attr *attr, unsigned int size)
{
	if (cmd != BPF_LINK_GET_FD_BY_ID)
		return 0;
	u32 id = 0;
	/* link_id is the first member of the BPF_*_GET_FD_BY_ID attributes
	 * (uapi: a stable layout). */
	bpf_probe_read_kernel(&id, sizeof(id), attr);
	return own_guard(OWN_LINK, id, TAMPER_BPF_LINK);
}

SEC("lsm/sb_umount")
int BPF_PROG(sb_umount, struct vfsmount *mnt, int flags)
{
	struct guard_state *g = guarding();
	if (!g)
		return 0;
	u32 dev = BPF_CORE_READ(mnt, mnt_sb, s_dev);
	bool guarded = false;
	for (int i = 0; i < MAX_GUARD_DEVS; i++) {
		if (g->umount_dev[i] && g->umount_dev[i] == dev)
			guarded = true;
	}
	if (!guarded || trusted(g))
		return 0;
	tamper(TAMPER_UMOUNT, (u32)flags, dev, 0, 0);
	return -EPERM;
}

/* The kernel lock (GUARD_LOCK_KERNEL): while the programs enforce, no
 * process, root and the agent included, loads a kernel module or a
 * kernel to kexec, the two ways root could detach the programs at run
 * time without rebooting. The ids are the kernel's enum
 * kernel_read_file_id and kernel_load_data_id, which list the same kinds
 * in the same order: MODULE 2, KEXEC_IMAGE 3, KEXEC_INITRAMFS 4. */
#define KLOAD_MODULE 2
#define KLOAD_KEXEC_INITRAMFS 4

static __always_inline int kernel_lock(int id)
{
	if (id < KLOAD_MODULE || id > KLOAD_KEXEC_INITRAMFS)
		return 0;
	struct guard_state *g = guard_get();
	if (!g || !(g->flags & GUARD_LOCK_KERNEL))
		return 0;
	tamper(TAMPER_KERNEL_LOAD, (u32)id, 0, 0, 0);
	return -EPERM;
}

/* finit_module, kexec_file_load */
SEC("lsm/kernel_read_file")
int BPF_PROG(kernel_read_file, struct file *file, int id, bool contents)
{
	return kernel_lock(id);
}

/* init_module, kexec_load */
SEC("lsm/kernel_load_data")
int BPF_PROG(kernel_load_data, int id, bool contents)
{
	return kernel_lock(id);
}
