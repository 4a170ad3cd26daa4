//! The token endpoint, `GET|POST /token`, where the registry's `WWW-Authenticate` challenge
//! sends clients (Docker's token authentication).
//!
//! `GET` takes Basic credentials of a configured user (Docker, skopeo, the conformance
//! suite), `POST` an OAuth2 form (`grant_type=password` with `username` and `password`, or
//! `grant_type=refresh_token`; containerd). Without credentials it answers the anonymous
//! token, which pulls public repositories. The token is one of the Hub API's login tokens
//! (so it also works there as `Bearer`); it names the user, and the registry decides on each
//! request what that user may do, so the `scope` asked for is not needed to decide anything.

use http::{header, Method, StatusCode};
use serde_json::json;

use super::super::super::http::{HttpResponse, Req};
use super::auth::{self, ANONYMOUS_TOKEN};
use super::{json_answer, render, with_version};
use crate::model::time::Timestamp;
use crate::registry::RegistryError;
use crate::store::Store;

/// `GET|POST /token`
pub(in crate::server) fn token(store: &Store, req: &Req) -> HttpResponse {
    match issue(store, req) {
        Ok(response) => with_version(response),
        Err(error) => render(&error, Some(store.public_url())),
    }
}

fn issue(store: &Store, req: &Req) -> Result<HttpResponse, RegistryError> {
    let credentials = if req.method == Method::POST {
        form_credentials(store, req)?
    } else {
        basic_credentials(req)?
    };
    let token = match credentials {
        None => ANONYMOUS_TOKEN.to_owned(),
        // A refresh: a new token (with a new expiry) for the user the live one names.
        Some(Credentials::Refresh(user)) => store.issue_token(&user, Timestamp::now()),
        Some(Credentials::Password(user, password)) => {
            store.login(&user, &password).ok_or_else(wrong_password)?
        }
    };
    // What the store takes it for (`--token-ttl`); clients ask again when it runs out.
    let expires_in = store.config().token_ttl.as_secs();
    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": expires_in,
        "issued_at": Timestamp::now().to_string(),
    });
    if req.method == Method::POST && token != ANONYMOUS_TOKEN {
        body["refresh_token"] = json!(token);
    }
    Ok(json_answer(StatusCode::OK, &body))
}

enum Credentials {
    Password(String, String),
    /// A live token hubmock issued before (an OAuth2 refresh): the user it names.
    Refresh(String),
}

fn wrong_password() -> RegistryError {
    RegistryError::Unauthorized {
        message: "incorrect username or password".to_owned(),
        scope: None,
        invalid_token: false,
    }
}

fn basic_credentials(req: &Req) -> Result<Option<Credentials>, RegistryError> {
    let Some(value) = req.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or("");
    let (scheme, encoded) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(RegistryError::Unauthorized {
            message: "the token endpoint takes Basic credentials (user:password), or none for \
                      an anonymous token"
                .to_owned(),
            scope: None,
            invalid_token: false,
        });
    }
    let (user, password) = auth::basic(encoded).ok_or_else(|| RegistryError::Unauthorized {
        message: "malformed Basic credentials: expected base64 of user:password".to_owned(),
        scope: None,
        invalid_token: false,
    })?;
    Ok(Some(Credentials::Password(user, password)))
}

/// The OAuth2 form of `POST /token`.
fn form_credentials(store: &Store, req: &Req) -> Result<Option<Credentials>, RegistryError> {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    match field("grant_type").as_deref() {
        Some("password") => match (field("username"), field("password")) {
            (Some(user), Some(password)) => Ok(Some(Credentials::Password(user, password))),
            _ => Err(RegistryError::Unsupported(
                "grant_type=password needs username and password".to_owned(),
            )),
        },
        Some("refresh_token") => {
            let token = field("refresh_token").unwrap_or_default();
            match store.user_of(&token) {
                Some(user) => Ok(Some(Credentials::Refresh(user))),
                None => Err(RegistryError::Unauthorized {
                    message: "the refresh token is not one this hubmock issued, or it expired \
                              (--token-ttl): log in again with a password"
                        .to_owned(),
                    scope: None,
                    invalid_token: true,
                }),
            }
        }
        None => basic_credentials(req),
        Some(other) => Err(RegistryError::Unsupported(format!(
            "grant_type '{}' is not supported: use password or refresh_token",
            crate::registry::digest::shorten(other)
        ))),
    }
}
