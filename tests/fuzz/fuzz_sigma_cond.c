/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the Sigma condition parser alone: the input is a
 * condition text over five fixed selections (sel1, sel2, filter_a, filter_b,
 * _hidden). Whatever it returns, the postfix code it emitted must be
 * well-formed: every operator finds its operands, the stack never goes past
 * the evaluator's bound, and exactly one value is left.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/sigma_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"sel1", "sel2", "filter_a", "filter_b", "_hidden"};
	struct dk__sg_sel sels[5];
	struct dk__sg_tables t = {.sels = sels, .n_sels = 5, .cap_sels = 5};
	struct dk__sg_corr agg;
	bool has_agg;
	char err[160];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (int i = 0; i < 5; i++)
		sels[i] = (struct dk__sg_sel){.name = (char *)names[i]};
	int rc = dk__sg_cond_parse(&t, 0, 5, text, &agg, &has_agg, err, sizeof(err));
	if (rc >= 0) {
		int sp = 0, max = 0;
		for (size_t i = 0; i < t.n_ops; i++) {
			const struct dk__sg_cinst *op = &t.ops[i];
			if (op->op == SG_C_SEL) {
				if (op->arg >= 5)
					abort();
				sp++;
			} else if (op->op == SG_C_NOT) {
				if (sp < 1)
					abort();
			} else {
				if (op->arg < 2 || (int)op->arg > sp)
					abort();
				sp -= (int)op->arg - 1;
			}
			if (sp > max)
				max = sp;
		}
		if (sp != 1 || max > 72)
			abort();
	} else if (!err[0]) {
		abort();
	}
	free(t.ops);
	free(text);
	return 0;
}
