//! Who may use the pages: the control token for a browser, and forms only from the pages'
//! own origin (README, "In the browser").
//!
//! A browser cannot be made to send `Authorization: Bearer`, so the token is given once as
//! `?token=` (typed into the form of the 401 page, or in a bookmark); the answer is a redirect
//! to the same address without it that sets an `HttpOnly; SameSite=Strict` cookie: no script
//! reads it, and no request another site starts carries it. A form posted from another origin
//! (another port of the same host is the same *site* to a cookie) is refused by its `Origin`
//! or `Sec-Fetch-Site` header.

use http::{header, HeaderValue, Method};
use percent_encoding::{percent_decode_str, utf8_percent_encode, NON_ALPHANUMERIC};

use super::see_other;
use crate::error::Error;
use crate::server::http::{HttpResponse, Req, TokenRefusal};
use crate::server::routes::{control_token_refusal, same_secret};
use crate::store::Store;

/// The cookie that carries the control token for a browser.
const TOKEN_COOKIE: &str = "hubmock_control_token";

/// Why a request for a page does not carry the control token, when one is set: the cookie,
/// a `?token=` or the control API's bearer header will do.
pub(in crate::server::routes) fn token_refusal(store: &Store, req: &Req) -> Option<TokenRefusal> {
    let expected = store.config().control_token.as_deref()?.as_bytes();
    if cookie(req, TOKEN_COOKIE).is_some_and(|token| same_secret(token.as_bytes(), expected)) {
        return None;
    }
    if let Some(token) = req.param("token") {
        return (!same_secret(token.as_bytes(), expected)).then_some(TokenRefusal::Wrong);
    }
    control_token_refusal(store, req)
}

/// A `GET` with `?token=`: the same address without it, and the token (when it is the right
/// one) kept in a cookie that no script can read and no other site's request carries.
pub(super) fn token_redirect(store: &Store, req: &Req) -> Option<HttpResponse> {
    let expected = store.config().control_token.as_deref()?;
    let given = req.param("token")?;
    if req.method != Method::GET {
        return None;
    }
    let rest: Vec<_> = req.query.iter().filter(|(k, _)| k != "token").collect();
    let mut location = req.path.clone();
    if !rest.is_empty() {
        location.push('?');
        location.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .extend_pairs(rest)
                .finish(),
        );
    }
    let mut response = see_other(&location);
    if same_secret(given.as_bytes(), expected.as_bytes()) {
        let value = format!(
            "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
            utf8_percent_encode(expected, NON_ALPHANUMERIC)
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    Some(response)
}

/// The value of a cookie the request carries, percent-decoded.
fn cookie(req: &Req, name: &str) -> Option<String> {
    req.headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| percent_decode_str(value).decode_utf8_lossy().into_owned())
}

/// Refuses a form posted from another origin. Browsers say where a post comes from
/// (`Sec-Fetch-Site`, `Origin`); a client that says neither is not a browser led by another
/// site, and (with a control token set) has to hold the token anyway.
pub(super) fn check_same_origin(req: &Req) -> Result<(), Error> {
    let text = |name: &str| {
        req.headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)"))
    };
    let refused = |why: String| {
        Err(Error::Forbidden(format!(
            "A form posted from another site is refused ({why}): these pages take forms only \
             from their own pages."
        )))
    };
    if let Some(site) = text("sec-fetch-site") {
        if site != "same-origin" && site != "none" {
            return refused(format!("Sec-Fetch-Site: {site}"));
        }
    }
    if let Some(origin) = text("origin") {
        let host = text("host").unwrap_or_default();
        let same = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host));
        if !same {
            return refused(format!("Origin: {origin}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Req {
        let mut request = http::Request::post("/").body(()).unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Req::head(request.into_parts().0)
    }

    #[test]
    fn only_forms_from_the_same_origin_are_taken() {
        let host = ("host", "127.0.0.1:5555");
        assert!(check_same_origin(&req(&[host])).is_ok());
        assert!(check_same_origin(&req(&[host, ("origin", "http://127.0.0.1:5555")])).is_ok());
        assert!(check_same_origin(&req(&[host, ("sec-fetch-site", "same-origin")])).is_ok());
        for forged in [
            ("origin", "http://127.0.0.1:8080"),
            ("origin", "null"),
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
        ] {
            assert!(
                check_same_origin(&req(&[host, forged])).is_err(),
                "{forged:?}"
            );
        }
    }

    #[test]
    fn the_token_cookie_is_found_among_others() {
        let request = req(&[("cookie", "a=1; hubmock_control_token=s%3Bx; b=2")]);
        assert_eq!(cookie(&request, TOKEN_COOKIE).as_deref(), Some("s;x"));
        assert_eq!(cookie(&req(&[]), TOKEN_COOKIE), None);
    }
}
