/*
 * Table-driven cmocka tests: turns each row of a case table into a test of
 * its own, so a failure names the row. Every row struct starts with its
 * name (a const char *). Included by the unit tests only.
 */
#ifndef TEST_ROWS_H
#define TEST_ROWS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Adds one test per table row, named "<prefix>_<row name>". */
static void add_rows(struct CMUnitTest *tests, size_t *n, const char *prefix,
		     CMUnitTestFunction fn, const void *rows, size_t row_size,
		     size_t row_count)
{
	for (size_t i = 0; i < row_count; i++) {
		const void *row = (const char *)rows + i * row_size;
		const char *row_name = *(const char *const *)row;
		size_t name_len = strlen(prefix) + strlen(row_name) + 2;
		char *name = malloc(name_len);

		assert_non_null(name);
		snprintf(name, name_len, "%s_%s", prefix, row_name);
		tests[*n] = (struct CMUnitTest){
			.name = name,
			.test_func = fn,
			.initial_state = (void *)row,
		};
		(*n)++;
	}
}

#endif
