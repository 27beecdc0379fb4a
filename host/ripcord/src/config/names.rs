//! Checks of the names and addresses a guard is configured with, so a typo is reported at load with the usual
//! message rather than at the first call as an SDK's internals. They check the shape the cloud's API accepts
//! (characters, length), not that the thing exists.

use super::echo;

fn shape(value: &str, max: usize, allowed: impl Fn(char) -> bool, what: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("must not be empty: give {what}"));
    }
    if value.len() > max || !value.chars().all(allowed) {
        return Err(format!("must be {what} of at most {max} characters, got {}", echo(value)));
    }
    Ok(())
}

pub(crate) fn lambda_function(value: &str) -> Result<(), String> {
    let name = value.strip_prefix("arn:").map_or(value, |_| value.rsplit(':').next().unwrap_or(value));
    shape(value, 140, |c| c.is_ascii_alphanumeric() || "-_:".contains(c), "a function name or ARN")?;
    shape(name, 64, |c| c.is_ascii_alphanumeric() || "-_".contains(c), "a function name (letters, digits, - and _)")
}

pub(crate) fn lambda_alias(value: &str) -> Result<(), String> {
    shape(value, 128, |c| c.is_ascii_alphanumeric() || "-_".contains(c), "an alias name (letters, digits, - and _)")?;
    if value.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("must be an alias name, got the version number {}", echo(value)));
    }
    Ok(())
}

pub(crate) fn aws_region(value: &str) -> Result<(), String> {
    let what = "an AWS region such as \"us-east-1\"";
    shape(value, 32, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-', what)?;
    let parts: Vec<&str> = value.split('-').collect();
    let ok = parts.len() >= 3
        && parts.first().is_some_and(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts.last().is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    if ok { Ok(()) } else { Err(format!("must be {what}, got {}", echo(value))) }
}

pub(crate) fn gcp_project(value: &str) -> Result<(), String> {
    dns_label(value, 30, "a project ID (lowercase letters, digits and -, starting with a letter)")
}

pub(crate) fn gcp_location(value: &str) -> Result<(), String> {
    let what = "a Cloud Run region such as \"europe-west1\"";
    shape(value, 32, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-', what)?;
    if value.contains('-') && value.ends_with(|c: char| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("must be {what}, got {}", echo(value)))
    }
}

pub(crate) fn cloud_run_service(value: &str) -> Result<(), String> {
    dns_label(value, 49, "a service name (lowercase letters, digits and -, starting with a letter)")
}

/// Lowercase letters, digits and `-`, starting with a letter and not ending with `-`.
fn dns_label(value: &str, max: usize, what: &str) -> Result<(), String> {
    shape(value, max, |c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-', what)?;
    if value.starts_with(|c: char| c.is_ascii_lowercase()) && !value.ends_with('-') {
        Ok(())
    } else {
        Err(format!("must be {what}, got {}", echo(value)))
    }
}

/// An http(s) URL with a host (and a valid port, if it has one).
pub(crate) fn http_url(value: &str) -> Result<(), String> {
    let what = "an http(s) URL such as \"http://127.0.0.1:4566\"";
    let url = reqwest::Url::parse(value).map_err(|e| format!("must be {what}, got {} ({e})", echo(value)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("must be {what}, got {}", echo(value)));
    }
    Ok(())
}
