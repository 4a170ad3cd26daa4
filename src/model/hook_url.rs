//! Credentials in hook URLs (`http://user:pass@host/hook`): sent as Basic auth, as HTTP
//! clients do, and never shown. A hook URL is kept as it was given (the state export carries
//! it whole, so an import restores it); everything that shows one shows [`redact`]ed form.

/// A hook URL taken apart for sending: the URL without its user information, and the
/// credentials it carried, percent-decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Where to send, without `user:pass@`.
    pub url: String,
    /// `(user, password)`, when the URL names a user.
    pub credentials: Option<(String, String)>,
}

/// Splits the user information off a hook URL.
pub fn target(url: &str) -> Target {
    match userinfo(url) {
        None => Target {
            url: url.to_owned(),
            credentials: None,
        },
        Some((start, end)) => {
            let info = &url[start..end];
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            Target {
                url: format!("{}{}", &url[..start], &url[end + 1..]),
                credentials: Some((percent_decode(user), percent_decode(password))),
            }
        }
    }
}

/// The URL as it may be shown: a password becomes `***` (the user name stays, to tell
/// credentials apart); a user name without a password becomes `***` itself, since a token is
/// often sent that way (`https://TOKEN@host/`).
pub fn redact(url: &str) -> String {
    match userinfo(url) {
        Some((start, end)) => {
            let info = &url[start..end];
            match info.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..start], &url[end..]),
                None => format!("{}***{}", &url[..start], &url[end..]),
            }
        }
        None => url.to_owned(),
    }
}

/// Where the user information of `scheme://userinfo@host...` is: its start and the index of
/// its `@`.
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')?;
    Some((start, start + at))
}

/// Decodes `%XX` escapes; malformed ones stay as they are.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_off_and_decoded() {
        let t = target("http://ci%40acme:p%3Ass@hooks.example:8080/a@b?x=1");
        assert_eq!(t.url, "http://hooks.example:8080/a@b?x=1");
        assert_eq!(t.credentials, Some(("ci@acme".into(), "p:ss".into())));
        assert_eq!(target("http://h/x").credentials, None);
        assert_eq!(
            target("http://user@h/").credentials,
            Some(("user".into(), "".into()))
        );
    }

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(redact("http://u:secret@h:1/p"), "http://u:***@h:1/p");
        assert_eq!(redact("http://h/p?a=b@c"), "http://h/p?a=b@c");
        assert_eq!(redact("http://ghp_token@h/"), "http://***@h/");
    }
}
