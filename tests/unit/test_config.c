/* SPDX-License-Identifier: MIT */
/* Unit tests for emg_config: defaults, strict INI parsing and its error messages. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "emgd-config.h"
#include "testutil.h"

static char err[1024];

/* Parse text over a fresh default config; returns the result, cfg stays initialised. */
static int parse(struct emg_config *cfg, const char *text)
{
	err[0] = '\0';
	return emg_config_parse(cfg, "emgd.conf", text, strlen(text), err, sizeof(err));
}

/* Expect a parse failure whose message contains want. */
#define ck_parse_err(text, want)                                                                   \
	do {                                                                                       \
		struct emg_config c_;                                                              \
		ck_assert_int_eq(emg_config_init(&c_), 0);                                         \
		ck_assert_int_eq(parse(&c_, text), -EINVAL);                                       \
		ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);      \
		emg_config_release(&c_);                                                           \
	} while (0)

START_TEST(test_defaults)
{
	struct emg_config c;
	const struct emg_muscle *m;

	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_str_eq(c.path, "");
	ck_assert_str_eq(c.driver, "synth");
	ck_assert_double_eq(c.rate, 0); /* each driver picks: synth 2000 Hz, cyton 250 Hz */
	ck_assert_uint_eq(c.dev.gain, 24);
	ck_assert_uint_eq(c.channels, 0);
	ck_assert_str_eq(c.dev.scenario, "session");
	ck_assert_uint_eq(emg_muscles_count(c.muscles), 6);
	m = emg_muscles_get(c.muscles, 0);
	ck_assert_str_eq(m->name, "glute_max_l");
	ck_assert_str_eq(emg_muscles_get(c.muscles, 5)->name, "hip_flex_r");
	ck_assert_str_eq(c.listen.host, "127.0.0.1");
	ck_assert_uint_eq(c.listen.port, 9000);
	ck_assert_uint_eq(c.ntargets, 0);
	ck_assert_uint_eq(c.nallow, 0);
	ck_assert_double_eq(c.pipe.publish_rate, 50);
	ck_assert_double_eq(c.pipe.rms_window_ms, 125);
	ck_assert_double_eq(c.pipe.filter.highpass_hz, 20);
	ck_assert_double_eq(c.pipe.filter.lowpass_hz, 450);
	ck_assert_double_eq(c.pipe.filter.mains_hz, EMG_FILTER_MAINS_AUTO);
	ck_assert_int_eq(c.pipe.onset.method, EMG_ONSET_HODGES);
	ck_assert_uint_eq(c.default_lease_s, 10);
	ck_assert_uint_eq(c.max_lease_s, 300);
	ck_assert_uint_eq(c.max_subscribers, 64);
	ck_assert_uint_eq(c.max_subscribers_per_host, 16);
	ck_assert_int_eq(c.record, EMG_RECORD_OFF);
	ck_assert_int_eq(c.rt_priority, 0);
	emg_config_release(&c);
	ck_assert_ptr_null(c.muscles);
}
END_TEST

START_TEST(test_empty_file_is_defaults)
{
	struct emg_config c, d;

	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_int_eq(emg_config_init(&d), 0);
	ck_assert_int_eq(parse(&c, ""), 0);
	ck_assert_str_eq(c.path, "emgd.conf");
	ck_assert_int_eq(parse(&c, "# only a comment\n\n; another\n"), 0);
	ck_assert(emg_muscles_equal(c.muscles, d.muscles));
	ck_assert_double_eq(c.pipe.publish_rate, d.pipe.publish_rate);
	ck_assert_uint_eq(c.listen.port, d.listen.port);
	ck_assert_int_eq(emg_config_device_changed(&c, &d), 0);
	emg_config_release(&c);
	emg_config_release(&d);
}
END_TEST

START_TEST(test_every_key_type)
{
	struct emg_config c;
	const char *text = "[device]\n"
			   "driver = synth\n"
			   "rate = 4000\n"             /* double */
			   "channels = 8\n"            /* uint */
			   "serial = AB-12_x\n"        /* string */
			   "file = /tmp/replay.edf\n"
			   "realtime = no\n"           /* bool */
			   "seed = 0x10\n"             /* custom */
			   "snr_db = 12.5\n"
			   "mains_uv = 0\n"
			   "wander = false\n"
			   "pops = off\n"
			   "scenario = hip_thrust\n"
			   "[dsp]\n"
			   "highpass = 10\n"
			   "highpass_order = 4\n"
			   "lowpass = 500\n"
			   "lowpass_order = 8\n"
			   "mains = 60\n"
			   "notch_q = 25\n"
			   "rms_window_ms = 100\n"
			   "onset_window_ms = 20\n"
			   "detector = tkeo\n"
			   "threshold_k = 2.5\n"
			   "hold_ms = 30\n"
			   "offset_ms = 60\n"
			   "min_burst_ms = 40\n"
			   "bonato_pfa = 1e-3\n"
			   "[osc]\n"
			   "listen = [::1]:9100\n"
			   "publish_rate = 100\n"
			   "max_subscribers = 5\n"
			   "max_subscribers_per_host = 3\n"
			   "lease = 20\n"
			   "max_lease = 60\n"
			   "rate_limit = 10\n"
			   "rate_burst = 20\n"
			   "[daemon]\n"
			   "state_dir = /tmp/state\n"
			   "recordings_dir = /tmp/rec\n"
			   "record = auto\n"
			   "mlock = 0\n"
			   "rt_priority = 50\n";

	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_msg(parse(&c, text) == 0, "%s", err);
	ck_assert_str_eq(c.driver, "synth");
	ck_assert_double_eq(c.rate, 4000);
	ck_assert_uint_eq(c.channels, 8);
	ck_assert_str_eq(c.serial, "AB-12_x");
	ck_assert_str_eq(c.dev.file, "/tmp/replay.edf");
	ck_assert(!c.dev.realtime);
	ck_assert_uint_eq(c.dev.seed, 16);
	ck_assert_double_eq(c.dev.snr_db, 12.5);
	ck_assert_double_eq(c.dev.mains_uv, 0);
	ck_assert(!c.dev.wander);
	ck_assert(!c.dev.pops);
	ck_assert_str_eq(c.dev.scenario, "hip_thrust");
	ck_assert_double_eq(c.pipe.filter.highpass_hz, 10);
	ck_assert_uint_eq(c.pipe.filter.highpass_order, 4);
	ck_assert_double_eq(c.pipe.filter.lowpass_hz, 500);
	ck_assert_uint_eq(c.pipe.filter.lowpass_order, 8);
	ck_assert_double_eq(c.pipe.filter.mains_hz, 60);
	ck_assert_double_eq(c.pipe.filter.notch_q, 25);
	ck_assert_double_eq(c.pipe.rms_window_ms, 100);
	ck_assert_double_eq(c.pipe.onset.window_ms, 20);
	ck_assert_int_eq(c.pipe.onset.method, EMG_ONSET_TKEO);
	ck_assert_double_eq(c.pipe.onset.k, 2.5);
	ck_assert_double_eq(c.pipe.onset.hold_ms, 30);
	ck_assert_double_eq(c.pipe.onset.offset_ms, 60);
	ck_assert_double_eq(c.pipe.onset.min_burst_ms, 40);
	ck_assert_double_eq(c.pipe.onset.bonato_pfa, 1e-3);
	ck_assert_str_eq(c.listen.host, "::1");
	ck_assert_uint_eq(c.listen.port, 9100);
	ck_assert_double_eq(c.pipe.publish_rate, 100);
	ck_assert_uint_eq(c.max_subscribers, 5);
	ck_assert_uint_eq(c.max_subscribers_per_host, 3);
	ck_assert_uint_eq(c.default_lease_s, 20);
	ck_assert_uint_eq(c.max_lease_s, 60);
	ck_assert_double_eq(c.rate_limit, 10);
	ck_assert_uint_eq(c.rate_burst, 20);
	ck_assert_str_eq(c.state_dir, "/tmp/state");
	ck_assert_str_eq(c.recordings_dir, "/tmp/rec");
	ck_assert_int_eq(c.record, EMG_RECORD_AUTO);
	ck_assert(!c.mlock);
	ck_assert_int_eq(c.rt_priority, 50);
	/* the other spellings of booleans and mains = off */
	ck_assert_int_eq(parse(&c, "[device]\nrealtime = yes\nwander = true\npops = on\n"
				   "[daemon]\nmlock = 1\n[dsp]\nmains = off\n"),
			 0);
	ck_assert(c.dev.realtime && c.dev.wander && c.dev.pops && c.mlock);
	ck_assert_double_eq(c.pipe.filter.mains_hz, 0);
	/* a parse starts from cfg, not from the built-in defaults */
	ck_assert_double_eq(c.rate, 4000);
	emg_config_release(&c);
}
END_TEST

