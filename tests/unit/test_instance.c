/* SPDX-License-Identifier: MIT */
/* Unit tests for emg_instance: instance names, the drop-in path, per-instance
 * directories, and the ports file emgctl --instance reads. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "emgd-config.h"
#include "instance.h"

#include "tmpdir.h"
#include "testutil.h"

static void setup(void)
{
	tmpdir_make("instance");
}

static void teardown(void)
{
	tmpdir_remove();
}

START_TEST(test_names_and_dropin)
{
	char p[PATH_MAX], longname[80];

	ck_assert_int_eq(emg_instance_name_ok("DM00ABCD"), 0);
	ck_assert_int_eq(emg_instance_name_ok("1-1.4"), 0);
	memset(longname, 'x', 63);
	longname[63] = '\0';
	ck_assert_int_eq(emg_instance_name_ok(longname), 0);
	longname[63] = 'x';
	longname[64] = '\0';
	ck_assert_int_eq(emg_instance_name_ok(longname), -EINVAL);
	ck_assert_int_eq(emg_instance_name_ok(""), -EINVAL);
	ck_assert_int_eq(emg_instance_name_ok("a/b"), -EINVAL);
	ck_assert_int_eq(emg_instance_name_ok(".."), -EINVAL);
	ck_assert_int_eq(emg_instance_name_ok(".x"), -EINVAL);

	ck_assert_int_eq(emg_instance_dropin(p, sizeof(p), "/etc/lab/emgd.conf", "1-3"), 0);
	ck_assert_str_eq(p, "/etc/lab/emgd@1-3.conf");
	ck_assert_int_eq(emg_instance_dropin(p, sizeof(p), "emgd.conf", "A"), 0);
	ck_assert_str_eq(p, "emgd@A.conf");
	ck_assert_int_eq(emg_instance_dropin(p, sizeof(p), NULL, "A"), 0);
	ck_assert_str_eq(p, EMGD_SYSCONFDIR "/emgd@A.conf");
	ck_assert_int_eq(emg_instance_dropin(p, sizeof(p), "/x/emgd.conf", "../y"), -EINVAL);
	ck_assert_int_eq(emg_instance_dropin(p, 10, "/x/emgd.conf", "A"), -ENAMETOOLONG);
	ck_assert_str_eq(p, "");
}
END_TEST

/* Config with state_dir S and recordings_dir R (R may be NULL: the default under S). */
static void base(struct emg_config *c, const char *state, const char *rec)
{
	ck_assert_int_eq(emg_config_init(c), 0);
	snprintf(c->state_dir, sizeof(c->state_dir), "%s", state);
	snprintf(c->recordings_dir, sizeof(c->recordings_dir), "%s/recordings", state);
	if (rec)
		snprintf(c->recordings_dir, sizeof(c->recordings_dir), "%s", rec);
}

