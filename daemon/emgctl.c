/* SPDX-License-Identifier: MIT */
/*
 * emgctl: command-line client for emgd's OSC control interface.
 *
 * One socket of our own (a liblo lo_server on a random UDP port): requests
 * leave from it and emgd answers to the address a request came from, so the
 * same socket receives the replies and, while subscribed, the stream.  The
 * program is single-threaded: every command is a loop around poll() on the
 * server's fd with a deadline, dispatching whatever arrived through one
 * catch-all liblo method into plain state that the command then inspects.
 *
 * The OSC contract is the one lib/osc.c implements (see emgd(8)):
 *   replies  /emgd/subscribed i, /emgd/unsubscribed, /emgd/status s i i i,
 *            /emgd/pong, /emgd/ok s, /emgd/error s s, /emgd/calibrated s s f i
 *   stream   /emg/<muscle>/rms f, /level f, /active i, /onset f i,
 *            /offset f f, /lag f, /emg/levels f..., /emg/frame i i,
 *            /emg/order i s f..., /emg/rep s i f f f f f f i s
 * Anything else is counted and ignored.
 */
#include <errno.h>
#include <dirent.h>
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <lo/lo.h>

#include "config.h"
#include "emgd-config.h"
#include "osc.h"
#include "instance.h"
#include "record.h"

#define DEFAULT_ADDRESS "127.0.0.1:9000"
#define MAX_MUSCLES EMG_MUSCLES_MAX /* one row per muscle the daemon can publish */
#define NAME_LEN 32       /* EMG_MUSCLE_NAME_MAX */
#define MONITOR_LEASE 10  /* seconds asked for by monitor */
#define RENEW_S 3.0       /* renew well before the lease runs out, even if a renewal is lost */
#define DRAW_HZ 30.0      /* live redraw rate: smooth enough, cheap on a Pi's terminal */
#define FLASH_S 0.3       /* row highlight after an onset */
#define STALE_S 3.0       /* a muscle silent this long while frames arrive left the map */
#define NREPLIES 16
#define NCALIB 128
#define MAX_COLS 512

enum { EXIT_USAGE = 2, EXIT_INTERRUPTED = 130 };

/* ---- state filled by the OSC handler ---- */

struct muscle {
	char name[NAME_LEN];
	double rms;      /* µV */
	double level;    /* fraction of MVC */
	double level_at; /* when /level last arrived, 0 = never */
	double peak_rms; /* largest rms seen (calibration feedback) */
	int active;
	double seen_at;  /* last /rms */
	double onset_at; /* estimated true onset, local monotonic time; 0 = none yet */
	double onset_rx; /* when the /onset message arrived (drives the flash) */
	double burst_s;  /* last burst duration, < 0 = none yet */
	int reps;        /* /emg/rep: repetitions counted by emgd */
	double rep_peak; /* last repetition's peak, in rep_unit */
	char rep_unit[8];/* "pct_mvc" or "uV" */
	double lag_ms;   /* /emg/<muscle>/lag of the last burst group */
	int lag_group;   /* which group lag_ms belongs to */
};

enum reply_kind { REPLY_OK = 1, REPLY_ERROR };

/* A reply keyed by the request path it answers. */
struct reply {
	unsigned long seq;
	int kind;
	char path[64];
	char msg[256];
	int iv[10]; /* integer arguments: /emgd/subscribed lease, /emgd/stats counters */
	int niv;
};

struct calres {
	char kind[8];
	char muscle[NAME_LEN];
	double value;
	int ok;
};

struct ctl {
	lo_server srv;
	lo_address addr;
	char target[300]; /* as given, for messages */
	int port;         /* replies must come from here */
	double timeout;

	unsigned long seq;
	struct reply replies[NREPLIES];

	/* /emgd/status */
	int have_status;
	char state[32];
	int rate, channels, overruns;
	double status_at;

	/* stream */
	struct muscle m[MAX_MUSCLES];
	unsigned nm;
	int nlevels; /* arguments of the last /emg/levels: the daemon's muscle count */
	int tick, dropped;
	int have_frame;
	double frame_at, first_frame_at;
	double level_top; /* %MVC bar full scale: 1.0, or 2.0 once a level went past 100 % */
	int order_group;  /* last /emg/order: group number (0 = none yet) */
	double order_at;
	double rms_top;   /* RMS bar full scale in µV (log scale) */
	unsigned long msgs, msgs_mark;
	double msgs_mark_at, msg_rate;

	struct calres cal[NCALIB];
	unsigned ncal;
	double cal_last_at;
	char last_error[300];
	double last_error_at;
};

/* ---- signals ---- */

static volatile sig_atomic_t quit_sig, winch_sig, tstp_sig;

static void on_signal(int sig)
{
	if (sig == SIGWINCH)
		winch_sig = 1;
	else if (sig == SIGTSTP)
		tstp_sig = 1;
	else
		quit_sig = sig;
}

/* No SA_RESTART: poll() must return EINTR so the loop sees the flag at once. */
static void install_signals(int tty)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (tty) {
		sigaction(SIGWINCH, &sa, NULL);
		sigaction(SIGTSTP, &sa, NULL);
	}
	/* `emgctl monitor | head`: a closed pipe is a write error we handle, not a death
	 * that would skip the unsubscribe. */
	signal(SIGPIPE, SIG_IGN);
}

/* ---- small helpers ---- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("emgctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static int parse_seconds(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return (errno || end == s || *end || !isfinite(*out) || *out <= 0) ? -1 : 0;
}

static int utf8_ok;  /* block characters, µ, ● */
static int color_ok; /* ANSI colours */

static const char *uv(void)
{
	return utf8_ok ? "µV" : "uV";
}

/* ---- OSC input ---- */

/*
 * liblo's lo_arg is a union with 8-byte members, but arguments sit at 4-byte
 * offsets in the packet: read them by copying rather than through the union
 * (UBSan flags the member access as misaligned).
 */
static int32_t arg_i(const lo_arg *a)
{
	int32_t v;

	memcpy(&v, a, sizeof(v));
	return v;
}

static float arg_f(const lo_arg *a)
{
	float v;

	memcpy(&v, a, sizeof(v));
	return v;
}

static const char *arg_s(const lo_arg *a)
{
	return (const char *)a;
}

static struct reply *new_reply(struct ctl *c, int kind, const char *path)
{
	struct reply *r = &c->replies[c->seq % NREPLIES];

	memset(r, 0, sizeof(*r));
	r->seq = ++c->seq;
	r->kind = kind;
	snprintf(r->path, sizeof(r->path), "%s", path);
	return r;
}

static struct muscle *find_muscle(struct ctl *c, const char *name, size_t len, int add)
{
	for (unsigned i = 0; i < c->nm; i++)
		if (strlen(c->m[i].name) == len && !memcmp(c->m[i].name, name, len))
			return &c->m[i];
	if (!add || c->nm == MAX_MUSCLES || len == 0 || len >= NAME_LEN)
		return NULL;
	struct muscle *m = &c->m[c->nm++];
	memset(m, 0, sizeof(*m));
	memcpy(m->name, name, len);
	m->burst_s = -1;
	return m;
}

/* emgd's address table (lib/osc.h) names every path: no literal copies here. */
#define ADDR(x) emg_osc_path(EMG_OSC_ADDR_##x)

/* The arguments match the table's type tags for row id (fixed-type rows only). */
static int types_are(enum emg_osc_addr_id id, const char *types)
{
	return !strcmp(types, emg_osc_address(id)->types);
}

