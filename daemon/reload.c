/* SPDX-License-Identifier: MIT */
/*
 * Configuration and the engine's life cycle (main thread): loading the config
 * file, the instance drop-in and the command-line overrides; the state
 * directory; starting and stopping the engine; and reload (SIGHUP), which
 * restarts the device only when a device key changed and otherwise hands a
 * new pipeline to the running engine without losing a sample.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "emgd-config.h"
#include "instance.h"

/* Drivers log through this: from open() on the main thread, and for plug events
 * from their own thread (never from the sample path). stdio locks per call. */
static void driver_log(void *ud, int prio, const char *msg)
{
	emg_log(prio, "device: %s", msg);
}

void osc_params(const struct emg_config *c, struct emg_osc_params *p)
{
	p->max_subscribers = c->max_subscribers;
	p->max_per_host = c->max_subscribers_per_host;
	p->default_lease_s = c->default_lease_s;
	p->max_lease_s = c->max_lease_s;
	p->rate_limit = c->rate_limit;
	p->rate_burst = c->rate_burst;
	p->allow = c->allow;
	p->nallow = c->nallow;
}

/* --instance NAME (emgd@NAME.service): [device] serial NAME, emgd@NAME.conf beside the
 * config file on top, and (started by hand, without systemd's StateDirectory=) state and
 * recordings in <dir>@NAME unless the drop-in names them (lib/instance.h). */
static int load_instance_config(struct daemon *d, struct emg_config *cfg)
{
	char err[1024];
	int r;

	if (!d->dropin_path[0]) {
		r = emg_instance_dropin(d->dropin_path, sizeof(d->dropin_path), d->config_path, d->instance);
		if (r == -EINVAL)
			emg_log(LOG_ERR, "--instance %s: bad name (allowed: a serial number or USB port path, up to %zu characters, no '/', not starting with '.')",
			       d->instance, sizeof(cfg->serial) - 1);
		else if (r < 0)
			emg_log(LOG_ERR, "--instance %s: path of its config file too long", d->instance);
		if (r < 0)
			return r;
	}
	r = emg_instance_apply(cfg, d->instance, d->dropin_path, !getenv("STATE_DIRECTORY"), err, sizeof(err));
	if (r < 0)
		emg_log(LOG_ERR, "%s", err);
	else if (r > 0)
		emg_log(LOG_INFO, "config: instance %s: read %s on top", d->instance, d->dropin_path);
	return r < 0 ? r : 0;
}

int load_config(struct daemon *d, struct emg_config *cfg)
{
	char err[1024];
	int r = emg_config_init(cfg);

	if (r < 0)
		return r;
	if (d->config_path) {
		r = emg_config_load(cfg, d->config_path, err, sizeof(err));
		if (r < 0) {
			emg_log(LOG_ERR, "%s", err);
			emg_config_release(cfg);
			return r;
		}
	}
	if (d->instance && (r = load_instance_config(d, cfg)) < 0) {
		emg_config_release(cfg);
		return r;
	}
	if (d->driver_override) {
		if (!emg_device_find(d->driver_override)) {
			char names[128] = "";
			size_t used = 0;
			for (const char *const *n = emg_device_names(); *n && used < sizeof(names); n++)
				used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
							 used ? ", " : "", *n);
			emg_log(LOG_ERR, "--device %s: unknown driver (allowed: %s)", d->driver_override, names);
			emg_config_release(cfg);
			return -EINVAL;
		}
		snprintf(cfg->driver, sizeof(cfg->driver), "%s", d->driver_override);
	}
	if (d->serial_override) {
		if (strlen(d->serial_override) >= sizeof(cfg->serial)) {
			emg_log(LOG_ERR, "--serial %s: too long (allowed: up to %zu characters)",
			       d->serial_override, sizeof(cfg->serial) - 1);
			emg_config_release(cfg);
			return -EINVAL;
		}
		snprintf(cfg->serial, sizeof(cfg->serial), "%s", d->serial_override);
	}
	if (d->listen_override && emg_hostport_parse(d->listen_override, &cfg->listen) < 0) {
		emg_log(LOG_ERR, "--listen %s: bad value (allowed: host:port with a numeric address)",
		       d->listen_override);
		emg_config_release(cfg);
		return -EINVAL;
	}
	return 0;
}

