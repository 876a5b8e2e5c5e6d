/* SPDX-License-Identifier: MIT */
/*
 * What users read must match the code's tables.
 *
 * "registry": every driver of the registry (lib/device.c) is in `emgd --help`,
 * in the config error for an unknown driver, in emgd.conf(5)'s driver list
 * and the README's amplifier table, and its USB ids are in the udev rule (and
 * the rule matches no id the registry does not claim).
 *
 * "drift": `emgd --check-config` accepts conf/emgd.conf; every key of the
 * config table is in conf/emgd.conf and emgd.conf(5) under its section, and
 * every key those two document is in the table; conf/emgd.conf's values are
 * the built-in defaults (driver options: the default their table declares,
 * also the one the man page shows); the fuzz corpus holds conf/emgd.conf as it is.
 *
 * EMGD is the emgd binary; EMG_SOURCE_ROOT the source tree.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "device.h"
#include "testutil.h"

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	ck_assert_msg(f != NULL, "cannot open %s", path);
	buf = malloc(EMG_CONFIG_MAX_BYTES + 1);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, EMG_CONFIG_MAX_BYTES, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static char *read_source(const char *rel)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s", EMG_SOURCE_ROOT, rel);
	return read_file(path);
}

/* Run the emgd binary with args; its stdout and stderr, and *status. */
static char *run_emgd(const char *args, int *status)
{
	const char *emgd = getenv("EMGD");
	/* cross builds: meson's exe wrapper (qemu), or the shell's exec of an
	 * arm64 binary fails wherever binfmt_misc does not route it to qemu */
	const char *wrap = getenv("MESON_EXE_WRAPPER");
	char cmd[2048], *out = malloc(65536);
	size_t n = 0, r;
	FILE *p;

	ck_assert_msg(emgd != NULL, "EMGD is not set");
	ck_assert_ptr_nonnull(out);
	snprintf(cmd, sizeof(cmd), "%s '%s' %s 2>&1", wrap ? wrap : "", emgd, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	while (n < 65535 && (r = fread(out + n, 1, 65535 - n, p)) > 0)
		n += r;
	out[n] = '\0';
	*status = pclose(p);
	return out;
}

/* A copy of text from the line after head up to the next line starting with next. */
static char *block(const char *text, const char *head, const char *next, const char *what)
{
	const char *s = strstr(text, head), *e;

	ck_assert_msg(s != NULL, "%s has no '%s'", what, head + 1);
	s += strlen(head);
	e = strstr(s, next);
	return strndup(s, e ? (size_t)(e - s) + 1 : strlen(s));
}

/* The text of man page section ".SH name" up to the next .SH. */
static char *man_section(const char *man, const char *name)
{
	char head[64];

	snprintf(head, sizeof(head), "\n.SH %s\n", name);
	return block(man, head, "\n.SH ", "emgd.conf(5)");
}

/* The text of conf/emgd.conf's [name] block up to the next section. */
static char *conf_section(const char *conf, const char *name)
{
	char head[64];

	snprintf(head, sizeof(head), "\n[%s]\n", name);
	return block(conf, head, "\n[", "conf/emgd.conf");
}

/* A line of text that begins with prefix, or NULL. */
static const char *line_starting(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, prefix, n))
			return l;
	return NULL;
}

/* ------------------------------------------------------------ registry */

START_TEST(test_help_lists_every_driver)
{
	int st;
	char *out = run_emgd("--help", &st);

	ck_assert_int_eq(st, 0);
	for (const struct emg_device_ops *const *d = emg_device_drivers(); *d; d++) {
		char want[256];

		snprintf(want, sizeof(want), "%s", (*d)->name);
		ck_assert_msg(strstr(out, want), "emgd --help lacks driver %s:\n%s", (*d)->name, out);
		ck_assert_msg(strstr(out, (*d)->help), "emgd --help lacks %s's line '%s'", (*d)->name,
			      (*d)->help);
	}
	free(out);
}
END_TEST

START_TEST(test_config_error_lists_every_driver)
{
	char path[] = "/tmp/emgd-registry-XXXXXX", args[128];
	const char *allowed;
	int fd = mkstemp(path), st;
	char *out;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_gt(write(fd, "[device]\ndriver = nosuch\n", 25), 0);
	close(fd);
	snprintf(args, sizeof(args), "--check-config -c %s", path);
	out = run_emgd(args, &st);
	unlink(path);
	ck_assert_int_ne(st, 0);
	allowed = strstr(out, ":2: [device] driver = nosuch: bad value (allowed: ");
	ck_assert_msg(allowed != NULL, "unexpected error: %s", out);
	for (const struct emg_device_ops *const *d = emg_device_drivers(); *d; d++)
		ck_assert_msg(strstr(allowed, (*d)->name), "the error lacks driver %s: %s", (*d)->name, out);
	free(out);
}
END_TEST