START_TEST(test_bad_values)
{
	ck_parse_err("[device]\nrate = 2000\n[dsp]\nmains = 55\n",
		     "emgd.conf:4: [dsp] mains = 55: bad value (allowed: auto, 50, 60 or off)");
	ck_parse_err("\n\n[dsp]\nmains = 55\n", "emgd.conf:4: [dsp] mains = 55: bad value");
	ck_parse_err("[device]\nrate = 20000\n",
		     "emgd.conf:2: [device] rate = 20000: bad value (allowed: 0 (driver default) or 250..16000 Hz)");
	ck_parse_err("[device]\nrate = fast\n", "emgd.conf:2: [device] rate = fast: bad value");
	ck_parse_err("[device]\nrate = nan\n", "[device] rate = nan: bad value");
	ck_parse_err("[device]\nrate = inf\n", "[device] rate = inf: bad value");
	ck_parse_err("[device]\nchannels = 2.5\n",
		     "emgd.conf:2: [device] channels = 2.5: bad value (allowed: 0 (enough for [muscles]) .. 256)");
	ck_parse_err("[device]\nchannels = -1\n", "[device] channels = -1: bad value");
	ck_parse_err("[device]\nchannels = 257\n", "[device] channels = 257: bad value");
	ck_parse_err("[device]\nrealtime = maybe\n",
		     "emgd.conf:2: [device] realtime = maybe: bad value (allowed: yes or no)");
	ck_parse_err("[device]\nrealtime = YES\n", "[device] realtime = YES: bad value");
	ck_parse_err("[device]\ndriver = cyton9000\n",
		     "emgd.conf:2: [device] driver = cyton9000: bad value (allowed: synth, cyton, hackeeg or replay)");
	ck_parse_err("[device]\nseed = -1\n",
		     "[device] seed = -1: bad value (allowed: an unsigned 64-bit integer)");
	ck_parse_err("[device]\nseed = 99999999999999999999999\n", "[device] seed = 9");
	ck_parse_err("[device]\nscenario = marathon\n",
		     "[device] scenario = marathon: bad value (allowed: session, rest, bridge, hip_thrust, abduction or prone_hip_ext)");
	ck_parse_err("[device]\nserial = 0123456789012345678901234567890123456789012345678901234567890123\n",
		     "allowed: a serial number, up to 63 characters");
	ck_parse_err("[dsp]\nhighpass_order = 3\n",
		     "emgd.conf:2: [dsp] highpass_order = 3: bad value (allowed: 2, 4, 6 or 8)");
	ck_parse_err("[dsp]\nlowpass_order = 10\n", "[dsp] lowpass_order = 10: bad value");
	ck_parse_err("[dsp]\ndetector = magic\n",
		     "[dsp] detector = magic: bad value (allowed: hodges, tkeo or bonato)");
	ck_parse_err("[dsp]\nnotch_q = 0.5\n", "[dsp] notch_q = 0.5: bad value (allowed: 1..200)");
	ck_parse_err("[dsp]\nthreshold_k = 0\n", "[dsp] threshold_k = 0: bad value");
	ck_parse_err("[osc]\nlisten = localhost:9000\n",
		     "emgd.conf:2: [osc] listen = localhost:9000: bad value (allowed: host:port with a numeric IPv4 or [IPv6] address, host:auto or auto)");
	ck_parse_err("[osc]\npublish_rate = 0\n",
		     "[osc] publish_rate = 0: bad value (allowed: 1..1000 Hz)");
	ck_parse_err("[osc]\nallow = 10.0.0.0/33\n", "[osc] allow = 10.0.0.0/33: bad value");
	ck_parse_err("[osc]\ntarget = 1.2.3.4\n", "[osc] target = 1.2.3.4: bad value");
	ck_parse_err("[osc]\nmax_subscribers_per_host = 0\n", "[osc] max_subscribers_per_host = 0");
	ck_parse_err("[osc]\nmax_subscribers_per_host = 4x\n", "[osc] max_subscribers_per_host = 4x");
	ck_parse_err("[osc]\nmax_subscribers_per_host = -1\n", "[osc] max_subscribers_per_host = -1");
	ck_parse_err("[daemon]\nstate_dir = relative/path\n",
		     "[daemon] state_dir = relative/path: bad value (allowed: an absolute path)");
	ck_parse_err("[daemon]\nrecord = sometimes\n",
		     "[daemon] record = sometimes: bad value (allowed: off or auto)");
	ck_parse_err("[daemon]\nrt_priority = 100\n",
		     "[daemon] rt_priority = 100: bad value (allowed: 0 (off) .. 99)");
	/* the file name is the one passed in */
	{
		struct emg_config c;
		const char *t = "[dsp]\nmains = 55\n";
		ck_assert_int_eq(emg_config_init(&c), 0);
		ck_assert_int_eq(emg_config_parse(&c, "/etc/emgd/site.conf", t, strlen(t), err,
						  sizeof(err)),
				 -EINVAL);
		ck_assert_str_eq(err, "/etc/emgd/site.conf:2: [dsp] mains = 55: bad value (allowed: auto, 50, 60 or off)");
		emg_config_release(&c);
	}
}
END_TEST

START_TEST(test_unknown_key_and_section)
{
	ck_parse_err("[osc]\npublsh_rate = 50\n",
		     "emgd.conf:2: [osc] publsh_rate: unknown key (allowed: listen, publish_rate, target, max_subscribers, max_subscribers_per_host, lease, max_lease, rate_limit, rate_burst, allow)");
	ck_parse_err("[device]\n\nrates = 2000\n", "emgd.conf:3: [device] rates: unknown key (allowed: driver, rate, channels,");
	ck_parse_err("[daemon]\nmlocked = yes\n",
		     "[daemon] mlocked: unknown key (allowed: state_dir, recordings_dir, record, record_format, record_filtered, record_envelopes, mlock, rt_priority)");
	ck_parse_err("[dev]\nrate = 2000\n",
		     "emgd.conf:1: [dev]: unknown section (allowed: device, dsp, osc, daemon, muscles, analytics, oscquery, web)");
	/* issue 16 #13: a key before any section is not an "unknown section []" */
	ck_parse_err("rate = 2000\n",
		     "emgd.conf:1: rate = 2000: key outside any section (allowed: keys after a [section] header: device, dsp, osc, daemon, muscles, analytics, oscquery, web)");
	ck_parse_err("# x\n\nmains = 50\n[dsp]\n", "emgd.conf:3: mains = 50: key outside any section");
	/* an empty unknown section is a typo too, reported at its header */
	ck_parse_err("[osc]\npublish_rate = 40\n\n[xyz]\n", "emgd.conf:4: [xyz]: unknown section");
	/* section names and keys are case-sensitive */
	ck_parse_err("[Device]\nrate = 2000\n", "[Device]: unknown section");
}
END_TEST

START_TEST(test_syntax_error)
{
	ck_parse_err("[device]\nrate 2000\n",
		     "emgd.conf:2: syntax error (allowed: '[section]', 'key = value', '# comment' or a blank line)");
	ck_parse_err("[device\nrate = 2000\n", "emgd.conf:1: syntax error");
	ck_parse_err("# ok\n[dsp]\nmains = 50\njunk\n", "emgd.conf:4: syntax error");
	/* CRLF line ends and a last line without a newline are fine */
	{
		struct emg_config c;
		ck_assert_int_eq(emg_config_init(&c), 0);
		ck_assert_msg(parse(&c, "[osc]\r\npublish_rate = 25\r\n[dsp]\r\nmains = 60") == 0, "%s", err);
		ck_assert_double_eq(c.pipe.publish_rate, 25);
		ck_assert_double_eq(c.pipe.filter.mains_hz, 60);
		emg_config_release(&c);
	}
}
END_TEST

/* inih reads lines into a fixed buffer: a longer line must be an error on its own line, not
 * be cut into pieces that are parsed as further lines (a space at the cut even makes the rest a
 * "continuation" value). */
START_TEST(test_long_line)
{
	struct emg_config c;
	char text[1024], *p = text;

	p += sprintf(p, "[device]\nrealtime = no\nfile = /");
	for (int i = 0; i < 300; i++)
		*p++ = (i % 50 == 49) ? ' ' : 'a';
	sprintf(p, "\n[osc]\nbogus = 1\n");
	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_int_eq(parse(&c, text), -EINVAL);
	ck_assert_msg(strstr(err, "emgd.conf:3: line too long (allowed: at most ") == err, "%s", err);
	ck_assert_str_eq(c.dev.file, "");
	ck_assert(c.dev.realtime);
	/* an earlier error still wins over a later long line */
	memcpy(text, "[devic]\n", 8);
	ck_assert_int_eq(parse(&c, text), -EINVAL);
	ck_assert_msg(strstr(err, "emgd.conf:1: [devic]: unknown section") == err, "%s", err);
	/* 150 characters are fine */
	p = text + sprintf(text, "[device]\nfile = /");
	memset(p, 'b', 150);
	sprintf(p + 150, "\n");
	ck_assert_msg(parse(&c, text) == 0, "%s", err);
	ck_assert_uint_eq(strlen(c.dev.file), 151);
	emg_config_release(&c);
}
END_TEST

