/* SPDX-License-Identifier: MIT */
/*
 * emgd: real-time surface-EMG acquisition daemon.
 *
 * Threads (ARCHITECTURE.md has the picture):
 *   device thread  - owned by the driver; pushes frames into the engine's frames ring
 *   DSP thread     - the engine's (lib/engine.c): runs the pipeline, writes the
 *                    recording, pushes outputs into the outputs ring
 *   main thread    - one sd-event loop: OSC socket, outputs, signals, timers,
 *                    sd_notify; the only thread that calls liblo, logs or allocates
 *                    after start-up
 * This file: main, command line, signals, privileges, sd_notify and the
 * watchdog.  daemon.h says where the rest lives.
 */
#include <errno.h>
#include <malloc.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "daemon.h"
#include "emgd-config.h"
#include "instance.h"

static struct daemon D;

/*
 * Fault injection, a test aid (tests/integration/test_faults.py), off unless the
 * environment asks for it at start-up:
 *   EMGD_FAULT_DSP_STALL_MS=N[@S]  the dsp thread sleeps once, for N ms, S seconds
 *                                  (default 2) after it started: a stalled consumer.
 */
static void fault_init(struct daemon *d)
{
	const char *v = getenv("EMGD_FAULT_DSP_STALL_MS");
	double after = 2;

	if (!v || !*v)
		return;
	d->stall_ms = strtoull(v, NULL, 10);
	if (strchr(v, '@'))
		after = strtod(strchr(v, '@') + 1, NULL);
	d->stall_after_ns = (uint64_t)(after * 1e9);
	emg_log(LOG_WARNING, "fault injection: the dsp thread will stall for %llu ms after %g s",
	       (unsigned long long)d->stall_ms, after);
}

void notify_status(struct daemon *d)
{
	/* Not sd_notifyf(): its vasprintf() mallocs 100 bytes and shrinks them with
	 * realloc() every second; the split-off 32- and 80-byte pieces sat in
	 * fastbins that never coalesce, and the heap top crept up ~7 kB a minute
	 * (issue 16 #12).  A stack buffer allocates nothing. */
	char st[256];

	snprintf(st, sizeof(st), "STATUS=%s: %s %g Hz x %u ch, %u subscriber%s, %llu overruns",
		 control_state_name(d), d->info.driver, d->info.rate, d->info.channels,
		 emg_osc_subscribers(d->osc), emg_osc_subscribers(d->osc) == 1 ? "" : "s",
		 (unsigned long long)control_overruns(d));
	sd_notify(0, st);
}

void mark_ready(struct daemon *d)
{
	if (d->ready)
		return;
	d->ready = 1;
	sd_notify(0, "READY=1");
	notify_status(d);
	emg_log(LOG_NOTICE, "%s %s: streaming %g Hz x %u channels, %u muscles, OSC on %s:%u",
	       d->info.driver, d->info.model, d->info.rate, d->info.channels,
	       emg_muscles_count(d->cfg.muscles), d->cfg.listen.host, emg_osc_port(d->osc));
}

/* Ping the watchdog only while samples arrive (a hung USB stack must trip it)
 * or while we are knowingly waiting for a device. */
static int on_watchdog(sd_event_source *s, uint64_t usec, void *ud)
{
	struct daemon *d = ud;
	uint64_t n = d->eng ? emg_engine_frames(d->eng) : 0;

	if (n != d->wd_last_frames || (d->eng && emg_engine_state(d->eng, NULL) == EMG_DEVICE_WAITING))
		sd_notify(0, "WATCHDOG=1");
	else
		emg_log(LOG_WARNING, "watchdog: no samples for %.1f s, not pinging",
		       (double)d->wd_usec / 2e6);
	d->wd_last_frames = n;
	control_rearm(s, d->wd_usec / 2);
	return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ud)
{
	struct daemon *d = ud;

	if (si->ssi_signo == SIGHUP) {
		reload(d);
		return 0;
	}
	emg_log(LOG_NOTICE, "%s: shutting down", strsignal((int)si->ssi_signo));
	d->stopping = 1;
	sd_notify(0, "STOPPING=1");
	sd_event_exit(d->ev, 0);
	return 0;
}

/*
 * Drop what a running emgd does not need, once it is set up.  Under systemd the
 * unit already gives it nothing (DynamicUser, CapabilityBoundingSet=,
 * NoNewPrivileges=); started by hand as root, it keeps only the capabilities
 * a reload may still use - binding a port below 1024, real-time priority and
 * locked memory for a restarted device - and drops every other one from its
 * effective, permitted, inheritable, ambient and bounding sets.  In every case
 * no_new_privs: nothing it could ever execute gains privileges.
 */