START_TEST(test_docs_list_every_driver)
{
	char *man = read_source("conf/emgd.conf.5"), *dev = man_section(man, "[device]");
	char *readme = read_source("README.md");
	const char *list = strstr(dev, "\n.BR driver \" = ");
	const char *end;

	ck_assert_msg(list != NULL, "emgd.conf(5) [device] has no driver entry");
	/* the driver entry's list of allowed values: .RS ... .RE */
	list = strstr(list, "\n.RS\n");
	ck_assert_ptr_nonnull(list);
	end = strstr(list, "\n.RE\n");
	ck_assert_ptr_nonnull(end);
	for (const struct emg_device_ops *const *d = emg_device_drivers(); *d; d++) {
		char want[96];
		const char *hit;

		snprintf(want, sizeof(want), "\n.TP\n.B %s\n", (*d)->name);
		hit = strstr(list, want);
		ck_assert_msg(hit && hit < end, "emgd.conf(5) [device] driver does not list %s", (*d)->name);
		snprintf(want, sizeof(want), "| `%s`", (*d)->name);
		ck_assert_msg(strstr(readme, want), "README's amplifier table lacks `%s`", (*d)->name);
	}
	/* and lists nothing else */
	for (const char *p = strstr(list, "\n.TP\n.B "); p && p < end; p = strstr(p + 1, "\n.TP\n.B ")) {
		char name[32] = "";

		sscanf(p + 8, "%31s", name);
		ck_assert_msg(emg_device_find(name), "emgd.conf(5) lists driver '%s', not in the registry", name);
	}
	free(dev);
	free(man);
	free(readme);
}
END_TEST

START_TEST(test_udev_rule_matches_usb_ids)
{
	char *rules = read_source("conf/70-emgd.rules");
	unsigned nrules = 0, nids = 0;

	for (const struct emg_device_ops *const *d = emg_device_drivers(); *d; d++)
		for (const struct emg_usb_id *id = (*d)->usb_ids; id && id->vid; id++) {
			char want[128];

			snprintf(want, sizeof(want), "ATTR{idVendor}==\"%04x\", ATTR{idProduct}==\"%04x\"",
				 id->vid, id->pid);
			ck_assert_msg(strstr(rules, want), "70-emgd.rules lacks %s's %04x:%04x", (*d)->name,
				      id->vid, id->pid);
			nids++;
		}
	for (const char *p = strstr(rules, "ATTR{idVendor}==\""); p;
	     p = strstr(p + 1, "ATTR{idVendor}==\"")) {
		unsigned vid, pid;
		int claimed = 0;

		ck_assert_int_eq(sscanf(p, "ATTR{idVendor}==\"%4x\", ATTR{idProduct}==\"%4x\"", &vid, &pid), 2);
		for (const struct emg_device_ops *const *d = emg_device_drivers(); *d; d++)
			for (const struct emg_usb_id *id = (*d)->usb_ids; id && id->vid; id++)
				claimed |= id->vid == vid && id->pid == pid;
		ck_assert_msg(claimed, "70-emgd.rules matches %04x:%04x, which no driver claims", vid, pid);
		nrules++;
	}
	ck_assert_uint_eq(nrules, nids);
	free(rules);
}
END_TEST

/* --------------------------------------------------------------- drift */

START_TEST(test_shipped_conf_checks)
{
	char args[1200];
	int st;
	char *out;

	snprintf(args, sizeof(args), "--check-config -c '%s/conf/emgd.conf'", EMG_SOURCE_ROOT);
	out = run_emgd(args, &st);
	ck_assert_msg(st == 0 && strstr(out, ": ok ("), "emgd --check-config conf/emgd.conf: %s", out);
	free(out);
}
END_TEST

/* "key = value" or "#key = value" at the start of a line of block: its value, else NULL. */
static const char *conf_value(const char *block, const char *key, int *commented)
{
	char want[80];
	const char *l;

	snprintf(want, sizeof(want), "%s =", key);
	*commented = 0;
	if ((l = line_starting(block, want)))
		return l + strlen(want) + (l[strlen(want)] == ' ');
	snprintf(want, sizeof(want), "#%s =", key);
	*commented = 1;
	if ((l = line_starting(block, want)))
		return l + strlen(want) + (l[strlen(want)] == ' ');
	return NULL;
}

/* Every table key is in conf/emgd.conf and emgd.conf(5); driver options with their default. */
START_TEST(test_every_key_documented)
{
	char *conf = read_source("conf/emgd.conf"), *man = read_source("conf/emgd.conf.5");
	struct emg_config_key k;
	unsigned n = 0;

	for (size_t i = 0; emg_config_key_at(i, &k) == 0; i++, n++) {
		char *cs = conf_section(conf, k.section), sec[40], want[96];
		char *ms;
		const char *v, *l;
		int commented;

		snprintf(sec, sizeof(sec), "[%s]", k.section);
		ms = man_section(man, sec);
		v = conf_value(cs, k.name, &commented);
		ck_assert_msg(v != NULL, "conf/emgd.conf: [%s] %s is missing", k.section, k.name);
		snprintf(want, sizeof(want), ".BR %s \" =", k.name);
		l = line_starting(ms, want);
		ck_assert_msg(l != NULL, "emgd.conf(5): [%s] %s is missing (a '.TP' then '.BR %s \" = default\"')",
			      k.section, k.name, k.name);
		if (k.driver) {
			/* a driver option: its table's default is what both documents show */
			const struct emg_device_option *o = emg_device_option_find(k.name, NULL);
			size_t dn = strlen(o->def);

			ck_assert_msg(!strncmp(v, o->def, dn) && (v[dn] == '\n' || v[dn] == '\0'),
				      "conf/emgd.conf: [device] %s: default is %s in %s's table", k.name,
				      o->def[0] ? o->def : "empty", k.driver);
			l += strlen(want);
			l += *l == ' ';
			ck_assert_msg(!strncmp(l, o->def, dn) && l[dn] == '"',
				      "emgd.conf(5): [device] %s: default is %s in %s's table", k.name,
				      o->def[0] ? o->def : "empty", k.driver);
		}
		free(cs);
		free(ms);
	}
	ck_assert_uint_gt(n, 60);
	free(conf);
	free(man);
}
END_TEST