static void muscle_msg(struct ctl *c, enum emg_osc_addr_id id, const char *name, size_t nlen,
		       const char *types, lo_arg **argv, double now)
{
	if (!types_are(id, types))
		return;
	/* Names are learnt from /rms only, so rows keep the order of the bundles. */
	struct muscle *m = find_muscle(c, name, nlen, id == EMG_OSC_ADDR_RMS);
	if (!m)
		return;
	switch (id) {
	case EMG_OSC_ADDR_RMS:
		m->rms = arg_f(argv[0]);
		m->seen_at = now;
		if (m->rms > m->peak_rms)
			m->peak_rms = m->rms;
		while (m->rms > c->rms_top && c->rms_top < 1e6)
			c->rms_top *= 10;
		break;
	case EMG_OSC_ADDR_LEVEL:
		m->level = arg_f(argv[0]);
		m->level_at = now;
		if (m->level > 1.0)
			c->level_top = 2.0;
		break;
	case EMG_OSC_ADDR_ACTIVE:
		m->active = arg_i(argv[0]) != 0;
		break;
	case EMG_OSC_ADDR_ONSET:
		/* The age says how long ago the muscle really switched on. */
		m->onset_at = now - arg_f(argv[0]);
		m->onset_rx = now;
		m->active = 1;
		break;
	case EMG_OSC_ADDR_LAG:
		m->lag_ms = arg_f(argv[0]);
		m->lag_group = c->order_group;
		break;
	case EMG_OSC_ADDR_OFFSET: {
		/* Subscribed mid-burst we never saw the onset: age + duration date it. */
		double onset = now - arg_f(argv[0]) - arg_f(argv[1]);
		if (m->onset_at < onset - 0.001)
			m->onset_at = onset;
		m->burst_s = arg_f(argv[1]);
		m->active = 0;
		break;
	}
	default:
		break;
	}
}

static void stream_msg(struct ctl *c, enum emg_osc_addr_id id, const char *types, lo_arg **argv,
		       int argc, double now)
{
	switch (id) {
	case EMG_OSC_ADDR_FRAME:
		if (!types_are(id, types))
			return;
		c->tick = arg_i(argv[0]);
		c->dropped = arg_i(argv[1]);
		if (!c->have_frame)
			c->first_frame_at = now;
		c->have_frame = 1;
		c->frame_at = now;
		break;
	case EMG_OSC_ADDR_ORDER:
		/* The group's lags follow as /emg/<muscle>/lag in the same bundle. */
		if (argc >= 2 && types[0] == 'i' && types[1] == 's') {
			c->order_group = arg_i(argv[0]);
			c->order_at = now;
		}
		break;
	case EMG_OSC_ADDR_REP: {
		if (!types_are(id, types))
			return;
		struct muscle *m = find_muscle(c, arg_s(argv[0]), strlen(arg_s(argv[0])), 0);
		if (m) {
			m->reps = arg_i(argv[1]);
			m->rep_peak = arg_f(argv[2]);
			snprintf(m->rep_unit, sizeof(m->rep_unit), "%s", arg_s(argv[9]));
		}
		break;
	}
	case EMG_OSC_ADDR_LEVELS:
		for (int i = 0; i < argc; i++)
			if (types[i] != 'f')
				return;
		c->nlevels = argc;
		break;
	default:
		break;
	}
}

/* Replies, status and calibration results; 0 if id is none of those. */
static int control_msg(struct ctl *c, enum emg_osc_addr_id id, const char *types, lo_arg **argv,
		       double now)
{
	struct reply *r;

	switch (id) {
	case EMG_OSC_ADDR_STATUS:
		if (!types_are(id, types))
			return 1;
		snprintf(c->state, sizeof(c->state), "%s", arg_s(argv[0]));
		c->rate = arg_i(argv[1]);
		c->channels = arg_i(argv[2]);
		c->overruns = arg_i(argv[3]);
		c->have_status = 1;
		c->status_at = now;
		new_reply(c, REPLY_OK, ADDR(STATUS));
		break;
	case EMG_OSC_ADDR_PONG:
		new_reply(c, REPLY_OK, ADDR(PING));
		break;
	case EMG_OSC_ADDR_SUBSCRIBED:
		r = new_reply(c, REPLY_OK, ADDR(SUBSCRIBE));
		if (types_are(id, types)) {
			r->iv[0] = arg_i(argv[0]);
			r->niv = 1;
		}
		break;
	case EMG_OSC_ADDR_STATS:
		/* Older daemons sent fewer counters: take the leading ints. */
		r = new_reply(c, REPLY_OK, ADDR(STATS));
		for (int i = 0; types[i] && i < 10; i++)
			if (types[i] == 'i')
				r->iv[r->niv++] = arg_i(argv[i]);
		break;
	case EMG_OSC_ADDR_UNSUBSCRIBED:
		new_reply(c, REPLY_OK, ADDR(UNSUBSCRIBE));
		break;
	case EMG_OSC_ADDR_OK:
		if (types_are(id, types))
			new_reply(c, REPLY_OK, arg_s(argv[0]));
		break;
	case EMG_OSC_ADDR_ERROR:
		if (!types_are(id, types))
			return 1;
		r = new_reply(c, REPLY_ERROR, arg_s(argv[0]));
		snprintf(r->msg, sizeof(r->msg), "%s", arg_s(argv[1]));
		snprintf(c->last_error, sizeof(c->last_error), "%s: %s", arg_s(argv[0]), arg_s(argv[1]));
		c->last_error_at = now;
		break;
	case EMG_OSC_ADDR_CALIBRATED: {
		if (!types_are(id, types) || c->ncal == NCALIB)
			return 1;
		struct calres *cr = &c->cal[c->ncal++];
		snprintf(cr->kind, sizeof(cr->kind), "%s", arg_s(argv[0]));
		snprintf(cr->muscle, sizeof(cr->muscle), "%s", arg_s(argv[1]));
		cr->value = arg_f(argv[2]);
		cr->ok = arg_i(argv[3]);
		c->cal_last_at = now;
		break;
	}
	default:
		return 0;
	}
	return 1;
}

/* The one liblo method: every message, including those inside bundles, lands here. */
static int on_osc(const char *path, const char *types, lo_arg **argv, int argc, lo_message msg,
		  void *ud)
{
	struct ctl *c = ud;
	lo_address src = lo_message_get_source(msg);
	double now = now_s();

	/* Our port is reachable by anyone; only emgd's port may drive us. */
	if (src && lo_address_get_port(src) && atoi(lo_address_get_port(src)) != c->port)
		return 0;
	c->msgs++;
	const char *name = NULL;
	size_t nlen = 0;
	int id = emg_osc_address_find(path, &name, &nlen);
	if (id < 0)
		return 0;
	if (name)
		muscle_msg(c, (enum emg_osc_addr_id)id, name, nlen, types, argv, now);
	else if (!control_msg(c, (enum emg_osc_addr_id)id, types, argv, now))
		stream_msg(c, (enum emg_osc_addr_id)id, types, argv, argc, now);
	return 0;
}

static void on_lo_error(int num, const char *msg, const char *where)
{
	/* Malformed datagrams are not ours to report; a dead socket shows up as a timeout. */
}

/*
 * Wait up to `ms` for datagrams and dispatch all that are waiting.  If
 * extra_fd >= 0 it is polled too; returns 1 when it is readable, 0
 * otherwise, -1 when a signal interrupted the wait.
 */
static int pump(struct ctl *c, int ms, int extra_fd)
{
	struct pollfd pfd[2] = {
		{ .fd = lo_server_get_socket_fd(c->srv), .events = POLLIN },
		{ .fd = extra_fd, .events = POLLIN },
	};
	int n = poll(pfd, extra_fd >= 0 ? 2 : 1, ms < 0 ? 0 : ms);

	if (n < 0)
		return errno == EINTR ? -1 : 0;
	if (pfd[0].revents & POLLIN)
		/* Bounded, so a flood cannot starve the redraw. */
		for (int i = 0; i < 4096 && lo_server_recv_noblock(c->srv, 0) > 0; i++)
			;
	return extra_fd >= 0 && (pfd[1].revents & (POLLIN | POLLHUP)) ? 1 : 0;
}

static int ms_until(double deadline)
{
	double d = (deadline - now_s()) * 1000.0;

	return d <= 0 ? 0 : d > 1e6 ? 1000000 : (int)ceil(d);
}