static void drop_privileges(void)
{
	static const int keep[] = { CAP_NET_BIND_SERVICE, CAP_SYS_NICE, CAP_IPC_LOCK };
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct c[2], n[2];

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		emg_log(LOG_WARNING, "privileges: cannot set no_new_privs: %s", strerror(errno));
	memset(c, 0, sizeof(c));
	if (syscall(SYS_capget, &h, c) < 0 || !(c[0].permitted | c[1].permitted))
		return; /* nothing to drop */
	memset(n, 0, sizeof(n));
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		uint32_t bit = 1u << (keep[i] & 31);
		n[keep[i] >> 5].permitted |= c[keep[i] >> 5].permitted & bit;
		n[keep[i] >> 5].effective |= c[keep[i] >> 5].permitted & bit;
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
		if (n[cap >> 5].permitted & (1u << (cap & 31)))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EPERM)
			break;
	}
	if (syscall(SYS_capset, &h, n) < 0)
		emg_log(LOG_WARNING, "privileges: cannot drop capabilities: %s", strerror(errno));
	else
		emg_log(LOG_INFO, "privileges: all capabilities dropped but net_bind_service, sys_nice and ipc_lock");
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: emgd [OPTIONS]\n"
		"Real-time surface-EMG acquisition daemon: filters, RMS envelopes, onsets and %%MVC over OSC.\n\n"
		"  -c, --config FILE      read FILE instead of the built-in defaults\n"
		"                         (packaged default: %s/emgd.conf)\n"
		"      --check-config     validate the configuration and exit (status 1 on error)\n"
		"  -d, --device DRIVER    override [device] driver (below)\n"
		"  -l, --listen HOST:PORT override [osc] listen\n"
		"  -s, --serial SERIAL    override [device] serial\n"
		"  -i, --instance NAME    one of many on a host (emgd@NAME.service): [device] serial\n"
		"                         NAME, and emgd@NAME.conf next to the config file, if it\n"
		"                         exists, read on top of it (its own [osc] listen port)\n"
		"  -f, --foreground       accepted for init scripts; emgd never forks\n"
		"  -v, --verbose          more log output (repeat for debug)\n"
		"  -q, --quiet            warnings and errors only\n"
		"  -V, --version          print the version\n"
		"  -h, --help             this help\n\n"
		"Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT stop.\n"
		"See emgd(8), emgd.conf(5), emgctl(1).\n\n"
		"Drivers ([device] driver; their keys in emgd.conf(5)):\n",
		EMGD_SYSCONFDIR);
	/* from the driver registry, so a new driver is listed without touching this */
	for (const struct emg_device_ops *const *drv = emg_device_drivers(); *drv; drv++)
		fprintf(f, "  %-9s%s\n", (*drv)->name, (*drv)->help);
}

/* The command line into d; 0 to go on, else the exit status + 1 (-V, -h, errors). */
static int parse_args(struct daemon *d, int argc, char **argv, int *check, int *log_level)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "device", required_argument, NULL, 'd' },
		{ "listen", required_argument, NULL, 'l' },
		{ "serial", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:d:l:s:i:fvqVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			d->config_path = optarg;
			break;
		case 'C':
			*check = 1;
			break;
		case 'd':
			d->driver_override = optarg;
			break;
		case 'l':
			d->listen_override = optarg;
			break;
		case 's':
			d->serial_override = optarg;
			break;
		case 'i':
			d->instance = optarg;
			break;
		case 'f':
			break;
		case 'v':
			(*log_level)++;
			break;
		case 'q':
			*log_level = LOG_WARNING;
			break;
		case 'V':
			printf("emgd %s\n", EMGD_VERSION);
			return EXIT_SUCCESS + 1;
		case 'h':
			usage(stdout);
			return EXIT_SUCCESS + 1;
		default:
			usage(stderr);
			return 2 + 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "emgd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2 + 1;
	}
	return 0;
}

/* --check-config: say what was read. */
static void print_check(struct daemon *d)
{
	int dropin = d->instance && access(d->dropin_path, F_OK) == 0;
	char port[8] = "auto";

	if (d->cfg.listen.port)
		snprintf(port, sizeof(port), "%u", d->cfg.listen.port);
	printf("%s%s%s: ok (%s, %u muscles, OSC %s:%s%s%s)\n",
	       d->config_path ? d->config_path : "built-in defaults", dropin ? " + " : "",
	       dropin ? d->dropin_path : "", d->cfg.driver,
	       emg_muscles_count(d->cfg.muscles), d->cfg.listen.host, port,
	       d->cfg.serial[0] ? ", serial " : "", d->cfg.serial);
}

