/*
 * sl_assert.c: the failure half of SL_ASSERT (common/sl_assert.h).
 */
#include <stdlib.h>

#include "sl_assert.h"
#include "log.h"

void sl_assert_fail(const char *expr, const char *file, int line, const char *func)
{
	log_error("assertion failed: %s (%s:%d, %s)", expr, file, line, func);
	abort();
}