/* ---- OSC output ---- */

static void send_msg(struct ctl *c, const char *path, lo_message m)
{
	int r = lo_send_message_from(c->addr, c->srv, path, m);

	lo_message_free(m);
	if (r < 0)
		die(1, "cannot send to %s: %s%s", c->target, lo_address_errstr(c->addr),
		    strchr(c->target, '[') ? " (this liblo sends over IPv4 only; use an IPv4 address)" : "");
}

static void send_empty(struct ctl *c, const char *path)
{
	send_msg(c, path, lo_message_new());
}

static void send_subscribe(struct ctl *c, int lease)
{
	lo_message m = lo_message_new();

	lo_message_add_int32(m, lease);
	send_msg(c, ADDR(SUBSCRIBE), m);
}

static const struct reply *find_reply(const struct ctl *c, const char *path, unsigned long after)
{
	const struct reply *best = NULL;

	for (int i = 0; i < NREPLIES; i++) {
		const struct reply *r = &c->replies[i];
		if (r->seq > after && !strcmp(r->path, path) && (!best || r->seq < best->seq))
			best = r;
	}
	return best;
}

enum { WAIT_OK = 0, WAIT_ERROR = 1, WAIT_TIMEOUT = -1, WAIT_INTR = -2 };

/* Wait until `path` (a request sent after sequence `after`) is answered; *out gets the reply. */
static int wait_reply(struct ctl *c, const char *path, unsigned long after, double deadline,
		      const struct reply **out)
{
	for (;;) {
		const struct reply *r = find_reply(c, path, after);
		if (r) {
			if (out)
				*out = r;
			return r->kind == REPLY_OK ? WAIT_OK : WAIT_ERROR;
		}
		if (quit_sig)
			return WAIT_INTR;
		if (now_s() >= deadline)
			return WAIT_TIMEOUT;
		pump(c, ms_until(deadline), -1);
	}
}

static void no_answer(const struct ctl *c) __attribute__((noreturn));
static void no_answer(const struct ctl *c)
{
	die(1, "no answer from emgd at %s (is it running? see systemctl status emgd)", c->target);
}

/* Send a prepared request and wait for its answer; exits on timeout, error or Ctrl-C. */
static const struct reply *request(struct ctl *c, const char *path, lo_message m)
{
	unsigned long after = c->seq;
	const struct reply *r = NULL;

	send_msg(c, path, m);
	switch (wait_reply(c, path, after, now_s() + c->timeout, &r)) {
	case WAIT_OK:
		return r;
	case WAIT_ERROR:
		die(1, "emgd refused %s: %s", path, r->msg);
	case WAIT_INTR:
		exit(EXIT_INTERRUPTED);
	default:
		no_answer(c);
	}
}

static void subscribe_or_die(struct ctl *c, int lease)
{
	lo_message m = lo_message_new();

	lo_message_add_int32(m, lease);
	request(c, ADDR(SUBSCRIBE), m);
}

/* Best effort: the lease ends it anyway, but a polite client frees its slot at once. */
static void unsubscribe(struct ctl *c)
{
	unsigned long after = c->seq;

	send_empty(c, ADDR(UNSUBSCRIBE));
	wait_reply(c, ADDR(UNSUBSCRIBE), after, now_s() + (c->timeout < 0.5 ? c->timeout : 0.5),
		   NULL);
}

/* ---- status, ping ---- */

static int cmd_status(struct ctl *c, int argc, char **argv)
{
	if (argc > 1)
		die(EXIT_USAGE, "status takes no arguments");
	request(c, ADDR(STATUS), lo_message_new());
	printf("emgd at %s: %s\n", c->target, c->state);
	printf("  sample rate  %d Hz\n", c->rate);
	printf("  channels     %d\n", c->channels);
	printf("  overruns     %d%s\n", c->overruns,
	       c->overruns ? " (frames dropped since start: CPU too slow or USB trouble)" : "");
	return 0;
}

static int cmd_ping(struct ctl *c, int argc, char **argv)
{
	double t0;

	if (argc > 1)
		die(EXIT_USAGE, "ping takes no arguments");
	t0 = now_s();
	request(c, ADDR(PING), lo_message_new());
	printf("pong from %s: %.3f ms\n", c->target, (now_s() - t0) * 1e3);
	return 0;
}

static int cmd_stats(struct ctl *c, int argc, char **argv)
{
	static const char *const names[] = {
		"received", "handled", "malformed", "unknown address", "denied (allow list)",
		"rate-limited", "rejected (subscriber cap)", "subscribers now",
		"web clients now", "web frames dropped",
	};
	const struct reply *r;

	if (argc > 1)
		die(EXIT_USAGE, "stats takes no arguments");
	r = request(c, ADDR(STATS), lo_message_new());
	printf("emgd at %s: control packets since start\n", c->target);
	for (int i = 0; i < r->niv && i < 10; i++)
		printf("  %-26s %d\n", names[i], r->iv[i]);
	return 0;
}

/* ---- monitor: rendering ---- */

/* A frame is assembled in one buffer and written at once, so the terminal never shows half a redraw. */
static char frame_buf[1 << 20];
static size_t frame_len;

static void fb_raw(const char *s, size_t n)
{
	if (frame_len + n > sizeof(frame_buf))
		n = sizeof(frame_buf) - frame_len;
	memcpy(frame_buf + frame_len, s, n);
	frame_len += n;
}

/* A colour or attribute (SGR) sequence: dropped under NO_COLOR. */
static void fb_sgr(const char *s)
{
	if (color_ok)
		fb_raw(s, strlen(s));
}

/* Text on the current line, clipped at the terminal width (counts UTF-8 code points as cells). */
struct line {
	int cols, max;
};

static void ln_put(struct line *l, const char *s)
{
	const char *p = s;

	while (*p && l->cols < l->max) {
		const char *q = p + 1;
		while ((*q & 0xc0) == 0x80)
			q++;
		fb_raw(p, (size_t)(q - p));
		l->cols++;
		p = q;
	}
}

static void ln_printf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ln_printf(struct line *l, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	ln_put(l, buf);
}

static void ln_pad(struct line *l, int upto)
{
	while (l->cols < upto && l->cols < l->max)
		ln_put(l, " ");
}

/* End a line: pad (so a highlighted row is highlighted edge to edge), reset, clear the rest. */
static void ln_end(struct line *l, int pad)
{
	if (pad)
		ln_pad(l, l->max);
	fb_raw("\033[0m", 4);
	fb_raw("\033[K\n", 4);
}

/* A horizontal bar of `w` cells filled to frac, in eighths of a cell where UTF-8 allows. */
static void ln_bar(struct line *l, double frac, int w)
{
	static const char *const part[8] = { "", "▏", "▎", "▍", "▌", "▋", "▊", "▉" };
	int start = l->cols;

	if (!(frac > 0))
		frac = 0;
	if (frac > 1)
		frac = 1;
	if (utf8_ok) {
		int eighths = (int)lround(frac * w * 8);
		for (int i = 0; i < eighths / 8; i++)
			ln_put(l, "█");
		if (eighths % 8)
			ln_put(l, part[eighths % 8]);
	} else {
		int n = (int)lround(frac * w);
		for (int i = 0; i < n; i++)
			ln_put(l, "#");
	}
	ln_pad(l, start + w);
}

static double rms_frac(const struct ctl *c, double rms)
{
	/* Log scale: a 3 µV rest and a 250 µV contraction both read on one bar. */
	return log10(1.0 + (rms > 0 ? rms : 0)) / log10(1.0 + c->rms_top);
}

static int has_level(const struct muscle *m, double now)
{
	return m->level_at > 0 && now - m->level_at < 1.0;
}

static void fmt_ms(char *buf, size_t len, double s)
{
	if (s < 0)
		snprintf(buf, len, "-");
	else if (s < 100.0)
		snprintf(buf, len, "%.0f ms", s * 1e3);
	else
		snprintf(buf, len, "%.0f s", s);
}

