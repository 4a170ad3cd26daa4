//! Users and login tokens. Users come from the configuration; tokens live until a restart
//! (a reset keeps them: a suite logs in once and resets between tests).

use super::Store;
use crate::model::ids;

impl Store {
    /// Logs in: a new token, or `None` for a wrong name or password.
    pub fn login(&self, username: &str, password: &str) -> Option<String> {
        let known = self
            .shared
            .users
            .iter()
            .any(|(u, p)| u == username && p == password);
        if !known {
            return None;
        }
        let token = ids::random_hex(32);
        self.commit(|state, _| {
            state.tokens.insert(token.clone(), username.to_owned());
            Ok(())
        })
        .ok()?;
        Some(token)
    }

    /// The user a token belongs to.
    pub fn user_of(&self, token: &str) -> Option<String> {
        self.read(|state| state.tokens.get(token).cloned())
    }
}
