//! S3 errors as store errors: the store not answering (unreachable, timing out, 5xx after the
//! client's retries, refusing the credentials) is `Unavailable`, which clients see as 503 and
//! may retry; anything else is an I/O error.

use std::error::Error;

use lode_s3::aws_sdk_s3::config::http::HttpResponse;
use lode_s3::aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::store::StoreError;

/// The error of a request made for `what`.
pub(super) fn failed<E>(what: String, e: SdkError<E, HttpResponse>) -> StoreError
where
    E: Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let unavailable = match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => matches!(status, Some(s) if s >= 500 || s == 401 || s == 403),
    };
    let text = why(&e);
    if unavailable {
        StoreError::Unavailable(format!("{what}: {text}"))
    } else {
        StoreError::io(what, std::io::Error::other(text))
    }
}

/// An SDK error on one line: the service's code and message when it answered, else the cause.
pub(super) fn why<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: Error + ProvideErrorMetadata + Send + Sync + 'static,
{
    if let SdkError::ServiceError(se) = e {
        let status = se.raw().status().as_u16();
        let code = e.code().unwrap_or("error");
        let message = e.message().unwrap_or("");
        return format!("HTTP {status} {code} {message}")
            .trim_end()
            .to_string();
    }
    lode_s3::describe(e)
}
