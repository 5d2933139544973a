//! Coder's error bodies (`codersdk.Response`), shared by the CLI and the REST API.

use serde::Serialize;

use crate::model::Validation;

pub const INVALID_QUERY_MESSAGE: &str = "Invalid connection search query.";
pub const INVALID_PARAMETERS_MESSAGE: &str = "Query parameters have invalid values.";

#[derive(Serialize)]
struct ValidationBody<'a> {
    field: &'a str,
    detail: &'a str,
}

#[derive(Serialize)]
struct ResponseBody<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    validations: Vec<ValidationBody<'a>>,
}

/// `{"message":…,"validations":[{"field":…,"detail":…}]}`.
pub fn validation_body(message: &str, validations: &[Validation]) -> String {
    let body = ResponseBody {
        message,
        detail: None,
        validations: validations
            .iter()
            .map(|v| ValidationBody {
                field: &v.field,
                detail: &v.detail,
            })
            .collect(),
    };
    serde_json::to_string(&body).expect("serialising plain strings")
}

/// `{"message":…,"detail":…}` (401, 403, 500).
pub fn message_body(message: &str, detail: Option<&str>) -> String {
    serde_json::to_string(&ResponseBody {
        message,
        detail,
        validations: Vec::new(),
    })
    .expect("serialising plain strings")
}
