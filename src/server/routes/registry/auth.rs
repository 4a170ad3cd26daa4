//! Who calls the registry, and what they may do: as Docker clients expect it.
//!
//! A caller brings `Authorization: Basic` with a configured user's password, or a bearer
//! token from the token endpoint (`/token`, which hands out the Hub API's login tokens, and
//! a fixed token to anonymous callers), or nothing. Ownership is the Hub API's: a user pushes
//! and deletes only in its own namespace (`DENIED` otherwise), anyone pulls a public
//! repository, only its owner a private one. A refusal for want of credentials is `401` with
//! the `WWW-Authenticate: Bearer realm=...` challenge that sends clients to the token
//! endpoint. `--no-auth` lets everything through.

use base64::Engine;
use http::header;

use super::super::super::http::Req;
use crate::registry::{RegistryError, RegistryName};
use crate::store::Store;

/// The token anonymous callers get: it opens what needs no login (pulls of public
/// repositories).
pub(super) const ANONYMOUS_TOKEN: &str = "hubmock-anonymous";

/// The service name in challenges and token requests.
pub(super) const SERVICE: &str = "hubmock";

/// Who calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Caller {
    /// Auth is off (`--no-auth`): everything is allowed; the user named by valid credentials,
    /// if any, is the pusher.
    Open(Option<String>),
    /// No credentials, or the anonymous token.
    Anonymous {
        /// Whether the caller brought the anonymous token (it passed the challenge).
        token: bool,
    },
    /// A configured user.
    User(String),
}

/// What a request does to a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Reads: blobs, manifests, tags, referrers.
    Pull,
    /// Writes: uploads, manifest puts, deletes.
    Push,
}

impl Access {
    fn scope(self, name: &RegistryName) -> String {
        let actions = match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        format!("repository:{name}:{actions}")
    }
}

/// Who calls, from the `Authorization` header. Wrong credentials are `401` (with auth on).
pub(super) fn caller(store: &Store, req: &Req) -> Result<Caller, RegistryError> {
    let identified = identify(store, req);
    if !store.config().auth {
        return Ok(Caller::Open(identified.ok().flatten()));
    }
    match identified? {
        Some(user) => Ok(Caller::User(user)),
        None => Ok(Caller::Anonymous {
            token: has_anonymous_token(req),
        }),
    }
}

/// The user the credentials name; `None` when there are none (or the anonymous token).
fn identify(store: &Store, req: &Req) -> Result<Option<String>, RegistryError> {
    let Some(value) = req.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let refused = |message: &str, invalid_token: bool| RegistryError::Unauthorized {
        message: message.to_owned(),
        scope: None,
        invalid_token,
    };
    let value = value
        .to_str()
        .map_err(|_| refused("the Authorization header is not ASCII", false))?;
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let (user, password) = basic(credentials).ok_or_else(|| {
            refused(
                "malformed Basic credentials: expected base64 of user:password",
                false,
            )
        })?;
        return if store.check_password(&user, &password) {
            Ok(Some(user))
        } else {
            Err(refused("incorrect username or password", false))
        };
    }
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("jwt") {
        if credentials == ANONYMOUS_TOKEN {
            return Ok(None);
        }
        return store.user_of(credentials).map(Some).ok_or_else(|| {
            refused(
                "the bearer token is not one this hubmock issued (or it was issued before a \
                 restart): get a new one from the token endpoint",
                true,
            )
        });
    }
    Err(refused(
        "the Authorization header must be Basic (user:password) or Bearer (a token from the \
         token endpoint)",
        false,
    ))
}

fn has_anonymous_token(req: &Req) -> bool {
    req.headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(_, token)| token.trim() == ANONYMOUS_TOKEN)
}

/// `user:password` from base64.
pub(super) fn basic(encoded: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

impl Caller {
    /// `GET /v2/` with auth on: a caller who brought no credentials at all is challenged, so
    /// that clients fetch a token (Docker does this before anything else).
    pub(super) fn require_login(&self) -> Result<(), RegistryError> {
        match self {
            Caller::Anonymous { token: false } => Err(RegistryError::Unauthorized {
                message: "authentication required: get a token from the token endpoint \
                          named in WWW-Authenticate, or send Basic credentials"
                    .to_owned(),
                scope: None,
                invalid_token: false,
            }),
            _ => Ok(()),
        }
    }

    /// Whether this caller may `access` the repository `name`; answers the pusher (the
    /// user, if one is known).
    pub(super) fn may(
        &self,
        store: &Store,
        name: &RegistryName,
        access: Access,
    ) -> Result<Option<String>, RegistryError> {
        let user = match self {
            Caller::Open(user) => return Ok(user.clone()),
            Caller::User(user) => user,
            Caller::Anonymous { .. } => {
                if access == Access::Pull && !store.is_private(name.repo()) {
                    return Ok(None);
                }
                return Err(RegistryError::Unauthorized {
                    message: match access {
                        Access::Pull => {
                            format!("authentication required: repository {name} is private")
                        }
                        Access::Push => {
                            format!("authentication required to push to {name}")
                        }
                    },
                    scope: Some(access.scope(name)),
                    invalid_token: false,
                });
            }
        };
        let owns = *user == name.repo().namespace;
        if owns || (access == Access::Pull && !store.is_private(name.repo())) {
            return Ok(Some(user.clone()));
        }
        Err(RegistryError::Denied(match access {
            Access::Pull => format!(
                "requested access to the resource is denied: repository {name} is private \
                 and user '{user}' does not own namespace '{}'",
                name.repo().namespace
            ),
            Access::Push => format!(
                "requested access to the resource is denied: user '{user}' may push only to \
                 its own namespace, not to '{}'",
                name.repo().namespace
            ),
        }))
    }
}

/// The `WWW-Authenticate` challenge: where to get a token (`{public_url}/token`), for which
/// service, and the scope the request needs.
pub(super) fn challenge(public_url: &str, scope: Option<&str>, invalid_token: bool) -> String {
    let mut challenge = format!("Bearer realm=\"{public_url}/token\",service=\"{SERVICE}\"");
    if let Some(scope) = scope {
        challenge.push_str(&format!(",scope=\"{scope}\""));
    }
    if invalid_token {
        challenge.push_str(",error=\"invalid_token\"");
    }
    challenge
}