/* Age of the last onset and the burst to show: the running one while active, else the last one. */
static void onset_info(const struct muscle *m, double now, double *age, double *burst)
{
	*age = m->onset_at > 0 ? now - m->onset_at : -1;
	*burst = m->burst_s;
	if (m->active && m->onset_at > 0)
		*burst = now - m->onset_at;
}

static void forget_stale(struct ctl *c, double now)
{
	/* After a reload with a new muscle map the old names stop arriving. */
	if (!c->have_frame || now - c->frame_at > 1.0)
		return;
	for (unsigned i = 0; i < c->nm;) {
		if (now - c->m[i].seen_at > STALE_S) {
			memmove(&c->m[i], &c->m[i + 1], (c->nm - i - 1) * sizeof(c->m[0]));
			c->nm--;
		} else {
			i++;
		}
	}
}

static void update_msg_rate(struct ctl *c, double now, int force)
{
	if (now - c->msgs_mark_at >= 1.0 || (force && now - c->msgs_mark_at > 0.1)) {
		c->msg_rate = (double)(c->msgs - c->msgs_mark) / (now - c->msgs_mark_at);
		c->msgs_mark = c->msgs;
		c->msgs_mark_at = now;
	}
}

static const char *state_color(const char *st)
{
	if (!strcmp(st, "streaming") || !strcmp(st, "recording"))
		return "\033[32m";
	if (!strcmp(st, "calibrating") || !strcmp(st, "waiting-device"))
		return "\033[33m";
	return "\033[31m";
}

struct term {
	int cols, rows;
	int tty_in;
	struct termios saved;
	int entered;
};

static void term_size(struct term *t)
{
	struct winsize ws;

	t->cols = 80;
	t->rows = 24;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
		t->cols = ws.ws_col;
		t->rows = ws.ws_row > 0 ? ws.ws_row : 24;
	}
	if (t->cols > MAX_COLS)
		t->cols = MAX_COLS;
}

static void write_all(const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(STDOUT_FILENO, s, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			quit_sig = SIGPIPE; /* terminal gone: leave like on Ctrl-C */
			return;
		}
		s += w;
		n -= (size_t)w;
	}
}

