/*
 * sluice_header_test.c: libsluice's public header stands alone. It is
 * included first, before any other header, and this target does not see
 * common/ (sluiceclient links sluice_common privately), so a sluice.h that
 * leaned on a project header or on an earlier include would not compile.
 * The names the project uses internally must stay free for a user.
 */
#include <sluice/sluice.h>

#include <criterion/criterion.h>

#if defined(SLUICE_ERR_H) || defined(SLUICE_SLICE_H)
#error "sluice.h pulled in a project-internal header"
#endif

/* These collide if sluice.h leaks common/slice.h or common/err.h. */
struct slice {
	int unrelated;
};
enum { SL_OK = 42, SL_EFENCED = 43 };

Test(sluice_header, error_values)
{
	cr_assert_eq(SLUICE_OK, 0);
	cr_assert_eq(SLUICE_EMALFORMED, 1);
	cr_assert_eq(SLUICE_EUNAVAILABLE, 9);
	cr_assert_eq(SLUICE_ETOOMANY, 14);
	cr_assert_eq(SLUICE_EFENCED, 15);
	cr_assert_eq(SLUICE_ENOMEM, 100);
	cr_assert_eq(SLUICE_ECLOSED, 105);
	cr_assert_eq(SLUICE_ECONFIG, 107);
	cr_assert_eq(SLUICE_ETLS, 108);
	cr_assert_eq(SL_OK, 42); /* ours, not the project's */
}

Test(sluice_header, strerror_names_every_code)
{
	static const int codes[] = {
		SLUICE_OK,        SLUICE_EMALFORMED, SLUICE_ETOOLARGE,  SLUICE_EVERSION,  SLUICE_EUNKNOWN_OP,
		SLUICE_ENOTOPIC,  SLUICE_ETOPIC_EXISTS, SLUICE_EINVAL,  SLUICE_EFULL,     SLUICE_EUNAVAILABLE,
		SLUICE_ENOSUB,    SLUICE_EINTERNAL,  SLUICE_EHANDSHAKE, SLUICE_ERANGE,    SLUICE_ETOOMANY,
		SLUICE_EFENCED,   SLUICE_ENOMEM,     SLUICE_EIO,        SLUICE_EAGAIN,    SLUICE_ENOTFOUND,
		SLUICE_ECORRUPT,  SLUICE_ECLOSED,    SLUICE_ETIMEOUT,   SLUICE_ECONFIG,
		SLUICE_ETLS,
	};
	const char *unknown = sluice_strerror(9999);
	cr_assert_not_null(unknown);
	cr_assert_not_null(sluice_strerror(-1));
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = sluice_strerror(codes[i]);
		cr_assert_not_null(s, "code %d", codes[i]);
		cr_assert(s[0] != 0, "code %d", codes[i]);
		cr_assert_str_neq(s, unknown, "code %d has no description", codes[i]);
	}
	cr_assert_str_neq(sluice_strerror(SLUICE_EFENCED), sluice_strerror(SLUICE_EUNAVAILABLE));
}

Test(sluice_header, bytes)
{
	static const char ab[] = "ab";
	struct sluice_bytes b = sluice_bytes_make(ab, 2);
	cr_assert_eq(b.len, 2);
	cr_assert_eq((const void *)b.base, (const void *)ab);
	cr_assert_eq(sluice_bytes_make("ab", 2).len, 2);
	cr_assert_eq(sluice_bytes_cstr("hello").len, 5);
	cr_assert_eq(sluice_bytes_cstr("").len, 0);
	cr_assert_eq(sluice_bytes_cstr(NULL).len, 0);

	struct sluice_header h = {.key = "k", .value = sluice_bytes_cstr("v")};
	struct sluice_pub p = {.topic = "t", .key = sluice_bytes_cstr("key"), .headers = &h, .headers_n = 1,
			       .payload = b};
	cr_assert_eq(p.key.len, 3);
	cr_assert_eq(p.headers[0].value.len, 1);
	cr_assert_eq(p.payload.base[1], 'b');
}
