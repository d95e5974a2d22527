/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The test rig: a work directory under /var/tmp, the recorder (a FUSE mount
 * whose one file is the disk), a loop device on that file with btrfs mounted
 * on it, and a second mount for the rebuilt disks.  Everything it makes is
 * undone at exit, on SIGINT/SIGTERM/SIGHUP, and by sweep.sh (ctest's
 * cleanup fixture) for a run that died too hard to undo it.
 */
#ifndef POWERCUT_RIG_H
#define POWERCUT_RIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct rig_paths {
	char dir[64];		/* /var/tmp/btrfslayer-powercut.XXXXXX */
	char base[96];		/* the image as mkfs left it */
	char image[96];		/* the recorder's backing file */
	char log[96];		/* the recorder's log */
	char fuse[96];		/* the recorder's mount point */
	char disk[128];		/* fuse/disk */
	char position[128];	/* fuse/position */
	char mnt[96];		/* btrfs on the recorded disk */
	char rebuilt[96];	/* a disk rebuilt at a cut */
	char check[96];		/* btrfs on the rebuilt disk */
	char results[96];	/* what the workload did */
	char copies[96];	/* copies of the image: <copies>-<call>.img */
};

extern struct rig_paths rig;

/* The workload child while it runs: the teardown kills it first. */
extern pid_t rig_child;

/* Check what the test needs and make the work directory.  Ends the program
 * when something is missing: exit 77 (skip) saying why, or exit 1 when
 * CI=true, where this test must run. */
void rig_start(const char *recorder);

/* Make a fresh filesystem, keep it as the base, start the recorder and
 * mount btrfs from the loop device on its disk (mount options `opts`).
 * Without `recorded`, the loop device is on the image itself: no recorder.
 * 0, or -1 after saying what failed. */
int rig_record_start(const char *opts, bool recorded);
/* The recorder's position: log entries so far. */
uint64_t rig_position(void);
/* Unmount the btrfs, detach the loop device, stop the recorder: the log is
 * complete.  0, or -1 after saying what failed. */
int rig_record_stop(void);

/* Mount a rebuilt disk (`image`) at rig.check (rw, so that btrfs replays its log
 * tree), and undo it.  0, or -errno of the mount (the loop device's failure
 * is said on stderr and is -EIO). */
int rig_check_mount(const char *image);
void rig_check_umount(void);

/* Delete the copies of the image (<copies>-*.img). */
void rig_remove_copies(void);

/* Everything above, in reverse; safe to call at any point, more than once. */
void rig_teardown(void);

#endif
