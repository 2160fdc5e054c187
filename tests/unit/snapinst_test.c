/*
 * snapinst_test.c: the snapshot install state machine
 * (replica/logwriter/snapinst.c). Each test lays out the data dir as a
 * crash or power loss at one step would leave it, runs the master's
 * recovery, and checks that data.mdb is either the old one untouched or the
 * complete copy, never anything in between.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "snapinst.h"

static char dir[64];

static void setup(void)
{
	strcpy(dir, "/tmp/sluice-snapinst-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static void put(const char *name, const char *text)
{
	char p[4200];
	snapinst_path(p, sizeof(p), dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

/* The file's content, or "" if it does not exist. */
static const char *get(const char *name)
{
	static char buf[64];
	char p[4200];
	snapinst_path(p, sizeof(p), dir, name);
	buf[0] = 0;
	FILE *f = fopen(p, "r");
	if (!f)
		return buf;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

TestSuite(snapinst, .init = setup, .fini = teardown);

Test(snapinst, nothing_received_changes_nothing)
{
	int installed = -1;
	put("data.mdb", "old");
	cr_assert_eq(snapinst_recover(dir, &installed), SL_OK);
	cr_assert_eq(installed, 0);
	cr_assert_str_eq(get("data.mdb"), "old");
}

/* State A: power lost while receiving, or after the copy synced but before
 * the meta's commit rename. The old data (with every acknowledged entry) stays. */
Test(snapinst, incomplete_copy_is_discarded_and_old_data_kept)
{
	int installed = -1;
	put("data.mdb", "old");
	put("lock.mdb", "lock");
	put("snapshot-in.mdb", "half a copy");
	put("snapshot-in.meta.tmp", "torn");
	cr_assert_eq(snapinst_recover(dir, &installed), SL_OK);
	cr_assert_eq(installed, 0);
	cr_assert_str_eq(get("data.mdb"), "old");
	cr_assert_str_eq(get("lock.mdb"), "lock");
	cr_assert_str_eq(get("snapshot-in.mdb"), "");
	cr_assert_str_eq(get("snapshot-in.meta.tmp"), "");
	struct snapinst_meta m;
	cr_assert_eq(snapinst_meta_read(dir, &m), SL_ENOTFOUND);
}

/* State B: the meta is committed; the master (restarted or not) completes. */
Test(snapinst, committed_copy_is_installed_with_a_fresh_lock)
{
	int installed = -1;
	struct snapinst_meta m;
	put("data.mdb", "old");
	put("lock.mdb", "lock");
	put("snapshot-in.mdb", "copy");
	cr_assert_eq(snapinst_commit(dir, 7, 2), SL_OK);
	cr_assert_eq(snapinst_recover(dir, &installed), SL_OK);
	cr_assert_eq(installed, 1);
	cr_assert_str_eq(get("data.mdb"), "copy");
	cr_assert_str_eq(get("lock.mdb"), "");
	cr_assert_str_eq(get("snapshot-in.mdb"), "");
	/* the meta stays until the logwriter has adopted the copy (state C) */
	cr_assert_eq(snapinst_meta_read(dir, &m), SL_OK);
	cr_assert_eq(m.term, 7);
	cr_assert_eq(m.vote, 2);
	/* recovering again (a crash before the logwriter ran) changes nothing */
	cr_assert_eq(snapinst_recover(dir, &installed), SL_OK);
	cr_assert_eq(installed, 0);
	cr_assert_str_eq(get("data.mdb"), "copy");
	snapinst_meta_remove(dir);
	cr_assert_eq(snapinst_meta_read(dir, &m), SL_ENOTFOUND);
}

/* A meta that is not whole cannot have been committed (it is renamed into
 * place after it is synced): it is removed and the copy discarded. */
Test(snapinst, torn_meta_discards_the_copy)
{
	int installed = -1;
	struct snapinst_meta m;
	put("data.mdb", "old");
	put("snapshot-in.mdb", "copy");
	put("snapshot-in.meta", "xx");
	cr_assert_eq(snapinst_meta_read(dir, &m), SL_ECORRUPT);
	cr_assert_eq(snapinst_recover(dir, &installed), SL_OK);
	cr_assert_eq(installed, 0);
	cr_assert_str_eq(get("data.mdb"), "old");
	cr_assert_str_eq(get("snapshot-in.mdb"), "");
	cr_assert_eq(snapinst_meta_read(dir, &m), SL_ENOTFOUND);
}

/* A meta whose check word does not match its fields is refused too. */
Test(snapinst, meta_check_word_guards_fields)
{
	struct snapinst_meta m = {SNAPINST_MAGIC, 5, 1, 0};
	char p[4200];
	snapinst_path(p, sizeof(p), dir, "snapshot-in.meta");
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(&m, sizeof(m), 1, f), 1);
	fclose(f);
	cr_assert_eq(snapinst_meta_read(dir, &m), SL_ECORRUPT);
}
