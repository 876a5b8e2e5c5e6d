/* SPDX-License-Identifier: MIT */
/*
 * emg_instance: one of many emgd on a host (emgd@NAME.service, --instance NAME).
 *
 * An instance is named by its amplifier's serial number or USB port path.  Its
 * configuration is emgd.conf with emgd@NAME.conf beside it read on top; started by
 * hand (no systemd StateDirectory=) it also gets its own state and recordings
 * directories, <dir>@NAME, wherever the drop-in does not name them, so that eight
 * instances from one emgd.conf never share a calibration.
 *
 * Once bound, the daemon writes where it listens into a small "ports" file
 * ("osc = 127.0.0.1:9002" and, with OSCQuery, "http = ...") in its runtime
 * directory (systemd's RuntimeDirectory=, /run/emgd@NAME) or else its state
 * directory; emgctl --instance NAME reads it, which is what makes
 * [osc] listen = auto usable.  Both sides share this module, so they agree on
 * every path.
 */
#ifndef EMG_INSTANCE_H
#define EMG_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* The file a running instance describes its ports in. */
#define EMG_INSTANCE_PORTS "ports"
/* systemd's RuntimeDirectory= of emgd@NAME.service is EMG_INSTANCE_RUNDIR "/emgd@NAME". */
#define EMG_INSTANCE_RUNDIR "/run"

/* 0 if name can name an instance (1..63 bytes, no '/', not starting with '.'), else -EINVAL. */
int emg_instance_name_ok(const char *name);

/* emgd@NAME.conf beside config_path (NULL: the installed emgd.conf) into out; 0 or -errno. */
int emg_instance_dropin(char *out, size_t len, const char *config_path, const char *name);

/* Set [device] serial NAME, read dropin on top of cfg if it exists and, with own_dirs,
 * suffix "@NAME" to state_dir/recordings_dir unless the drop-in sets them (a recordings_dir
 * inside state_dir follows it).  1 = drop-in read, 0 = none, -errno (err says why). */
int emg_instance_apply(struct emg_config *cfg, const char *name, const char *dropin, bool own_dirs,
		       char *err, size_t errlen);

/* Write dir/ports (osc and, if http is not NULL, http), replacing it atomically; 0 or -errno. */
int emg_instance_write_ports(const char *dir, const struct emg_hostport *osc,
			     const struct emg_hostport *http);

/* Read "osc = HOST:PORT" from dir/ports; 0, -ENOENT without the file, -EBADMSG if unreadable. */
int emg_instance_read_ports(const char *dir, struct emg_hostport *osc);

#endif
