//! Users and login tokens. Users come from the configuration; tokens (shaped as Docker Hub's
//! JWTs) live until a restart (a reset keeps them: a suite logs in once and resets between
//! tests).

use super::Store;
use crate::model::ids;
use crate::model::time::Timestamp;

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
        let token = ids::new_token(username, Timestamp::now());
        self.commit(|state, changes| {
            state.tokens.insert(token.clone(), username.to_owned());
            changes.tokens.push(token.clone());
            Ok(())
        })
        .ok()?;
        Some(token)
    }

    /// Whether `user` is one of the configured users.
    pub fn is_user(&self, user: &str) -> bool {
        self.shared.users.iter().any(|(name, _)| name == user)
    }

    /// The first configured user: who `GET /v2/user/` shows without a token when auth is off.
    pub fn first_user(&self) -> &str {
        self.shared
            .users
            .first()
            .map_or("", |(name, _)| name.as_str())
    }

    /// When this emulator started: every user's `date_joined`.
    pub fn started(&self) -> Timestamp {
        self.shared.started
    }

    /// The user a token belongs to.
    pub fn user_of(&self, token: &str) -> Option<String> {
        self.read(|state| state.tokens.get(token).cloned())
    }
}