/* Alternate screen, hidden cursor, keys without echo (so 'q' quits and typing does not smear the meters). */
static void term_enter(struct term *t)
{
	static const char seq[] = "\033[?1049h\033[?25l\033[H\033[2J";

	t->tty_in = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0;
	if (t->tty_in) {
		struct termios raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	write_all(seq, sizeof(seq) - 1);
	t->entered = 1;
}

static void term_leave(struct term *t)
{
	static const char seq[] = "\033[0m\033[?25h\033[?1049l";

	if (!t->entered)
		return;
	if (t->tty_in)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	write_all(seq, sizeof(seq) - 1);
	t->entered = 0;
}

struct layout {
	int nw, bw1, bw2, info, rep;
};

/* Repetitions and the last one's peak ("45%", "93 µV"; plain: "93_uV"); "-" before the first. */
static void fmt_rep(char *reps, size_t rl, char *peak, size_t pl, const struct muscle *m, int plain)
{
	if (m->reps <= 0) {
		snprintf(reps, rl, "-");
		snprintf(peak, pl, "-");
		return;
	}
	snprintf(reps, rl, "%d", m->reps);
	if (!strcmp(m->rep_unit, "pct_mvc"))
		snprintf(peak, pl, "%.0f%%", m->rep_peak);
	else if (plain)
		snprintf(peak, pl, "%.0f_uV", m->rep_peak);
	else
		snprintf(peak, pl, "%.0f %s", m->rep_peak, uv());
}

static int lag_cmp(const void *a, const void *b)
{
	const struct muscle *x = *(const struct muscle *const *)a, *y = *(const struct muscle *const *)b;

	return (x->lag_ms > y->lag_ms) - (x->lag_ms < y->lag_ms);
}

/* Cells a UTF-8 string takes (one per code point: names and arrows are narrow). */
static int cells(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += (*s & 0xc0) != 0x80;
	return n;
}

/*
 * The last burst group's firing order in at most `width` cells: "firing order
 * #12 (3 s ago): hamstring_l → glute_max_l +45 ms → ...", then shorter forms
 * ("order #12: a → b +45 → c +60 ms"), then as many muscles as fit and
 * "(+N more)" - never a name cut in half.
 */
static void order_line(const struct ctl *c, char *buf, size_t len, double now, int width)
{
	const struct muscle *in[MAX_MUSCLES];
	const char *arrow = utf8_ok ? "→" : "->";
	unsigned n = 0;

	if (c->order_group <= 0) {
		snprintf(buf, len, width >= 32 ? "firing order: no burst group yet" : "order: none yet");
		return;
	}
	for (unsigned i = 0; i < c->nm; i++)
		if (c->m[i].lag_group == c->order_group)
			in[n++] = &c->m[i];
	qsort(in, n, sizeof(in[0]), lag_cmp);
	for (int form = 0; form < 3; form++) {
		size_t used;
		if (form == 0)
			used = (size_t)snprintf(buf, len, "firing order #%d (%.0f s ago):", c->order_group,
						now - c->order_at);
		else
			used = (size_t)snprintf(buf, len, "order #%d:", c->order_group);
		for (unsigned i = 0; i < n && used < len; i++) {
			char item[128];
			if (i == 0)
				snprintf(item, sizeof(item), " %s", in[i]->name);
			else
				snprintf(item, sizeof(item), " %s %s +%.0f%s", arrow, in[i]->name,
					 in[i]->lag_ms, form == 0 || i + 1 == n ? " ms" : "");
			/* the last form keeps whole names and says how many did not fit */
			if (form == 2) {
				char more[32];
				snprintf(more, sizeof(more), " (+%u more)", n - i);
				int after = i + 1 < n ? (int)strlen(more) + 3 : 0;
				if (cells(buf) + cells(item) + after > width) {
					snprintf(buf + used, len - used, "%s", i > 1 ? " ms" : "");
					used = strlen(buf);
					snprintf(buf + used, len - used, "%s", more);
					return;
				}
			}
			used += (size_t)snprintf(buf + used, len - used, "%s", item);
		}
		if (cells(buf) <= width || form == 2)
			return;
	}
}

static void compute_layout(const struct ctl *c, int cols, struct layout *L)
{
	/* name ␣ rmsbar ␣ value(8) ␣␣ mvcbar ␣ pct(5) ␣ act(3) [␣ onset(8) ␣ burst(8)] */
	int fixed, avail;

	L->nw = 6;
	for (unsigned i = 0; i < c->nm; i++)
		if ((int)strlen(c->m[i].name) > L->nw)
			L->nw = (int)strlen(c->m[i].name);
	fixed = L->nw + 1 + 1 + 8 + 2 + 1 + 5 + 1 + 3;
	L->info = 18;
	L->rep = 15;
	avail = cols - 1 - fixed - L->info - L->rep;
	if (avail < 12) { /* narrow terminal: bars matter more than text */
		L->rep = 0;
		avail = cols - 1 - fixed - L->info;
	}
	if (avail < 12) {
		L->info = 0;
		avail = cols - 1 - fixed;
	}
	if (avail < 6)
		avail = 6;
	L->bw1 = avail * 3 / 5;
	L->bw2 = avail - L->bw1;
}

static void draw_header(struct ctl *c, struct line *l, double now)
{
	ln_printf(l, "emgd %s  ", c->target);
	if (c->have_status) {
		fb_sgr(state_color(c->state));
		ln_printf(l, "%s %s", utf8_ok ? "●" : "*", c->state);
		fb_sgr("\033[0m");
		ln_printf(l, "  %d Hz %s %d ch  overruns %d", c->rate, utf8_ok ? "×" : "x",
			  c->channels, c->overruns);
	} else {
		ln_put(l, "(waiting for /emgd/status)");
	}
}

static void draw_row(struct ctl *c, struct line *l, const struct muscle *m, const struct layout *L,
		     double now)
{
	int flash = m->onset_rx > 0 && now - m->onset_rx < FLASH_S;
	const char *base = flash ? "\033[0;30;103m" : "\033[0m";
	double age, burst, lvl = m->level;
	char a[32], b[32];

	/* A flashing row is black on yellow edge to edge; inner colours would fight it. */
	if (flash)
		fb_raw(color_ok ? base : "\033[7m", strlen(color_ok ? base : "\033[7m"));
	ln_printf(l, "%-*s ", L->nw, m->name);
	if (!flash)
		fb_sgr("\033[36m");
	ln_bar(l, rms_frac(c, m->rms), L->bw1);
	if (!flash)
		fb_sgr(base);
	ln_printf(l, " %8.1f  ", m->rms);
	if (has_level(m, now)) {
		if (!flash)
			fb_sgr(lvl < 0.5 ? "\033[32m" : lvl < 1.0 ? "\033[33m" : "\033[35m");
		ln_bar(l, lvl / c->level_top, L->bw2);
		if (!flash)
			fb_sgr(base);
		ln_printf(l, " %4.0f%%", lvl * 100.0);
	} else {
		ln_pad(l, l->cols + L->bw2);
		ln_printf(l, " %5s", utf8_ok ? "—" : "-");
	}
	ln_put(l, "  ");
	if (m->active) {
		if (!flash)
			fb_sgr("\033[1;32m");
		ln_put(l, utf8_ok ? "●" : "*");
	} else {
		if (!flash)
			fb_sgr("\033[2m");
		ln_put(l, utf8_ok ? "○" : ".");
	}
	if (!flash)
		fb_sgr(base);
	ln_put(l, " ");
	if (L->info) {
		onset_info(m, now, &age, &burst);
		fmt_ms(a, sizeof(a), age);
		fmt_ms(b, sizeof(b), burst);
		ln_printf(l, " %8s %8s", a, b);
	}
	if (L->rep) {
		char rc[16], pk[32];
		fmt_rep(rc, sizeof(rc), pk, sizeof(pk), m, 0);
		ln_printf(l, " %4s %9s", rc, pk);
	}
	ln_end(l, flash);
}

/* The longest of the texts (longest first) that fits in width cells, so a heading is never cut. */
static const char *fitting(const char *const *texts, int width)
{
	for (; texts[0][0]; texts++)
		if (cells(texts[0]) <= width)
			return texts[0];
	return texts[0];
}

/* text left-aligned in a field of width cells (printf's widths count bytes, not cells). */
static void ln_field(struct line *l, const char *text, int width, int right)
{
	int start = l->cols, n = cells(text);

	if (right && n < width)
		ln_pad(l, start + width - n);
	ln_put(l, text);
	ln_pad(l, start + width);
}

static void draw_heading(struct ctl *c, struct line *l, const struct layout *L)
{
	char h1[64], h2[64];

	snprintf(h1, sizeof(h1), "RMS (log, %s)", uv());
	snprintf(h2, sizeof(h2), "%%MVC (0-%.0f%%)", c->level_top * 100);
	const char *const rms[] = { h1, "RMS (log)", "RMS", "" };
	const char *const mvc[] = { h2, "%MVC", "MVC", "" };

	fb_sgr("\033[1m");
	ln_field(l, "muscle", L->nw + 1, 0);
	ln_field(l, fitting(rms, L->bw1), L->bw1 + 1, 0);
	ln_field(l, uv(), 8, 1);
	ln_put(l, "  ");
	ln_field(l, fitting(mvc, L->bw2), L->bw2, 0);
	ln_printf(l, " %5s %3s", "", "act");
	if (L->info)
		ln_printf(l, " %8s %8s", "onset", "burst");
	if (L->rep)
		ln_printf(l, " %4s %9s", "reps", "last peak");
	ln_end(l, 0);
}

static void draw_help(struct line *l, const struct layout *L)
{
	const char *dot = utf8_ok ? "·" : "-";
	char full[160], mid[96];

	snprintf(full, sizeof(full), "onset = time since the last onset, burst = its duration, "
		 "reps = repetitions and the last one's peak  %s  q or Ctrl-C quits", dot);
	snprintf(mid, sizeof(mid), "onset: since last onset, burst: its length%s %s q quits",
		 L->rep ? ", reps: count, last peak" : "", dot);
	const char *const help[] = { full, mid, "q or Ctrl-C quits", "q quits", "" };

	fb_sgr("\033[2m");
	ln_put(l, fitting(help, l->max));
	fb_sgr("\033[0m");
}

/*
 * One screen, never more lines than the terminal has: the header, the column
 * heading and the firing order always; then the muscles; the tick line, the
 * error line and the help line only while rows are left over, in that order.
 */
static void draw_live(struct ctl *c, struct term *t, int lease, double now)
{
	struct layout L;
	struct line l = { 0, t->cols - 1 };
	int spare = t->rows - 3 - (c->nm ? (int)c->nm : 1);
	int show_tick = spare >= 1, show_err = spare >= 2, show_help = spare >= 3;
	int mrows = t->rows - 3 - show_tick - show_err - show_help;

	frame_len = 0;
	fb_raw("\033[H", 3);
	compute_layout(c, t->cols, &L);

	draw_header(c, &l, now);
	ln_end(&l, 0);

	if (show_tick) {
		l.cols = 0;
		ln_printf(&l, "tick %d  dropped %d  %.0f msg/s  %u muscle%s  lease %d s", c->tick,
			  c->dropped, c->msg_rate, c->nm, c->nm == 1 ? "" : "s", lease);
		if (!c->have_frame || now - c->frame_at > 2.0) {
			fb_sgr("\033[1;31m");
			if (c->have_frame)
				ln_printf(&l, "  no data for %.0f s", now - c->frame_at);
			else
				ln_put(&l, "  no data yet");
			fb_sgr("\033[0m");
		}
		ln_end(&l, 0);
	}
	if (show_err) {
		l.cols = 0;
		if (c->last_error_at > 0 && now - c->last_error_at < 10.0) {
			fb_sgr("\033[31m");
			ln_printf(&l, "error: %s", c->last_error);
		}
		ln_end(&l, 0);
	}

	l.cols = 0;
	draw_heading(c, &l, &L);

	for (unsigned i = 0; i < c->nm; i++) {
		l.cols = 0;
		if ((int)i >= mrows - 1 && i + 1 < c->nm) {
			char m1[64], m2[32], m3[16];
			snprintf(m1, sizeof(m1), "... %u more muscles (enlarge the terminal)", c->nm - i);
			snprintf(m2, sizeof(m2), "... %u more muscles", c->nm - i);
			snprintf(m3, sizeof(m3), "+%u more", c->nm - i);
			const char *const more[] = { m1, m2, m3, "" };
			ln_put(&l, fitting(more, l.max));
			ln_end(&l, 0);
			break;
		}
		draw_row(c, &l, &c->m[i], &L, now);
	}
	if (c->nm == 0) {
		l.cols = 0;
		ln_put(&l, "waiting for data from emgd...");
		ln_end(&l, 0);
	}
	l.cols = 0;
	{
		char ol[512];
		order_line(c, ol, sizeof(ol), now, l.max);
		ln_put(&l, ol);
	}
	if (show_help) {
		ln_end(&l, 0);
		l.cols = 0;
		draw_help(&l, &L);
	}
	fb_raw("\033[0m\033[K\033[J", 10);
	write_all(frame_buf, frame_len);
}

/* Plain text for --once, pipes and logs: no escapes, ASCII "-" for missing values. */
static void print_plain(struct ctl *c, double now, double since)
{
	printf("emgd %s: ", c->target);
	if (c->have_status)
		printf("%s, %d Hz, %d channels, %d overruns", c->state, c->rate, c->channels,
		       c->overruns);
	else
		printf("no status yet");
	/* the stream's counters on a line of their own: each line fits 80 columns */
	printf("\ntick %d, dropped %d, %.0f msg/s", c->tick, c->dropped, c->msg_rate);
	if (since >= 0)
		printf(", t=%.1f s", since);
	if (!c->have_frame)
		printf("; no data");
	else if (now - c->frame_at > 2.0)
		printf("; no data for %.0f s", now - c->frame_at);
	putchar('\n');
	/* 77 columns: the table fits an 80-column terminal or log viewer */
	printf("%-16s %8s %7s %6s %12s %8s %4s %9s\n", "muscle", "rms_uV", "mvc_pct", "active",
	       "onset_ago_ms", "burst_ms", "reps", "last_peak");
	for (unsigned i = 0; i < c->nm; i++) {
		const struct muscle *m = &c->m[i];
		char lv[16] = "-", a[16] = "-", b[16] = "-";
		double age, burst;

		onset_info(m, now, &age, &burst);
		if (has_level(m, now))
			snprintf(lv, sizeof(lv), "%.1f", m->level * 100.0);
		if (age >= 0)
			snprintf(a, sizeof(a), "%.0f", age * 1e3);
		if (burst >= 0)
			snprintf(b, sizeof(b), "%.0f", burst * 1e3);
		{
			char rc[16], pk[32];
			fmt_rep(rc, sizeof(rc), pk, sizeof(pk), m, 1);
			printf("%-16s %8.2f %7s %6d %12s %8s %4s %9s\n", m->name, m->rms, lv, m->active,
			       a, b, rc, pk);
		}
	}
	{
		char ol[512];
		order_line(c, ol, sizeof(ol), now, (int)sizeof(ol));
		printf("%s\n", ol);
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		quit_sig = SIGPIPE;
}

/* ---- monitor: the loop ---- */

static void usage_monitor(void)
{
	die(EXIT_USAGE, "usage: emgctl monitor [--once] [--duration SECONDS]");
}

static int cmd_monitor(struct ctl *c, int argc, char **argv)
{
	int once = 0, live, lease = MONITOR_LEASE;
	double duration = 0, t0, next_renew, next_draw, next_plain, now;
	struct term t = { 0 };
	const char *term = getenv("TERM");

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--once")) {
			once = 1;
		} else if (!strcmp(argv[i], "--duration") && i + 1 < argc) {
			if (parse_seconds(argv[++i], &duration) < 0)
				die(EXIT_USAGE, "--duration %s: not a positive number of seconds", argv[i]);
		} else if (!strncmp(argv[i], "--duration=", 11)) {
			if (parse_seconds(argv[i] + 11, &duration) < 0)
				die(EXIT_USAGE, "%s: not a positive number of seconds", argv[i]);
		} else {
			usage_monitor();
		}
	}
	/* Cursor addressing needs a real terminal; TERM=dumb gets the plain lines. */
	live = !once && isatty(STDOUT_FILENO) && !(term && !strcmp(term, "dumb"));
	install_signals(live);

	{
		lo_message m = lo_message_new();
		lo_message_add_int32(m, lease);
		const struct reply *r = request(c, ADDR(SUBSCRIBE), m);
		if (r->niv == 1 && r->iv[0] > 0)
			lease = r->iv[0]; /* the daemon may shorten it to its max_lease */
	}
	/* Ask once so the header is filled before the 1 Hz status broadcast comes round. */
	send_empty(c, ADDR(STATUS));

	t0 = now_s();
	c->msgs_mark_at = t0;
	next_renew = t0 + RENEW_S;
	next_draw = t0;
	next_plain = t0 + 1.0;
	if (live) {
		term_size(&t);
		term_enter(&t);
	}
	for (;;) {
		int wait_ms, r;

		if (quit_sig)
			break;
		if (tstp_sig) {
			/* Ctrl-Z: give the terminal back in its normal state, then really stop. */
			tstp_sig = 0;
			term_leave(&t);
			signal(SIGTSTP, SIG_DFL);
			raise(SIGTSTP);
			install_signals(live);
			term_size(&t);
			term_enter(&t);
		}
		if (winch_sig) {
			winch_sig = 0;
			term_size(&t);
			write_all("\033[2J", 4);
			next_draw = 0;
		}
		now = now_s();
		update_msg_rate(c, now, 0);
		forget_stale(c, now);
		if (duration > 0 && now - t0 >= duration)
			break;
		if (once && ((c->have_frame && now - c->first_frame_at >= 1.0) || now - t0 >= 3.0)) {
			/* One second of data, or give up waiting for data after three. */
			update_msg_rate(c, now, 1);
			print_plain(c, now, -1);
			break;
		}
		if (now >= next_renew) {
			send_subscribe(c, lease);
			next_renew = now + RENEW_S;
		}
		if (live && now >= next_draw) {
			draw_live(c, &t, lease, now);
			next_draw = now + 1.0 / DRAW_HZ;
		}
		if (!live && !once && now >= next_plain) {
			print_plain(c, now, now - t0);
			putchar('\n');
			next_plain += 1.0;
		}

		wait_ms = ms_until(next_renew);
		if (live && ms_until(next_draw) < wait_ms)
			wait_ms = ms_until(next_draw);
		if (!live && !once && ms_until(next_plain) < wait_ms)
			wait_ms = ms_until(next_plain);
		if (once && wait_ms > 50)
			wait_ms = 50;
		if (duration > 0 && ms_until(t0 + duration) < wait_ms)
			wait_ms = ms_until(t0 + duration);
		r = pump(c, wait_ms, live && t.tty_in ? STDIN_FILENO : -1);
		if (r == 1) {
			char k[16];
			ssize_t n = read(STDIN_FILENO, k, sizeof(k));
			for (ssize_t i = 0; i < n; i++)
				if (k[i] == 'q' || k[i] == 'Q')
					quit_sig = SIGINT;
		}
	}
	term_leave(&t);
	unsubscribe(c);
	return 0;
}

