/* SPDX-License-Identifier: MIT */
/*
 * emgd's private header: the daemon's state and what its files share.
 *
 *   emgd.c       main, command line, signals, privileges, sd_notify, watchdog
 *   control.c    OSC control handlers, the engine's outputs (publishing,
 *                calibration results, analytics), status, OSC/OSCQuery sockets
 *   recording.c  recording control: start/stop/check/resume/auto, closer thread
 *   reload.c     config loading, engine start/stop, reload (SIGHUP)
 *
 * Everything here runs on the main thread (the sd-event loop); the device
 * and DSP threads live in lib/engine.c, the recorder's in lib/record.c.
 */
#ifndef EMGD_DAEMON_H
#define EMGD_DAEMON_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "analytics.h"
#include "calib.h"
#include "config.h"
#include "engine.h"
#include "latency.h"
#include "log.h"
#include "osc.h"
#include "oscquery.h"
#include "record.h"

/* Longest client-supplied text (a marker) in one log line, bytes. */
#define LOG_TEXT_MAX 200

struct daemon {
	struct emg_config cfg;
	const char *config_path; /* NULL: built-in defaults */
	const char *driver_override;
	const char *listen_override;
	const char *serial_override;
	const char *instance; /* --instance: emgd@<instance>.service */
	char dropin_path[PATH_MAX]; /* its emgd@<instance>.conf, read after the config file */
	char ports_path[PATH_MAX];  /* where we listen, for emgctl --instance (lib/instance.h) */

	sd_event *ev;
	sd_event_source *outs_src, *state_src, *osc_src, *tick_src, *wd_src;

	struct emg_engine *eng;     /* NULL while the device restarts */
	struct emg_device_info info; /* the engine's device */
	uint64_t stall_ms, stall_after_ns; /* EMGD_FAULT_DSP_STALL_MS, see fault_init() */

	struct emg_muscles *pending_muscles; /* the new map, from the engine's swapped() on */
	struct emg_calib *calib;
	struct emg_osc *osc;
	struct emg_analytics *ana;         /* firing order and repetitions, from the outputs */
	struct emg_analytics *ana_pending; /* for the new muscle map, from swapped() on */
	struct emg_oscquery *oq;           /* OSCQuery HTTP + mDNS, NULL when off */
	sd_event_source *oq_ctl_src;       /* control packets from its WebSocket clients */
	char calib_path[PATH_MAX];
	int calibrating;
	uint64_t calib_deadline_ns; /* give up waiting for results after this */
	struct emg_lat lat_event;   /* block arrival -> sendto of onset/offset events */
	struct emg_lat lat_metric;  /* block arrival -> sendto of the metric bundle */
	int ready;
	int stopping;
	int logged_state;
	uint64_t wd_usec;
	uint64_t wd_last_frames;
	uint64_t ticks;
	uint64_t last_overruns;
	uint64_t last_outs_dropped;

	/* Recording. */
	struct emg_recorder *rec;          /* attached to the engine */
	struct emg_recorder *rec_closing;  /* detach sent, waiting for the engine's detached() */
	struct emg_recorder *rec_parked;   /* across a device restart: no engine owns it */
	struct emg_device_info rec_info;   /* the device the running recording was opened for */
	pthread_t closer;                  /* closes a finished recording off the main loop */
	int closer_running;
	uint64_t rec_seen_overruns;
	char rec_lost[PATH_MAX + 96];      /* why the last recording stopped on its own, for record/stop */
	uint64_t recordings_lost;          /* recordings whose file was deleted while being written */
	uint64_t rec_frames_lost;          /* frames ended recordings could not keep (stay in the status count) */
	char rec_dir[PATH_MAX];
	uint8_t baseline_said[EMG_MUSCLES_MAX]; /* per lane: 1 = "no baseline yet" logged, 2 = its first baseline */
};

