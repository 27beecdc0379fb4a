//! Cross-check against moto (PyPI), an independent implementation of the Lambda API: the same pin path as
//! against the simulator — GetAlias, ListTags, ListVersionsByFunction, UpdateAlias, GetFunctionConfiguration,
//! TagResource — through the `ripcord pull` binary. moto serves no CBOR CloudWatch, provisioned concurrency or
//! RevisionId checks, so prewarm is off here (the simulator covers those).
//!
//! `scripts/setup` installs moto into `.tools/venv`. Under `scripts/test` (RIPCORD_REQUIRE_TOOLS=1) a missing moto
//! fails the test; under a bare `cargo test` it is skipped with a message.

use crate::support::{repo_root, ripcord, stderr, stdout, temp_dir};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_server() -> Option<PathBuf> {
    let path = std::env::var_os("RIPCORD_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/venv/bin/moto_server"));
    if path.is_file() {
        return Some(path);
    }
    let message = format!("moto is not installed ({} is missing): run scripts/setup", path.display());
    if std::env::var_os("RIPCORD_REQUIRE_TOOLS").is_some() {
        panic!("{message}");
    }
    eprintln!("SKIPPED moto cross-check: {message}");
    None
}

fn start_moto(binary: &PathBuf) -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let child = Command::new(binary)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return moto;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto did not start on port {port} within 60 s");
}

/// Creates role, function, versions 1 and 2, alias `live` (v1 with v2 at 10%) and the known-good tag in moto.
async fn provision(endpoint: &str) {
    let http = reqwest::Client::new();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let form = format!(
        "Action=CreateRole&Version=2010-05-08&RoleName=ripcord-test&AssumeRolePolicyDocument={}",
        policy
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect::<String>()
    );
    let created = http
        .post(format!("{endpoint}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261126/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(form)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(created.status().is_success(), "CreateRole: {}", created.text().await.unwrap_or_default());

    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new("test", "test", None, None, "static"))
        .load()
        .await;
    let lambda = aws_sdk_lambda::Client::new(&config);
    let code = aws_sdk_lambda::types::FunctionCode::builder()
        .zip_file(aws_sdk_lambda::primitives::Blob::new(b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec()))
        .build();
    lambda
        .create_function()
        .function_name("checkout")
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .role("arn:aws:iam::123456789012:role/ripcord-test")
        .handler("app.handler")
        .code(code)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateFunction: {}", aws_sdk_lambda::error::DisplayErrorContext(e)));
    for (index, description) in ["v1", "v2"].into_iter().enumerate() {
        if index > 0 {
            // A version is published only when the code changed.
            let zip = aws_sdk_lambda::primitives::Blob::new(format!("PK\x05\x06 {description}").into_bytes());
            lambda
                .update_function_code()
                .function_name("checkout")
                .zip_file(zip)
                .send()
                .await
                .unwrap_or_else(|e| panic!("UpdateFunctionCode: {e:?}"));
        }
        lambda
            .publish_version()
            .function_name("checkout")
            .description(description)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PublishVersion: {e:?}"));
    }
    let routing =
        aws_sdk_lambda::types::AliasRoutingConfiguration::builder().additional_version_weights("2", 0.1).build();
    lambda
        .create_alias()
        .function_name("checkout")
        .name("live")
        .function_version("1")
        .routing_config(routing)
        .send()
        .await
        .unwrap_or_else(|e| panic!("CreateAlias: {e:?}"));
    lambda
        .tag_resource()
        .resource("arn:aws:lambda:us-east-1:123456789012:function:checkout")
        .tags("ripcord:known-good:live", "1")
        .send()
        .await
        .unwrap_or_else(|e| panic!("TagResource: {e:?}"));
}

#[test]
fn the_pin_path_works_against_moto() {
    let Some(binary) = moto_server() else { return };
    let moto = start_moto(&binary);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(provision(&moto.endpoint));

    let dir = temp_dir();
    let guards = dir.path().join("guards.toml");
    let text = format!(
        r#"
[settings]
audit_log = "audit.jsonl"
[aws]
endpoint_url = "{}"
[defaults]
prewarm = "off"
[[guard]]
name = "checkout-api"
platform = "aws-lambda"
function = "checkout"
alias = "live"
policies = [{{ use = "builtin:error-rate" }}]
"#,
        moto.endpoint
    );
    std::fs::write(&guards, text).unwrap_or_else(|e| panic!("{e}"));
    let config = guards.display().to_string();

    let missing = ripcord(&["pull", "checkout-api", "--to", "7", "--config", &config], &dir.path().join("cache"));
    assert_eq!(missing.status.code(), Some(1), "{}", stdout(&missing));
    assert!(stdout(&missing).contains("revision \"7\" does not exist; the revisions are 1, 2"), "{}", stdout(&missing));

    let pulled = ripcord(&["pull", "checkout-api", "--config", &config], &dir.path().join("cache"));
    assert_eq!(pulled.status.code(), Some(2), "{}\n{}", stdout(&pulled), stderr(&pulled));
    assert!(stdout(&pulled).contains("ROLLED BACK to v1"), "{}", stdout(&pulled));

    // Read moto's state back with the SDK: pinned to 1, routing cleared, cooldown marker tagged.
    runtime.block_on(async {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&moto.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::new("test", "test", None, None, "static"))
            .load()
            .await;
        let lambda = aws_sdk_lambda::Client::new(&config);
        let alias =
            lambda.get_alias().function_name("checkout").name("live").send().await.unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(alias.function_version(), Some("1"));
        let weights = alias.routing_config().and_then(|r| r.additional_version_weights()).cloned().unwrap_or_default();
        assert!(weights.values().all(|w| *w == 0.0), "routing not cleared: {weights:?}");
        let tags = lambda
            .list_tags()
            .resource("arn:aws:lambda:us-east-1:123456789012:function:checkout")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e:?}"))
            .tags
            .unwrap_or_default();
        assert!(tags.contains_key("ripcord:rolled-back-at:live"), "{tags:?}");
        assert_eq!(tags.get("ripcord:known-good:live").map(String::as_str), Some("1"));
    });
    let audit = ripcord::record::audit::Audit::read(&dir.path().join("audit.jsonl")).unwrap_or_else(|e| panic!("{e}"));
    let outcome = audit
        .iter()
        .rfind(|r| r.record == ripcord::record::audit::Kind::Result)
        .and_then(|r| r.outcome.map(|o| o.to_string()));
    assert_eq!(outcome.as_deref(), Some("pinned"));

    // moto's CloudWatch does not speak the protocol the SDK does (Smithy RPC v2 CBOR): the error says what came
    // and what was expected, in one line.
    let checked = ripcord(&["check", "--config", &config], &dir.path().join("cache"));
    assert_eq!(checked.status.code(), Some(1), "{}", stdout(&checked));
    let text = stdout(&checked);
    assert!(text.contains("GetMetricData on AWS/Lambda: HTTP "), "{text}");
    assert!(text.contains("which is not CloudWatch's Smithy RPC v2 CBOR (application/cbor)"), "{text}");
}