/* ---- calibrate ---- */

/* Send the calibration request m to path and wait for its ok: 0, or the exit status. */
static int cal_start(struct ctl *c, const char *path, lo_message m)
{
	unsigned long after = c->seq;
	const struct reply *r = NULL;
	int w;

	send_msg(c, path, m);
	w = wait_reply(c, path, after, now_s() + c->timeout, &r);
	if (w == WAIT_OK)
		return 0;
	if (w == WAIT_ERROR)
		fprintf(stderr, "emgctl: emgd refused %s: %s\n", path, r->msg);
	else if (w == WAIT_TIMEOUT)
		fprintf(stderr,
			"emgctl: no answer from emgd at %s (is it running? see systemctl status emgd)\n",
			c->target);
	unsubscribe(c);
	return w == WAIT_INTR ? EXIT_INTERRUPTED : 1;
}

/* Print the results since seen_from (muscle: that MVC; NULL: rest); how many, *failed if one did. */
static int cal_print(const struct ctl *c, unsigned seen_from, const char *muscle, int *failed)
{
	int printed = 0;

	for (unsigned i = seen_from; i < c->ncal; i++) {
		const struct calres *r = &c->cal[i];
		if (muscle && (strcmp(r->kind, "mvc") || strcmp(r->muscle, muscle)))
			continue;
		if (!muscle && strcmp(r->kind, "rest"))
			continue;
		printed++;
		if (!r->ok) {
			*failed = 1;
			if (muscle)
				printf("mvc %s: refused (not clearly above rest, or no usable signal)\n",
				       r->muscle);
			else
				printf("rest: %s refused (the muscle moved, or too little data)\n",
				       r->muscle);
		} else if (muscle) {
			printf("mvc %s: peak %.1f %s\n", r->muscle, r->value, uv());
		} else {
			printf("rest: %s %.1f %s\n", r->muscle, r->value, uv());
		}
	}
	return printed;
}

