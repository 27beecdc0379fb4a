"""A hostile policy, for the host's tests: it prints, then raises an exception that is not the contract's Err."""

from wit_world import exports
from wit_world.imports import types


class Evaluator(exports.Evaluator):
    def describe(self) -> types.PolicyInfo:
        return types.PolicyInfo("hostile-python", "0.1.0", "Prints, then fails; for the host's tests only.", [], [])

    def evaluate(self, evaluation: types.Evaluation) -> types.Report:
        print("hostile-python about to fail")
        raise ValueError("hostile python policy raises on purpose")
