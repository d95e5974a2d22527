/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The C side of the Go binding: what cgo cannot say itself.
 *
 * - Callbacks.  Go code gives the library a cgo.Handle (an integer) as the
 *   userdata of a callback; these shims turn it into the void * the library
 *   wants and back, so no Go pointer and no integer-as-pointer conversion
 *   ever appears on the Go side (go vet flags those).
 * - The 1.0 calls are referenced weakly: a call the loaded library lacks
 *   fails with -ENOSYS instead of the program failing to link or start.
 *   They were being written when the binding was; calls of later releases
 *   (BTRFSLAYER_1.1 nodes) need the same, to run against a 1.0 library.
 */
#ifndef BTRFSLAYER_GO_SHIM_H
#define BTRFSLAYER_GO_SHIM_H

#include <stdint.h>
#include <btrfslayer.h>

/* Each wraps the call of the same name, or returns -ENOSYS without touching
 * *err when the loaded library lacks it. */
int blgo_layer_info(btrfslayer *h, const char *id, btrfslayer_info *out,
		    btrfslayer_error **err);
int blgo_set_read_only(btrfslayer *h, const char *id, int read_only,
		       btrfslayer_error **err);
int blgo_get_fd(btrfslayer *h, const char *id, uint32_t flags, int *fd,
		btrfslayer_error **err);
int blgo_mount_idmapped(btrfslayer *h, const char *id,
			const btrfslayer_idmap *uid_map, size_t n_uid_map,
			const btrfslayer_idmap *gid_map, size_t n_gid_map,
			uint32_t flags, int *mount_fd, btrfslayer_error **err);
/* fn_handle: the cgo.Handle of the Go function to call per change. */
int blgo_changes(btrfslayer *h, const char *id, const char *parent, uint32_t flags,
		 uintptr_t fn_handle, btrfslayer_error **err);
int blgo_diff_size(btrfslayer *h, const char *id, const char *parent, uint64_t *size,
		   btrfslayer_error **err);
/* progress_handle: the cgo.Handle of the Go progress function, or 0 for
 * none. */
int blgo_export(btrfslayer *h, const char *id, const char *parent, int fd,
		uintptr_t progress_handle, btrfslayer_error **err);
int blgo_apply(btrfslayer *h, const char *id, int fd, uintptr_t progress_handle,
	       uint64_t *unpacked, btrfslayer_error **err);

/* Route the library's log to the Go logger (on != 0) or turn it off. */
void blgo_set_log(int on);

#endif