/* Process-wide set-up before any thread starts: signals, stacks, memory. */
static void setup_process(struct daemon *d)
{
	pthread_attr_t ta;
	sigset_t ss;

	/* Signals are handled by sd-event through a signalfd; block them before
	 * any thread starts so no thread takes them asynchronously. */
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Threads (dsp, the driver's, the recorder's) get 1 MB stacks instead of
	 * RLIMIT_STACK's usual 8 MB: with mlockall every stack page is resident. */
	if (pthread_attr_init(&ta) == 0) {
		if (pthread_attr_setstacksize(&ta, 1u << 20) == 0)
			pthread_setattr_default_np(&ta);
		pthread_attr_destroy(&ta);
	}
	/* The latency histograms (20 KiB in .bss) are written where each new
	 * latency falls; untouched, their pages became resident one by one for
	 * hours (issue 16 #12).  Touch them now, so resident memory is flat. */
	emg_lat_reset(&d->lat_event);
	emg_lat_reset(&d->lat_metric);
	/* A reload swaps in a new pipeline (~0.5 MB at 64 channels) and frees the
	 * old.  glibc raises its mmap threshold to the size of the first large
	 * block freed, so every later pipeline came from the heap, where freed
	 * space stayed resident: RssAnon rose ~0.5 MB per few reloads for the
	 * first dozen (issue 16 #12).  A fixed threshold keeps large blocks
	 * mmapped: freed, they go back to the system. */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	if (d->cfg.mlock && mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		emg_log(LOG_INFO, "memory: not locked (%s); page faults may add latency", strerror(errno));
}

/* Event loop, OSC, state directory, engine, recording, timers; negative on failure. */
static int setup(struct daemon *d)
{
	struct emg_osc_handlers oh;
	struct emg_osc_params op;
	int r;

	if ((r = sd_event_default(&d->ev)) < 0 ||
	    (r = sd_event_add_signal(d->ev, NULL, SIGTERM, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->ev, NULL, SIGINT, on_signal, d)) < 0 ||
	    (r = sd_event_add_signal(d->ev, NULL, SIGHUP, on_signal, d)) < 0) {
		emg_log(LOG_ERR, "event loop: %s", strerror(-r));
		return r;
	}
	d->logged_state = EMG_DEVICE_STREAMING;
	if ((r = emg_calib_new(&d->calib, d->cfg.muscles)) < 0)
		return r;
	setup_state_dir(d);

	control_handlers(d, &oh);
	osc_params(&d->cfg, &op);
	if ((r = emg_osc_new(&d->osc, &op, &oh)) < 0)
		return r;
	emg_osc_set_muscles(d->osc, d->cfg.muscles);
	emg_osc_set_targets(d->osc, d->cfg.targets, d->cfg.ntargets);
	if ((r = control_bind_osc(d)) < 0)
		return r;

	record_setup_dir(d);
	fault_init(d);
	if ((r = start_engine(d)) < 0)
		return r;
	record_auto(d);
	control_oscquery_apply(d, 0);
	control_write_ports(d);

	drop_privileges();

	if ((r = sd_event_add_time_relative(d->ev, &d->tick_src, CLOCK_MONOTONIC, 1000000, 10000,
					    control_on_tick, d)) < 0)
		return r;
	if (sd_watchdog_enabled(0, &d->wd_usec) > 0 &&
	    (r = sd_event_add_time_relative(d->ev, &d->wd_src, CLOCK_MONOTONIC, d->wd_usec / 2, 10000,
					    on_watchdog, d)) < 0)
		return r;
	return 0;
}

static void teardown(struct daemon *d)
{
	stop_engine(d, 0);
	if (d->osc) {
		struct emg_osc_stats st;
		emg_osc_stats(d->osc, &st);
		emg_log(LOG_INFO, "osc: %llu packets in, %llu malformed, %llu denied, %llu rate-limited, %llu sent",
		       (unsigned long long)st.received, (unsigned long long)st.malformed,
		       (unsigned long long)st.denied, (unsigned long long)st.rate_limited,
		       (unsigned long long)st.sent);
	}
	record_join_closer(d);
	if (d->ports_path[0])
		unlink(d->ports_path); /* nobody listens there any more */
	sd_event_source_disable_unref(d->tick_src);
	sd_event_source_disable_unref(d->wd_src);
	sd_event_source_disable_unref(d->osc_src);
	sd_event_source_disable_unref(d->oq_ctl_src);
	if (d->osc)
		emg_osc_set_tap(d->osc, NULL, NULL);
	emg_oscquery_free(d->oq);
	emg_osc_free(d->osc);
	emg_calib_free(d->calib);
	emg_muscles_free(d->pending_muscles);
	emg_config_release(&d->cfg);
	sd_event_unref(d->ev);
}

int main(int argc, char **argv)
{
	struct daemon *d = &D;
	int check = 0, log_level = LOG_NOTICE, r, ret = EXIT_FAILURE;

	if ((r = parse_args(d, argc, argv, &check, &log_level)) > 0)
		return r - 1;
	/* journald reads <N> prefixes; a terminal gets plain lines. */
	emg_log_setup(log_level, getenv("JOURNAL_STREAM") != NULL || !isatty(STDERR_FILENO));

	if (load_config(d, &d->cfg) < 0)
		return EXIT_FAILURE;
	if (check) {
		print_check(d);
		emg_config_release(&d->cfg);
		return EXIT_SUCCESS;
	}
	setup_process(d);
	if (setup(d) == 0) {
		r = sd_event_loop(d->ev);
		ret = r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	teardown(d);
	return ret;
}