void setup_state_dir(struct daemon *d)
{
	const char *dir = d->cfg.state_dir;
	const char *env = getenv("STATE_DIRECTORY");
	char why[PATH_MAX + 128];
	unsigned line = 0;
	int r;

	/* systemd's StateDirectory= wins over the built-in default, not over an explicit setting. */
	if (env && *env && !strcmp(dir, "/var/lib/emgd"))
		dir = env;
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		emg_log(LOG_WARNING, "state: cannot create %s: %s; calibrations will not persist", dir,
		       strerror(errno));
		d->calib_path[0] = '\0';
		return;
	}
	if (strlen(dir) + sizeof("/calibration.ini") > sizeof(d->calib_path)) {
		emg_log(LOG_WARNING, "state: %s: path too long; calibrations will not persist", dir);
		d->calib_path[0] = '\0';
		return;
	}
	strcpy(d->calib_path, dir);
	strcat(d->calib_path, "/calibration.ini");
	r = emg_calib_load_msg(d->calib, d->calib_path, &line, why, sizeof(why));
	if (r == 0)
		emg_log(LOG_NOTICE, "calibration: loaded %s", d->calib_path); /* which one, in the journal */
	else if (r == -EBADMSG)
		emg_log(LOG_WARNING, "calibration: %s:%u: unreadable line; starting uncalibrated",
		       d->calib_path, line);
	else if (r != -ENOENT)
		emg_log(LOG_WARNING, "%s; starting uncalibrated", why);
}

static int build_pipeline(struct daemon *d, const struct emg_config *cfg, struct emg_pipeline **out)
{
	struct emg_pipeline_config pc = cfg->pipe;
	char desc[128];
	int r;

	if (pc.publish_rate > d->info.rate)
		pc.publish_rate = d->info.rate;
	r = emg_pipeline_new(out, &pc, &d->info, cfg->muscles, d->calib);
	if (r < 0) {
		emg_log(LOG_ERR, "dsp: cannot build the pipeline for %g Hz x %u channels: %s",
		       d->info.rate, d->info.channels, strerror(-r));
		return r;
	}
	emg_pipeline_describe(*out, desc, sizeof(desc));
	emg_log(LOG_INFO, "dsp: %s, RMS %g ms, onset %s (k=%g, window %g ms), publish %g Hz", desc,
	       pc.rms_window_ms, emg_onset_method_name(pc.onset.method), pc.onset.k,
	       pc.onset.window_ms, pc.publish_rate);
	return 0;
}

