//! Users and login tokens. Users come from the configuration; a token (shaped as Docker Hub's
//! JWTs) is taken until its expiry (`Config::token_ttl`), and a reset or an import keeps it (a
//! suite logs in once and resets between tests). Expired tokens are purged as new ones are
//! issued, so the map holds only tokens issued within one lifetime, plus the last expired.

use super::state::Login;
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
        Some(self.issue_token(username, Timestamp::now()))
    }

    /// A new token for `user` (already known), issued at `now`; expired tokens go.
    pub(crate) fn issue_token(&self, user: &str, now: Timestamp) -> String {
        let expires = now.after(self.shared.config.token_ttl);
        let token = ids::new_token(user, now, expires);
        let login = Login {
            user: user.to_owned(),
            expires,
        };
        let _ = self.commit(|state, changes| {
            let expired: Vec<String> = state
                .tokens
                .iter()
                .filter(|(_, login)| !login.is_live(now))
                .map(|(token, _)| token.clone())
                .collect();
            for token in expired {
                state.tokens.remove(&token);
                changes.tokens.push(token);
            }
            state.tokens.insert(token.clone(), login);
            changes.tokens.push(token.clone());
            Ok(())
        });
        token
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

    /// The user a token belongs to, while it has not expired. An expired token is no one's,
    /// exactly as an unknown one.
    pub fn user_of(&self, token: &str) -> Option<String> {
        self.user_of_at(token, Timestamp::now())
    }

    fn user_of_at(&self, token: &str, now: Timestamp) -> Option<String> {
        self.read(|state| {
            let login = state.tokens.get(token)?;
            login.is_live(now).then(|| login.user.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Config;

    #[test]
    fn a_token_is_taken_until_its_expiry_and_purged_at_the_next_login() {
        let ttl = Duration::from_secs(600);
        let (store, _queue) = Store::new(Config::default().with_token_ttl(ttl), "http://hub");
        let issued = Timestamp::from_unix_seconds(1_700_000_000.0);
        let token = store.issue_token("hubmock", issued);
        let just_before = issued.after(ttl - Duration::from_millis(1));
        assert_eq!(
            store.user_of_at(&token, just_before).as_deref(),
            Some("hubmock")
        );
        assert_eq!(store.user_of_at(&token, issued.after(ttl)), None);

        // A login after the expiry purges the expired token; a live one stays.
        let live = store.issue_token("hubmock", issued.after(ttl / 2));
        let later = store.issue_token("hubmock", issued.after(ttl));
        let held: Vec<String> = store.read(|state| state.tokens.keys().cloned().collect());
        assert!(!held.contains(&token), "the expired token is gone");
        assert!(held.contains(&live) && held.contains(&later));
        assert_eq!(held.len(), 2);
    }
}