/* The first error is the one reported, with its own line - later lines must not overwrite it. */
START_TEST(test_first_error_wins)
{
	struct emg_config c;

	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_int_eq(parse(&c, "[dsp]\nmains = 55\ndetector = magic\n"), -EINVAL);
	ck_assert_str_eq(err, "emgd.conf:2: [dsp] mains = 55: bad value (allowed: auto, 50, 60 or off)");
	ck_assert_int_eq(parse(&c, "[dsp]\njunk line\nmains = 55\n"), -EINVAL);
	ck_assert_msg(strstr(err, "emgd.conf:2: syntax error") == err, "%s", err);
	ck_assert_int_eq(parse(&c, "[dsp]\nmains = 55\njunk line\n"), -EINVAL);
	ck_assert_str_eq(err, "emgd.conf:2: [dsp] mains = 55: bad value (allowed: auto, 50, 60 or off)");
	ck_assert_int_eq(parse(&c, "[dsp]\nmains = 50\n[bogus]\nx = 1\n[dsp]\nmains = 55\n"), -EINVAL);
	ck_assert_str_eq(err, "emgd.conf:3: [bogus]: unknown section (allowed: device, dsp, osc, daemon, muscles, analytics, oscquery, web)");
	ck_assert_int_eq(parse(&c, "[dsp]\nmains = 55\n[bogus]\n"), -EINVAL);
	ck_assert_str_eq(err, "emgd.conf:2: [dsp] mains = 55: bad value (allowed: auto, 50, 60 or off)");
	emg_config_release(&c);
}
END_TEST

START_TEST(test_binary_and_huge)
{
	struct emg_config c;
	static const char bin[] = "[device]\nrate = 2000\0\n";
	size_t big = EMG_CONFIG_MAX_BYTES + 1;
	char *text = malloc(big);

	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_int_eq(emg_config_parse(&c, "bin.conf", bin, sizeof(bin) - 1, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "bin.conf: binary data"));
	ck_assert_ptr_nonnull(text);
	for (size_t i = 0; i < big; i++)
		text[i] = (i % 64 == 63) ? '\n' : '#';
	ck_assert_int_eq(emg_config_parse(&c, "big.conf", text, big, err, sizeof(err)), -EFBIG);
	ck_assert_ptr_nonnull(strstr(err, "big.conf: file too large"));
	/* exactly the limit is accepted (it is all comments) */
	ck_assert_int_eq(emg_config_parse(&c, "big.conf", text, big - 1, err, sizeof(err)), 0);
	free(text);
	emg_config_release(&c);
}
END_TEST

START_TEST(test_error_leaves_cfg_untouched)
{
	struct emg_config c, ref;

	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_int_eq(parse(&c, "[device]\nrate = 4000\n[osc]\ntarget = 127.0.0.1:7000\n"
				   "[muscles]\nquad_l = 3\n"),
			 0);
	ck_assert_int_eq(emg_config_copy(&ref, &c), 0);
	/* good keys before the bad one must not leak into cfg */
	ck_assert_int_eq(parse(&c, "[device]\nrate = 8000\nseed = 5\n[osc]\ntarget = 127.0.0.1:1\n"
				   "[muscles]\nother_r = 1\n[dsp]\nmains = 55\n"),
			 -EINVAL);
	ck_assert_double_eq(c.rate, 4000);
	ck_assert_uint_eq(c.dev.seed, ref.dev.seed);
	ck_assert_uint_eq(c.ntargets, 1);
	ck_assert_uint_eq(c.targets[0].port, 7000);
	ck_assert(emg_muscles_equal(c.muscles, ref.muscles));
	ck_assert_ptr_ne(c.muscles, ref.muscles);
	ck_assert_str_eq(c.path, "emgd.conf");
	/* same for a cross-key failure */
	ck_assert_int_eq(parse(&c, "[device]\nrate = 8000\n[dsp]\nhighpass = 200\nlowpass = 100\n"),
			 -EINVAL);
	ck_assert_double_eq(c.rate, 4000);
	ck_assert_uint_eq(emg_muscles_count(c.muscles), 1);
	emg_config_release(&c);
	emg_config_release(&ref);
}
END_TEST

START_TEST(test_muscles_section)
{
	struct emg_config c;
	const struct emg_muscle *m;

	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_msg(parse(&c, "[muscles]\n"
				"glute_max_r = 3, upper outer quadrant\n"
				"hamstring_l = 1\n"
				"erector = 8 ,  L3 paraspinal\n"
				"vastus_lat_r = 256\n") == 0,
		      "%s", err);
	ck_assert_uint_eq(emg_muscles_count(c.muscles), 4); /* the six defaults are gone */
	ck_assert_int_eq(emg_muscles_find(c.muscles, "glute_max_l"), -ENOENT);
	m = emg_muscles_get(c.muscles, 0);
	ck_assert_str_eq(m->name, "glute_max_r");
	ck_assert_uint_eq(m->channel, 2); /* 1-based in the file */
	ck_assert_int_eq(m->side, EMG_SIDE_RIGHT);
	ck_assert_str_eq(m->site, "upper outer quadrant");
	m = emg_muscles_get(c.muscles, 1);
	ck_assert_uint_eq(m->channel, 0);
	ck_assert_int_eq(m->side, EMG_SIDE_LEFT);
	ck_assert_str_eq(m->site, "");
	m = emg_muscles_get(c.muscles, 2);
	ck_assert_str_eq(m->name, "erector");
	ck_assert_uint_eq(m->channel, 7);
	ck_assert_int_eq(m->side, EMG_SIDE_NONE);
	ck_assert_str_eq(m->site, "L3 paraspinal");
	ck_assert_uint_eq(emg_muscles_get(c.muscles, 3)->channel, 255);
	ck_assert_uint_eq(emg_muscles_channels_needed(c.muscles), 256);

	/* a second parse with a [muscles] section replaces the map again, one without keeps it */
	ck_assert_int_eq(parse(&c, "[muscles]\nx_l = 2\n"), 0);
	ck_assert_uint_eq(emg_muscles_count(c.muscles), 1);
	ck_assert_int_eq(parse(&c, "[osc]\npublish_rate = 25\n"), 0);
	ck_assert_uint_eq(emg_muscles_count(c.muscles), 1);
	ck_assert_str_eq(emg_muscles_get(c.muscles, 0)->name, "x_l");
	emg_config_release(&c);

	ck_parse_err("[muscles]\nGlute = 1\n",
		     "emgd.conf:2: [muscles] Glute: bad muscle name (allowed: lower_snake a-z 0-9 _, starting with a letter, at most 31 characters)");
	ck_parse_err("[muscles]\n1glute = 1\n", "[muscles] 1glute: bad muscle name");
	ck_parse_err("[muscles]\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa = 1\n", "bad muscle name");
	ck_parse_err("[muscles]\nglute = 0\n",
		     "emgd.conf:2: [muscles] glute = 0: bad channel '0' (allowed: 1..256, as printed on the amplifier, then optionally ', electrode site')");
	ck_parse_err("[muscles]\nglute = 257\n", "bad channel '257'");
	ck_parse_err("[muscles]\nglute = two, site\n", "[muscles] glute = two, site: bad channel 'two'");
	ck_parse_err("[muscles]\nglute = 1.5\n", "bad channel '1.5'");
	ck_parse_err("[muscles]\nglute = \n", "bad channel ''");
	ck_parse_err("[muscles]\na = 1\nb = 2\na = 3\n",
		     "emgd.conf:4: [muscles] a = 3: muscle name or channel already used (allowed: each muscle once, each channel once)");
	ck_parse_err("[muscles]\na = 1\nb = 1\n", "emgd.conf:3: [muscles] b = 1: muscle name or channel already used");
	/* an empty [muscles] section keeps the defaults, so this is no error */
	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_int_eq(parse(&c, "[muscles]\n"), 0);
	ck_assert_uint_eq(emg_muscles_count(c.muscles), 6);
	emg_config_release(&c);
}
END_TEST

START_TEST(test_too_many_muscles)
{
	char *text = malloc((EMG_MUSCLES_MAX + 1) * 32 + 16), *p = text, want[128];
	struct emg_config c;

	p += sprintf(p, "[muscles]\n");
	for (unsigned i = 0; i < EMG_MUSCLES_MAX; i++)
		p += sprintf(p, "m%u = %u\n", i, i + 1);
	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_int_eq(parse(&c, text), 0);
	ck_assert_uint_eq(emg_muscles_count(c.muscles), EMG_MUSCLES_MAX);
	sprintf(p, "extra = 100\n");
	ck_assert_int_eq(parse(&c, text), -EINVAL);
	snprintf(want, sizeof(want), "emgd.conf:%d: [muscles] extra: too many muscles (allowed: at most %d)",
		 EMG_MUSCLES_MAX + 2, EMG_MUSCLES_MAX);
	ck_assert_ptr_nonnull(strstr(err, want));
	emg_config_release(&c);
	free(text);
}
END_TEST

