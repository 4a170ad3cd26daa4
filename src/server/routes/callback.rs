//! The callback endpoint: `/u/{ns}/{repo}/hook/{hook_id}/` (and `/_/{repo}/hook/{hook_id}/`).

use serde_json::json;

use crate::error::{Error, Missing};
use crate::model::repository::RepoName;
use crate::server::http::{ok, HttpResponse, Req};
use crate::store::Store;

/// A receiver reports its result (R7, R8).
pub fn receive(
    store: &Store,
    req: &Req,
    namespace: &str,
    name: &str,
    hook_id: &str,
) -> Result<HttpResponse, Error> {
    // A callback URL with an impossible repository name cannot be one hubmock handed out.
    let repository = RepoName::new(namespace, name)
        .map_err(|_| Error::NotFound(Missing::Hook(hook_id.to_owned())))?;
    let run = store.callback(&repository, hook_id, &req.body)?;
    Ok(ok(&json!({
        "detail": "Callback accepted.",
        "run": { "id": run.id(), "status": run.status() },
    })))
}