static int table_has(const char *section, const char *name)
{
	struct emg_config_key k;

	for (size_t i = 0; emg_config_key_at(i, &k) == 0; i++)
		if (!strcmp(k.section, section) && !strcmp(k.name, name))
			return 1;
	return 0;
}

/* ... and the reverse: whatever they document as a key is one. */
START_TEST(test_every_documented_key_exists)
{
	static const char *const sections[] = { "device", "dsp", "osc", "daemon", "analytics", "oscquery", "web" };
	char *conf = read_source("conf/emgd.conf"), *man = read_source("conf/emgd.conf.5");

	for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++) {
		char *cs = conf_section(conf, sections[s]), sec[40];
		char *ms;
		int depth = 0, after_tp = 0;

		for (char *l = strtok(cs, "\n"); l; l = strtok(NULL, "\n")) {
			char name[64];
			const char *p = l + (*l == '#');

			if (sscanf(p, "%63[a-z0-9_] =", name) == 1 && strstr(p, " =") == p + strlen(name))
				ck_assert_msg(table_has(sections[s], name),
					      "conf/emgd.conf documents [%s] %s, which is no key", sections[s], name);
		}
		snprintf(sec, sizeof(sec), "[%s]", sections[s]);
		ms = man_section(man, sec);
		/* entries are ".TP" then ".BR key \" = default\"" outside .RS/.RE value lists */
		for (char *l = strtok(ms, "\n"); l; l = strtok(NULL, "\n")) {
			char name[64];

			if (!strncmp(l, ".RS", 3))
				depth++;
			else if (!strncmp(l, ".RE", 3))
				depth--;
			else if (depth == 0 && after_tp && sscanf(l, ".BR %63[a-z0-9_] \" =", name) == 1)
				ck_assert_msg(table_has(sections[s], name),
					      "emgd.conf(5) documents [%s] %s, which is no key", sections[s], name);
			after_tp = !strncmp(l, ".TP", 3);
		}
		free(cs);
		free(ms);
	}
	free(conf);
	free(man);
}
END_TEST

/* "Every value below is the built-in default" (conf/emgd.conf's first lines). */
START_TEST(test_shipped_conf_is_the_defaults)
{
	char *conf = read_source("conf/emgd.conf"), err[512], changed[512];
	struct emg_config def, c;

	ck_assert_int_eq(emg_config_init(&def), 0);
	ck_assert_int_eq(emg_config_init(&c), 0);
	ck_assert_msg(emg_config_parse(&c, "conf/emgd.conf", conf, strlen(conf), err, sizeof(err)) == 0,
		      "%s", err);
	emg_config_diff(&def, &c, changed, sizeof(changed));
	ck_assert_msg(changed[0] == '\0', "conf/emgd.conf differs from the built-in defaults in %s",
		      changed);
	emg_config_release(&def);
	emg_config_release(&c);
	free(conf);
}
END_TEST

/* The config fuzzer's seed is the shipped file (tests/fuzz/make_corpus.py copies it). */
START_TEST(test_fuzz_corpus_is_current)
{
	char *conf = read_source("conf/emgd.conf"), *seed = read_source("tests/fuzz/corpus/config/emgd.conf");

	ck_assert_msg(!strcmp(conf, seed),
		      "tests/fuzz/corpus/config/emgd.conf is stale: run tests/fuzz/make_corpus.py");
	free(conf);
	free(seed);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("registry");

	tcase_add_test(tc, test_help_lists_every_driver);
	tcase_add_test(tc, test_config_error_lists_every_driver);
	tcase_add_test(tc, test_docs_list_every_driver);
	tcase_add_test(tc, test_udev_rule_matches_usb_ids);
	suite_add_tcase(s, tc);
	tc = tcase_create("drift");
	tcase_add_test(tc, test_shipped_conf_checks);
	tcase_add_test(tc, test_every_key_documented);
	tcase_add_test(tc, test_every_documented_key_exists);
	tcase_add_test(tc, test_shipped_conf_is_the_defaults);
	tcase_add_test(tc, test_fuzz_corpus_is_current);
	suite_add_tcase(s, tc);
	return test_run(s);
}