START_TEST(test_cross_key)
{
	/* issue 16 #13: checks made after the whole file was read name the line of the key set in
	 * this file (and the other key's line when both are), with the values as written */
	ck_parse_err("[dsp]\nhighpass = 100\nlowpass = 100\n",
		     "emgd.conf:2: [dsp] highpass = 100: bad value (allowed: below [dsp] lowpass = 100 on line 3)");
	ck_parse_err("[dsp]\nhighpass = 200\nlowpass = 150.0\n",
		     "emgd.conf:2: [dsp] highpass = 200: bad value (allowed: below [dsp] lowpass = 150.0 on line 3)");
	ck_parse_err("\n[dsp]\nlowpass = 2e1\n",
		     "emgd.conf:3: [dsp] lowpass = 2e1: bad value (allowed: 0 (off) or above [dsp] highpass = 20)");
	ck_parse_err("[dsp]\necg = highpass\necg_highpass_hz = 30\nlowpass = 25\nhighpass = 10\n",
		     "emgd.conf:3: [dsp] ecg_highpass_hz = 30: bad value (allowed: below [dsp] lowpass = 25 on line 4)");
	ck_parse_err("[osc]\nmax_lease = 5\n",
		     "emgd.conf:2: [osc] max_lease = 5: bad value (allowed: at least [osc] lease = 10)");
	ck_parse_err("[device]\nrate = 250\n[osc]\npublish_rate = 500\n",
		     "emgd.conf:4: [osc] publish_rate = 500: bad value (allowed: at most [device] rate = 250 on line 2)");
	ck_parse_err("[device]\nrate = 100\n",
		     "emgd.conf:2: [device] rate = 100: bad value (allowed: 0 (driver default) or 250..16000 Hz)");
	ck_parse_err("[device]\nchannels = 4\n",
		     "emgd.conf:2: [device] channels = 4: bad value: [muscles] uses channel 6 (allowed: 0 (enough for [muscles]) or at least 6)");
	ck_parse_err("[device]\nchannels = 2.0\n[muscles]\nsolo = 3\n",
		     "emgd.conf:2: [device] channels = 2.0: bad value: [muscles] uses channel 3 (allowed: 0 (enough for [muscles]) or at least 3)");
	ck_parse_err("[dsp]\necg_muscles = glute_max_l\n[muscles]\nsolo = 1\n",
		     "emgd.conf:2: [dsp] ecg_muscles = glute_max_l: 'glute_max_l' is not in [muscles]");

	/* the boundaries themselves are fine; order in the file does not matter */
	struct emg_config c;
	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_msg(parse(&c, "[osc]\nlease = 300\nmax_lease = 300\npublish_rate = 1000\n"
				"[device]\nrate = 1000\nchannels = 6\n[dsp]\nlowpass = 0\nhighpass = 200\n") == 0,
		      "%s", err);
	ck_assert_int_eq(parse(&c, "[device]\nrate = 0\n[osc]\npublish_rate = 1000\n[dsp]\nhighpass = 0\nlowpass = 10\n"), 0);
	ck_assert_double_eq(c.rate, 0);
	emg_config_release(&c);
}
END_TEST

START_TEST(test_targets_and_allow)
{
	struct emg_config c;
	struct sockaddr_in a = { .sin_family = AF_INET };
	char *text, *p;

	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_msg(parse(&c, "[osc]\n"
				"target = 127.0.0.1:9001\n"
				"target = [::1]:9002\n"
				"allow = 10.0.0.0/8, fd00::/8\n"
				"allow = 192.168.1.0/24\n") == 0,
		      "%s", err);
	ck_assert_uint_eq(c.ntargets, 2);
	ck_assert_str_eq(c.targets[0].host, "127.0.0.1");
	ck_assert_uint_eq(c.targets[0].port, 9001);
	ck_assert_str_eq(c.targets[1].host, "::1");
	ck_assert_uint_eq(c.targets[1].port, 9002);
	ck_assert_uint_eq(c.nallow, 3);
	ck_assert_int_eq(c.allow[0].family, AF_INET);
	ck_assert_uint_eq(c.allow[0].prefix, 8);
	ck_assert_int_eq(c.allow[1].family, AF_INET6);
	ck_assert_uint_eq(c.allow[2].prefix, 24);
	inet_pton(AF_INET, "192.168.1.77", &a.sin_addr);
	ck_assert(emg_cidr_match(&c.allow[2], (struct sockaddr *)&a));

	/* the next parse starts the lists from empty, it does not append */
	ck_assert_int_eq(parse(&c, "[osc]\ntarget = 127.0.0.1:7000\n"), 0);
	ck_assert_uint_eq(c.ntargets, 1);
	ck_assert_uint_eq(c.targets[0].port, 7000);
	ck_assert_uint_eq(c.nallow, 0);
	ck_assert_int_eq(parse(&c, ""), 0);
	ck_assert_uint_eq(c.ntargets, 0);

	/* 16 targets fit, 17 do not */
	text = malloc(64 * 40);
	p = text + sprintf(text, "[osc]\n");
	for (unsigned i = 0; i < EMG_CONFIG_MAX_TARGETS; i++)
		p += sprintf(p, "target = 127.0.0.1:%u\n", 7000 + i);
	ck_assert_int_eq(parse(&c, text), 0);
	ck_assert_uint_eq(c.ntargets, 16);
	sprintf(p, "target = 127.0.0.1:1\n");
	ck_assert_int_eq(parse(&c, text), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "emgd.conf:18: [osc] target = 127.0.0.1:1: bad value (allowed: host:port (numeric), up to 16 target lines)"));
	ck_assert_uint_eq(c.ntargets, 16);
	/* 32 networks fit, 33 do not, several per line */
	p = text + sprintf(text, "[osc]\n");
	for (unsigned i = 0; i < EMG_CONFIG_MAX_ALLOW; i += 4)
		p += sprintf(p, "allow = 10.%u.0.0/16 10.%u.0.0/16,10.%u.0.0/16, 10.%u.0.0/16\n", i,
			     i + 1, i + 2, i + 3);
	ck_assert_msg(parse(&c, text) == 0, "%s", err);
	ck_assert_uint_eq(c.nallow, 32);
	ck_assert_uint_eq(c.allow[31].addr[1], 31);
	sprintf(p, "allow = 10.200.0.0/16\n");
	ck_assert_int_eq(parse(&c, text), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "emgd.conf:10: [osc] allow = 10.200.0.0/16: bad value"));
	p = text + sprintf(text, "[osc]\n");
	for (unsigned i = 0; i < EMG_CONFIG_MAX_ALLOW; i++)
		p += sprintf(p, "allow = 10.%u.0.0/16\n", i);
	ck_assert_int_eq(parse(&c, text), 0);
	ck_assert_uint_eq(c.nallow, 32);
	sprintf(p, "allow = 10.200.0.0/16\n");
	ck_assert_int_eq(parse(&c, text), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "emgd.conf:34: [osc] allow = 10.200.0.0/16: bad value"));
	free(text);
	emg_config_release(&c);
}
END_TEST

static void sin4(struct sockaddr_in *a, const char *ip)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	ck_assert_int_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1);
}

static void sin6(struct sockaddr_in6 *a, const char *ip)
{
	memset(a, 0, sizeof(*a));
	a->sin6_family = AF_INET6;
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
}

static int match(const char *cidr, const char *ip)
{
	struct emg_cidr c;
	struct sockaddr_storage ss;

	ck_assert_msg(emg_cidr_parse(cidr, &c) == 0, "cannot parse %s", cidr);
	if (strchr(ip, ':'))
		sin6((struct sockaddr_in6 *)&ss, ip);
	else
		sin4((struct sockaddr_in *)&ss, ip);
	return emg_cidr_match(&c, (struct sockaddr *)&ss);
}

