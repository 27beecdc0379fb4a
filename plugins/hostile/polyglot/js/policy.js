// A hostile policy, for the host's tests: it prints (where the engine has a console: SpiderMonkey's writes to
// stdout, QuickJS built without WASI has none), then throws — or returns a report the engine cannot convert.
export const evaluator = {
  describe() {
    return {
      name: "hostile-js",
      version: "0.1.0",
      description: "Prints, then fails; for the host's tests only.",
      metrics: [],
      parameters: [{ name: "behaviour", description: "print-and-throw | bad-shape", default: { tag: "text", val: "print-and-throw" } }],
    };
  },

  evaluate(evaluation) {
    const given = evaluation.params.find((p) => p.name === "behaviour");
    const behaviour = given ? given.value.val : "print-and-throw";
    if (typeof console !== "undefined") console.log("hostile-js about to fail");
    if (behaviour === "bad-shape") return { verdict: "bogus", reason: 42 };
    throw new Error("hostile js policy throws on purpose");
  },
};
