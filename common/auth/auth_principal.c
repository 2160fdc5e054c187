/*
 * auth_principal.c: the principal name check (see auth_principal.h).
 */
#include <string.h>

#include "auth_principal.h"

int auth_principal_ok(const char *s, size_t n)
{
	if (!s || n == 0 || n > AUTH_PRINCIPAL_BYTES_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int auth_principal_limited(const char *name)
{
	return name[0] && strcmp(name, "-") != 0 && strcmp(name, "admin") != 0 && strcmp(name, "node") != 0;
}