START_TEST(test_apply_dirs)
{
	struct emg_config c;
	char dropin[512], err[512];

	path_in(dropin, sizeof(dropin), "emgd@A.conf"); /* does not exist yet */

	/* by hand: <state_dir>@NAME, recordings inside it follow */
	base(&c, "/var/lib/emgd", NULL);
	ck_assert_int_eq(emg_instance_apply(&c, "A", dropin, true, err, sizeof(err)), 0);
	ck_assert_str_eq(c.serial, "A");
	ck_assert_str_eq(c.state_dir, "/var/lib/emgd@A");
	ck_assert_str_eq(c.recordings_dir, "/var/lib/emgd@A/recordings");
	emg_config_release(&c);

	/* recordings elsewhere: <recordings_dir>@NAME */
	base(&c, "/var/lib/emgd", "/srv/rec");
	ck_assert_int_eq(emg_instance_apply(&c, "A", dropin, true, err, sizeof(err)), 0);
	ck_assert_str_eq(c.recordings_dir, "/srv/rec@A");
	emg_config_release(&c);

	/* under systemd (StateDirectory= is per instance already): untouched */
	base(&c, "/var/lib/emgd", "/srv/rec");
	ck_assert_int_eq(emg_instance_apply(&c, "A", dropin, false, err, sizeof(err)), 0);
	ck_assert_str_eq(c.state_dir, "/var/lib/emgd");
	ck_assert_str_eq(c.recordings_dir, "/srv/rec");
	emg_config_release(&c);

	/* the drop-in names the state directory: it wins, recordings follow it */
	write_file(dropin, "[daemon]\nstate_dir = /data/amp-a\n[osc]\nlisten = auto\n");
	base(&c, "/var/lib/emgd", NULL);
	ck_assert_int_eq(emg_instance_apply(&c, "A", dropin, true, err, sizeof(err)), 1);
	ck_assert_str_eq(c.state_dir, "/data/amp-a");
	ck_assert_str_eq(c.recordings_dir, "/data/amp-a/recordings");
	ck_assert_uint_eq(c.listen.port, 0);
	emg_config_release(&c);

	/* an error in the drop-in names it and leaves the directories as they were */
	write_file(dropin, "[daemon]\nstate_dir = relative\n");
	base(&c, "/var/lib/emgd", NULL);
	ck_assert_int_eq(emg_instance_apply(&c, "A", dropin, true, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "emgd@A.conf:2: [daemon] state_dir = relative") != NULL, "%s", err);
	ck_assert_str_eq(c.state_dir, "/var/lib/emgd");
	ck_assert_str_eq(c.recordings_dir, "/var/lib/emgd/recordings");
	emg_config_release(&c);
}
END_TEST

START_TEST(test_ports_file)
{
	struct emg_hostport osc = { "127.0.0.1", 9002 }, http = { "::1", 9003 }, got = { "", 0 };
	char p[512], tmp[512], victim[512], text[256] = "";
	struct stat st;
	mode_t old;
	FILE *f;

	ck_assert_int_eq(emg_instance_read_ports(dir, &got), -ENOENT);
	/* 0644 whatever the umask: emgctl may run as anyone (the units set UMask=0077) */
	old = umask(077);
	ck_assert_int_eq(emg_instance_write_ports(dir, &osc, &http), 0);
	umask(old);
	path_in(p, sizeof(p), EMG_INSTANCE_PORTS);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0644);
	f = fopen(p, "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_gt(fread(text, 1, sizeof(text) - 1, f), 0);
	fclose(f);
	ck_assert_str_eq(text, "osc = 127.0.0.1:9002\nhttp = [::1]:9003\n");
	ck_assert_int_eq(emg_instance_read_ports(dir, &got), 0);
	ck_assert_str_eq(got.host, "127.0.0.1");
	ck_assert_uint_eq(got.port, 9002);

	/* a symlink at the temp name is replaced, its target untouched */
	path_in(tmp, sizeof(tmp), EMG_INSTANCE_PORTS ".tmp");
	path_in(victim, sizeof(victim), "victim");
	write_file(victim, "keep\n");
	ck_assert_int_eq(symlink(victim, tmp), 0);
	osc.port = 9004;
	ck_assert_int_eq(emg_instance_write_ports(dir, &osc, NULL), 0);
	f = fopen(victim, "r");
	ck_assert_ptr_nonnull(f);
	memset(text, 0, sizeof(text));
	ck_assert_uint_gt(fread(text, 1, sizeof(text) - 1, f), 0);
	fclose(f);
	ck_assert_str_eq(text, "keep\n");
	ck_assert_int_eq(emg_instance_read_ports(dir, &got), 0);
	ck_assert_uint_eq(got.port, 9004);
	ck_assert_int_eq(access(tmp, F_OK), -1);

	/* garbage is refused, not half-read */
	write_file(p, "osc = nowhere\n");
	ck_assert_int_eq(emg_instance_read_ports(dir, &got), -EBADMSG);
	write_file(p, "http = 127.0.0.1:9001\n");
	ck_assert_int_eq(emg_instance_read_ports(dir, &got), -EBADMSG);
	unlink(victim);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("instance");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_names_and_dropin);
	tcase_add_test(tc, test_apply_dirs);
	tcase_add_test(tc, test_ports_file);
	suite_add_tcase(s, tc);
	return test_run(s);
}
