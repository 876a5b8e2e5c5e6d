/* SPDX-License-Identifier: MIT */
#include "instance.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emgd-config.h"
#include "safeio.h"

int emg_instance_name_ok(const char *name)
{
	struct emg_config *c = NULL;

	if (!name[0] || strchr(name, '/') || name[0] == '.' || strlen(name) >= sizeof(c->serial))
		return -EINVAL;
	return 0;
}

int emg_instance_dropin(char *out, size_t len, const char *config_path, const char *name)
{
	const char *slash = config_path ? strrchr(config_path, '/') : NULL;
	int n;

	if (emg_instance_name_ok(name) < 0)
		return -EINVAL;
	if (!config_path)
		n = snprintf(out, len, "%s/emgd@%s.conf", EMGD_SYSCONFDIR, name);
	else if (slash)
		n = snprintf(out, len, "%.*s/emgd@%s.conf", (int)(slash - config_path), config_path, name);
	else
		n = snprintf(out, len, "emgd@%s.conf", name);
	if (n < 0 || (size_t)n >= len) {
		if (len)
			out[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int emg_instance_apply(struct emg_config *cfg, const char *name, const char *dropin, bool own_dirs,
		       char *err, size_t errlen)
{
	char state[sizeof(cfg->state_dir)], rec[sizeof(cfg->recordings_dir)];
	int r, loaded = 0;

	snprintf(cfg->serial, sizeof(cfg->serial), "%s", name);
	memcpy(state, cfg->state_dir, sizeof(state));
	memcpy(rec, cfg->recordings_dir, sizeof(rec));
	/* Empty while the drop-in is read: whatever is still empty after it, it did not set. */
	cfg->state_dir[0] = cfg->recordings_dir[0] = '\0';
	if (access(dropin, F_OK) == 0 || errno != ENOENT) {
		r = emg_config_load(cfg, dropin, err, errlen);
		if (r < 0) {
			memcpy(cfg->state_dir, state, sizeof(state));
			memcpy(cfg->recordings_dir, rec, sizeof(rec));
			return r;
		}
		loaded = 1;
	}
	if (!cfg->state_dir[0] &&
	    (!own_dirs || snprintf(cfg->state_dir, sizeof(cfg->state_dir), "%s@%s", state, name) >=
				  (int)sizeof(cfg->state_dir)))
		memcpy(cfg->state_dir, state, sizeof(state));
	if (!cfg->recordings_dir[0]) {
		size_t sl = strlen(state);

		r = -1;
		if (own_dirs && !strncmp(rec, state, sl) && rec[sl] == '/') /* /var/lib/emgd/recordings */
			r = snprintf(cfg->recordings_dir, sizeof(cfg->recordings_dir), "%s%s", cfg->state_dir,
				     rec + sl);
		else if (own_dirs)
			r = snprintf(cfg->recordings_dir, sizeof(cfg->recordings_dir), "%s@%s", rec, name);
		if (r < 0 || r >= (int)sizeof(cfg->recordings_dir))
			memcpy(cfg->recordings_dir, rec, sizeof(rec));
	}
	return loaded;
}

int emg_instance_write_ports(const char *dir, const struct emg_hostport *osc,
			     const struct emg_hostport *http)
{
	char path[PATH_MAX], tmp[PATH_MAX], text[256];
	int fd, n, r = 0;

	if (snprintf(path, sizeof(path), "%s/" EMG_INSTANCE_PORTS, dir) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	n = snprintf(text, sizeof(text), "osc = %s%s%s:%u\n", strchr(osc->host, ':') ? "[" : "",
		     osc->host, strchr(osc->host, ':') ? "]" : "", osc->port);
	if (http)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "http = %s%s%s:%u\n",
			      strchr(http->host, ':') ? "[" : "", http->host,
			      strchr(http->host, ':') ? "]" : "", http->port);
	/* As for calibration.ini: never through whatever sits at the temp name. */
	if (unlink(tmp) < 0 && errno != ENOENT)
		return -errno;
	fd = emg_safeio_open(tmp, EMG_SAFEIO_CREATE, 0644, EMG_SAFEIO_NO_LIMIT, NULL, NULL, 0);
	if (fd < 0)
		return fd;
	/* readable by emgctl run as anyone: the units' UMask=0077 would make it 0600 */
	if (fchmod(fd, 0644) < 0)
		r = -errno;
	else if (write(fd, text, (size_t)n) != n)
		r = -EIO;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	return r;
}

int emg_instance_read_ports(const char *dir, struct emg_hostport *osc)
{
	char path[PATH_MAX], text[512], *line, *save = NULL;
	ssize_t n;
	int fd;

	if (snprintf(path, sizeof(path), "%s/" EMG_INSTANCE_PORTS, dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = emg_safeio_open(path, EMG_SAFEIO_READ, 0, sizeof(text) - 1, NULL, NULL, 0);
	if (fd < 0)
		return fd == -ENOENT ? -ENOENT : fd;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "osc = ", 6))
			return emg_hostport_parse(line + 6, osc) < 0 ? -EBADMSG : 0;
	return -EBADMSG;
}
