/*
 * auth_why.c: see auth_why.h.
 */
#include <stdarg.h>
#include <stdio.h>

#include "auth_why.h"

void auth_why(char *why, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (!why || cap == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, cap, fmt, ap);
	va_end(ap);
}
