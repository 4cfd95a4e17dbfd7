//! Request and response bodies of the native JSON API (`/api/v1`), shared by server and client.

use serde::{Deserialize, Serialize};

use crate::{HashKind, ObjectId};

/// The JSON error envelope every non-2xx answer carries: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

/// `POST /api/v1/projects/{p}/objects/batch`: which of these objects does the project hold?
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchExistsRequest {
    pub kind: HashKind,
    pub oids: Vec<ObjectId>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchExistsResponse {
    /// The requested ids the project does not hold, in request order.
    pub missing: Vec<ObjectId>,
}
