/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The few kernel types the programs read, declared by hand with
 * preserve_access_index so that libbpf-style CO-RE relocates every field
 * access against the running kernel's BTF at load time. A vmlinux.h dumped
 * from one machine's BTF would tie the committed objects to that machine's
 * kernel and make them differ from machine to machine; these declarations
 * name only fields that every kernel since 6.3 has (where the LSM hooks the
 * programs attach to take the arguments declared in drmfilter.bpf.c).
 */
#ifndef DRMFILTER_KERNEL_H
#define DRMFILTER_KERNEL_H

typedef signed char __s8;
typedef unsigned char __u8;
typedef short __s16;
typedef unsigned short __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long __s64;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef _Bool bool;
#define true 1
#define false 0
typedef unsigned int fmode_t;
typedef unsigned short umode_t;
typedef __u32 dev_t;
typedef unsigned long size_t;

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_LRU_HASH = 9,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

enum {
	BPF_F_NO_PREALLOC = 1,
};

enum {
	BPF_LOCAL_STORAGE_GET_F_CREATE = 1,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

typedef struct {
	unsigned int val;
} kuid_t;

typedef struct {
	unsigned int val;
} kgid_t;

struct group_info {
	int ngroups;
	kgid_t gid[0];
};

struct cred {
	kuid_t uid;
	kgid_t gid;
	struct group_info *group_info;
};

struct super_block {
	dev_t s_dev;
};

struct inode {
	umode_t i_mode;
	kuid_t i_uid;
	unsigned long i_ino;
	union {
		const unsigned int i_nlink;
		unsigned int __i_nlink;
	};
	struct super_block *i_sb;
};

struct qstr {
	const unsigned char *name;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
	struct inode *d_inode;
	struct super_block *d_sb;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct file {
	struct path f_path;
	struct inode *f_inode;
	fmode_t f_mode;
	unsigned int f_flags;
};

struct mm_struct {
	struct file *exe_file;
	unsigned long env_start;
	unsigned long env_end;
};

struct vm_area_struct {
	unsigned long vm_flags;
	struct file *vm_file;
};

struct task_struct {
	int pid;
	int tgid;
	unsigned int ptrace; /* PT_* flags: non-zero while traced */
	u64 start_boottime;  /* ns since boot, as /proc/PID/stat's starttime counts it */
	struct task_struct *group_leader;
	struct mm_struct *mm;
	const struct cred *cred;
	char comm[16];
};

struct bpf_map {
	u32 id;
};

struct bpf_prog_aux {
	u32 id;
};

struct bpf_prog {
	struct bpf_prog_aux *aux;
};

union bpf_attr;
struct kernel_siginfo;

struct vfsmount {
	struct super_block *mnt_sb;
};

struct linux_binprm {
	struct file *file;
	const char *filename;
	const char *interp; /* filename, or the interpreter started for it */
};

struct iattr {
	unsigned int ia_valid;
};

struct mnt_idmap;
struct posix_acl;

#pragma clang attribute pop

#endif
