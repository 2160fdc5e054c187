/*
 * fe_console.c: the web console's files (GET /, /console.js,
 * /console.css), embedded in the binary: CMake turns
 * broker/frontend/console/ into fe_console_data.c (console/embed.cmake),
 * so the page needs no build step and no file at run time.
 */
#include <string.h>

#include "fe_pages.h"

extern const struct fe_asset fe_console_assets[];

const struct fe_asset *fe_asset_find(const char *path)
{
	for (const struct fe_asset *a = fe_console_assets; a->path; a++)
		if (strcmp(a->path, path) == 0)
			return a;
	return NULL;
}