/* emgd.c */
/* STATUS= line for systemd, from the current state. */
void notify_status(struct daemon *d);
/* READY=1 once: the first metrics arrived, or the device is knowingly awaited. */
void mark_ready(struct daemon *d);

/* control.c */
/* Fill the OSC server's control handlers. */
void control_handlers(struct daemon *d, struct emg_osc_handlers *oh);
/* The engine's sink: outputs to OSC, analytics, calibration and the recording. */
struct emg_engine_sink control_sink(struct daemon *d);
/* sd-event handler: the engine's outputs wait. */
int control_on_outs(sd_event_source *s, int fd, uint32_t revents, void *ud);
/* sd-event handler: the device changed state. */
int control_on_dev_state(sd_event_source *s, int fd, uint32_t revents, void *ud);
/* sd-event timer, once a second: leases, calibration deadline, losses, status. */
int control_on_tick(sd_event_source *s, uint64_t usec, void *ud);
/* Re-arm a one-shot timer usec from now. */
void control_rearm(sd_event_source *s, uint64_t usec);
/* "streaming", "waiting-device", "device-failed", "calibrating" or "recording". */
const char *control_state_name(struct daemon *d);
/* Frames lost by the device and the engine so far. */
uint64_t control_overruns(struct daemon *d);
/* Bind the OSC socket to cfg.listen and watch it; negative errno (logged). */
int control_bind_osc(struct daemon *d);
/* Start, stop or restart the OSCQuery server as [oscquery] says. */
void control_oscquery_apply(struct daemon *d, int restart);
/* Write where we listen to the ports file (emgctl --instance, listen = auto). */
void control_write_ports(struct daemon *d);
/* Write the calibration table to the state directory, if there is one. */
void control_save_calib(struct daemon *d);

/* recording.c */
/* Annotate the running recording, if any; `sample` may be EMG_RECORD_NOW. */
void annotate(struct daemon *d, uint64_t sample, double duration_s, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Open a recording (name NULL: automatic) and attach it to the engine; err says why not. */
int record_start(struct daemon *d, const char *name, char *err, size_t len);
/* Detach the recording from the engine; it is closed once the engine let go. */
int record_stop(struct daemon *d, char *err, size_t len);
/* Once a second: surface recorder losses and failures in the log and the file. */
void record_check(struct daemon *d);
/* record = auto: record whenever streaming. */
void record_auto(struct daemon *d);
/* record = auto before the engine starts (not recording, none parked): a recording to attach from its first frame, or NULL. */
struct emg_recorder *record_auto_open(struct daemon *d);
/* rec, attached to the engine, is the recording now. */
void record_begin(struct daemon *d, struct emg_recorder *rec);
/* After a device restart: the parked recording continues, or a new file starts. */
void record_resume(struct daemon *d);
/* The engine stopped: park the recording (keep) or close it. */
void record_engine_stopped(struct daemon *d, int keep);
/* The engine let go of r: close it on the closer thread. */
void record_detached(struct daemon *d, struct emg_recorder *r);
/* Wait for the closer thread. */
void record_join_closer(struct daemon *d);
/* Set rec_dir from [daemon] recordings_dir or StateDirectory=, and repair what is there. */
void record_setup_dir(struct daemon *d);

/* reload.c */
/* Read the config file, instance drop-in and command-line overrides into cfg. */
int load_config(struct daemon *d, struct emg_config *cfg);
/* [osc] keys as the OSC server's parameters. */
void osc_params(const struct emg_config *c, struct emg_osc_params *p);
/* Create the state directory and load the calibrations in it. */
void setup_state_dir(struct daemon *d);
/* Open the device, build the pipeline and start the engine. */
int start_engine(struct daemon *d);
/* Stop the engine; keep_rec parks the running recording for record_resume(). */
void stop_engine(struct daemon *d, int keep_rec);
/* SIGHUP: apply the config file again, restarting the device only when needed. */
void reload(struct daemon *d);

#endif
