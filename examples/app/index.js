// The guarded function of deploy/aws/codedeploy-hook.yaml: a stand-in for your own.
exports.handler = async () => ({ statusCode: 200, body: "ok" });
