// A hostile policy, for the host's tests: it prints, then aborts.

#include "policy.h"

#include <stdio.h>
#include <stdlib.h>

void exports_ripcord_policy_evaluator_describe(exports_ripcord_policy_evaluator_policy_info_t *ret) {
  policy_string_dup(&ret->name, "hostile-c");
  policy_string_dup(&ret->version, "0.1.0");
  policy_string_dup(&ret->description, "Prints, then fails; for the host's tests only.");
  ret->metrics.len = 0;
  ret->metrics.ptr = NULL;
  ret->parameters.len = 0;
  ret->parameters.ptr = NULL;
}

bool exports_ripcord_policy_evaluator_evaluate(exports_ripcord_policy_evaluator_evaluation_t *evaluation,
                                               exports_ripcord_policy_evaluator_report_t *ret, policy_string_t *err) {
  (void)evaluation;
  (void)ret;
  (void)err;
  printf("hostile-c about to fail\n");
  fflush(stdout);
  fprintf(stderr, "hostile c policy aborts on purpose\n");
  abort();
}