int start_engine(struct daemon *d)
{
	struct emg_device_config dc;
	struct emg_engine_params ep = {
		.sink = control_sink(d),
		.rt_priority = d->cfg.rt_priority,
		.stall_ms = d->stall_ms,
		.stall_after_ns = d->stall_after_ns,
	};
	int r;

	emg_config_device(&d->cfg, &dc);
	dc.log = driver_log;
	dc.log_ud = d;
	r = emg_device_open(&ep.dev, &dc);
	if (r < 0) {
		/* the replay driver has logged why (and a CSV's line): "Invalid argument" would only mislead */
		if (!strcmp(d->cfg.driver, "replay") && d->cfg.dev.file[0])
			emg_log(LOG_ERR, "device replay: cannot play %s (reason above)", d->cfg.dev.file);
		else
			emg_log_errno(LOG_ERR, r, "device %s: cannot open", d->cfg.driver);
		return r;
	}
	emg_device_info(ep.dev, &d->info);
	if (d->info.rate < 1000)
		emg_log(LOG_WARNING, "device: %g Hz cannot capture the full sEMG band (20-450 Hz needs >= 1 kHz); low-pass clamped to %g Hz",
		       d->info.rate, 0.45 * d->info.rate);
	if ((r = build_pipeline(d, &d->cfg, &ep.pipe)) < 0) {
		emg_device_close(ep.dev);
		return r;
	}
	if ((r = emg_analytics_new(&d->ana, &d->cfg.analytics, d->cfg.muscles, d->info.rate)) < 0) {
		emg_pipeline_free(ep.pipe);
		emg_device_close(ep.dev);
		return emg_log_errno(LOG_ERR, r, "analytics");
	}
	d->stall_ms = 0; /* fault injection: once per process */
	/* record = auto from the first frame: a replay at realtime = no would
	 * otherwise be seconds ahead of an attach that comes after the start */
	ep.rec = record_auto_open(d);
	if ((r = emg_engine_start(&d->eng, &ep)) < 0) {
		if (ep.rec)
			emg_recorder_close(ep.rec); /* nothing in it: no file is left */
		return emg_log_errno(LOG_ERR, r, "device %s: cannot start", d->info.driver);
	}
	if (ep.rec)
		record_begin(d, ep.rec);
	if ((r = emg_engine_rt_error(d->eng)) < 0)
		emg_log(LOG_INFO, "dsp thread: no real-time priority (%s); running best-effort", strerror(-r));
	if ((r = sd_event_add_io(d->ev, &d->outs_src, emg_engine_fd(d->eng), EPOLLIN, control_on_outs, d)) < 0)
		return r;
	return sd_event_add_io(d->ev, &d->state_src, emg_engine_state_fd(d->eng), EPOLLIN,
			       control_on_dev_state, d);
}

void stop_engine(struct daemon *d, int keep_rec)
{
	d->outs_src = sd_event_source_disable_unref(d->outs_src);
	d->state_src = sd_event_source_disable_unref(d->state_src);
	/* Delivers what the DSP thread produced last (events, calibrations) and
	 * hands detached recordings to the closer; d->rec is the attached one. */
	emg_engine_stop(d->eng);
	d->eng = NULL;
	record_engine_stopped(d, keep_rec);
	emg_analytics_free(d->ana);
	emg_analytics_free(d->ana_pending);
	d->ana = d->ana_pending = NULL;
}

/* ---- reload ---- */
/* A different amplifier or rate, or more muscles than an output slot holds: restart the device. */
static int reload_restart(struct daemon *d, struct emg_config *n, unsigned effects)
{
	emg_log(LOG_NOTICE, "reload: %s, restarting the device",
		(effects & EMG_CFG_DEVICE) ? "device settings changed" : "more muscles than before");
	stop_engine(d, 1);
	emg_config_release(&d->cfg);
	d->cfg = *n;
	d->calibrating = 0;
	emg_osc_set_muscles(d->osc, d->cfg.muscles);
	if (start_engine(d) < 0) {
		emg_log(LOG_ERR, "reload: the new device failed to start; exiting for a restart");
		sd_event_exit(d->ev, EXIT_FAILURE);
		return -1;
	}
	record_resume(d);
	return 0;
}

/* Same device: build the new pipeline here and let the DSP thread switch to it
 * between two blocks, so no sample is lost.  n is consumed either way. */
static int reload_swap(struct daemon *d, struct emg_config *n)
{
	struct emg_pipeline *np;
	int r;

	if (build_pipeline(d, n, &np) < 0) {
		emg_config_release(n);
		return -1;
	}
	/* A previous swap (SIGHUP storm) may still be in flight: the DSP thread
	 * answers within a block; its swapped() arrives with the outputs. */
	while ((r = emg_engine_swap(d->eng, np)) == -EBUSY || r == -EAGAIN)
		emg_engine_dispatch(d->eng, 100);
	if (r < 0) {
		emg_pipeline_free(np);
		emg_config_release(n);
		return -1;
	}
	emg_muscles_dup(n->muscles, &d->pending_muscles);
	if (emg_muscles_equal(n->muscles, d->cfg.muscles)) {
		/* Same muscles: new windows and pairs, the counts go on. */
		emg_analytics_set_params(d->ana, &n->analytics);
	} else if (emg_analytics_new(&d->ana_pending, &n->analytics, n->muscles, d->info.rate) < 0) {
		emg_log(LOG_WARNING, "reload: analytics keep the previous muscle map (out of memory)");
	}
	emg_config_release(&d->cfg);
	d->cfg = *n;
	d->calibrating = 0;
	return 0;
}