static int cmd_calibrate(struct ctl *c, int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "", *muscle = NULL, *secs_arg = NULL, *path;
	double secs = 5.0, t0, deadline, next_renew, next_draw = 0, now;
	int tty = isatty(STDOUT_FILENO), lease, failed = 0;
	unsigned seen_from;
	lo_message m;

	if (!strcmp(kind, "rest") && argc <= 3) {
		secs_arg = argc == 3 ? argv[2] : NULL;
		path = ADDR(CAL_REST);
	} else if (!strcmp(kind, "mvc") && (argc == 3 || argc == 4)) {
		muscle = argv[2];
		secs_arg = argc == 4 ? argv[3] : NULL;
		path = ADDR(CAL_MVC);
	} else {
		die(EXIT_USAGE, "usage: emgctl calibrate rest [SECONDS] | calibrate mvc MUSCLE [SECONDS]");
	}
	if (secs_arg && parse_seconds(secs_arg, &secs) < 0)
		die(EXIT_USAGE, "%s: not a positive number of seconds", secs_arg);
	install_signals(0);

	/* The result is published to subscribers only: subscribe before starting. */
	lease = (int)ceil(secs) + 15;
	subscribe_or_die(c, lease);

	seen_from = c->ncal;
	m = lo_message_new();
	if (muscle)
		lo_message_add_string(m, muscle);
	lo_message_add_float(m, (float)secs);
	{
		int err = cal_start(c, path, m);
		if (err)
			return err;
	}
	if (muscle)
		printf("MVC of %s: contract it as hard as possible for %.1f s\n", muscle, secs);
	else
		printf("rest: relax every muscle for %.1f s\n", secs);
	fflush(stdout);

	t0 = now_s();
	next_renew = t0 + RENEW_S;
	deadline = t0 + secs + (c->timeout > 5 ? c->timeout : 5);
	for (unsigned i = 0; i < c->nm; i++)
		c->m[i].peak_rms = 0;
	for (;;) {
		unsigned got = 0, want;
		int done = 0;

		now = now_s();
		for (unsigned i = seen_from; i < c->ncal; i++) {
			const struct calres *r = &c->cal[i];
			if (muscle && !strcmp(r->kind, "mvc") && !strcmp(r->muscle, muscle))
				done = 1;
			if (!muscle && !strcmp(r->kind, "rest"))
				got++;
		}
		/* Rest: one result per muscle; /emg/levels tells how many muscles there are. */
		want = c->nlevels > 0 ? (unsigned)c->nlevels : c->nm;
		if (!muscle && got > 0 && ((want && got >= want) || now - c->cal_last_at > 0.5))
			done = 1;
		if (done || quit_sig || now >= deadline)
			break;
		if (now >= next_renew) {
			send_subscribe(c, lease);
			next_renew = now + RENEW_S;
		}
		if (tty && now >= next_draw) {
			double left = t0 + secs - now;
			const struct muscle *mm = muscle ? find_muscle(c, muscle, strlen(muscle), 0) : NULL;
			printf("\r  %4.1f s left", left > 0 ? left : 0);
			if (left <= 0)
				printf(", waiting for the result");
			if (mm)
				printf("  (%s now %.1f %s, peak %.1f %s)", muscle, mm->rms, uv(),
				       mm->peak_rms, uv());
			printf("\033[K");
			fflush(stdout);
			next_draw = now + 0.1;
		}
		pump(c, tty ? ms_until(next_draw) : ms_until(next_renew < deadline ? next_renew : deadline),
		     -1);
	}
	if (tty)
		printf("\r\033[K");
	unsubscribe(c);
	if (quit_sig) {
		fprintf(stderr, "emgctl: interrupted; emgd finishes the calibration on its own\n");
		return EXIT_INTERRUPTED;
	}

	int printed = cal_print(c, seen_from, muscle, &failed);
	if (!printed) {
		fprintf(stderr, "emgctl: no calibration result from emgd within %.0f s (is the device streaming? see emgctl status)\n",
			deadline - t0);
		return 1;
	}
	return failed;
}

/* ---- marker, record ---- */

static int cmd_marker(struct ctl *c, int argc, char **argv)
{
	char text[1024] = "";
	size_t n = 0;
	lo_message m;

	if (argc < 2)
		die(EXIT_USAGE, "usage: emgctl marker TEXT...");
	for (int i = 1; i < argc; i++) {
		int w = snprintf(text + n, sizeof(text) - n, "%s%s", i > 1 ? " " : "", argv[i]);
		if (w < 0 || (size_t)w >= sizeof(text) - n)
			die(EXIT_USAGE, "marker text too long (at most %zu bytes)", sizeof(text) - 1);
		n += (size_t)w;
	}
	install_signals(0);
	m = lo_message_new();
	lo_message_add_string(m, text);
	request(c, ADDR(MARKER), m);
	printf("marker: %s\n", text);
	return 0;
}

static int cmd_record(struct ctl *c, int argc, char **argv)
{
	lo_message m;

	install_signals(0);
	if (argc >= 2 && !strcmp(argv[1], "start") && argc <= 3) {
		m = lo_message_new();
		if (argc == 3)
			lo_message_add_string(m, argv[2]);
		request(c, ADDR(REC_START), m);
		printf("recording started%s%s\n", argc == 3 ? ": " : "", argc == 3 ? argv[2] : "");
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "stop")) {
		request(c, ADDR(REC_STOP), lo_message_new());
		printf("recording stopped\n");
		return 0;
	}
	die(EXIT_USAGE, "usage: emgctl record start [NAME] | record stop");
}

/* Local, no daemon needed: make recordings left by a crash or power loss readable. */
static int cmd_repair(int argc, char **argv)
{
	int status = 0;

	if (argc < 2)
		die(EXIT_USAGE, "usage: emgctl repair FILE.bdf|FILE.edf...");
	for (int i = 1; i < argc; i++) {
		char msg[512] = "";
		int r = emg_record_repair(argv[i], msg, sizeof(msg));

		if (r < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], msg[0] ? msg : strerror(-r));
			status = 1;
		} else {
			printf("%s: %s\n", argv[i], r == 0 ? "ok, nothing to repair" : msg);
		}
	}
	return status;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: emgctl [-s HOST:PORT] [-t SECONDS] COMMAND [ARGS]\n"
		"Talk to emgd, the surface-EMG daemon, over OSC.\n\n"
		"Commands:\n"
		"  status                         state, sample rate, channels, overruns\n"
		"  ping                           round-trip time\n"
		"  stats                          control-packet counters (malformed, denied, ...)\n"
		"  monitor [--once] [--duration S]\n"
		"                                 live per-muscle meters (plain text when not a terminal)\n"
		"  calibrate rest [SECONDS]       rest baseline of every muscle (default 5 s)\n"
		"  calibrate mvc MUSCLE [SECONDS] maximal voluntary contraction of one muscle (default 5 s)\n"
		"  marker TEXT...                 put an annotation into the recording and the log\n"
		"  record start [NAME]            start a recording\n"
		"  record stop                    stop it\n"
		"  repair FILE...                 fix recordings left by a crash (local, no daemon)\n"
		"  instances                      the emgd instances on this host and where they listen\n\n"
		"Options:\n"
		"  -s, --server HOST:PORT  emgd's control address (default $EMGD_ADDRESS or %s)\n"
		"  -i, --instance NAME     talk to emgd@NAME (its serial or USB port path) wherever it\n"
		"                          listens: its ports file, else its config's [osc] listen\n"
		"  -c, --config FILE       the config --instance and instances read (default %s/emgd.conf)\n"
		"  -t, --timeout SECONDS   how long to wait for an answer (default 2)\n"
		"  -V, --version           print the version\n"
		"  -h, --help              this help\n\n"
		"See emgctl(1), emgd(8).\n",
		DEFAULT_ADDRESS, EMGD_SYSCONFDIR);
}

/* "host:port", "[v6]:port"; host may be a name. */
static int split_address(const char *s, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon;
	size_t n;
	char *end;
	long p;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		n = (size_t)(close - s - 1);
		s++;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hlen)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	p = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || *end || p < 1 || p > 65535)
		return -1;
	snprintf(port, plen, "%ld", p);
	return 0;
}