START_TEST(test_cidr)
{
	struct emg_cidr c;
	struct sockaddr sa = { .sa_family = AF_UNIX };

	ck_assert_int_eq(emg_cidr_parse("192.168.1.0/24", &c), 0);
	ck_assert_int_eq(c.family, AF_INET);
	ck_assert_uint_eq(c.prefix, 24);
	ck_assert_uint_eq(c.addr[0], 192);
	ck_assert_uint_eq(c.addr[2], 1);
	ck_assert_int_eq(emg_cidr_parse("10.1.2.3", &c), 0);
	ck_assert_uint_eq(c.prefix, 32);
	ck_assert_int_eq(emg_cidr_parse("fd00::/8", &c), 0);
	ck_assert_int_eq(c.family, AF_INET6);
	ck_assert_uint_eq(c.prefix, 8);
	ck_assert_int_eq(emg_cidr_parse("::1", &c), 0);
	ck_assert_uint_eq(c.prefix, 128);
	ck_assert_int_eq(emg_cidr_parse("0.0.0.0/0", &c), 0);
	ck_assert_int_eq(emg_cidr_parse("::/0", &c), 0);
	ck_assert_int_eq(emg_cidr_parse("::/128", &c), 0);

	ck_assert_int_eq(emg_cidr_parse("10.0.0.0/33", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("10.0.0.0/-1", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("10.0.0.0/", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("10.0.0.0/8x", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("10.0.0.0/a", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("fd00::/129", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("10.0.0/8", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("256.0.0.0/8", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("host.example/8", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("/8", &c), -EINVAL);
	ck_assert_int_eq(emg_cidr_parse("1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb/8", &c),
			 -EINVAL);

	ck_assert(match("192.168.1.0/24", "192.168.1.255"));
	ck_assert(!match("192.168.1.0/24", "192.168.2.1"));
	ck_assert(match("10.0.0.0/8", "10.255.1.2"));
	ck_assert(!match("10.0.0.0/8", "11.0.0.1"));
	ck_assert(match("10.1.2.3/32", "10.1.2.3"));
	ck_assert(!match("10.1.2.3/32", "10.1.2.4"));
	ck_assert(match("10.1.2.3", "10.1.2.3"));
	ck_assert(match("0.0.0.0/0", "203.0.113.9"));
	ck_assert(match("172.16.0.0/12", "172.31.255.255")); /* a prefix that is not byte aligned */
	ck_assert(!match("172.16.0.0/12", "172.32.0.0"));
	ck_assert(match("fd00::/8", "fd12:3456::1"));
	ck_assert(!match("fd00::/8", "fe80::1"));
	ck_assert(match("2001:db8::/33", "2001:db8:7fff::1"));
	ck_assert(!match("2001:db8::/33", "2001:db8:8000::1"));
	ck_assert(match("::1/128", "::1"));
	ck_assert(!match("::1/128", "::2"));
	ck_assert(match("::/0", "2001:db8::1"));
	/* an IPv4 client on a dual-stack socket, ::ffff:a.b.c.d, matches IPv4 networks */
	ck_assert(match("192.168.1.0/24", "::ffff:192.168.1.20"));
	ck_assert(!match("192.168.1.0/24", "::ffff:192.168.2.20"));
	ck_assert(match("0.0.0.0/0", "::ffff:8.8.8.8"));
	/* ... but a v6 address that merely ends in the same bytes does not */
	ck_assert(!match("192.168.1.0/24", "::192.168.1.20"));
	ck_assert(!match("0.0.0.0/0", "2001:db8::1"));
	/* and v6 networks never match IPv4 sockaddrs */
	ck_assert(!match("fd00::/8", "10.0.0.1"));
	ck_assert_int_eq(emg_cidr_parse("0.0.0.0/0", &c), 0);
	ck_assert_int_eq(emg_cidr_match(&c, &sa), 0);
}
END_TEST

START_TEST(test_hostport)
{
	struct emg_hostport hp = { "untouched", 1 };

	ck_assert_int_eq(emg_hostport_parse("127.0.0.1:9000", &hp), 0);
	ck_assert_str_eq(hp.host, "127.0.0.1");
	ck_assert_uint_eq(hp.port, 9000);
	ck_assert_int_eq(emg_hostport_parse("[::1]:65535", &hp), 0);
	ck_assert_str_eq(hp.host, "::1");
	ck_assert_uint_eq(hp.port, 65535);
	ck_assert_int_eq(emg_hostport_parse("[fe80::1:2]:1", &hp), 0);
	ck_assert_str_eq(hp.host, "fe80::1:2");
	ck_assert_uint_eq(hp.port, 1);
	ck_assert_int_eq(emg_hostport_parse("0.0.0.0:9000", &hp), 0);

	hp.port = 4242;
	ck_assert_int_eq(emg_hostport_parse("127.0.0.1:0", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("127.0.0.1:65536", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("127.0.0.1:-1", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("127.0.0.1:", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("127.0.0.1:90a", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("127.0.0.1", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse(":9000", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("localhost:9000", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("::1:9000", &hp), -EINVAL);     /* v6 needs brackets */
	ck_assert_int_eq(emg_hostport_parse("[::1]9000", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("[::1]:", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("[::1:9000", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("[127.0.0.1]:9000", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("[nonsense]:9000", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse("127.0.0.1:auto", &hp), -EINVAL); /* targets: a real port */
	ck_assert_int_eq(emg_hostport_parse("999.0.0.1:9000", &hp), -EINVAL);
	ck_assert_uint_eq(hp.port, 4242); /* untouched on error */
	ck_assert_str_eq(hp.host, "0.0.0.0");

	/* [osc] listen and [oscquery] http: HOST:auto and auto are port 0 (lib/osc.c picks) */
	ck_assert_int_eq(emg_hostport_parse_auto("auto", &hp), 0);
	ck_assert_str_eq(hp.host, "127.0.0.1");
	ck_assert_uint_eq(hp.port, 0);
	ck_assert_int_eq(emg_hostport_parse_auto("0.0.0.0:auto", &hp), 0);
	ck_assert_str_eq(hp.host, "0.0.0.0");
	ck_assert_uint_eq(hp.port, 0);
	ck_assert_int_eq(emg_hostport_parse_auto("[::1]:auto", &hp), 0);
	ck_assert_str_eq(hp.host, "::1");
	ck_assert_int_eq(emg_hostport_parse_auto("10.0.0.2:9010", &hp), 0);
	ck_assert_uint_eq(hp.port, 9010);
	ck_assert_int_eq(emg_hostport_parse_auto("localhost:auto", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse_auto(":auto", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse_auto("AUTO", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse_auto("127.0.0.1:autox", &hp), -EINVAL);
	ck_assert_int_eq(emg_hostport_parse_auto("127.0.0.1:0", &hp), -EINVAL);
}
END_TEST

static char tmpdir[256];

static void fs_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/emgd-test-config-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void fs_teardown(void)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/emgd.conf", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/big.conf", tmpdir);
	unlink(p);
	rmdir(tmpdir);
}

START_TEST(test_load)
{
	struct emg_config c;
	char path[512], want[600];
	FILE *f;

	ck_assert_int_eq(emg_config_init(&c), 0);
	snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
	ck_assert_int_eq(emg_config_load(&c, path, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot open", path);
	ck_assert_ptr_nonnull(strstr(err, want));
	ck_assert_str_eq(c.path, "");

	ck_assert_int_eq(emg_config_load(&c, tmpdir, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
	ck_assert_str_eq(err, want);
	/* a FIFO is refused at once, not waited on (found by tests/integration/test_faults.py) */
	snprintf(path, sizeof(path), "%s/fifo.conf", tmpdir);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(emg_config_load(&c, path, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
	unlink(path);

	snprintf(path, sizeof(path), "%s/emgd.conf", tmpdir);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# site config\n[osc]\npublish_rate = 20\n[dsp]\nmains = 55\n", f);
	fclose(f);
	ck_assert_int_eq(emg_config_load(&c, path, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:5: [dsp] mains = 55: bad value (allowed: auto, 50, 60 or off)",
		 path);
	ck_assert_str_eq(err, want);
	ck_assert_double_eq(c.pipe.publish_rate, 50);

	f = fopen(path, "w");
	fputs("# site config\n[osc]\npublish_rate = 20\n", f);
	fclose(f);
	ck_assert_int_eq(emg_config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_double_eq(c.pipe.publish_rate, 20);
	ck_assert_str_eq(c.path, path);

	snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
	f = fopen(path, "w");
	ck_assert_int_eq(ftruncate(fileno(f), EMG_CONFIG_MAX_BYTES + 1), 0);
	fclose(f);
	ck_assert_int_eq(emg_config_load(&c, path, err, sizeof(err)), -EFBIG);
	ck_assert_ptr_nonnull(strstr(err, "file too large"));
	ck_assert_double_eq(c.pipe.publish_rate, 20);
	emg_config_release(&c);
}
END_TEST

START_TEST(test_device_changed)
{
	struct emg_config a, b;
	struct emg_device_config dev;

	ck_assert_int_eq(emg_config_init(&a), 0);
	ck_assert_int_eq(emg_config_copy(&b, &a), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 0);
	/* DSP and OSC settings do not need a device restart */
	ck_assert_int_eq(parse(&b, "[osc]\npublish_rate = 100\nlisten = 127.0.0.1:9100\n"
				   "[dsp]\nlowpass = 400\nhighpass = 10\n"),
			 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 0);
	/* ... except mains: the synth hums at the configured frequency */
	ck_assert_int_eq(parse(&b, "[dsp]\nmains = 60\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);
	ck_assert_int_eq(parse(&b, "[dsp]\nmains = auto\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 0);
	ck_assert_int_eq(parse(&b, "[device]\nseed = 2\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);
	ck_assert_int_eq(parse(&b, "[device]\nseed = 1\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 0);
	ck_assert_int_eq(parse(&b, "[device]\nrate = 4000\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);
	ck_assert_int_eq(parse(&b, "[device]\nrate = 0\nscenario = bridge\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);
	ck_assert_int_eq(parse(&b, "[device]\nscenario = session\nchannels = 8\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);
	ck_assert_int_eq(parse(&b, "[device]\nchannels = 0\nrealtime = no\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);
	ck_assert_int_eq(parse(&b, "[device]\nrealtime = yes\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 0);
	/* the synth scripts each muscle, so renaming one restarts it; more channels always do */
	ck_assert_int_eq(parse(&b, "[muscles]\nglute_max_l = 1\nglute_max_r = 2\nglute_med_l = 3\n"
				   "glute_med_r = 4\nhip_flex_l = 5\nhamstring_r = 6\n"),
			 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);
	ck_assert_int_eq(parse(&b, "[muscles]\nglute_max_l = 1\nglute_max_r = 2\nglute_med_l = 3\n"
				   "glute_med_r = 4\nhip_flex_l = 5\nhip_flex_r = 6, new site text\n"),
			 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 0);
	ck_assert_int_eq(parse(&b, "[muscles]\nglute_max_l = 1\nglute_max_r = 8\n"), 0);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);

	emg_config_device(&a, &dev);
	ck_assert_str_eq(dev.driver, "synth");
	ck_assert_double_eq(dev.rate, 0);
	ck_assert_ptr_eq(dev.muscles, a.muscles);
	ck_assert_double_eq(dev.mains_hz, 50);
	ck_assert_int_eq(dev.realtime, 1);
	ck_assert_uint_eq(dev.seed, 1);
	ck_assert_int_eq(parse(&a, "[dsp]\nmains = off\n"), 0);
	emg_config_device(&a, &dev);
	ck_assert_double_eq(dev.mains_hz, 50); /* the synth still hums when the notch is off */
	ck_assert_int_eq(parse(&a, "[dsp]\nmains = 60\n"), 0);
	emg_config_device(&a, &dev);
	ck_assert_double_eq(dev.mains_hz, 60);
	emg_config_release(&a);
	emg_config_release(&b);
}
END_TEST

/* The synth's realism keys: defaults, values, strict errors, device config and restarts. */
START_TEST(test_synth_realism)
{
	struct emg_config a, b;
	struct emg_device_config dev;

	ck_assert_int_eq(emg_config_init(&a), 0);
	ck_assert_int_eq(a.dev.realism, EMG_SYNTH_PLAIN);
	ck_assert_double_eq(a.dev.ecg_uv, 100);
	ck_assert(a.dev.ramps && a.dev.crosstalk && a.dev.tonic && a.dev.motion);
	emg_config_device(&a, &dev);
	ck_assert_int_eq(dev.realism, EMG_SYNTH_PLAIN);
	ck_assert_double_eq(dev.ecg_uv, 100);
	ck_assert(dev.ramps && dev.crosstalk && dev.tonic && dev.motion);
	/* the built-in config and emg_device_config_default agree */
	struct emg_device_config def;
	emg_device_config_default(&def);
	ck_assert_int_eq(def.realism, dev.realism);
	ck_assert_double_eq(def.ecg_uv, dev.ecg_uv);
	ck_assert(def.ramps && def.crosstalk && def.tonic && def.motion);

	ck_assert_int_eq(emg_config_copy(&b, &a), 0);
	ck_assert_int_eq(parse(&b, "[device]\nrealism = plain\necg_uv = 250.5\nramps = no\n"
				   "crosstalk = off\ntonic = false\nmotion = 0\n"),
			 0);
	ck_assert_int_eq(b.dev.realism, EMG_SYNTH_PLAIN);
	ck_assert_double_eq(b.dev.ecg_uv, 250.5);
	ck_assert(!b.dev.ramps && !b.dev.crosstalk && !b.dev.tonic && !b.dev.motion);
	emg_config_device(&b, &dev);
	ck_assert_int_eq(dev.realism, EMG_SYNTH_PLAIN);
	ck_assert_double_eq(dev.ecg_uv, 250.5);
	ck_assert(!dev.ramps && !dev.crosstalk && !dev.tonic && !dev.motion);
	ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);

	/* each key alone restarts the device */
	static const char *const one[] = { "realism = realistic", "ecg_uv = 0", "ramps = no",
					   "crosstalk = no", "tonic = no", "motion = no" };
	for (unsigned i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		char text[128];

		emg_config_release(&b);
		ck_assert_int_eq(emg_config_copy(&b, &a), 0);
		ck_assert_int_eq(emg_config_device_changed(&a, &b), 0);
		snprintf(text, sizeof(text), "[device]\n%s\n", one[i]);
		ck_assert_int_eq(parse(&b, text), 0);
		ck_assert_int_eq(emg_config_device_changed(&a, &b), 1);
	}

	ck_parse_err("[device]\nrealism = real\n",
		     "emgd.conf:2: [device] realism = real: bad value (allowed: realistic or plain)");
	ck_parse_err("[device]\nrealism = Plain\n", "[device] realism = Plain: bad value");
	ck_parse_err("[device]\necg_uv = -1\n",
		     "emgd.conf:2: [device] ecg_uv = -1: bad value (allowed: 0 (off) .. 1000 uV)");
	ck_parse_err("[device]\necg_uv = 1001\n", "[device] ecg_uv = 1001: bad value");
	ck_parse_err("[device]\necg_uv = nan\n", "[device] ecg_uv = nan: bad value");
	ck_parse_err("[device]\nramps = maybe\n",
		     "emgd.conf:2: [device] ramps = maybe: bad value (allowed: yes or no)");
	ck_parse_err("[device]\ncrosstalk = 2\n", "[device] crosstalk = 2: bad value (allowed: yes or no)");
	ck_parse_err("[device]\ntonic = y\n", "[device] tonic = y: bad value (allowed: yes or no)");
	ck_parse_err("[device]\nmotion = none\n", "[device] motion = none: bad value (allowed: yes or no)");
	emg_config_release(&a);
	emg_config_release(&b);
}
END_TEST

/* [analytics] and [oscquery]: defaults, values, pairs resolved against the final [muscles]. */
START_TEST(test_analytics_oscquery)
{
	struct emg_config c;

	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_double_eq(c.analytics.order_window_ms, 300);
	ck_assert_double_eq(c.analytics.min_rest_ms, 500);
	ck_assert_str_eq(c.analytics_pairs, "auto");
	ck_assert_uint_eq(c.analytics.npairs, 2); /* glute_max_l:hip_flex_l, glute_max_r:hip_flex_r */
	ck_assert_uint_eq(c.analytics.pairs[0].a, 0);
	ck_assert_uint_eq(c.analytics.pairs[0].b, 4);
	ck_assert(!c.oscquery);
	ck_assert(!c.mdns);
	ck_assert_str_eq(c.oscquery_http.host, "127.0.0.1");
	ck_assert_uint_eq(c.oscquery_http.port, 9001);
	ck_assert_str_eq(c.oscquery_name, "");

	/* pairs before the [muscles] they name */
	ck_assert_int_eq(parse(&c, "[analytics]\norder_window_ms = 200\nmin_rest_ms = 0\n"
				   "pairs = glute_max_l:hamstring_l hamstring_l:glute_max_l\n"
				   "[oscquery]\nenabled = yes\nhttp = [::1]:8080\nmdns = yes\n"
				   "name = plinth 2\n"
				   "[muscles]\nglute_max_l = 1\nhamstring_l = 3\n"), 0);
	ck_assert_double_eq(c.analytics.order_window_ms, 200);
	ck_assert_double_eq(c.analytics.min_rest_ms, 0);
	ck_assert_uint_eq(c.analytics.npairs, 2);
	ck_assert_uint_eq(c.analytics.pairs[0].a, 0);
	ck_assert_uint_eq(c.analytics.pairs[0].b, 1);
	ck_assert_uint_eq(c.analytics.pairs[1].a, 1);
	ck_assert(c.oscquery);
	ck_assert(c.mdns);
	ck_assert_str_eq(c.oscquery_http.host, "::1");
	ck_assert_uint_eq(c.oscquery_http.port, 8080);
	ck_assert_str_eq(c.oscquery_name, "plinth 2");
	/* auto follows a new map: no hamstring or hip flexor, no pairs */
	ck_assert_int_eq(parse(&c, "[analytics]\npairs = auto\n[muscles]\nglute_max_l = 1\nglute_med_l = 2\n"), 0);
	ck_assert_uint_eq(c.analytics.npairs, 0);
	emg_config_release(&c);

	ck_parse_err("[analytics]\norder_window_ms = 5\n",
		     "emgd.conf:2: [analytics] order_window_ms = 5: bad value (allowed: 10..2000 ms)");
	ck_parse_err("[analytics]\npairs = glute_max_l:hamstring_l\n",
		     "emgd.conf:2: [analytics] pairs = glute_max_l:hamstring_l: bad value: 'glute_max_l:hamstring_l': not two muscles of [muscles]");
	/* pairs from an earlier file, made invalid by this file's [muscles]: the [muscles] line */
	{
		struct emg_config c2;
		ck_assert_int_eq(emg_config_init(&c2), 0);
		ck_assert_int_eq(parse(&c2, "[analytics]\npairs = glute_max_l:hip_flex_l\n"), 0);
		ck_assert_int_eq(parse(&c2, "# overlay\n[muscles]\nsolo = 1\n"), -EINVAL);
		ck_assert_msg(strstr(err, "emgd.conf:3: [analytics] pairs = glute_max_l:hip_flex_l: bad value") == err, "%s", err);
		emg_config_release(&c2);
	}
	ck_parse_err("[analytics]\npairs = glute_max_l\n", "'glute_max_l' is not muscle:muscle");
	ck_parse_err("[oscquery]\nhttp = localhost:80\n",
		     "emgd.conf:2: [oscquery] http = localhost:80: bad value (allowed: host:port with a numeric IPv4 or [IPv6] address, host:auto or auto)");
	ck_parse_err("[oscquery]\nport = 1\n", "[oscquery] port: unknown key (allowed: enabled, http, mdns, name, www)");
	/* the browser view: the install's directory by default, an absolute path, or none */
	{
		struct emg_config c3;
		ck_assert_int_eq(emg_config_init(&c3), 0);
		ck_assert_str_eq(c3.oscquery_www, EMGD_WWWDIR);
		ck_assert_int_eq(parse(&c3, "[oscquery]\nwww = /srv/emgd-www\n"), 0);
		ck_assert_str_eq(c3.oscquery_www, "/srv/emgd-www");
		ck_assert_int_eq(parse(&c3, "[oscquery]\nwww =\n"), 0);
		ck_assert_str_eq(c3.oscquery_www, "");
		emg_config_release(&c3);
	}
	ck_parse_err("[oscquery]\nwww = www\n",
		     "emgd.conf:2: [oscquery] www = www: bad value (allowed: an absolute path to the browser view's files, or empty (no view))");
	/* [web]: control from the view on by default (the server is on loopback), an optional token */
	{
		struct emg_config c4;
		ck_assert_int_eq(emg_config_init(&c4), 0);
		ck_assert(c4.web_control);
		ck_assert_str_eq(c4.web_token, "");
		ck_assert_msg(parse(&c4, "[web]\ncontrol = no\ntoken = lab-7f3a9c.d2e8~b41_0\n") == 0, "%s", err);
		ck_assert(!c4.web_control);
		ck_assert_str_eq(c4.web_token, "lab-7f3a9c.d2e8~b41_0");
		ck_assert_msg(parse(&c4, "[web]\ntoken =\n") == 0, "%s", err);
		ck_assert_str_eq(c4.web_token, "");
		emg_config_release(&c4);
	}
	ck_parse_err("[web]\ncontrol = maybe\n", "emgd.conf:2: [web] control = maybe: bad value (allowed: yes or no)");
	ck_parse_err("[web]\n\ntoken = short\n",
		     "emgd.conf:3: [web] token = short: bad value (allowed: empty (none), or 16 to 128 characters from A-Z a-z 0-9 - . _ ~)");
	ck_parse_err("[web]\ntoken = 0123456789abcdef/\n", "emgd.conf:2: [web] token = 0123456789abcdef/: bad value");
	ck_parse_err("[web]\nsecret = x\n", "emgd.conf:2: [web] secret: unknown key (allowed: control, token)");
}
END_TEST

/* Issue 16 #13: a value is quoted as written, not as printf("%g") shows it. */
START_TEST(test_value_as_written)
{
	ck_parse_err("[device]\nrate = 249.9999\n",
		     "emgd.conf:2: [device] rate = 249.9999: bad value (allowed: 0 (driver default) or 250..16000 Hz)");
	ck_parse_err("[device]\nrate = 16000.0001\n", "emgd.conf:2: [device] rate = 16000.0001: bad value");
	ck_parse_err("[device]\nrate = -0.5\n", "emgd.conf:2: [device] rate = -0.5: bad value");
	/* the boundaries are fine */
	{
		struct emg_config c;
		ck_assert_int_eq(emg_config_init(&c), 0);
		ck_assert_msg(parse(&c, "[device]\nrate = 250.0\n") == 0, "%s", err);
		ck_assert_double_eq(c.rate, 250);
		ck_assert_msg(parse(&c, "[device]\nrate = 16000\n") == 0, "%s", err);
		ck_assert_msg(parse(&c, "[device]\nrate = 0\n") == 0, "%s", err);
		emg_config_release(&c);
	}
}
END_TEST

/* Issue 16 #13: every error names the file and a line, even when found after the whole file. */
START_TEST(test_every_error_has_a_line)
{
	static const char *const bad[] = {
		"[device]\nrate = 100\n",
		"[device]\nrate = 249.9999\n",
		"[dsp]\nhighpass = 100\nlowpass = 100\n",
		"[dsp]\nlowpass = 10\n",
		"[osc]\nmax_lease = 5\n",
		"[osc]\nlease = 20\nmax_lease = 15\n",
		"[osc]\npublish_rate = 600\n[device]\nrate = 500\n",
		"[device]\nchannels = 1\n",
		"[analytics]\npairs = a:b\n",
		"[analytics]\npairs = glute_max_l\n",
		"[dsp]\necg_muscles = nobody\n",
		"[device]\ndriver = replay\nfile = /dev/null\n",
		"rate = 1\n",
		"[device] extra\n",
		"[osc]\nlease = 5\nlease = 6\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct emg_config c;
		unsigned line = 0;
		char rest[8];

		ck_assert_int_eq(emg_config_init(&c), 0);
		ck_assert_int_eq(parse(&c, bad[i]), -EINVAL);
		ck_assert_msg(sscanf(err, "emgd.conf:%u: %7s", &line, rest) == 2 && line >= 1,
			      "no file:line in '%s' for '%s'", err, bad[i]);
		ck_assert_msg(strstr(err, "(allowed: ") != NULL, "no allowed values in '%s'", err);
		emg_config_release(&c);
	}
}
END_TEST

/* Issue 16 #13: inih ignores text after ']', so "[device] rate = 4000" lost the key silently. */
START_TEST(test_text_after_section)
{
	struct emg_config c;

	ck_parse_err("[device] x\nrate = 4000\n",
		     "emgd.conf:1: [device] x: text after the section header (allowed: only a comment after ']', starting with '#' or ';')");
	ck_parse_err("[osc]\npublish_rate = 25\n  [device] rate = 4000\n", "emgd.conf:3: [device] rate = 4000: text after the section header");
	ck_parse_err("[dsp]]\n", "emgd.conf:1: [dsp] ]: text after the section header");
	/* a comment, blanks and CRLF after the header are fine */
	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_msg(parse(&c, "[device] # the amplifier\nrate = 4000\n[dsp] ; filters\nmains = 60\n"
				"[osc]  \t\r\npublish_rate = 25\r\n") == 0, "%s", err);
	ck_assert_double_eq(c.rate, 4000);
	ck_assert_double_eq(c.pipe.filter.mains_hz, 60);
	ck_assert_double_eq(c.pipe.publish_rate, 25);
	emg_config_release(&c);
}
END_TEST

/* Issue 16 #13: a key set twice kept the last value silently; lists still repeat. */
START_TEST(test_duplicate_keys)
{
	struct emg_config c;

	ck_parse_err("[device]\nrate = 2000\nseed = 1\nrate = 4000\n",
		     "emgd.conf:4: [device] rate = 4000: already set on line 2 (allowed: each key once; only [osc] target and allow, and [muscles] lines, repeat)");
	/* in another [device] block of the same file too */
	ck_parse_err("[device]\nrealtime = no\n[dsp]\nmains = 60\n[device]\nrealtime = yes\n",
		     "emgd.conf:6: [device] realtime = yes: already set on line 2");
	ck_parse_err("[oscquery]\nname = a\nname = a\n", "emgd.conf:3: [oscquery] name = a: already set on line 2");
	ck_parse_err("[dsp]\necg_muscles = all\necg_muscles = all\n", "emgd.conf:3: [dsp] ecg_muscles = all: already set on line 2");
	/* lists: target, allow and [muscles] lines repeat; a repeated section is fine */
	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_msg(parse(&c, "[osc]\ntarget = 127.0.0.1:7000\ntarget = 127.0.0.1:7001\n"
				"allow = 10.0.0.0/8\nallow = 192.168.0.0/16\n[muscles]\na = 1\nb = 2\n"
				"[osc]\ntarget = 127.0.0.1:7002\n[dsp]\nmains = 60\n") == 0, "%s", err);
	ck_assert_uint_eq(c.ntargets, 3);
	ck_assert_uint_eq(c.nallow, 2);
	ck_assert_uint_eq(emg_muscles_count(c.muscles), 2);
	/* each parse is on its own: a key set by an earlier file may be set again */
	ck_assert_msg(parse(&c, "[dsp]\nmains = 50\n") == 0, "%s", err);
	ck_assert_double_eq(c.pipe.filter.mains_hz, 50);
	emg_config_release(&c);
}
END_TEST

/* Issue 16 #13: the OSCQuery name went into JSON as it was: invalid UTF-8 made invalid JSON. */
START_TEST(test_oscquery_name_utf8)
{
	struct emg_config c;

	ck_parse_err("[oscquery]\nname = plinth\xff\n",
		     "emgd.conf:2: [oscquery] name = plinth?: bad value (allowed: a service name in UTF-8 without control characters, up to 63 bytes (empty: emgd on <hostname>))");
	ck_parse_err("[oscquery]\nname = a\xc3\n", "emgd.conf:2: [oscquery] name = a?: bad value");
	ck_parse_err("[oscquery]\nname = \xc0\xafx\n", "[oscquery] name = ??x: bad value"); /* overlong '/' */
	ck_parse_err("[oscquery]\nname = \xed\xa0\x80\n", "[oscquery] name = ???: bad value"); /* surrogate */
	ck_parse_err("[oscquery]\nname = a\x1b[2Jb\n", "[oscquery] name = a [2Jb: bad value"); /* ESC, shown as a space */
	ck_parse_err("[oscquery]\nname = a\tb\n", "[oscquery] name = a b: bad value");
	ck_parse_err("[oscquery]\nname = a\xc2\x9b\n", "[oscquery] name = a : bad value"); /* C1 CSI */
	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_msg(parse(&c, "[oscquery]\nname = Behandlungsraum 2 \xe2\x80\x93 Liege \xc3\xa4\xf0\x9f\x92\xaa\n") == 0, "%s", err);
	ck_assert_str_eq(c.oscquery_name, "Behandlungsraum 2 \xe2\x80\x93 Liege \xc3\xa4\xf0\x9f\x92\xaa");
	emg_config_release(&c);
}
END_TEST

/* Read a file of the source tree into a NUL-terminated buffer (the caller frees it). */
static char *read_source(const char *rel, size_t *len)
{
	char path[1024];
	FILE *f;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s", EMG_SOURCE_ROOT, rel);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	buf = malloc(EMG_CONFIG_MAX_BYTES + 1);
	ck_assert_ptr_nonnull(buf);
	*len = fread(buf, 1, EMG_CONFIG_MAX_BYTES, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* Issue 16 #13: the documented muscle limit is the one the parser applies, and the shipped
 * example config still parses under the stricter rules (no duplicate keys). */
START_TEST(test_shipped_docs)
{
	char want[64], *text;
	size_t len;
	struct emg_config c;

	snprintf(want, sizeof(want), "at most %d muscles", EMG_MUSCLES_MAX);
	text = read_source("conf/emgd.conf.5", &len);
	ck_assert_msg(strstr(text, want) != NULL, "emgd.conf(5) does not say '%s'", want);
	free(text);
	text = read_source("conf/emgd.conf", &len);
	ck_assert_msg(strstr(text, want) != NULL, "conf/emgd.conf does not say '%s'", want);
	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_msg(emg_config_parse(&c, "conf/emgd.conf", text, len, err, sizeof(err)) == 0, "%s", err);
	emg_config_release(&c);
	free(text);
}
END_TEST

/* Reload effects come from the table's flags: what changed, named, and what to redo. */
START_TEST(test_diff_effects)
{
	struct emg_config a, b;
	char changed[256], what[128];
	unsigned e;

	ck_assert_int_eq(emg_config_init(&a), 0);
	ck_assert_int_eq(emg_config_init(&b), 0);
	ck_assert_uint_eq(emg_config_diff(&a, &b, changed, sizeof(changed)), 0);
	ck_assert_str_eq(changed, "");
	ck_assert_int_eq(parse(&b, "[device]\nsnr_db = 20\n[osc]\nlisten = 127.0.0.1:9100\n"), 0);
	e = emg_config_diff(&a, &b, changed, sizeof(changed));
	ck_assert_str_eq(changed, "[device] snr_db, [osc] listen");
	ck_assert_uint_eq(e, EMG_CFG_DEVICE | EMG_CFG_OSC_SOCKET | EMG_CFG_OSCQUERY);
	emg_config_effects_text(e, what, sizeof(what));
	ck_assert_str_eq(what, "device, osc-socket, oscquery");
	/* the same text again: nothing to do */
	ck_assert_int_eq(parse(&a, "[device]\nsnr_db = 20\n[osc]\nlisten = 127.0.0.1:9100\n"), 0);
	ck_assert_uint_eq(emg_config_diff(&a, &b, changed, sizeof(changed)), 0);
	/* repeatable keys compare as lists, not as the stale array behind the count */
	ck_assert_int_eq(parse(&b, "[osc]\ntarget = 127.0.0.1:7000\nallow = 10.0.0.0/8\n"), 0);
	ck_assert_uint_eq(emg_config_diff(&a, &b, changed, sizeof(changed)),
			  EMG_CFG_OSC | EMG_CFG_OSCQUERY_LIVE);
	ck_assert_str_eq(changed, "[osc] target, [osc] allow");
	ck_assert_int_eq(parse(&a, "[osc]\ntarget = 127.0.0.1:7000\nallow = 10.0.0.0/8\n"), 0);
	ck_assert_uint_eq(emg_config_diff(&a, &b, NULL, 0), 0);
	/* (each parse starts the repeatable keys empty: begin again from the defaults) */
	emg_config_release(&a);
	emg_config_release(&b);
	ck_assert_int_eq(emg_config_init(&a), 0);
	ck_assert_int_eq(emg_config_init(&b), 0);
	/* the synth hums at [dsp] mains; another driver only needs a new pipeline */
	ck_assert_int_eq(parse(&b, "[dsp]\nmains = 60\n"), 0);
	ck_assert_uint_eq(emg_config_diff(&a, &b, NULL, 0), EMG_CFG_DEVICE | EMG_CFG_PIPELINE);
	ck_assert_int_eq(parse(&a, "[device]\ndriver = hackeeg\n"), 0);
	ck_assert_int_eq(parse(&b, "[device]\ndriver = hackeeg\n"), 0);
	ck_assert_uint_eq(emg_config_diff(&a, &b, changed, sizeof(changed)), EMG_CFG_PIPELINE);
	ck_assert_str_eq(changed, "[dsp] mains");
	/* start-up-only keys say so */
	ck_assert_int_eq(parse(&b, "[daemon]\nmlock = no\n[dsp]\nmains = auto\n"), 0);
	ck_assert_uint_eq(emg_config_diff(&a, &b, NULL, 0), EMG_CFG_RESTART);
	/* [muscles]: same channels for a USB amplifier, a new pipeline only */
	ck_assert_int_eq(parse(&b, "[daemon]\nmlock = yes\n[muscles]\nglute_max_l = 1\nglute_max_r = 2\nglute_med_l = 3\n"
				   "glute_med_r = 4\nhip_flex_l = 5\nhamstring_r = 6\n"),
			 0);
	ck_assert_uint_eq(emg_config_diff(&a, &b, changed, sizeof(changed)),
			  EMG_CFG_PIPELINE | EMG_CFG_ANALYTICS | EMG_CFG_OSCQUERY_LIVE);
	ck_assert_str_eq(changed, "[muscles]");
	/* a short buffer is cut with "..." */
	ck_assert_int_eq(parse(&b, "[osc]\nlease = 20\nmax_lease = 200\nrate_burst = 5\n"), 0);
	emg_config_diff(&a, &b, changed, 24);
	ck_assert_msg(strlen(changed) < 24 && strstr(changed, "..."), "'%s'", changed);
	emg_config_release(&a);
	emg_config_release(&b);
}
END_TEST

/* A value of o other than its default, written as in a config file. */
static const char *other_value(const struct emg_device_option *o, char *buf, size_t len)
{
	switch (o->type) {
	case EMG_OPT_BOOL:
		return strcmp(o->def, "yes") ? "yes" : "no";
	case EMG_OPT_UINT:
	case EMG_OPT_DOUBLE:
		if (o->choices)
			return strcmp(o->choices[0], o->def) ? o->choices[0] : o->choices[1];
		snprintf(buf, len, "%g", o->max);
		return buf;
	case EMG_OPT_U64:
		return "12345";
	case EMG_OPT_CHOICE:
	case EMG_OPT_ENUM:
		return strcmp(o->choices[0], o->def) ? o->choices[0] : o->choices[1];
	case EMG_OPT_PATH:
		return "/nonexistent/session.bdf";
	}
	return "";
}

/*
 * Every option of every registered driver is a [device] key: its default is
 * the built-in config's, a change of it restarts the device on reload and is
 * named, and emg_config_device() hands it to the driver.  (A key missing from
 * the hand-written comparison this replaces skipped the restart silently.)
 */
START_TEST(test_every_driver_option)
{
	struct emg_device_config def, got;
	struct emg_config a, b;
	char text[512], buf[32], changed[256], want[64];

	emg_device_config_default(&def);
	for (const struct emg_device_ops *const *d = emg_device_drivers(); *d; d++)
		for (const struct emg_device_option *o = (*d)->options; o && o->name; o++) {
			const char *v = other_value(o, buf, sizeof(buf));

			ck_assert_int_eq(emg_config_init(&a), 0);
			ck_assert_int_eq(emg_config_init(&b), 0);
			emg_config_device(&a, &got);
			ck_assert_msg(emg_device_option_equal(o, &got, &def), "%s: default differs", o->name);
			/* replay's check would refuse the made-up path: test the option with the synth */
			snprintf(text, sizeof(text), "[device]\n%s = %s\n", o->name, v);
			ck_assert_msg(parse(&b, text) == 0, "%s = %s: %s", o->name, v, err);
			ck_assert_msg(emg_config_diff(&a, &b, changed, sizeof(changed)) & EMG_CFG_DEVICE,
				      "%s: no device restart", o->name);
			snprintf(want, sizeof(want), "[device] %s", o->name);
			ck_assert_str_eq(changed, want);
			emg_config_device(&b, &got);
			ck_assert_msg(!emg_device_option_equal(o, &got, &def), "%s: not handed to the driver",
				      o->name);
			emg_config_release(&a);
			emg_config_release(&b);
		}
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_empty_file_is_defaults);
	tcase_add_test(tc, test_every_key_type);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_unknown_key_and_section);
	tcase_add_test(tc, test_syntax_error);
	tcase_add_test(tc, test_first_error_wins);
	tcase_add_test(tc, test_long_line);
	tcase_add_test(tc, test_binary_and_huge);
	tcase_add_test(tc, test_error_leaves_cfg_untouched);
	tcase_add_test(tc, test_muscles_section);
	tcase_add_test(tc, test_too_many_muscles);
	tcase_add_test(tc, test_cross_key);
	tcase_add_test(tc, test_targets_and_allow);
	tcase_add_test(tc, test_device_changed);
	tcase_add_test(tc, test_diff_effects);
	tcase_add_test(tc, test_every_driver_option);
	tcase_add_test(tc, test_analytics_oscquery);
	tcase_add_test(tc, test_synth_realism);
	tcase_add_test(tc, test_value_as_written);
	tcase_add_test(tc, test_every_error_has_a_line);
	tcase_add_test(tc, test_text_after_section);
	tcase_add_test(tc, test_duplicate_keys);
	tcase_add_test(tc, test_oscquery_name_utf8);
	tcase_add_test(tc, test_shipped_docs);
	suite_add_tcase(s, tc);

	tc = tcase_create("net");
	tcase_add_test(tc, test_cidr);
	tcase_add_test(tc, test_hostport);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_checked_fixture(tc, fs_setup, fs_teardown);
	tcase_add_test(tc, test_load);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run(config_suite());
}