/* Everything but the engine: OSC parameters and socket, OSCQuery, recording. */
static void reload_apply(struct daemon *d, int listen_changed, int oq_changed,
			 const struct emg_hostport *old_listen, int was_auto)
{
	struct emg_osc_params op;

	osc_params(&d->cfg, &op);
	emg_osc_set_params(d->osc, &op);
	emg_osc_set_targets(d->osc, d->cfg.targets, d->cfg.ntargets);
	if (listen_changed && control_bind_osc(d) < 0) {
		/* The old socket still serves: keep saying where we really listen. */
		emg_log(LOG_WARNING, "reload: still listening on the previous address");
		d->cfg.listen = *old_listen;
	}
	control_oscquery_apply(d, oq_changed);
	control_write_ports(d);
	control_save_calib(d);
	emg_log(LOG_NOTICE, "reload: applied %s", d->config_path ? d->config_path : "built-in defaults");
	annotate(d, EMG_RECORD_NOW, -1, "config reloaded");
	record_setup_dir(d);
	if (d->cfg.record == EMG_RECORD_OFF && d->rec && was_auto) {
		char err[64];
		record_stop(d, err, sizeof(err));
	}
	record_auto(d);
}

void reload(struct daemon *d)
{
	struct emg_config n;
	struct emg_calib *nc;
	struct emg_hostport old_listen;
	int listen_changed, oq_changed, was_auto;
	unsigned effects;
	char msg[PATH_MAX + 80], changed[256], what[128];

	/* a stack buffer, not sd_notifyf(): see notify_status() */
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
		 (unsigned long long)(emg_now_ns() / 1000), d->config_path ? d->config_path : "");
	sd_notify(0, msg);
	if (load_config(d, &n) < 0) {
		emg_log(LOG_ERR, "reload: refused; still running the previous configuration");
		goto done;
	}
	if (emg_calib_new(&nc, n.muscles) < 0) {
		emg_config_release(&n);
		goto done;
	}
	emg_calib_merge(nc, d->calib);
	emg_calib_free(d->calib);
	d->calib = nc;
	/* what to redo follows from the config table's flags of the keys that changed */
	effects = emg_config_diff(&d->cfg, &n, changed, sizeof(changed));
	emg_config_effects_text(effects, what, sizeof(what));
	emg_log(LOG_INFO, "reload: changed: %s (%s)", changed[0] ? changed : "nothing", what[0] ? what : "no effect");
	if (effects & EMG_CFG_RESTART)
		emg_log(LOG_WARNING, "reload: some of %s take effect only when emgd restarts (emgd.conf(5))", changed);
	listen_changed = !!(effects & EMG_CFG_OSC_SOCKET);
	oq_changed = !!(effects & EMG_CFG_OSCQUERY);
	old_listen = d->cfg.listen;
	was_auto = d->cfg.record == EMG_RECORD_AUTO;

	if ((effects & EMG_CFG_DEVICE) || !d->eng ||
	    emg_muscles_count(n.muscles) > emg_engine_max_muscles(d->eng)) {
		if (reload_restart(d, &n, effects) < 0)
			return;
	} else if (reload_swap(d, &n) < 0) {
		emg_log(LOG_ERR, "reload: refused; still running the previous configuration");
		goto done;
	}
	reload_apply(d, listen_changed, oq_changed, &old_listen, was_auto);
done:
	sd_notify(0, "READY=1");
	notify_status(d);
}