/* ---- instances (emgd@NAME, lib/instance.h) ---- */

/* The config an instance reads: config (NULL: the installed one, or built-in defaults
 * without it) with emgd@NAME.conf on top, its directories as emgd started by hand sees them. */
static void instance_config(struct emg_config *cfg, const char *config, const char *name)
{
	char dropin[PATH_MAX], err[1024];
	const char *path = config ? config : EMGD_SYSCONFDIR "/emgd.conf";

	if (emg_config_init(cfg) < 0)
		die(1, "out of memory");
	if ((config || access(path, F_OK) == 0) && emg_config_load(cfg, path, err, sizeof(err)) < 0)
		die(1, "%s", err);
	if (!name)
		return;
	if (emg_instance_dropin(dropin, sizeof(dropin), config, name) < 0)
		die(EXIT_USAGE, "--instance %s: bad name (allowed: a serial number or USB port path, up to 63 characters, no '/', not starting with '.')",
		    name);
	if (emg_instance_apply(cfg, name, dropin, true, err, sizeof(err)) < 0)
		die(1, "%s", err);
}

/* A wildcard listen address is reached on loopback. */
static void format_hostport(char *out, size_t len, const struct emg_hostport *hp)
{
	const char *h = hp->host;
	int v6 = strchr(h, ':') != NULL;

	if (!strcmp(h, "0.0.0.0"))
		h = "127.0.0.1";
	else if (!strcmp(h, "::"))
		h = "::1";
	snprintf(out, len, "%s%s%s:%u", v6 ? "[" : "", h, v6 ? "]" : "", hp->port);
}

/* Where emgd@NAME listens: the ports file it wrote (systemd's /run/emgd@NAME, else its
 * state directory), else the fixed [osc] listen of its config; exits if neither says. */
static void resolve_instance(const char *name, const char *config, char *out, size_t len)
{
	struct emg_config cfg;
	struct emg_hostport hp;
	char run[PATH_MAX];
	int r;

	instance_config(&cfg, config, name); /* also checks the name */
	snprintf(run, sizeof(run), "%s/emgd@%s", EMG_INSTANCE_RUNDIR, name);
	r = emg_instance_read_ports(run, &hp);
	if (r < 0)
		r = emg_instance_read_ports(cfg.state_dir, &hp);
	if (r < 0 && cfg.listen.port) {
		hp = cfg.listen;
		r = 0;
	}
	if (r < 0)
		die(1, "instance %s: no %s/%s or %s/%s and its [osc] listen is auto (is emgd@%s running?)",
		    name, run, EMG_INSTANCE_PORTS, cfg.state_dir, EMG_INSTANCE_PORTS, name);
	format_hostport(out, len, &hp);
	emg_config_release(&cfg);
}

/* Every dir/<prefix>NAME with a ports file, printed once per NAME. */
static int list_instances(const char *dir, const char *prefix, char seen[][64], int nseen)
{
	size_t pl = strlen(prefix);
	struct emg_hostport hp;
	char path[PATH_MAX], addr[128];
	struct dirent *e;
	DIR *dp = opendir(dir);

	if (!dp)
		return nseen;
	while ((e = readdir(dp)) && nseen < 256) {
		const char *name = e->d_name + pl;
		int dup = 0;

		if (strncmp(e->d_name, prefix, pl) || emg_instance_name_ok(name) < 0)
			continue;
		for (int i = 0; i < nseen; i++)
			dup |= !strcmp(seen[i], name);
		if (dup || snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path) ||
		    emg_instance_read_ports(path, &hp) < 0)
			continue;
		format_hostport(addr, sizeof(addr), &hp);
		printf("%-24s %-24s %s\n", name, addr, path);
		snprintf(seen[nseen++], 64, "%s", name);
	}
	closedir(dp);
	return nseen;
}

/* emgctl instances: systemd's instances (/run/emgd@NAME) and those started by hand
 * beside the config's state directory (<state_dir>@NAME). */
static int cmd_instances(const char *config, int argc)
{
	static char seen[256][64];
	struct emg_config cfg;
	char dir[PATH_MAX], *slash;
	int n;

	if (argc > 1)
		die(EXIT_USAGE, "instances takes no arguments");
	instance_config(&cfg, config, NULL);
	printf("%-24s %-24s %s\n", "INSTANCE", "OSC", "PORTS FILE IN");
	n = list_instances(EMG_INSTANCE_RUNDIR, "emgd@", seen, 0);
	snprintf(dir, sizeof(dir), "%s", cfg.state_dir);
	slash = strrchr(dir, '/');
	if (slash) {
		char prefix[NAME_MAX + 2];

		snprintf(prefix, sizeof(prefix), "%s@", slash + 1);
		*slash = '\0';
		n = list_instances(dir[0] ? dir : "/", prefix, seen, n);
	}
	if (!n)
		printf("(none running: no %s/emgd@*/%s, no %s@*/%s)\n", EMG_INSTANCE_RUNDIR,
		       EMG_INSTANCE_PORTS, cfg.state_dir, EMG_INSTANCE_PORTS);
	emg_config_release(&cfg);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "instance", required_argument, NULL, 'i' },
		{ "config", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		const char *name;
		int (*fn)(struct ctl *c, int argc, char **argv);
	} cmds[] = {
		{ "status", cmd_status },     { "ping", cmd_ping },     { "stats", cmd_stats },
		{ "monitor", cmd_monitor },
		{ "calibrate", cmd_calibrate }, { "marker", cmd_marker }, { "record", cmd_record },
	};
	static struct ctl ctl;
	struct ctl *c = &ctl;
	const char *server = getenv("EMGD_ADDRESS"), *term = getenv("TERM"), *cs;
	const char *instance = NULL, *config = NULL;
	char host[256], port[16], resolved[300];
	int opt;

	if (!server || !*server)
		server = DEFAULT_ADDRESS;
	c->timeout = 2.0;
	/* '+': stop at the command so its own options (monitor --once) reach it. */
	while ((opt = getopt_long(argc, argv, "+s:i:c:t:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			server = optarg;
			break;
		case 'i':
			instance = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 't':
			if (parse_seconds(optarg, &c->timeout) < 0)
				die(EXIT_USAGE, "-t %s: not a positive number of seconds", optarg);
			break;
		case 'V':
			printf("emgctl %s\n", EMGD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[optind], "repair"))
		return cmd_repair(argc - optind, argv + optind);
	if (!strcmp(argv[optind], "instances"))
		return cmd_instances(config, argc - optind);
	if (instance) {
		resolve_instance(instance, config, resolved, sizeof(resolved));
		server = resolved;
	}
	if (split_address(server, host, sizeof(host), port, sizeof(port)) < 0)
		die(EXIT_USAGE, "%s: bad address (allowed: HOST:PORT or [IPv6]:PORT)", server);
	snprintf(c->target, sizeof(c->target), "%s", server);
	c->port = atoi(port);

	/* Only LC_CTYPE: numbers keep a '.' decimal point whatever the locale. */
	setlocale(LC_CTYPE, "");
	cs = nl_langinfo(CODESET);
	utf8_ok = cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
	color_ok = !getenv("NO_COLOR") && !(term && !strcmp(term, "dumb"));
	if (!color_ok)
		utf8_ok = 0; /* NO_COLOR and dumb terminals get the plainest output: '#' bars */

	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[optind], cmds[i].name))
			continue;
		c->addr = lo_address_new(host, port);
		c->srv = lo_server_new(NULL, on_lo_error);
		if (!c->addr || !c->srv)
			die(1, "cannot open a UDP socket for OSC");
		lo_server_add_method(c->srv, NULL, NULL, on_osc, c);
		c->rms_top = 1000.0;
		c->level_top = 1.0;
		int r = cmds[i].fn(c, argc - optind, argv + optind);
		fflush(stdout);
		lo_server_free(c->srv);
		lo_address_free(c->addr);
		return r;
	}
	fprintf(stderr, "emgctl: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return EXIT_USAGE;
}
