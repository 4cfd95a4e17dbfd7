//! The S3 client lode-server's blob store uses (and lode's own `s3://` remotes can): where the
//! store is (`s3://BUCKET/PREFIX`, a custom endpoint, path-style addressing), the region and
//! credentials from the standard AWS chain (environment, profile files, container and instance
//! roles), and retries with backoff. Nothing here knows about the server.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};

pub use aws_sdk_s3;
pub use aws_sdk_s3::Client;

/// Region used when neither a flag nor the AWS chain names one; S3-compatible stores other than
/// AWS mostly ignore it, but requests must be signed for some region.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Attempts per request (the first included) before an error is returned.
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// An unreachable endpoint is reported quickly rather than after the system's TCP timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of one request (a part of a multipart upload included), excluding the streamed
/// body of a download.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum S3UrlError {
    #[error("invalid S3 location '{0}': expected s3://BUCKET or s3://BUCKET/PREFIX")]
    Invalid(String),
}

/// A bucket and a key prefix inside it, from `s3://BUCKET/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the whole bucket.
    pub prefix: String,
}

impl S3Location {
    pub fn parse(url: &str) -> Result<S3Location, S3UrlError> {
        let invalid = || S3UrlError::Invalid(url.to_string());
        let rest = url.strip_prefix("s3://").ok_or_else(invalid)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = !bucket.is_empty()
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
        if !valid_bucket {
            return Err(invalid());
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
            && !prefix.is_empty()
        {
            return Err(invalid());
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The full key of `relative` under the prefix.
    pub fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    /// What keys under the prefix start with (`PREFIX/`, or nothing for the whole bucket).
    pub fn key_start(&self) -> String {
        self.key("")
    }
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// How to reach the store; unset values come from the AWS chain.
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// e.g. `http://127.0.0.1:8333` for a store other than AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `http://endpoint/bucket/key` rather than `http://bucket.endpoint/key` (what most
    /// self-hosted stores need).
    pub path_style: bool,
}

impl S3Settings {
    /// Where requests go, for messages.
    pub fn describe_endpoint(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| "the AWS S3 endpoint".to_string())
    }
}

/// A client with these settings, credentials from the standard chain (`AWS_ACCESS_KEY_ID` and
/// friends, `AWS_PROFILE` and the shared config and credentials files, web identity, ECS and
/// EC2 roles) and retries with exponential backoff on throttling, 5xx and timeouts.
pub async fn client(settings: &S3Settings) -> Client {
    let region = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
        .or_default_provider()
        .or_else(Region::from_static(FALLBACK_REGION));
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(ATTEMPTS)
                .with_initial_backoff(FIRST_BACKOFF)
                .with_max_backoff(MAX_BACKOFF),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .load()
        .await;
    let mut config =
        aws_sdk_s3::config::Builder::from(&shared).force_path_style(settings.path_style);
    if let Some(endpoint) = &settings.endpoint {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

/// An SDK error on one line, with its causes (the SDK's own `Display` says only "service
/// error").
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l = S3Location::parse("s3://data-bucket/team/lode/").unwrap();
        assert_eq!(l.bucket, "data-bucket");
        assert_eq!(l.prefix, "team/lode");
        assert_eq!(l.key("files/md5/ab/cd"), "team/lode/files/md5/ab/cd");
        let whole = S3Location::parse("s3://b").unwrap();
        assert_eq!(whole.key("x"), "x");
        assert_eq!(whole.key_start(), "");
        for bad in [
            "b",
            "s3://",
            "s3:///p",
            "s3://Upper/p",
            "s3://b/a//c",
            "s3://b/../c",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad}");
        }
    }
}
